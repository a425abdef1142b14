import { EVENT_COMPLETED, EVENT_NONE, EVENT_PAUSED, EVENT_STARTED, EVENT_STOPPED } from '../contract/requests.js';
import { FAILURES, type FailureCode } from './errors.js';

// What the acceptor counts per request, for /metrics (admin/metrics.ts). The frontends
// bump these on every announce and scrape, so they are flat typed arrays indexed by small
// integers: no label strings, no Map, no object per request. The metrics endpoint turns
// the indexes into labels when it is scraped. Only the acceptor thread writes them.

export const PROTO_HTTP = 0;
export const PROTO_UDP = 1;
export const PROTO_WS = 2;
/** Label values by protocol index. */
export const PROTOCOLS = ['http', 'udp', 'ws'] as const;
export type Protocol = typeof PROTO_HTTP | typeof PROTO_UDP | typeof PROTO_WS;

/** Label values by the request record's event byte (EVENT_* of contract/requests.ts). */
export const EVENTS: readonly string[] = (() => {
  const names: string[] = [];
  names[EVENT_NONE] = 'none';
  names[EVENT_COMPLETED] = 'completed';
  names[EVENT_STARTED] = 'started';
  names[EVENT_STOPPED] = 'stopped';
  names[EVENT_PAUSED] = 'paused';
  return names;
})();

export const OK = 0;
export const FAILED = 1;
export const OUTCOMES = ['ok', 'failed'] as const;

/**
 * Every failure code by a stable index: its position in the FAILURES registry. The
 * index never leaves the process (the exposition labels by code), so it only has to be
 * stable within one run; appending new codes to the registry keeps old ones in place.
 */
export const FAILURE_CODES = Object.keys(FAILURES) as FailureCode[];
export const FAILURE_INDEX: Readonly<Record<FailureCode, number>> = Object.freeze(
  Object.fromEntries(FAILURE_CODES.map((c, i) => [c, i])) as Record<FailureCode, number>,
);

/**
 * Upper bounds (milliseconds) of the announce latency buckets; one more bucket past the
 * last catches everything slower (+Inf). Wide enough at the top to show a saturated
 * tracker, where requests wait behind full rings for hundreds of milliseconds.
 */
export const LATENCY_BUCKETS_MS: readonly number[] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000];
const NB = LATENCY_BUCKETS_MS.length + 1;
const BOUNDS = Float64Array.from(LATENCY_BUCKETS_MS);

const NP = PROTOCOLS.length;
const NE = EVENTS.length;
const NO = OUTCOMES.length;

export class TrackerCounters {
  /** What each array index means, for readers (the metrics exposition). */
  readonly labels = { protocols: PROTOCOLS, events: EVENTS, outcomes: OUTCOMES, failureCodes: FAILURE_CODES, latencyBucketsMs: LATENCY_BUCKETS_MS } as const;
  /** Announces by [protocol][event][outcome]: index announceIndex(). */
  readonly announces = new Float64Array(NP * NE * NO);
  /** Scrapes by [protocol][outcome]: index proto * 2 + outcome. */
  readonly scrapes = new Float64Array(NP * NO);
  /** Failure answers sent (announce and scrape, both protocols) by FAILURE_INDEX. */
  readonly failures = new Float64Array(FAILURE_CODES.length);
  /**
   * Announce latency, submit to answer written, by [protocol][bucket]: counts per bucket
   * (not cumulative; the exposition accumulates), the last bucket being +Inf.
   */
  readonly latency = new Float64Array(NP * NB);
  /** Sum of those latencies in milliseconds, by protocol. */
  readonly latencySumMs = new Float64Array(NP);

  /** `clock`: milliseconds on the clock `since` is read from (performance.now; tests fix it). */
  constructor(private readonly clock: () => number = () => performance.now()) {}

  static announceIndex(proto: number, event: number, outcome: number): number {
    return (proto * NE + event) * NO + outcome;
  }

  /** Requests refused because no pending slot or ring space was free. */
  get busy(): number {
    return this.failures[FAILURE_INDEX.tracker_busy];
  }

  /** Requests refused because the client's address is banned. */
  get banned(): number {
    return this.failures[FAILURE_INDEX.banned];
  }

  /**
   * An announce its shard answered, the answer just written: `failure` is what the shard
   * refused it with (null: peers were sent); `since` is performance.now() at submit.
   */
  announced(proto: Protocol, event: number, failure: FailureCode | null, since: number): void {
    const ms = this.clock() - since;
    if (failure === null) this.announces[(proto * NE + event) * NO + OK]++;
    else this.announceFailed(proto, event, failure);
    let b = 0;
    while (b < BOUNDS.length && ms > BOUNDS[b]) b++; // Prometheus buckets are `le`: inclusive
    this.latency[proto * NB + b]++;
    this.latencySumMs[proto] += ms;
  }

  /**
   * An announce answered with a failure: refused by the acceptor (parse, policy, busy),
   * by its shard, or lost with a shard restart. `event` is EVENT_NONE when the request
   * did not parse far enough to know it.
   */
  announceFailed(proto: Protocol, event: number, code: FailureCode): void {
    this.announces[(proto * NE + event) * NO + FAILED]++;
    this.failures[FAILURE_INDEX[code]]++;
  }

  scraped(proto: Protocol): void {
    this.scrapes[proto * NO + OK]++;
  }

  /** A scrape answered with a failure; `code` null for errors outside the registry (UDP's own messages). */
  scrapeFailed(proto: Protocol, code: FailureCode | null): void {
    this.scrapes[proto * NO + FAILED]++;
    if (code !== null) this.failures[FAILURE_INDEX[code]]++;
  }
}

/** Number of latency buckets per protocol, +Inf included. */
export const LATENCY_BUCKETS = NB;

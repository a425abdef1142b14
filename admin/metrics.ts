import client from 'prom-client';
import { CHEAT_KINDS, KIND_DOWNLOAD_OVER_TWICE_SIZE } from '../contract/accounting.js';
import { PersistenceStats } from '../contract/persistence-stats.js';
import { LAG_BOUNDS, ReplicationStats } from '../contract/replication.js';
import type { LimitsView, RegistryView, RequestCountersView, ShardStats, ShardsView } from './context.js';

// Prometheus exposition of a running tracker. Everything is read when Prometheus scrapes,
// by collect() callbacks over memory the tracker already keeps, through the views the
// assembly passes in: the frontends' counters, each shard's control words and ring
// positions (SharedArrayBuffers), the persistence thread's stats block. Nothing messages a
// shard or the persistence thread, and nothing is added to the hot path beyond the
// counters' increments.
//
// Each call builds its own prom-client Registry (not the global one), so several trackers
// in one process (the tests) each have their own.

export interface MetricsSource {
  counters: RequestCountersView;
  shards: ShardsView;
  registry: RegistryView;
  /** The persistence thread's stats block; its metrics are absent without one (database.enabled = false). */
  persistence?: { readonly stats: Float64Array } | undefined;
  /** The acceptor's limiter tables (absent in unit tests of other metrics). */
  clientLimits?: LimitsView;
  /** shards.max_peers and shards.max_swarms */
  limits: { maxPeers: number; maxSwarms: number };
  /** The uWebSockets.js build serving HTTP (absent in unit tests without one). */
  uws?: { version: string; package: string; binary: string };
  /** The replication thread's stats block (contract/replication.ts); absent without redis.url. */
  replication?: { readonly stats: Float64Array } | undefined;
  /** The WebSocket tracker's figures (absent with ws.enabled = false). */
  ws?: { readonly sockets: number; readonly offersRelayed: number; readonly answersRelayed: number; readonly relaysDropped: number; readonly relaysUnroutable: number };
}

export interface Metrics {
  registry: client.Registry;
  contentType: string;
  /** The exposition text, read now. */
  text(): Promise<string>;
}

type Labels = Record<string, string>;
type Emit = (labels: Labels, value: number) => void;

const P = 'shardtrack_';

export function createMetrics(src: MetricsSource): Metrics {
  const reg = new client.Registry();
  const { counters: c, shards, registry, persistence, limits } = src;
  const { protocols: PROTOCOLS, events: EVENTS, outcomes: OUTCOMES, failureCodes: FAILURE_CODES } = c.labels;
  const NE = EVENTS.length;
  const NO = OUTCOMES.length;
  /** Every shard's figures: read once per scrape (text()) for all the per-shard metrics. */
  let scrape: ShardStats[] | undefined;
  const readShards = (): ShardStats[] => Array.from({ length: shards.count }, (_, i) => shards.stats(i));
  const shardStats = (): ShardStats[] => scrape ?? readShards();
  if (src.uws) {
    const { version, package: pkg, binary } = src.uws;
    gauge(reg, 'uws_build_info', 'The uWebSockets.js build serving HTTP: its release, the npm package it comes from and the native binary loaded (always 1).', ['version', 'package', 'binary'], (emit) => emit({ version, package: pkg, binary }, 1));
  }

  // ----- requests (the frontends' counters)

  counter(reg, 'announces_total', 'Announces answered, by protocol, event and outcome (failed: any failure reason; event "none" also for requests that did not parse).', ['protocol', 'event', 'outcome'], (emit) => {
    for (let p = 0; p < PROTOCOLS.length; p++) {
      for (let e = 0; e < EVENTS.length; e++) {
        for (let o = 0; o < OUTCOMES.length; o++) {
          emit({ protocol: PROTOCOLS[p], event: EVENTS[e], outcome: OUTCOMES[o] }, c.announces[(p * NE + e) * NO + o]);
        }
      }
    }
  });
  counter(reg, 'scrapes_total', 'Scrapes answered, by protocol and outcome.', ['protocol', 'outcome'], (emit) => {
    for (let p = 0; p < PROTOCOLS.length; p++) {
      for (let o = 0; o < OUTCOMES.length; o++) emit({ protocol: PROTOCOLS[p], outcome: OUTCOMES[o] }, c.scrapes[p * NO + o]);
    }
  });
  counter(reg, 'failures_total', 'Failure answers sent to clients (announces and scrapes, HTTP and UDP), by failure code (README: failure reasons).', ['code'], (emit) => {
    for (let i = 0; i < FAILURE_CODES.length; i++) emit({ code: FAILURE_CODES[i] }, c.failures[i]);
  });
  counter(reg, 'busy_total', 'Requests refused with "tracker busy": no pending slot (http.max_inflight) or no room in the shard\'s request ring.', [], (emit) => emit({}, c.busy));
  new AnnounceLatency(reg, c);

  // ----- swarms, from each shard's control words

  // The shards count seeders, leechers, IPv6 and WebSocket peers, not IPv6 or WebSocket
  // seeders: the seeder/leecher split within those families is apportioned by the shard's
  // overall ratio. Sums over either label are exact (per shard); only the family × kind
  // cells are estimates.
  gauge(reg, 'peers', 'Peers in the swarms by family (ipv4, ipv6, websocket) and kind. Totals by family and by kind are exact; the kind split within a family is estimated from each shard\'s seeder ratio.', ['family', 'kind'], (emit) => {
    let s4 = 0, l4 = 0, s6 = 0, l6 = 0, sw = 0, lw = 0;
    for (const { seeders, leechers, peersV6, peersWs = 0 } of shardStats()) {
      const all = seeders + leechers;
      const v6 = Math.min(all, peersV6);
      const ws = Math.min(all - v6, peersWs);
      const v6Seeders = all === 0 ? 0 : Math.round((v6 * seeders) / all); // ≤ seeders, and v6 - v6Seeders ≤ leechers
      // (within what is left of each kind once IPv6 took its share)
      const wsSeeders = all === 0 ? 0 : Math.min(seeders - v6Seeders, Math.max(ws - (leechers - (v6 - v6Seeders)), Math.round((ws * seeders) / all)));
      s6 += v6Seeders;
      l6 += v6 - v6Seeders;
      sw += wsSeeders;
      lw += ws - wsSeeders;
      s4 += seeders - v6Seeders - wsSeeders;
      l4 += leechers - (v6 - v6Seeders) - (ws - wsSeeders);
    }
    emit({ family: 'ipv4', kind: 'seeder' }, s4);
    emit({ family: 'ipv4', kind: 'leecher' }, l4);
    emit({ family: 'ipv6', kind: 'seeder' }, s6);
    emit({ family: 'ipv6', kind: 'leecher' }, l6);
    emit({ family: 'websocket', kind: 'seeder' }, sw);
    emit({ family: 'websocket', kind: 'leecher' }, lw);
  });
  gauge(reg, 'swarms', 'Live swarms (torrents with at least one peer, or recently active).', [], (emit) => {
    let n = 0;
    for (const s of shardStats()) n += s.swarms;
    emit({}, n);
  });

  // ----- per shard

  const shardLabel = Array.from({ length: shards.count }, (_, i) => ({ shard: String(i) }));
  /** A gauge or counter with one value per shard. */
  const perShard = (kind: 'gauge' | 'counter', name: string, help: string, read: (s: ShardStats, i: number) => number | undefined): void =>
    (kind === 'gauge' ? gauge : counter)(reg, name, help, ['shard'], (emit) => {
      shardStats().forEach((s, i) => {
        const v = read(s, i);
        if (v !== undefined) emit(shardLabel[i], v);
      });
    });
  perShard('gauge', 'shard_up', '1 while the shard has a running thread (0 between a crash and its respawn).', (s) => (s.up ? 1 : 0));
  perShard('gauge', 'shard_heartbeat_age_seconds', 'Seconds since the shard\'s loop last turned (it turns at least 4 times a second); past shards.ready_heartbeat_seconds /ready fails, past shards.watchdog_seconds the thread is replaced. Absent while the shard has no thread.', (s) => (s.heartbeatAge >= 0 ? s.heartbeatAge : undefined));
  gauge(reg, 'shard_queue_bytes', 'Bytes queued in a shard\'s rings: requests waiting for the shard, answers waiting for the acceptor.', ['shard', 'ring'], (emit) => {
    shardStats().forEach((s, i) => {
      emit({ shard: shardLabel[i].shard, ring: 'requests' }, s.queuedRequestBytes);
      emit({ shard: shardLabel[i].shard, ring: 'answers' }, s.queuedAnswerBytes);
    });
  });
  perShard('gauge', 'shard_peers', 'Live peers on the shard.', (s) => s.peers);
  perShard('gauge', 'shard_swarms', 'Live swarms on the shard.', (s) => s.swarms);
  gauge(reg, 'shard_max_peers', 'Peers a shard may hold (shards.max_peers); beyond it announces get "tracker is full".', [], (emit) => emit({}, limits.maxPeers));
  gauge(reg, 'shard_max_swarms', 'Swarms a shard may hold (shards.max_swarms).', [], (emit) => emit({}, limits.maxSwarms));

  // The shards keep these as int32 words that wrap; totals are rebuilt from the unsigned
  // difference between reads (exact as long as scrapes come less than 2^32 units apart).
  const busy = new Unwrap(shards.count);
  const handled = new Unwrap(shards.count);
  const full = new Unwrap(shards.count);
  perShard('counter', 'shard_busy_seconds_total', 'Time the shard spent handling requests; rate() of it is the shard\'s busy ratio.', (s, i) => busy.read(i, s.busyMs) / 1000);
  perShard('counter', 'shard_requests_handled_total', 'Request records (announces, scrape parts) the shard handled.', (s, i) => handled.read(i, s.handled));
  perShard('counter', 'shard_table_full_total', 'Announces the shard refused because max_peers or max_swarms was reached.', (s, i) => full.read(i, s.tableFull));
  perShard('counter', 'shard_restarts_total', 'Times the shard\'s thread died and was respawned on the same memory.', (s) => s.restarts);

  // ----- registry (acceptor caches)

  gauge(reg, 'users', 'Users (passkeys) known to the acceptor.', [], (emit) => emit({}, registry.userCount));
  gauge(reg, 'registered_torrents', 'Registered torrents known to the acceptor.', [], (emit) => emit({}, registry.registeredTorrents));
  gauge(reg, 'bans', 'Banned IP addresses and networks.', [], (emit) => emit({}, registry.banCount));

  // ----- the acceptor's limiter (fixed-size tables: entries never pass capacity)

  const cl = src.clientLimits;
  if (cl) {
    const perTable = (name: string, help: string, read: (t: LimitsView['tables'][number]) => number, kind: 'gauge' | 'counter' = 'gauge') =>
      (kind === 'gauge' ? gauge : counter)(reg, name, help, ['table'], (emit) => {
        for (const t of cl.tables) emit({ table: t.name }, read(t));
      });
    perTable('limiter_entries', 'Clients the limiter remembers, by table (addresses, passkeys).', (t) => t.entries);
    perTable('limiter_capacity', 'Entries each limiter table holds at most (limits.table_entries, rounded up to a power of two).', (t) => t.capacity);
    perTable('limiter_bytes', 'Memory of each limiter table, fixed at start.', (t) => t.bytes);
    perTable('limiter_evictions_total', 'Clients forgotten to make room for a new one.', (t) => t.evictions, 'counter');
    gauge(reg, 'auto_bans', 'Addresses banned automatically right now (limits.autoban_*).', [], (emit) => emit({}, cl.autoBans(Date.now()).length));
    counter(reg, 'auto_bans_total', 'Automatic bans imposed since start.', [], (emit) => emit({}, cl.bansTotal));
  }

  // ----- the WebSocket tracker
  const ws = src.ws;
  if (ws) {
    gauge(reg, 'ws_sockets', 'WebSocket tracker connections open.', [], (emit) => emit({}, ws.sockets));
    counter(reg, 'ws_relays_total', 'WebRTC offers and answers relayed between WebSocket peers, by kind.', ['kind'], (emit) => {
      emit({ kind: 'offer' }, ws.offersRelayed);
      emit({ kind: 'answer' }, ws.answersRelayed);
    });
    counter(reg, 'ws_relays_dropped_total', 'Relays not sent, by reason: backpressure (the target had ws.max_backpressure_bytes unsent) or gone (the target had left).', ['reason'], (emit) => {
      emit({ reason: 'backpressure' }, ws.relaysDropped);
      emit({ reason: 'gone' }, ws.relaysUnroutable);
    });
  }

  // ----- persistence thread (PersistenceStats block)

  if (persistence) {
    const ps = persistence.stats;
    const stat = (kind: 'gauge' | 'counter', name: string, help: string, read: () => number): void =>
      (kind === 'gauge' ? gauge : counter)(reg, name, help, [], (emit) => emit({}, read()));
    stat('gauge', 'database_up', '1 while the last database operation succeeded.', () => ps[PersistenceStats.DB_UP]);
    stat('gauge', 'journal_bytes', 'Bytes of the accounting journal file: batches not yet committed, those kept for the checkpoint tail, and acknowledged ones awaiting compaction.', () => ps[PersistenceStats.JOURNAL_BYTES]);
    stat('gauge', 'journal_budget_bytes', 'Journal size at which accounting waits (persistence.journal_max_bytes).', () => ps[PersistenceStats.JOURNAL_BUDGET]);
    stat('gauge', 'pending_batches', 'Batches journalled and not yet committed to the database.', () => ps[PersistenceStats.PENDING_BATCHES]);
    stat('gauge', 'persistence_lag_seconds', 'Age of the oldest batch not yet committed to the database (0 when none is pending).', () => {
      const oldest = ps[PersistenceStats.OLDEST_PENDING];
      return oldest > 0 ? Math.max(0, Date.now() / 1000 - oldest) : 0;
    });
    stat('counter', 'records_journalled_total', 'Accounting records written to the journal.', () => ps[PersistenceStats.RECORDS_JOURNALLED]);
    stat('counter', 'records_committed_total', 'Accounting records committed to the database.', () => ps[PersistenceStats.RECORDS_COMMITTED]);
    stat('counter', 'flush_failures_total', 'Failed attempts to commit a batch (each is retried).', () => ps[PersistenceStats.FLUSH_FAILURES]);
    stat('counter', 'dead_letters_total', 'Records the database refused, moved to dead_letters.', () => ps[PersistenceStats.DEAD_LETTERS]);
    stat('gauge', 'last_flush_seconds', 'Duration of the last commit to the database.', () => ps[PersistenceStats.LAST_FLUSH_MS] / 1000);
    stat('counter', 'budget_stalls_total', 'Times the journal was full and accounting waited for the database.', () => ps[PersistenceStats.BUDGET_STALLS]);
    stat('counter', 'states_dropped_total', 'Peers state records not journalled because the journal was at its disk budget (announces never wait for them; a checkpoint is asked for).', () => ps[PersistenceStats.STATES_DROPPED]);
    counter(reg, 'cheats_total', 'Claims the tracker did not believe, by cheat_flags kind (README: integrity): each cut to its bound and flagged.', ['kind'], (emit) => {
      CHEAT_KINDS.forEach((kind, i) => emit({ kind }, ps[PersistenceStats.CHEATS + i]));
      emit({ kind: KIND_DOWNLOAD_OVER_TWICE_SIZE }, ps[PersistenceStats.FLAGS_TWICE_SIZE]);
    });
  }

  // (always exported, 0 for a node alone: the dashboard's distinct-peer count subtracts it)
  gauge(reg, 'remote_peers', 'Peers of other nodes in this node\'s swarms (listed and counted, never accounted here).', [], (emit) => emit({}, shardStats().reduce((n, s) => n + (s.remotePeers ?? 0), 0)));

  // ----- replication thread (ReplicationStats block)

  if (src.replication) {
    const rs = src.replication.stats;
    const stat = (kind: 'gauge' | 'counter', name: string, help: string, read: () => number): void =>
      (kind === 'gauge' ? gauge : counter)(reg, name, help, [], (emit) => emit({}, read()));
    stat('gauge', 'redis_up', '1 while the last Redis command succeeded.', () => rs[ReplicationStats.REDIS_UP]);
    stat('gauge', 'replication_synced', '1 while other nodes peers are loaded and followed with no gap; 0 while joining or resynchronising.', () => rs[ReplicationStats.SYNCED]);
    stat('gauge', 'replication_nodes', 'Other nodes with a live lease.', () => rs[ReplicationStats.NODES]);
    const remoteFull = new Unwrap(shards.count);
    counter(reg, 'remote_peers_refused_total', 'Peers of other nodes this node did not take: its shard was at max_peers or max_swarms (its answers miss them).', [], (emit) =>
      emit({}, shardStats().reduce((n, s, i) => n + remoteFull.read(i, s.remoteFull ?? 0), 0)));
    stat('counter', 'replication_published_total', 'Local peer changes published to Redis (a peer changed twice between publishes counts once).', () => rs[ReplicationStats.PUBLISHED]);
    stat('counter', 'replication_merged_total', 'Other nodes peer changes applied to this node\'s swarms.', () => rs[ReplicationStats.MERGED]);
    counter(reg, 'replication_forwards_total', 'Announces of a peer another node holds: sent to its node to account, or received from another node and accounted here.', ['direction'], (emit) => {
      emit({ direction: 'sent' }, rs[ReplicationStats.FORWARDS_SENT]);
      emit({ direction: 'received' }, rs[ReplicationStats.FORWARDS_RECEIVED]);
    });
    stat('counter', 'replication_resyncs_total', 'Full resynchronisations: at start, when Redis came back, after a gap or lost changes.', () => rs[ReplicationStats.RESYNCS]);
    stat('counter', 'replication_errors_total', 'Failed Redis operations (each leads to a resynchronisation once Redis answers).', () => rs[ReplicationStats.ERRORS]);
    stat('counter', 'replication_nodes_lapsed_total', 'Nodes whose lease lapsed: their peers were removed.', () => rs[ReplicationStats.NODES_LAPSED]);
    new StatsHistogram(reg, 'replication_lag_seconds', 'From a change waiting to be published at its node to its being applied here (publish interval + Redis + polling).', rs, ReplicationStats.LAG_BUCKETS, LAG_BOUNDS, ReplicationStats.LAG_SUM, ReplicationStats.LAG_COUNT);
  }

  // ----- the process: CPU, memory, handles, GC, and event-loop lag (nodejs_eventloop_lag_*)
  client.collectDefaultMetrics({ register: reg });

  return {
    registry: reg,
    contentType: reg.contentType,
    // prom-client writes NaN as "Nan" (the event-loop figures before any sample); Prometheus
    // reads that, stricter parsers want the spelling of the format.
    text: async () => {
      scrape = readShards();
      try {
        return (await reg.metrics()).replace(/ Nan$/gm, ' NaN');
      } finally {
        scrape = undefined;
      }
    },
  };
}

function counter(reg: client.Registry, name: string, help: string, labelNames: string[], read: (emit: Emit) => void): void {
  new client.Counter({
    name: P + name,
    help,
    labelNames,
    registers: [reg],
    collect() {
      this.reset();
      read((labels, value) => this.inc(labels, value));
    },
  });
}

function gauge(reg: client.Registry, name: string, help: string, labelNames: string[], read: (emit: Emit) => void): void {
  new client.Gauge({
    name: P + name,
    help,
    labelNames,
    registers: [reg],
    collect() {
      this.reset();
      read((labels, value) => this.set(labels, value));
    },
  });
}

/** Totals of int32 counters that wrap (the shards add with `| 0`). */
class Unwrap {
  private readonly last: Int32Array;
  private readonly total: Float64Array;

  constructor(n: number) {
    this.last = new Int32Array(n);
    this.total = new Float64Array(n);
  }

  read(i: number, raw: number): number {
    this.total[i] += (raw - this.last[i]) >>> 0;
    this.last[i] = raw;
    return this.total[i];
  }
}

/** A histogram another thread keeps in a stats block: cumulative bucket counts, sum, count. */
class StatsHistogram extends client.Histogram {
  constructor(
    reg: client.Registry,
    private readonly metric: string,
    private readonly help: string,
    private readonly stats: Float64Array,
    private readonly buckets: number,
    private readonly bounds: readonly number[],
    private readonly sum: number,
    private readonly count: number,
  ) {
    super({ name: P + metric, help, buckets: [...bounds], registers: [reg] });
  }

  override async get(): Promise<HistogramData> {
    const name = P + this.metric;
    const values: Array<{ labels: Labels; value: number; metricName: string }> = [];
    this.bounds.forEach((b, i) => values.push({ labels: { le: String(b) }, value: this.stats[this.buckets + i], metricName: name + '_bucket' }));
    values.push({ labels: { le: '+Inf' }, value: this.stats[this.count], metricName: name + '_bucket' });
    values.push({ labels: {}, value: this.stats[this.sum], metricName: name + '_sum' });
    values.push({ labels: {}, value: this.stats[this.count], metricName: name + '_count' });
    return { name, help: this.help, type: 'histogram', values, aggregator: 'sum' } as unknown as HistogramData;
  }

  getForPromString(): Promise<HistogramData> {
    return this.get();
  }
}

const LATENCY_HELP = 'Announce latency from the parsed request being queued for its shard to its answer being written (announces the shards answered).';

type HistogramData = Awaited<ReturnType<client.Histogram<'protocol'>['get']>>;

/**
 * The announce latency histogram, straight from TrackerCounters' bucket arrays: prom-client's
 * Histogram only observes one value at a time, so its output is replaced with ours (same
 * shape: cumulative _bucket{le}, _sum, _count, seconds). The registry asks for
 * getForPromString() when a metric has it, other readers for get(): both are answered.
 */
class AnnounceLatency extends client.Histogram<'protocol'> {
  private readonly le: string[];

  constructor(
    reg: client.Registry,
    private readonly c: RequestCountersView,
  ) {
    super({
      name: P + 'announce_duration_seconds',
      help: LATENCY_HELP,
      labelNames: ['protocol'],
      buckets: c.labels.latencyBucketsMs.map((ms) => ms / 1000),
      registers: [reg],
    });
    this.le = [...c.labels.latencyBucketsMs.map((ms) => String(ms / 1000)), '+Inf'];
  }

  override async get(): Promise<HistogramData> {
    const name = P + 'announce_duration_seconds';
    const values: Array<{ labels: Labels; value: number; metricName: string }> = [];
    const buckets = this.le.length;
    this.c.labels.protocols.forEach((protocol, p) => {
      let acc = 0;
      for (let b = 0; b < buckets; b++) {
        acc += this.c.latency[p * buckets + b];
        values.push({ labels: { protocol, le: this.le[b] }, value: acc, metricName: name + '_bucket' });
      }
      values.push({ labels: { protocol }, value: this.c.latencySumMs[p] / 1000, metricName: name + '_sum' });
      values.push({ labels: { protocol }, value: acc, metricName: name + '_count' });
    });
    return { name, help: LATENCY_HELP, type: 'histogram', values, aggregator: 'sum' } as unknown as HistogramData;
  }

  getForPromString(): Promise<HistogramData> {
    return this.get();
  }
}

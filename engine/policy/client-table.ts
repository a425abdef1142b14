import { randomBytes } from 'node:crypto';

// What the acceptor remembers about each client (a source address, or a user): a token
// bucket, its requests in flight, its recent failures and an automatic ban. A fixed-size
// set-associative table (4 ways), typed arrays only: memory is fixed at start, however many
// clients there are. A new client takes an empty way of its set or evicts the one touched
// least recently (a banned one last), so a flood from a million addresses churns the table
// and never grows it. Set indexes are keyed with a random seed: nobody can aim at one set.

const WAYS = 4;

/** Bytes per entry: keys (2 × u32), stamp (f64), tokens (f64), inflight (u16), strikes (u16), strike window (u32), ban (u32). */
export const ENTRY_BYTES = 4 + 4 + 8 + 8 + 2 + 2 + 4 + 4;

function mix(a: number, b: number, seed: number): number {
  let h = Math.imul(a ^ seed, 0x85ebca6b) ^ b;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= Math.imul(b ^ (seed >>> 7), 0x27d4eb2f);
  return (h ^ (h >>> 16)) >>> 0;
}

export class ClientTable {
  readonly capacity: number;
  private readonly sets: number;
  private readonly seed = randomBytes(4).readUInt32LE(0);
  private readonly keyA: Uint32Array;
  private readonly keyB: Uint32Array;
  /** Last touch (ms), 0 = empty way. */
  readonly stamp: Float64Array;
  readonly tokens: Float64Array;
  readonly inflight: Uint16Array;
  readonly strikes: Uint16Array;
  readonly strikeStart: Uint32Array; // unix s
  readonly bannedUntil: Uint32Array; // unix s, 0 = not banned
  /** Entries in use, and clients that lost their entry to a newcomer. */
  used = 0;
  evictions = 0;

  constructor(entries: number) {
    this.sets = Math.max(1, 2 ** Math.ceil(Math.log2(Math.max(WAYS, entries) / WAYS)));
    this.capacity = this.sets * WAYS;
    this.keyA = new Uint32Array(this.capacity);
    this.keyB = new Uint32Array(this.capacity);
    this.stamp = new Float64Array(this.capacity);
    this.tokens = new Float64Array(this.capacity);
    this.inflight = new Uint16Array(this.capacity);
    this.strikes = new Uint16Array(this.capacity);
    this.strikeStart = new Uint32Array(this.capacity);
    this.bannedUntil = new Uint32Array(this.capacity);
  }

  get bytes(): number {
    return this.capacity * ENTRY_BYTES;
  }

  /** The entry of key (a, b), or -1 when it has none. */
  find(a: number, b: number): number {
    const base = (mix(a, b, this.seed) & (this.sets - 1)) * WAYS;
    for (let i = base; i < base + WAYS; i++) if (this.stamp[i] !== 0 && this.keyA[i] === a && this.keyB[i] === b) return i;
    return -1;
  }

  /** The entry of key (a, b), made (fresh: a full bucket of `burst` tokens) when missing. */
  get(a: number, b: number, nowMs: number, burst: number): number {
    const base = (mix(a, b, this.seed) & (this.sets - 1)) * WAYS;
    let victim = -1;
    let worst = Infinity;
    for (let i = base; i < base + WAYS; i++) {
      if (this.stamp[i] === 0) {
        if (victim < 0 || this.stamp[victim] !== 0) victim = i;
        continue;
      }
      if (this.keyA[i] === a && this.keyB[i] === b) return i;
      if (victim >= 0 && this.stamp[victim] === 0) continue;
      // least recently touched goes first; one with requests in flight (its answers would
      // count against the newcomer) or banned only when the whole set is
      const score = this.stamp[i] + (this.inflight[i] > 0 ? 1e14 : 0) + (this.bannedUntil[i] * 1000 > nowMs ? 1e15 : 0);
      if (score < worst) {
        worst = score;
        victim = i;
      }
    }
    if (this.stamp[victim] === 0) this.used++;
    else this.evictions++;
    this.keyA[victim] = a;
    this.keyB[victim] = b;
    this.stamp[victim] = nowMs;
    this.tokens[victim] = burst;
    this.inflight[victim] = 0;
    this.strikes[victim] = 0;
    this.strikeStart[victim] = 0;
    this.bannedUntil[victim] = 0;
    return victim;
  }

  /** Take one token of entry `i`'s bucket (refilled at `rate` a second up to `burst`); false when empty. */
  take(i: number, nowMs: number, rate: number, burst: number): boolean {
    const t = Math.min(burst, this.tokens[i] + ((nowMs - this.stamp[i]) / 1000) * rate);
    this.stamp[i] = nowMs;
    if (t < 1) {
      this.tokens[i] = t;
      return false;
    }
    this.tokens[i] = t - 1;
    return true;
  }

  /** Refill entry `i`'s bucket to now without taking a token. */
  refill(i: number, nowMs: number, rate: number, burst: number): void {
    this.tokens[i] = Math.min(burst, this.tokens[i] + ((nowMs - this.stamp[i]) / 1000) * rate);
    this.stamp[i] = nowMs;
  }

  /** Seconds until entry `i` has a token again. */
  wait(i: number, rate: number): number {
    return Math.max(1, Math.ceil((1 - this.tokens[i]) / rate));
  }

  key(i: number): [number, number] {
    return [this.keyA[i], this.keyB[i]];
  }
}

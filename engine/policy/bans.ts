import { parseCidrInto } from '../net/ip.js';

// IP and network bans, checked on every announce and scrape. Expected shape: thousands of
// single addresses and tens of ranges, so a lookup is one Map probe per distinct prefix
// length present (a handful), never a walk over the entries.
//
// Map keys are int32 numbers: on 64-bit Node 20 (no pointer compression) V8 keeps them as
// Smis, so a probe boxes nothing. That is why IPv6 networks are keyed by a 32-bit mix of
// their masked words (colliding networks chain and compare all 16 bytes) rather than by a
// 48-bit number, which would be a heap number on every probe. IPv4 networks (inside
// ::ffff:0:0/96) get their own tables keyed exactly by the masked address, no chain needed.

export interface BanEntry {
  /** 16 bytes; IPv4 as the IPv4-mapped ::ffff:a.b.c.d. Host bits are ignored. */
  readonly network: Uint8Array;
  /** Prefix length 0..128 in the 16-byte space: an IPv4 /24 is 120. */
  readonly prefix: number;
  /** Unix seconds the ban ends (banned while now < expiresAt); 0 = never. */
  readonly expiresAt: number;
}

/** An IPv6 network in a hash chain: its masked address as four big-endian int32 words. */
interface Node6 {
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
  expiresAt: number;
  next: Node6 | undefined;
}

/** One immutable set of tables; replace() builds a new one and swaps the reference. */
interface Tables {
  readonly size: number;
  readonly masks4: Int32Array; // per IPv4 prefix length present, longest first
  readonly maps4: ReadonlyArray<Map<number, number>>; // masked u32 as int32 → expiresAt
  readonly lengths6: Int32Array; // IPv6 prefix lengths present, longest first
  readonly masks6: Int32Array; // 4 words per entry of lengths6
  readonly maps6: ReadonlyArray<Map<number, Node6>>; // mix() of the masked words → chain
  readonly spanV4: Int32Array; // indexes into lengths6 holding a network that contains ::ffff:0:0/96
}

const EMPTY: Tables = { size: 0, masks4: new Int32Array(0), maps4: [], lengths6: new Int32Array(0), masks6: new Int32Array(0), maps6: [], spanV4: new Int32Array(0) };

/** Big-endian word at a[o] as int32. */
function word(a: Uint8Array, o: number): number {
  return (a[o] << 24) | (a[o + 1] << 16) | (a[o + 2] << 8) | a[o + 3];
}

/** The first `bits` bits of a 32-bit word set (bits clamped to 0..32), as int32. */
function wordMask(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? -1 : -1 << (32 - bits);
}

/** 32-bit mix of four words (murmur-style constants); int32, so a Smi Map key. Exported for tests. */
export function mix(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x2545f491, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16) ^ b, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ c, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ d, 0x27d4eb2f);
  return h ^ (h >>> 15);
}

/** The later of two expiries, 0 (never) being the latest. */
function later(a: number | undefined, b: number): number {
  if (a === undefined) return b;
  return a === 0 || b === 0 ? 0 : Math.max(a, b);
}

export class BanList {
  private t: Tables = EMPTY;

  /** Distinct networks held (the same network given twice counts once). */
  get size(): number {
    return this.t.size;
  }

  /**
   * Swap in a whole new set of bans. Built aside and assigned in one step, so a lookup sees
   * the old set or the new one; on invalid input it throws and the old set stays in force.
   */
  replace(entries: readonly BanEntry[]): void {
    const by4 = new Map<number, Map<number, number>>(); // IPv4 prefix length → table
    const by6 = new Map<number, Map<number, Node6>>();
    const spanning = new Set<number>(); // IPv6 prefix lengths with a network spanning all IPv4
    let size = 0;
    for (const e of entries) {
      const p = e.prefix;
      if (e.network.length !== 16) throw new Error(`ban network must be 16 bytes, got ${e.network.length}`);
      if (!Number.isInteger(p) || p < 0 || p > 128) throw new Error(`ban prefix must be an integer 0..128, got ${p}`);
      if (!Number.isInteger(e.expiresAt) || e.expiresAt < 0) throw new Error(`ban expiresAt must be unix seconds or 0, got ${e.expiresAt}`);
      const w0 = word(e.network, 0) & wordMask(p);
      const w1 = word(e.network, 4) & wordMask(p - 32);
      const w2 = word(e.network, 8) & wordMask(p - 64);
      const w3 = word(e.network, 12) & wordMask(p - 96);
      if (p >= 96 && w0 === 0 && w1 === 0 && w2 === 0xffff) {
        let m = by4.get(p - 96);
        if (m === undefined) by4.set(p - 96, (m = new Map()));
        const prev = m.get(w3);
        if (prev === undefined) size++;
        m.set(w3, later(prev, e.expiresAt));
        continue;
      }
      // ::/0, ::ffff:0:0/95 and the like: the only IPv6 networks an IPv4 address can fall in.
      if (p <= 96 && w0 === 0 && w1 === 0 && w2 === (0xffff & wordMask(p - 64))) spanning.add(p);
      let m = by6.get(p);
      if (m === undefined) by6.set(p, (m = new Map()));
      const k = mix(w0, w1, w2, w3);
      let n = m.get(k);
      while (n !== undefined && !(n.w0 === w0 && n.w1 === w1 && n.w2 === w2 && n.w3 === w3)) n = n.next;
      if (n !== undefined) {
        n.expiresAt = later(n.expiresAt, e.expiresAt);
      } else {
        m.set(k, { w0, w1, w2, w3, expiresAt: e.expiresAt, next: m.get(k) });
        size++;
      }
    }
    const len4 = [...by4.keys()].sort((a, b) => b - a);
    const len6 = [...by6.keys()].sort((a, b) => b - a);
    const masks6 = new Int32Array(4 * len6.length);
    len6.forEach((p, i) => {
      for (let w = 0; w < 4; w++) masks6[4 * i + w] = wordMask(p - 32 * w);
    });
    this.t = {
      size,
      masks4: Int32Array.from(len4, wordMask),
      maps4: len4.map((p) => by4.get(p)!),
      lengths6: Int32Array.from(len6),
      masks6,
      maps6: len6.map((p) => by6.get(p)!),
      spanV4: Int32Array.from(len6.flatMap((p, i) => (spanning.has(p) ? [i] : []))),
    };
  }

  /** Is the 16-byte address at ip16[off] (IPv4-mapped for IPv4) under an unexpired ban? */
  banned(ip16: Uint8Array, off: number, nowUnix: number): boolean {
    const t = this.t;
    if (t.size === 0) return false;
    const w0 = word(ip16, off);
    const w1 = word(ip16, off + 4);
    const w2 = word(ip16, off + 8);
    const w3 = word(ip16, off + 12);
    const v4 = w0 === 0 && w1 === 0 && w2 === 0xffff;
    if (v4) {
      const masks = t.masks4;
      for (let i = 0; i < masks.length; i++) {
        const e = t.maps4[i].get(w3 & masks[i]);
        if (e !== undefined && (e === 0 || e > nowUnix)) return true;
      }
      // Of the IPv6 tables, only lengths holding a network around all of IPv4 can match.
      const span = t.spanV4;
      for (let j = 0; j < span.length; j++) if (this.in6(t, span[j], w0, w1, w2, w3, nowUnix)) return true;
      return false;
    }
    for (let i = 0; i < t.lengths6.length; i++) if (this.in6(t, i, w0, w1, w2, w3, nowUnix)) return true;
    return false;
  }

  /** Is the address (four words) in an unexpired network of the i-th IPv6 table? */
  private in6(t: Tables, i: number, w0: number, w1: number, w2: number, w3: number, nowUnix: number): boolean {
    const masks = t.masks6;
    const a = w0 & masks[4 * i];
    const b = w1 & masks[4 * i + 1];
    const c = w2 & masks[4 * i + 2];
    const d = w3 & masks[4 * i + 3];
    for (let n = t.maps6[i].get(mix(a, b, c, d)); n !== undefined; n = n.next) {
      if (n.w0 === a && n.w1 === b && n.w2 === c && n.w3 === d && (n.expiresAt === 0 || n.expiresAt > nowUnix)) return true;
    }
    return false;
  }
}

/**
 * "1.2.3.4", "1.2.3.0/24", "2001:db8::/32", "::ffff:1.2.3.4/128" → 16 network bytes and the
 * prefix length in the 16-byte space (IPv4 lengths + 96). Strict like every address parser
 * here: host bits set after the prefix ("1.2.3.4/24") are an error, not silently masked.
 */
export function parseCidr(text: string): { network: Uint8Array; prefix: number } {
  const network = new Uint8Array(16);
  const prefix = parseCidrInto(text, network, 0);
  return { network, prefix };
}

// The client allow-list: peer_id prefixes ("-qB4", "-TR3", "-lt0D") of the BitTorrent
// clients a site permits. Empty means every client is allowed.
//
// Nearly every client's peer_id starts with '-', so bucketing by the first byte would put
// everything in one list. Instead: per distinct prefix length present (a handful), a Map
// from an FNV-1a hash of the first `length` bytes to the prefixes of that length. The hash
// is carried from one length to the next, so one pass over at most 20 bytes and one Map
// probe per length answer a lookup; hashes are int32 (Smi keys, nothing boxed).

/** Longest prefix: a whole peer_id. */
export const MAX_CLIENT_PREFIX = 20;

interface PrefixNode {
  readonly bytes: Uint8Array;
  next: PrefixNode | undefined; // prefixes of the same length whose hashes collide
}

interface Tables {
  readonly size: number;
  readonly lengths: Uint8Array; // ascending
  readonly maps: ReadonlyArray<Map<number, PrefixNode>>;
}

const EMPTY: Tables = { size: 0, lengths: new Uint8Array(0), maps: [] };
const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/** FNV-1a of the bytes, int32. Exported for tests. */
export function prefixHash(bytes: Uint8Array): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], FNV_PRIME);
  return h;
}

function startsWith(id: Uint8Array, off: number, prefix: Uint8Array): boolean {
  for (let i = 0; i < prefix.length; i++) if (id[off + i] !== prefix[i]) return false;
  return true;
}

export class ClientAllowList {
  private t: Tables = EMPTY;

  /** Distinct prefixes held; 0 = every client allowed. */
  get size(): number {
    return this.t.size;
  }

  /** Swap in a whole new list (built aside, assigned in one step; throws and keeps the old one on bad input). */
  replace(prefixes: readonly Uint8Array[]): void {
    const byLength = new Map<number, Map<number, PrefixNode>>();
    let size = 0;
    for (const p of prefixes) {
      if (p.length < 1 || p.length > MAX_CLIENT_PREFIX) throw new Error(`client prefix must be 1..${MAX_CLIENT_PREFIX} bytes, got ${p.length}`);
      let m = byLength.get(p.length);
      if (m === undefined) byLength.set(p.length, (m = new Map()));
      const h = prefixHash(p);
      let n = m.get(h);
      while (n !== undefined && !startsWith(n.bytes, 0, p)) n = n.next;
      if (n !== undefined) continue; // duplicate
      m.set(h, { bytes: Uint8Array.from(p), next: m.get(h) });
      size++;
    }
    const lengths = [...byLength.keys()].sort((a, b) => a - b);
    this.t = { size, lengths: Uint8Array.from(lengths), maps: lengths.map((l) => byLength.get(l)!) };
  }

  /** May the client whose 20-byte peer_id is at peerId[off] announce? */
  allowed(peerId: Uint8Array, off: number): boolean {
    const t = this.t;
    if (t.size === 0) return true;
    const lengths = t.lengths;
    let h = FNV_OFFSET;
    let i = 0;
    for (let l = 0; l < lengths.length; l++) {
      for (const len = lengths[l]; i < len; i++) h = Math.imul(h ^ peerId[off + i], FNV_PRIME);
      for (let n = t.maps[l].get(h); n !== undefined; n = n.next) if (startsWith(peerId, off, n.bytes)) return true;
    }
    return false;
  }
}

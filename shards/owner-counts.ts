// How many peers each owner has in this shard: per (user, swarm) in private mode (the cap
// tracker.max_peers_per_user_torrent), per source address in open mode (limits.
// max_swarms_per_address). An open-addressing table of (key a, key b) → count with linear
// probing and backward-shift deletion; a key whose count drops to 0 leaves. Thread memory,
// rebuilt from the peer slab when a shard thread starts (ShardLogic.recount): it holds at
// most one entry per peer, so it is bounded by shards.max_peers.

const EMPTY = 0; // counts are ≥ 1 while a key is present

function slotOf(a: number, b: number, mask: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ b;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) & mask;
}

export class OwnerCounts {
  private keyA: Uint32Array;
  private keyB: Uint32Array;
  private counts: Uint32Array;
  private mask: number;
  size = 0;

  constructor(capacity = 1024) {
    const n = 2 ** Math.ceil(Math.log2(Math.max(16, capacity)));
    this.keyA = new Uint32Array(n);
    this.keyB = new Uint32Array(n);
    this.counts = new Uint32Array(n);
    this.mask = n - 1;
  }

  get bytes(): number {
    return this.counts.length * 12;
  }

  get(a: number, b: number): number {
    for (let i = slotOf(a, b, this.mask); ; i = (i + 1) & this.mask) {
      if (this.counts[i] === EMPTY) return 0;
      if (this.keyA[i] === a && this.keyB[i] === b) return this.counts[i];
    }
  }

  add(a: number, b: number): void {
    if ((this.size + 1) * 2 > this.counts.length) this.grow();
    for (let i = slotOf(a, b, this.mask); ; i = (i + 1) & this.mask) {
      if (this.counts[i] === EMPTY) {
        this.keyA[i] = a;
        this.keyB[i] = b;
        this.counts[i] = 1;
        this.size++;
        return;
      }
      if (this.keyA[i] === a && this.keyB[i] === b) {
        this.counts[i]++;
        return;
      }
    }
  }

  remove(a: number, b: number): void {
    let i = slotOf(a, b, this.mask);
    for (; ; i = (i + 1) & this.mask) {
      if (this.counts[i] === EMPTY) return; // not counted (cannot happen while add/remove pair up)
      if (this.keyA[i] === a && this.keyB[i] === b) break;
    }
    if (--this.counts[i] > 0) return;
    this.size--;
    // backward shift: move later entries of the run into the hole when their home allows
    for (let j = (i + 1) & this.mask; this.counts[j] !== EMPTY; j = (j + 1) & this.mask) {
      const home = slotOf(this.keyA[j], this.keyB[j], this.mask);
      if ((j - home) & this.mask) {
        if (((i - home) & this.mask) <= ((j - home) & this.mask)) {
          this.keyA[i] = this.keyA[j];
          this.keyB[i] = this.keyB[j];
          this.counts[i] = this.counts[j];
          this.counts[j] = EMPTY;
          i = j;
        }
      }
    }
  }

  clear(): void {
    this.counts.fill(EMPTY);
    this.size = 0;
  }

  private grow(): void {
    const { keyA, keyB, counts } = this;
    const n = counts.length * 2;
    this.keyA = new Uint32Array(n);
    this.keyB = new Uint32Array(n);
    this.counts = new Uint32Array(n);
    this.mask = n - 1;
    for (let i = 0; i < counts.length; i++) {
      if (counts[i] === EMPTY) continue;
      let j = slotOf(keyA[i], keyB[i], this.mask);
      while (this.counts[j] !== EMPTY) j = (j + 1) & this.mask;
      this.keyA[j] = keyA[i];
      this.keyB[j] = keyB[i];
      this.counts[j] = counts[i];
    }
  }
}

import { INDEX_ENTRY_WORDS } from './memory-layout.js';

// Building blocks of the swarm and peer tables: a slab of fixed-size records and an
// open-addressing index, each in a growable SharedArrayBuffer.
//
// Views are fixed-length and re-created after a grow: V8 (Node 20) compiles accesses to
// length-tracking views on growable buffers ~30x slower than to fixed-length ones.

export const MAX_SAB_BYTES = 2 ** 32; // V8's limit for one growable SharedArrayBuffer

/** A growable SharedArrayBuffer that reserves `maxBytes` (virtual) and commits on growth. */
export function growableBuffer(initialBytes: number, maxBytes: number): SharedArrayBuffer {
  const max = Math.min(maxBytes, MAX_SAB_BYTES);
  return new SharedArrayBuffer(Math.min(initialBytes, max), { maxByteLength: max });
}

export class Slab {
  readonly sab: SharedArrayBuffer;
  readonly recordSize: number;
  u8!: Uint8Array;
  dv!: DataView;
  i32!: Int32Array;
  capacity = 0;

  constructor(sab: SharedArrayBuffer, recordSize: number) {
    this.sab = sab;
    this.recordSize = recordSize;
    this.refresh();
  }

  /** Records the reserved address space allows. */
  get maxRecords(): number {
    return Math.floor(this.sab.maxByteLength / this.recordSize);
  }

  /** Re-create the views if another thread (or a previous life of this one) grew the buffer. */
  refresh(): void {
    if (this.u8 !== undefined && this.u8.byteLength === this.sab.byteLength) return;
    const len = this.sab.byteLength;
    this.u8 = new Uint8Array(this.sab, 0, len);
    this.dv = new DataView(this.sab, 0, len);
    this.i32 = new Int32Array(this.sab, 0, len >> 2);
    this.capacity = Math.floor(len / this.recordSize);
  }

  /** Double the capacity (bounded by the reservation). Returns false when already at the bound. */
  grow(): boolean {
    const target = Math.min(this.capacity * 2, this.maxRecords);
    if (target <= this.capacity) return false;
    this.sab.grow(target * this.recordSize);
    this.refresh();
    return true;
  }
}

/** Compares a stored record with a lookup key; implemented by each table. */
export interface KeyMatcher {
  matches(slot: number, key: Uint8Array, keyOff: number, extra: number): boolean;
}

/**
 * Linear-probing hash index of [hash, slot + 1] Int32 pairs; slot word 0 = empty.
 * The stored hash avoids touching records of non-matching entries while probing.
 * Deletion shifts later entries back (no tombstones), so chains never degrade.
 * The owner keeps the load at or below 1/2 and rebuilds on growth.
 */
export class HashIndex {
  readonly sab: SharedArrayBuffer;
  i32!: Int32Array;
  capacity = 0;
  mask = 0;

  constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.refresh();
  }

  static bytesFor(entries: number): number {
    return entries * INDEX_ENTRY_WORDS * 4;
  }

  get maxEntries(): number {
    // largest power of two that fits the reservation
    return 2 ** Math.floor(Math.log2(this.sab.maxByteLength / (INDEX_ENTRY_WORDS * 4)));
  }

  refresh(): void {
    if (this.i32 !== undefined && this.i32.byteLength === this.sab.byteLength) return;
    this.i32 = new Int32Array(this.sab, 0, this.sab.byteLength >> 2);
    this.capacity = this.i32.length / INDEX_ENTRY_WORDS;
    this.mask = this.capacity - 1;
  }

  /** Slot holding the key, or -1. */
  find(hash: number, key: Uint8Array, keyOff: number, extra: number, m: KeyMatcher): number {
    const t = this.i32;
    let i = hash & this.mask;
    for (;;) {
      const s = t[i * 2 + 1];
      if (s === 0) return -1;
      if (t[i * 2] === hash && m.matches(s - 1, key, keyOff, extra)) return s - 1;
      i = (i + 1) & this.mask;
    }
  }

  insert(hash: number, slot: number): void {
    const t = this.i32;
    let i = hash & this.mask;
    while (t[i * 2 + 1] !== 0) i = (i + 1) & this.mask;
    t[i * 2] = hash;
    t[i * 2 + 1] = slot + 1;
  }

  remove(hash: number, slot: number): void {
    const t = this.i32;
    const mask = this.mask;
    let i = hash & mask;
    for (;;) {
      const s = t[i * 2 + 1];
      if (s === 0) return; // not present
      if (s === slot + 1) break;
      i = (i + 1) & mask;
    }
    // Backward-shift: move later members of the cluster into the hole when their home
    // position does not lie cyclically in (hole, j].
    let hole = i;
    let j = (i + 1) & mask;
    for (;;) {
      const s = t[j * 2 + 1];
      if (s === 0) break;
      const home = t[j * 2] & mask;
      const inRange = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!inRange) {
        t[hole * 2] = t[j * 2];
        t[hole * 2 + 1] = s;
        hole = j;
      }
      j = (j + 1) & mask;
    }
    t[hole * 2] = 0;
    t[hole * 2 + 1] = 0;
  }

  /** Empty the index, first growing it to at least `entries` (a power of two). */
  reset(entries: number): void {
    const bytes = HashIndex.bytesFor(entries);
    if (bytes > this.sab.byteLength) this.sab.grow(bytes);
    this.refresh();
    this.i32.fill(0);
  }
}

import { MAX_CLASS, NIL } from './layout.js';
import { Slab } from './table.js';

/** Entries in a block of class `cls` (class 0 means "no block"). */
export function classEntries(cls: number): number {
  return cls === 0 ? 0 : 2 ** (cls - 1);
}

/** Smallest class whose block holds `n` entries. */
export function classFor(n: number): number {
  let cls = 1;
  while (classEntries(cls) < n) cls++;
  return cls;
}

/**
 * Blocks of peer entries for one address family: power-of-two blocks carved from two
 * parallel growable regions with the same entry index, the wire-form addresses (`addr`,
 * `entryBytes` each) and the owning peer slots (`slots`, u32 each). Freed blocks go on a
 * free list per class (linked through their first slot word) and are reused before the
 * bump pointer moves. Headers live in the shard's control block, so a respawned shard
 * continues with the same arena.
 */
export class PeerArena {
  readonly addr: Slab;
  readonly slots: Slab;

  constructor(
    addrSab: SharedArrayBuffer,
    slotSab: SharedArrayBuffer,
    readonly entryBytes: number,
    private readonly ctl: Int32Array,
    private readonly topWord: number,
    private readonly freeWord: number,
  ) {
    this.addr = new Slab(addrSab, entryBytes);
    this.slots = new Slab(slotSab, 4);
  }

  /** Reset an empty arena's headers (first start of a shard). */
  init(): void {
    this.ctl[this.topWord] = 0;
    for (let c = 0; c < MAX_CLASS; c++) this.ctl[this.freeWord + c] = NIL;
  }

  refresh(): void {
    this.addr.refresh();
    this.slots.refresh();
  }

  /** First entry of a new block of class `cls`, or -1 when the reservation is exhausted. */
  alloc(cls: number): number {
    const head = this.ctl[this.freeWord + cls];
    if (head !== NIL) {
      this.ctl[this.freeWord + cls] = this.slots.i32[head];
      return head;
    }
    const start = this.ctl[this.topWord];
    const end = start + classEntries(cls);
    while (this.addr.capacity < end) if (!this.addr.grow()) return -1;
    while (this.slots.capacity < end) if (!this.slots.grow()) return -1;
    this.ctl[this.topWord] = end;
    return start;
  }

  free(start: number, cls: number): void {
    this.slots.i32[start] = this.ctl[this.freeWord + cls];
    this.ctl[this.freeWord + cls] = start;
  }

  /**
   * Rebuild the free lists from the blocks in use (after a crash, the lists themselves may
   * be torn): every gap between used blocks, up to the bump pointer, is carved into the
   * largest power-of-two blocks that fit.
   */
  rebuildFreeLists(used: Array<{ start: number; cls: number }>): void {
    for (let c = 0; c < MAX_CLASS; c++) this.ctl[this.freeWord + c] = NIL;
    used.sort((a, b) => a.start - b.start);
    let cursor = 0;
    const carve = (from: number, to: number): void => {
      while (from < to) {
        let cls = 1;
        while (cls + 1 < MAX_CLASS && classEntries(cls + 1) <= to - from) cls++;
        this.free(from, cls);
        from += classEntries(cls);
      }
    };
    for (const b of used) {
      carve(cursor, b.start);
      cursor = Math.max(cursor, b.start + classEntries(b.cls));
    }
    carve(cursor, this.ctl[this.topWord]);
  }
}

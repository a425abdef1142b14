import { MAX_CLASS, NIL } from './memory-layout.js';
import { Slab } from './table.js';

/** Entries in a block of class `cls` (class 0 means "no block"). */
export function classEntries(cls: number): number {
  return cls === 0 ? 0 : 2 ** (cls - 1);
}

/**
 * The smallest class in use: 2 entries. A free block keeps two words in its slot region
 * (next and previous on its class's free list), so buddies can be unlinked from the middle.
 */
export const MIN_CLASS = 2;

/** Smallest class whose block holds `n` entries. */
export function classFor(n: number): number {
  let cls = MIN_CLASS;
  while (classEntries(cls) < n) cls++;
  return cls;
}

/**
 * Blocks of peer entries for one address family, managed as a buddy allocator over three
 * parallel growable regions with the same entry index: the wire-form addresses (`addr`,
 * `entryBytes` each), the owning peer slots (`slots`, u32 each) and a free mark (`marks`,
 * one byte: the class of a free block starting there, else 0).
 *
 * A block of class c holds 2^(c-1) entries and starts at a multiple of its size, so its
 * buddy starts at `start ^ size`. Freeing a block merges it with its buddy while the buddy
 * is free, and allocating splits a larger free block before the bump pointer moves. That
 * matters here because swarms grow their arrays class by class: without merging, every
 * smaller block a swarm leaves behind waits for a swarm of exactly that size, and a
 * tracker whose swarms all grow together (a restart, everyone re-announcing) would keep
 * about twice the entries it needs. Headers live in the shard's control block, so a
 * respawned shard continues with the same arena.
 */
export class PeerArena {
  readonly addr: Slab;
  readonly slots: Slab;
  readonly marks: Slab;

  constructor(
    addrSab: SharedArrayBuffer,
    slotSab: SharedArrayBuffer,
    markSab: SharedArrayBuffer,
    readonly entryBytes: number,
    private readonly ctl: Int32Array,
    private readonly topWord: number,
    private readonly freeWord: number,
  ) {
    this.addr = new Slab(addrSab, entryBytes);
    this.slots = new Slab(slotSab, 4);
    this.marks = new Slab(markSab, 1);
  }

  /** Reset an empty arena's headers (first start of a shard). */
  init(): void {
    this.ctl[this.topWord] = 0;
    for (let c = 0; c < MAX_CLASS; c++) this.ctl[this.freeWord + c] = NIL;
  }

  refresh(): void {
    this.addr.refresh();
    this.slots.refresh();
    this.marks.refresh();
  }

  /** First entry of a new block of class `cls`, or -1 when the reservation is exhausted. */
  alloc(cls: number): number {
    // the smallest free block that fits, split down to the class asked for
    for (let c = cls; c < MAX_CLASS; c++) {
      const head = this.ctl[this.freeWord + c];
      if (head === NIL) continue;
      this.unlink(head, c);
      for (let k = c; k > cls; k--) this.push(head + classEntries(k - 1), k - 1);
      return head;
    }
    // else from the top, aligned to the block's size; the skipped gap becomes free blocks.
    // Free blocks that end at the bump pointer are as good as the unused space above it, so
    // the block may start among them (it still ends above the top: all of them are smaller
    // than the block, and merged, so no aligned run of them is as large as the block).
    const size = classEntries(cls);
    const top = this.ctl[this.topWord];
    let low = top;
    for (let c = this.endingAt(low); c !== 0; c = this.endingAt(low)) low -= classEntries(c);
    const start = Math.ceil(low / size) * size;
    const end = start + size;
    if (!this.ensure(end)) return -1;
    for (let at = top, c = this.endingAt(at); at > start && c !== 0; c = this.endingAt(at)) {
      at -= classEntries(c);
      this.unlink(at, c);
    }
    this.ctl[this.topWord] = Math.max(end, top);
    this.carve(top, start);
    return start;
  }

  /** Class of the free block that ends just before entry `at`, else 0. */
  private endingAt(at: number): number {
    for (let c = MIN_CLASS; c < MAX_CLASS; c++) {
      const b = at - classEntries(c);
      if (b < 0) return 0;
      if (b % classEntries(c) === 0 && this.marks.u8[b] === c) return c;
    }
    return 0;
  }

  free(start: number, cls: number): void {
    const top = this.ctl[this.topWord];
    for (; cls + 1 < MAX_CLASS; cls++) {
      const size = classEntries(cls);
      const buddy = start ^ size;
      if (buddy + size > top || this.marks.u8[buddy] !== cls) break;
      this.unlink(buddy, cls);
      if (buddy < start) start = buddy;
    }
    this.push(start, cls);
  }

  /**
   * Rebuild the free lists and marks from the blocks in use (after a crash, the lists
   * themselves may be torn): every gap between used blocks, up to the bump pointer, is
   * carved into the largest aligned blocks that fit.
   */
  rebuildFreeLists(used: Array<{ start: number; cls: number }>): void {
    for (let c = 0; c < MAX_CLASS; c++) this.ctl[this.freeWord + c] = NIL;
    const top = this.ctl[this.topWord];
    this.marks.u8.fill(0, 0, Math.min(top, this.marks.capacity));
    used.sort((a, b) => a.start - b.start);
    let cursor = 0;
    for (const b of used) {
      if (b.start > cursor) this.carve(cursor, b.start);
      cursor = Math.max(cursor, b.start + classEntries(b.cls));
    }
    if (top > cursor) this.carve(cursor, top);
  }

  /**
   * Put [from, to) on the free lists as the largest aligned blocks that fit. They are freed,
   * not just pushed: the gap alloc() skips starts at the old bump pointer, and a free buddy
   * just below it must merge with the gap's first block.
   */
  private carve(from: number, to: number): void {
    while (from < to) {
      let cls = MIN_CLASS;
      while (cls + 1 < MAX_CLASS && from % classEntries(cls + 1) === 0 && from + classEntries(cls + 1) <= to) cls++;
      this.free(from, cls);
      from += classEntries(cls);
    }
  }

  private ensure(end: number): boolean {
    while (this.addr.capacity < end) if (!this.addr.grow()) return false;
    while (this.slots.capacity < end) if (!this.slots.grow()) return false;
    while (this.marks.capacity < end) if (!this.marks.grow()) return false;
    return true;
  }

  /** Add a free block to the head of its class's list (next, prev in its first two slot words). */
  private push(start: number, cls: number): void {
    const s = this.slots.i32;
    const head = this.ctl[this.freeWord + cls];
    s[start] = head;
    s[start + 1] = NIL;
    if (head !== NIL) s[head + 1] = start;
    this.ctl[this.freeWord + cls] = start;
    this.marks.u8[start] = cls;
  }

  private unlink(start: number, cls: number): void {
    const s = this.slots.i32;
    const next = s[start];
    const prev = s[start + 1];
    if (prev === NIL) this.ctl[this.freeWord + cls] = next;
    else s[prev] = next;
    if (next !== NIL) s[next + 1] = prev;
    this.marks.u8[start] = 0;
  }
}

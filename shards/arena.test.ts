import { describe, expect, it } from 'vitest';
import { MIN_CLASS, PeerArena, classEntries, classFor } from './arena.js';
import { MAX_CLASS, NIL } from './memory-layout.js';
import { prng } from '../test/support/prng.js';
import { alignedBlocks } from '../test/support/arena-model.js';

const TOP = 3; // word of the bump pointer in the test control block
const FREE = 8; // first of MAX_CLASS free-list heads

interface Block {
  start: number;
  cls: number;
}

interface Made {
  arena: PeerArena;
  ctl: Int32Array;
  addrSab: SharedArrayBuffer;
  slotSab: SharedArrayBuffer;
  markSab: SharedArrayBuffer;
}

/**
 * An arena of `entryBytes`-byte entries: `initial` entries committed, `max` reserved
 * (`maxSlots` for the slot region, `maxMarks` for the mark region).
 */
function make(entryBytes: number, initial: number, max: number, maxSlots = max, maxMarks = max): Made {
  const ctl = new Int32Array(new SharedArrayBuffer(64 * 4)).fill(0x5a5a5a5a); // garbage until init()
  const addrSab = new SharedArrayBuffer(initial * entryBytes, { maxByteLength: max * entryBytes });
  const slotSab = new SharedArrayBuffer(Math.min(initial, maxSlots) * 4, { maxByteLength: maxSlots * 4 });
  const markSab = new SharedArrayBuffer(Math.min(initial, maxMarks), { maxByteLength: maxMarks });
  const arena = new PeerArena(addrSab, slotSab, markSab, entryBytes, ctl, TOP, FREE);
  arena.init();
  return { arena, ctl, addrSab, slotSab, markSab };
}

/**
 * Blocks on the free list of class `cls`, head first. Checks each link both ways (next in
 * the first slot word, previous in the second), cycles, range, alignment and the mark.
 */
function freeList(m: Made, cls: number): number[] {
  const out: number[] = [];
  const seen = new Set<number>();
  const s = m.arena.slots.i32;
  const size = classEntries(cls);
  let prev = NIL;
  let b = m.ctl[FREE + cls]!;
  while (b !== NIL) {
    if (seen.has(b)) throw new Error(`free list ${cls} has a cycle at ${b}`);
    if (cls < MIN_CLASS) throw new Error(`free list ${cls} below the smallest class holds ${b}`);
    if (b < 0 || b + size > m.ctl[TOP]!) throw new Error(`free block ${b} of class ${cls} outside 0..${m.ctl[TOP]}`);
    if (b % size !== 0) throw new Error(`free block ${b} of class ${cls} not aligned to ${size}`);
    if (s[b + 1] !== prev) throw new Error(`free block ${b} of class ${cls}: previous link ${s[b + 1]}, expected ${prev}`);
    if (m.arena.marks.u8[b] !== cls) throw new Error(`free block ${b} of class ${cls} marked ${m.arena.marks.u8[b]}`);
    seen.add(b);
    out.push(b);
    prev = b;
    b = s[b]!;
  }
  return out;
}

/** All free blocks, by class ascending, each list head first. */
function allFree(m: Made): Block[] {
  const out: Block[] = [];
  for (let c = 0; c < MAX_CLASS; c++) for (const start of freeList(m, c)) out.push({ start, cls: c });
  return out;
}

function byStart(blocks: Block[]): Block[] {
  return [...blocks].sort((a, b) => a.start - b.start);
}

/** Marks agree with the lists: below the top, exactly the start of each free block carries its class; above it, nothing. */
function expectMarks(m: Made): void {
  const want = new Map(allFree(m).map((b) => [b.start, b.cls]));
  const top = m.ctl[TOP]!;
  const u8 = m.arena.marks.u8;
  const wrong: string[] = [];
  for (let i = 0; i < u8.length && wrong.length < 10; i++) {
    const expected = i < top ? (want.get(i) ?? 0) : 0;
    if (u8[i] !== expected) wrong.push(`mark ${i} = ${u8[i]}, expected ${expected}`);
  }
  expect(wrong).toEqual([]);
}

/** No two free blocks are buddies: every free block is as merged as it can be. */
function expectMerged(m: Made): void {
  const free = new Map(allFree(m).map((b) => [b.start, b.cls]));
  for (const [start, cls] of free) {
    const buddy = start ^ classEntries(cls);
    expect(free.get(buddy) === cls, `free block ${start} and its buddy ${buddy} (class ${cls}) are both free`).toBe(false);
  }
}

/** Checks that `blocks` tile [0, top) exactly: no overlap, no gap. */
function expectTiling(blocks: Block[], top: number): void {
  let cursor = 0;
  for (const b of byStart(blocks)) {
    expect(classEntries(b.cls), `block at ${b.start} has class ${b.cls}`).toBeGreaterThan(0);
    expect(b.start, `gap or overlap before block ${b.start} (cursor ${cursor})`).toBe(cursor);
    cursor = b.start + classEntries(b.cls);
  }
  expect(cursor).toBe(top);
}


/** Everything about the allocator's state that an operation might change. */
function state(m: Made): { top: number; free: Block[] } {
  return { top: m.ctl[TOP]!, free: allFree(m) };
}

// =======================================================================================

describe('arena classes', () => {
  it('class c holds 2^(c-1) entries; class 0 is no block; classFor is the smallest class from MIN_CLASS up that fits', () => {
    expect(MIN_CLASS).toBe(2);
    expect(classEntries(0)).toBe(0);
    expect([1, 2, 3, 4, 5, 11, 28].map(classEntries)).toEqual([1, 2, 4, 8, 16, 1024, 2 ** 27]);
    expect([0, 1, 2, 3, 4, 5, 8, 9, 16, 17, 1024, 1025, 20_000].map(classFor)).toEqual([2, 2, 2, 3, 3, 4, 4, 5, 5, 6, 11, 12, 16]);
    for (let n = 1; n < 5000; n++) {
      const c = classFor(n);
      expect(c >= MIN_CLASS && classEntries(c) >= n && (c === MIN_CLASS || classEntries(c - 1) < n)).toBe(true);
    }
  });
});

describe('PeerArena alloc / free', () => {
  it('init resets the bump pointer and every free-list head', () => {
    const m = make(6, 64, 64);
    expect(m.ctl[TOP]).toBe(0);
    for (let c = 0; c < MAX_CLASS; c++) expect(m.ctl[FREE + c]).toBe(NIL);
    // words outside the arena's headers are left alone
    expect(m.ctl[0]).toBe(0x5a5a5a5a);
    expect(m.ctl[FREE + MAX_CLASS]).toBe(0x5a5a5a5a);
    expect(m.arena.marks.capacity).toBe(64);
    expectMarks(m);
  });

  it('hands out every block at a multiple of its size; the gap the alignment skips becomes free aligned blocks', () => {
    const m = make(6, 128, 128);
    expect(m.arena.alloc(2)).toBe(0);
    expect(m.ctl[TOP]).toBe(2);
    // 8 entries: from 8, not 2; [2, 8) is carved into [2, 4) and [4, 8)
    expect(m.arena.alloc(4)).toBe(8);
    expect(m.ctl[TOP]).toBe(16);
    expect(allFree(m)).toEqual([{ start: 2, cls: 2 }, { start: 4, cls: 3 }]);
    expectMarks(m);
    // those serve the next requests of their size before the bump pointer moves
    expect(m.arena.alloc(3)).toBe(4);
    expect(m.arena.alloc(5)).toBe(16); // 16 entries, and 16 is a multiple of 16: no gap
    expect(m.ctl[TOP]).toBe(32);
    expect(m.arena.alloc(2)).toBe(2);
    expect(allFree(m)).toEqual([]);
    expect(m.arena.alloc(2)).toBe(32);
    expect(m.ctl[TOP]).toBe(34);
    // 32 entries: from 64; [34, 64) = 2 + 4 + 8 + 16, each at a multiple of its size
    expect(m.arena.alloc(6)).toBe(64);
    expect(m.ctl[TOP]).toBe(96);
    expect(byStart(allFree(m))).toEqual([
      { start: 34, cls: 2 }, { start: 36, cls: 3 }, { start: 40, cls: 4 }, { start: 48, cls: 5 },
    ]);
    const used = [
      { start: 0, cls: 2 }, { start: 2, cls: 2 }, { start: 4, cls: 3 }, { start: 8, cls: 4 }, { start: 16, cls: 5 }, { start: 32, cls: 2 }, { start: 64, cls: 6 },
    ];
    for (const b of used) expect(b.start % classEntries(b.cls)).toBe(0);
    expectTiling([...used, ...allFree(m)], 96);
    expectMarks(m);
    expectMerged(m);
  });

  it('takes the smallest free block that fits and splits it: the upper halves go back on their lists', () => {
    const m = make(6, 128, 128);
    expect(m.arena.alloc(7)).toBe(0);
    m.arena.free(0, 7);
    expect(allFree(m)).toEqual([{ start: 0, cls: 7 }]);
    // a 2-entry block from the 64-entry one: 32 + 16 + 8 + 4 + 2 stay free
    expect(m.arena.alloc(2)).toBe(0);
    expect(allFree(m)).toEqual([
      { start: 2, cls: 2 }, { start: 4, cls: 3 }, { start: 8, cls: 4 }, { start: 16, cls: 5 }, { start: 32, cls: 6 },
    ]);
    expectMarks(m);
    expect(m.ctl[TOP]).toBe(64);
    // the exact class first, then the next larger one, split again
    expect(m.arena.alloc(4)).toBe(8);
    expect(m.arena.alloc(4)).toBe(16);
    expect(allFree(m)).toEqual([{ start: 2, cls: 2 }, { start: 4, cls: 3 }, { start: 24, cls: 4 }, { start: 32, cls: 6 }]);
    expect(m.arena.alloc(5)).toBe(32); // no 16-entry block: the 32-entry one is split
    expect(allFree(m)).toEqual([{ start: 2, cls: 2 }, { start: 4, cls: 3 }, { start: 24, cls: 4 }, { start: 48, cls: 5 }]);
    expectMarks(m);
    // nothing free is large enough for 32 entries: the bump pointer moves
    expect(m.arena.alloc(6)).toBe(64);
    expect(m.ctl[TOP]).toBe(96);
    expect(allFree(m)).toEqual([{ start: 2, cls: 2 }, { start: 4, cls: 3 }, { start: 24, cls: 4 }, { start: 48, cls: 5 }]);
    // freeing everything merges it all back: [0, 64) and the last 32 entries
    for (const [start, cls] of [[0, 2], [8, 4], [16, 4], [32, 5], [64, 6]] as const) m.arena.free(start, cls);
    expect(byStart(allFree(m))).toEqual([{ start: 0, cls: 7 }, { start: 64, cls: 6 }]);
    expectMarks(m);
  });

  it('free merges a block with its buddy while the buddy is free, unlinking it from anywhere in its list', () => {
    const m = make(6, 64, 64);
    for (let i = 0; i < 6; i++) expect(m.arena.alloc(2)).toBe(2 * i);
    expect(m.ctl[TOP]).toBe(12);
    // buddies in use: no merge; the list is last freed first
    m.arena.free(0, 2);
    m.arena.free(4, 2);
    m.arena.free(8, 2);
    expect(freeList(m, 2)).toEqual([8, 4, 0]);
    // [6, 8) merges with [4, 6), taken from the middle of the list; [0, 4) is not all free
    m.arena.free(6, 2);
    expect(freeList(m, 2)).toEqual([8, 0]);
    expect(freeList(m, 3)).toEqual([4]);
    expect(m.arena.marks.u8[6]).toBe(0);
    expectMarks(m);
    // [2, 4) merges with [0, 2) (the tail of the list), then [0, 4) with [4, 8): one block of 8;
    // [8, 16) is not a free block of that class (it begins with a 2-entry one), so it stops there
    m.arena.free(2, 2);
    expect(allFree(m)).toEqual([{ start: 8, cls: 2 }, { start: 0, cls: 4 }]);
    expect(m.arena.marks.u8[4]).toBe(0);
    expectMarks(m);
    // [10, 12) merges with [8, 10) (the head); its buddy [12, 16) is beyond the bump pointer
    m.arena.free(10, 2);
    expect(allFree(m)).toEqual([{ start: 8, cls: 3 }, { start: 0, cls: 4 }]);
    expectMarks(m);
    expectMerged(m);
    expect(m.ctl[TOP]).toBe(12);
  });

  it('freeing the four quarters of a block in any order leaves exactly that block', () => {
    const orders: number[][] = [];
    const permute = (rest: number[], acc: number[]): void => {
      if (rest.length === 0) orders.push(acc);
      for (let i = 0; i < rest.length; i++) permute([...rest.slice(0, i), ...rest.slice(i + 1)], [...acc, rest[i]!]);
    };
    permute([0, 2, 4, 6], []);
    expect(orders.length).toBe(24);
    for (const order of orders) {
      const m = make(6, 64, 64);
      for (let i = 0; i < 4; i++) m.arena.alloc(2);
      expect(m.arena.alloc(3)).toBe(8); // a neighbour in use: the merge stops at [0, 8)
      for (const b of order) m.arena.free(b, 2);
      expect(allFree(m), `order ${order}`).toEqual([{ start: 0, cls: 4 }]);
      expectMarks(m);
    }
  });

  it('no merge with a buddy in use, a buddy split into smaller blocks, or a buddy beyond the bump pointer', () => {
    const m = make(6, 64, 64);
    expect(m.arena.alloc(3)).toBe(0);
    expect(m.arena.alloc(2)).toBe(4);
    expect(m.arena.alloc(2)).toBe(6);
    m.arena.free(4, 2); // buddy [6, 8) in use
    expect(allFree(m)).toEqual([{ start: 4, cls: 2 }]);
    m.arena.free(0, 3); // buddy [4, 8) begins with a free 2-entry block: not a free 4-entry one
    expect(allFree(m)).toEqual([{ start: 4, cls: 2 }, { start: 0, cls: 3 }]);
    expectMarks(m);
    m.arena.free(6, 2); // now [4, 8), then [0, 8); [8, 16) lies beyond the bump pointer
    expect(allFree(m)).toEqual([{ start: 0, cls: 4 }]);
    expect(m.ctl[TOP]).toBe(8);
    expectMarks(m);

    const n = make(6, 64, 64);
    expect(n.arena.alloc(2)).toBe(0);
    n.arena.free(0, 2); // [2, 4) was never handed out
    expect(allFree(n)).toEqual([{ start: 0, cls: 2 }]);
    expect(n.ctl[TOP]).toBe(2);
    expect(n.arena.alloc(2)).toBe(0); // reused before the bump pointer moves
    expect(n.ctl[TOP]).toBe(2);
  });

  it('the gap a bump skips merges with a free block just below the bump pointer', () => {
    const m = make(6, 64, 64);
    expect(m.arena.alloc(3)).toBe(0);
    expect(m.arena.alloc(2)).toBe(4);
    m.arena.free(4, 2);
    expect(allFree(m)).toEqual([{ start: 4, cls: 2 }]);
    // 8 entries cannot start at 4: from 8, and the skipped [6, 8) joins [4, 6)
    expect(m.arena.alloc(4)).toBe(8);
    expect(m.ctl[TOP]).toBe(16);
    expect(allFree(m)).toEqual([{ start: 4, cls: 3 }]);
    expectMarks(m);
    expect(m.arena.alloc(3)).toBe(4);
    expect(m.ctl[TOP]).toBe(16);
    // cascading: a gap of 4 + 8 beside a free 4-entry block makes one 16-entry block
    const n = make(6, 64, 64);
    expect(n.arena.alloc(3)).toBe(0);
    expect(n.arena.alloc(3)).toBe(4);
    n.arena.free(4, 3);
    expect(n.arena.alloc(5)).toBe(16);
    expect(allFree(n)).toEqual([{ start: 4, cls: 3 }, { start: 8, cls: 4 }]);
    n.arena.free(0, 3);
    expect(allFree(n)).toEqual([{ start: 0, cls: 5 }]);
    expectMarks(n);
    expect(n.arena.alloc(5)).toBe(0);
    expect(n.ctl[TOP]).toBe(32);
  });

  it('free blocks ending at the bump pointer count as unused space: a bump may start among them', () => {
    // [0, 2) in use, [2, 12) free as 2 + 4 + 4, top 12
    const m = make(6, 64, 64);
    for (let i = 0; i < 6; i++) m.arena.alloc(2);
    for (const b of [2, 4, 6, 8, 10]) m.arena.free(b, 2);
    expect(byStart(allFree(m))).toEqual([{ start: 2, cls: 2 }, { start: 4, cls: 3 }, { start: 8, cls: 3 }]);
    // 8 entries: [8, 16) takes the free [8, 12) and 4 new entries; [2, 8) stays free
    expect(m.arena.alloc(4)).toBe(8);
    expect(m.ctl[TOP]).toBe(16);
    expect(byStart(allFree(m))).toEqual([{ start: 2, cls: 2 }, { start: 4, cls: 3 }]);
    expectMarks(m);
    // 16 entries cannot start below 16 ([0, 2) is in use): nothing free is taken
    expect(m.arena.alloc(5)).toBe(16);
    expect(m.ctl[TOP]).toBe(32);
    expect(byStart(allFree(m))).toEqual([{ start: 2, cls: 2 }, { start: 4, cls: 3 }]);
    // with a reservation that ends at the block, the block still fits
    const n = make(6, 8, 8);
    expect(n.arena.alloc(3)).toBe(0);
    expect(n.arena.alloc(2)).toBe(4);
    n.arena.free(4, 2);
    expect(n.arena.alloc(3)).toBe(4);
    expect(n.ctl[TOP]).toBe(8);
    expect(allFree(n)).toEqual([]);
    expectMarks(n);
    expect(n.arena.alloc(2)).toBe(-1);
  });

  it('a free block keeps its entries except its first two slot words (the links); a reused block is the same memory', () => {
    const m = make(18, 64, 64);
    const b = m.arena.alloc(3);
    expect(b).toBe(0);
    expect(m.arena.alloc(2)).toBe(4); // a neighbour in use, so b does not merge
    for (let i = 0; i < 4; i++) {
      m.arena.slots.i32[b + i] = 100 + i;
      m.arena.addr.u8.fill(i + 1, (b + i) * 18, (b + i + 1) * 18);
    }
    m.arena.free(b, 3);
    expect(m.arena.slots.i32[b]).toBe(NIL); // next: the rest of the (empty) list
    expect(m.arena.slots.i32[b + 1]).toBe(NIL); // previous: none, it is the head
    expect([...m.arena.slots.i32.subarray(b + 2, b + 4)]).toEqual([102, 103]);
    for (let i = 0; i < 4; i++) expect(m.arena.addr.u8[(b + i) * 18 + 17]).toBe(i + 1);
    expect(m.arena.marks.u8[b]).toBe(3);
    expect(m.arena.alloc(3)).toBe(b);
    expect(m.arena.marks.u8[b]).toBe(0);
    expect([...m.arena.slots.i32.subarray(b + 2, b + 4)]).toEqual([102, 103]);
  });

  it('a second arena on the same buffers continues with its free lists, marks and bump pointer (respawn)', () => {
    const m = make(6, 64, 64);
    expect(m.arena.alloc(2)).toBe(0);
    expect(m.arena.alloc(4)).toBe(8);
    m.arena.free(0, 2); // with the gap [2, 8): one 8-entry block
    expect(allFree(m)).toEqual([{ start: 0, cls: 4 }]);
    const again = new PeerArena(m.addrSab, m.slotSab, m.markSab, 6, m.ctl, TOP, FREE);
    const a: Made = { ...m, arena: again };
    expect(allFree(a)).toEqual([{ start: 0, cls: 4 }]);
    expectMarks(a);
    again.free(8, 4); // merges with the block the first life freed
    expect(allFree(a)).toEqual([{ start: 0, cls: 5 }]);
    expect(again.alloc(3)).toBe(0);
    expect(allFree(a)).toEqual([{ start: 4, cls: 3 }, { start: 8, cls: 4 }]);
    expect(again.alloc(5)).toBe(16);
    expect(m.ctl[TOP]).toBe(32);
    // and the first life's view agrees (same control block and regions)
    expect(allFree(m)).toEqual([{ start: 4, cls: 3 }, { start: 8, cls: 4 }]);
  });
});

describe('PeerArena growth', () => {
  it('grows all three regions by doubling as the bump pointer needs, keeping their contents', () => {
    const m = make(6, 16, 64);
    expect([m.arena.addr.capacity, m.arena.slots.capacity, m.arena.marks.capacity]).toEqual([16, 16, 16]);
    expect(m.arena.alloc(5)).toBe(0); // 16 entries: fits
    for (let i = 0; i < 16; i++) {
      m.arena.slots.i32[i] = 1000 + i;
      m.arena.addr.u8.set([i, i, i, i, 0x1a, i], i * 6);
    }
    expect(m.arena.alloc(2)).toBe(16); // 18 entries: one doubling
    expect([m.arena.addr.capacity, m.arena.slots.capacity, m.arena.marks.capacity]).toEqual([32, 32, 32]);
    expect([m.addrSab.byteLength, m.slotSab.byteLength, m.markSab.byteLength]).toEqual([32 * 6, 32 * 4, 32]);
    expect(m.arena.alloc(5)).toBe(32); // aligned to 16: entries up to 48, so to 64
    expect([m.arena.addr.capacity, m.arena.slots.capacity, m.arena.marks.capacity]).toEqual([64, 64, 64]);
    expect(m.ctl[TOP]).toBe(48);
    // the gap [18, 32) is free, marked in the grown mark region
    expect(allFree(m)).toEqual([{ start: 18, cls: 2 }, { start: 20, cls: 3 }, { start: 24, cls: 4 }]);
    expectMarks(m);
    // the views were re-created and the contents survived both growths
    for (let i = 0; i < 16; i++) {
      expect(m.arena.slots.i32[i]).toBe(1000 + i);
      expect([...m.arena.addr.u8.subarray(i * 6, i * 6 + 6)]).toEqual([i, i, i, i, 0x1a, i]);
    }
  });

  it('returns -1 when the reservation cannot hold the aligned block; nothing changes; free blocks still serve', () => {
    const m = make(6, 8, 48); // 48 entries reserved: not a power of two
    expect(m.arena.alloc(2)).toBe(0);
    expect(m.arena.alloc(5)).toBe(16); // gap [2, 16) = 2 + 4 + 8
    expect(m.ctl[TOP]).toBe(32);
    const before = state(m);
    expect(before.free).toEqual([{ start: 2, cls: 2 }, { start: 4, cls: 3 }, { start: 8, cls: 4 }]);
    // 32 entries would start at 32 and end at 64
    expect(m.arena.alloc(6)).toBe(-1);
    expect(state(m)).toEqual(before);
    expectMarks(m);
    expect(m.arena.alloc(5)).toBe(32); // exactly the reservation
    expect(m.ctl[TOP]).toBe(48);
    expect(m.arena.addr.capacity).toBe(48);
    // the free blocks still serve, split when needed; the bump pointer stays
    expect(m.arena.alloc(2)).toBe(2);
    expect(m.arena.alloc(4)).toBe(8);
    expect(m.arena.alloc(4)).toBe(-1); // no 8-entry block free, none fits above 48
    expect(m.arena.alloc(3)).toBe(4);
    expect(m.arena.alloc(2)).toBe(-1);
    expect(m.ctl[TOP]).toBe(48);
    expect(allFree(m)).toEqual([]);
    m.arena.free(16, 5);
    expect(m.arena.alloc(4)).toBe(16); // the 16-entry block split
    expect(allFree(m)).toEqual([{ start: 24, cls: 4 }]);
    expect(m.arena.alloc(3)).toBe(24);
    expect(m.ctl[TOP]).toBe(48);
    expectMarks(m);
  });

  it('the smallest of the three reservations bounds the arena', () => {
    const slots = make(18, 8, 64, 16); // the slot region reserves only 16 entries
    expect(slots.arena.alloc(5)).toBe(0);
    expect(slots.arena.alloc(2)).toBe(-1);
    expect(slots.ctl[TOP]).toBe(16);
    expect(slots.arena.slots.capacity).toBe(16);
    const marks = make(6, 8, 64, 64, 16); // the mark region reserves only 16 entries
    expect(marks.arena.alloc(5)).toBe(0);
    expect(marks.arena.alloc(2)).toBe(-1);
    expect(marks.ctl[TOP]).toBe(16);
    expect(marks.arena.marks.capacity).toBe(16);
    expect(allFree(marks)).toEqual([]);
  });
});

describe('PeerArena.rebuildFreeLists', () => {
  it('carves every gap between used blocks, and the tail up to the bump pointer, into the largest aligned blocks that fit', () => {
    const m = make(6, 128, 128);
    for (let i = 0; i < 50; i++) m.arena.alloc(2); // top = 100
    // leave stale, misleading lists and marks behind: they must be discarded
    m.arena.free(0, 2);
    m.arena.free(40, 2);
    m.arena.marks.u8[5] = 3; // inside a used block
    m.arena.marks.u8[32] = 4; // start of a used block
    m.arena.marks.u8[91] = 2;
    const used = [
      { start: 90, cls: 2 }, // given out of order
      { start: 4, cls: 3 }, // [4, 8)
      { start: 8, cls: 2 }, // adjacent: no gap
      { start: 32, cls: 4 }, // [32, 40)
    ];
    m.arena.rebuildFreeLists(used);
    // gaps: [0,4) = 4; [10,32) = 2+4+16; [40,90) = 8+16+16+8+2; [92,100) = 4+4 (92 is not a multiple of 8)
    expect(byStart(allFree(m))).toEqual([
      { start: 0, cls: 3 },
      { start: 10, cls: 2 }, { start: 12, cls: 3 }, { start: 16, cls: 5 },
      { start: 40, cls: 4 }, { start: 48, cls: 5 }, { start: 64, cls: 5 }, { start: 80, cls: 4 }, { start: 88, cls: 2 },
      { start: 92, cls: 3 }, { start: 96, cls: 3 },
    ]);
    expectTiling([...allFree(m), ...used], 100);
    expectMarks(m); // the stale marks are gone
    expectMerged(m);
    expect(m.ctl[TOP]).toBe(100);
  });

  it('with no used blocks the whole arena is maximal aligned blocks; with no gaps nothing is free', () => {
    const m = make(6, 64, 64);
    for (let i = 0; i < 19; i++) m.arena.alloc(2); // top = 38
    m.arena.rebuildFreeLists([]);
    expect(allFree(m)).toEqual([{ start: 36, cls: 2 }, { start: 32, cls: 3 }, { start: 0, cls: 6 }]);
    expectTiling(allFree(m), 38);
    expectMarks(m);
    m.arena.rebuildFreeLists([{ start: 0, cls: 6 }, { start: 32, cls: 3 }, { start: 36, cls: 2 }]);
    expect(allFree(m)).toEqual([]);
    expectMarks(m);
  });

  it('torn used blocks (one inside another, a class too large for its start, overlaps) are never handed out', () => {
    const m = make(6, 64, 64);
    for (let i = 0; i < 20; i++) m.arena.alloc(2); // top = 40
    // A crash between writing an array's new block and its new class can leave a record
    // claiming the old, larger class at the new, half-aligned start: [8, 16) over the real
    // [8, 12) and the neighbour [12, 16); [20, 28) starts at a multiple of 4, not 8, and
    // contains [24, 28).
    const used = [{ start: 8, cls: 4 }, { start: 12, cls: 3 }, { start: 20, cls: 4 }, { start: 24, cls: 3 }, { start: 4, cls: 2 }];
    m.arena.rebuildFreeLists(used.map((u) => ({ ...u })));
    const free = allFree(m);
    const overlaps = (f: Block): boolean =>
      used.some((u) => f.start < u.start + classEntries(u.cls) && u.start < f.start + classEntries(f.cls));
    for (const f of free) expect(overlaps(f), `free ${f.start} (class ${f.cls}) overlaps a used block`).toBe(false);
    // exactly the uncovered entries: [0,4), [6,8), [16,20), [28,40)
    expect(byStart(free)).toEqual([
      { start: 0, cls: 3 }, { start: 6, cls: 2 }, { start: 16, cls: 3 }, { start: 28, cls: 3 }, { start: 32, cls: 4 },
    ]);
    expectMarks(m);
    // handing out every free block, of any class, never gives a used entry
    const got: Block[] = [];
    for (let c = MIN_CLASS; c < 6; c++) {
      for (let k = 0; k < 4; k++) {
        const b = m.arena.alloc(c);
        if (b < 0) break;
        got.push({ start: b, cls: c });
        expect(overlaps({ start: b, cls: c }), `handed out ${b} (class ${c})`).toBe(false);
      }
    }
    expect(got.length).toBeGreaterThan(0);
  });

  it('randomized: afterwards, allocating every free block never overlaps a used block and covers exactly the gaps', () => {
    const rnd = prng(77);
    for (let round = 0; round < 200; round++) {
      const cap = 4096;
      const m = make(round % 2 ? 18 : 6, 64, cap);
      // random allocations and frees to get a realistic bump pointer and stale lists
      const live: Block[] = [];
      const ops = 20 + Math.floor(rnd() * 150);
      for (let i = 0; i < ops; i++) {
        if (live.length > 0 && rnd() < 0.35) {
          const b = live.splice(Math.floor(rnd() * live.length), 1)[0]!;
          m.arena.free(b.start, b.cls);
        } else {
          const cls = MIN_CLASS + Math.floor(rnd() * rnd() * 8);
          const start = m.arena.alloc(cls);
          if (start < 0) continue;
          live.push({ start, cls });
        }
      }
      const top = m.ctl[TOP]!;
      // sometimes the lists and marks are torn as well
      if (rnd() < 0.5) {
        for (let c = 0; c < MAX_CLASS; c++) m.ctl[FREE + c] = rnd() < 0.5 ? NIL : Math.floor(rnd() * top);
        for (let k = 0; k < 20; k++) m.arena.marks.u8[Math.floor(rnd() * top)] = Math.floor(rnd() * 12);
      }
      const used = live.map((b) => ({ ...b }));
      m.arena.rebuildFreeLists(used);
      // the lists are well formed, marked, merged and tile the gaps with the used blocks
      const free = allFree(m);
      expectTiling([...free, ...live], top);
      expectMarks(m);
      expectMerged(m);
      // each gap is cut into its maximal aligned blocks
      let cursor = 0;
      const want: Block[] = [];
      for (const b of byStart(live)) {
        want.push(...alignedBlocks(cursor, b.start));
        cursor = b.start + classEntries(b.cls);
      }
      want.push(...alignedBlocks(cursor, top));
      expect(byStart(free)).toEqual(want);
      // allocating every free block hands out exactly those blocks, then the bump pointer moves
      const got: Block[] = [];
      for (let c = MIN_CLASS; c < MAX_CLASS; c++) {
        while (m.ctl[FREE + c] !== NIL) got.push({ start: m.arena.alloc(c), cls: c });
      }
      expect(m.ctl[TOP]).toBe(top);
      expect(byStart(got)).toEqual(want);
      expectTiling([...got, ...live], top);
      if (top + 2 <= cap) expect(m.arena.alloc(2)).toBe(top);
    }
  });
});

describe('PeerArena randomized against a model', () => {
  it('random alloc/free of random classes: aligned, disjoint, the top exactly covered, always merged; all freed → maximal blocks', () => {
    for (const seed of [1, 2, 3, 4]) {
      const rnd = prng(seed * 7919);
      const cap = 3000; // not a power of two: the reservation cuts aligned blocks
      let m = make(seed % 2 ? 6 : 18, 64, cap);
      const live = new Map<number, { cls: number; tag: number }>();
      let tag = 1;
      let refusals = 0;
      let fromLists = 0;
      let bumps = 0;
      const checkAll = (): void => {
        const top = m.ctl[TOP]!;
        const free = allFree(m);
        expectTiling([...free, ...[...live].map(([start, b]) => ({ start, cls: b.cls }))], top);
        expectMarks(m);
        expectMerged(m);
        // the allocator never wrote into a block in use: every entry still holds its tag
        for (const [start, b] of live) {
          for (let i = 0; i < classEntries(b.cls); i++) {
            if (m.arena.slots.i32[start + i] !== b.tag || m.arena.addr.u8[(start + i) * m.arena.entryBytes] !== (b.tag & 255)) {
              throw new Error(`seed ${seed}: block ${start} (class ${b.cls}) entry ${i} overwritten`);
            }
          }
        }
      };
      for (let op = 0; op < 1500; op++) {
        if (rnd() < 0.01) m = { ...m, arena: new PeerArena(m.addrSab, m.slotSab, m.markSab, m.arena.entryBytes, m.ctl, TOP, FREE) };
        if (live.size > 0 && rnd() < 0.45) {
          const keys = [...live.keys()];
          const start = keys[Math.floor(rnd() * keys.length)]!;
          m.arena.free(start, live.get(start)!.cls);
          live.delete(start);
        } else {
          const cls = MIN_CLASS + Math.floor(rnd() * rnd() * 9);
          const size = classEntries(cls);
          const before = state(m);
          // the model: the head of the smallest non-empty list of a class that fits; else
          // from the bump pointer, stepping back over free blocks that end there, aligned
          const fits = before.free.filter((b) => b.cls >= cls);
          let expected: number;
          if (fits.length > 0) expected = m.ctl[FREE + Math.min(...fits.map((b) => b.cls))]!;
          else {
            let low = before.top;
            for (let f = before.free.find((b) => b.start + classEntries(b.cls) === low); f; f = before.free.find((b) => b.start + classEntries(b.cls) === low)) {
              low = f.start;
            }
            expected = Math.ceil(low / size) * size;
            if (expected + size > cap) expected = -1;
          }
          const start = m.arena.alloc(cls);
          expect(start, `seed ${seed} op ${op}: alloc(${cls})`).toBe(expected);
          if (start < 0) {
            refusals++;
            expect(state(m)).toEqual(before);
            continue;
          }
          if (fits.length > 0) {
            fromLists++;
            expect(m.ctl[TOP]).toBe(before.top);
          } else {
            bumps++;
            expect(m.ctl[TOP]).toBe(start + size);
            expect(start + size).toBeGreaterThan(before.top);
          }
          expect(start % size).toBe(0);
          for (const [s, b] of live) expect(start + size <= s || s + classEntries(b.cls) <= start, `${start} overlaps ${s}`).toBe(true);
          const t = tag++;
          live.set(start, { cls, tag: t });
          m.arena.slots.i32.fill(t, start, start + size);
          for (let i = 0; i < size; i++) m.arena.addr.u8[(start + i) * m.arena.entryBytes] = t & 255;
        }
        if (op % 10 === 0) checkAll();
      }
      checkAll();
      expect(refusals).toBeGreaterThan(0);
      expect(fromLists).toBeGreaterThan(100);
      expect(bumps).toBeGreaterThan(10);
      // free everything: the whole arena is its maximal aligned blocks again
      const top = m.ctl[TOP]!;
      for (const [start, b] of live) m.arena.free(start, b.cls);
      live.clear();
      expect(m.ctl[TOP]).toBe(top);
      expect(byStart(allFree(m))).toEqual(alignedBlocks(0, top));
      expectMarks(m);
    }
  });
});

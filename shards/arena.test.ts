import { describe, expect, it } from 'vitest';
import { PeerArena, classEntries, classFor } from './arena.js';
import { MAX_CLASS, NIL } from './layout.js';
import { prng } from '../test/support/prng.js';

const TOP = 3; // word of the bump pointer in the test control block
const FREE = 8; // first of MAX_CLASS free-list heads

interface Made {
  arena: PeerArena;
  ctl: Int32Array;
  addrSab: SharedArrayBuffer;
  slotSab: SharedArrayBuffer;
}

/** An arena of `entryBytes`-byte entries: `initial` entries committed, `max` reserved (`maxSlots` for the slot region). */
function make(entryBytes: number, initial: number, max: number, maxSlots = max): Made {
  const ctl = new Int32Array(new SharedArrayBuffer(64 * 4)).fill(0x5a5a5a5a); // garbage until init()
  const addrSab = new SharedArrayBuffer(initial * entryBytes, { maxByteLength: max * entryBytes });
  const slotSab = new SharedArrayBuffer(Math.min(initial, maxSlots) * 4, { maxByteLength: maxSlots * 4 });
  const arena = new PeerArena(addrSab, slotSab, entryBytes, ctl, TOP, FREE);
  arena.init();
  return { arena, ctl, addrSab, slotSab };
}

/** Blocks on the free list of class `cls`, head first; checks for cycles and range. */
function freeList(m: Made, cls: number): number[] {
  const out: number[] = [];
  const seen = new Set<number>();
  let b = m.ctl[FREE + cls]!;
  while (b !== NIL) {
    if (seen.has(b)) throw new Error(`free list ${cls} has a cycle at ${b}`);
    if (b < 0 || b + classEntries(cls) > m.ctl[TOP]!) throw new Error(`free block ${b} of class ${cls} outside 0..${m.ctl[TOP]}`);
    seen.add(b);
    out.push(b);
    b = m.arena.slots.i32[b]!;
  }
  return out;
}

/** All free blocks, by class. */
function allFree(m: Made): { start: number; cls: number }[] {
  const out: { start: number; cls: number }[] = [];
  for (let c = 0; c < MAX_CLASS; c++) for (const start of freeList(m, c)) out.push({ start, cls: c });
  return out;
}

/** Checks that `blocks` tile [0, top) exactly: no overlap, no gap. */
function expectTiling(blocks: { start: number; cls: number }[], top: number): void {
  const sorted = [...blocks].sort((a, b) => a.start - b.start);
  let cursor = 0;
  for (const b of sorted) {
    expect(classEntries(b.cls), `block at ${b.start} has class ${b.cls}`).toBeGreaterThan(0);
    expect(b.start, `gap or overlap before block ${b.start} (cursor ${cursor})`).toBe(cursor);
    cursor = b.start + classEntries(b.cls);
  }
  expect(cursor).toBe(top);
}

describe('arena classes', () => {
  it('class c holds 2^(c-1) entries; class 0 is no block; classFor is the smallest that fits', () => {
    expect(classEntries(0)).toBe(0);
    expect([1, 2, 3, 4, 5, 11, 28].map(classEntries)).toEqual([1, 2, 4, 8, 16, 1024, 2 ** 27]);
    expect([0, 1, 2, 3, 4, 5, 8, 9, 16, 17, 1024, 1025, 20_000].map(classFor)).toEqual([1, 1, 2, 3, 3, 4, 4, 5, 5, 6, 11, 12, 16]);
    for (let n = 1; n < 5000; n++) {
      const c = classFor(n);
      expect(classEntries(c) >= n && (c === 1 || classEntries(c - 1) < n)).toBe(true);
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
  });

  it('hands out blocks from the bump pointer, one after the other', () => {
    const m = make(6, 64, 64);
    expect(m.arena.alloc(1)).toBe(0);
    expect(m.arena.alloc(3)).toBe(1);
    expect(m.arena.alloc(2)).toBe(5);
    expect(m.arena.alloc(5)).toBe(7);
    expect(m.ctl[TOP]).toBe(23);
  });

  it('reuses freed blocks per class, last freed first, before moving the bump pointer', () => {
    const m = make(6, 256, 256);
    const a = [1, 2, 3, 4, 3, 2, 1, 3].map((c) => ({ c, start: m.arena.alloc(c) }));
    expect(a.map((b) => b.start)).toEqual([0, 1, 3, 7, 15, 19, 21, 22]);
    const top = m.ctl[TOP]!;
    expect(top).toBe(26);
    m.arena.free(3, 3);
    m.arena.free(22, 3);
    m.arena.free(1, 2);
    m.arena.free(15, 3);
    expect(freeList(m, 3)).toEqual([15, 22, 3]);
    expect(freeList(m, 2)).toEqual([1]);
    expect(freeList(m, 1)).toEqual([]);
    // a class with no free block comes from the bump pointer, even if bigger blocks are free
    expect(m.arena.alloc(1)).toBe(top);
    expect(m.arena.alloc(4)).toBe(top + 1);
    // the class-3 blocks come back LIFO, then the bump pointer again
    expect(m.arena.alloc(3)).toBe(15);
    expect(m.arena.alloc(3)).toBe(22);
    expect(m.arena.alloc(3)).toBe(3);
    expect(m.ctl[FREE + 3]).toBe(NIL);
    expect(m.arena.alloc(3)).toBe(top + 9);
    expect(m.arena.alloc(2)).toBe(1);
    expect(m.arena.alloc(2)).toBe(top + 13);
    expect(m.ctl[TOP]).toBe(top + 15);
  });

  it('a free block keeps its entries except the first slot word (the link); a reused block is the same memory', () => {
    const m = make(18, 64, 64);
    const b = m.arena.alloc(3);
    for (let i = 0; i < 4; i++) {
      m.arena.slots.i32[b + i] = 100 + i;
      m.arena.addr.u8.fill(i + 1, (b + i) * 18, (b + i + 1) * 18);
    }
    m.arena.free(b, 3);
    expect(m.arena.slots.i32[b]).toBe(NIL); // link to the (empty) rest of the list
    expect([...m.arena.slots.i32.subarray(b + 1, b + 4)]).toEqual([101, 102, 103]);
    expect(m.arena.addr.u8[(b + 3) * 18]).toBe(4);
    expect(m.arena.alloc(3)).toBe(b);
  });

  it('a second arena on the same control block continues with its free lists and bump pointer (respawn)', () => {
    const m = make(6, 64, 64);
    m.arena.alloc(2);
    const b = m.arena.alloc(4);
    m.arena.alloc(1);
    m.arena.free(b, 4);
    const again = new PeerArena(m.addrSab, m.slotSab, 6, m.ctl, TOP, FREE);
    expect(again.alloc(4)).toBe(b);
    expect(again.alloc(1)).toBe(11);
  });
});

describe('PeerArena growth', () => {
  it('grows both regions by doubling as the bump pointer needs, keeping their contents', () => {
    const m = make(6, 16, 64);
    expect(m.arena.addr.capacity).toBe(16);
    expect(m.arena.slots.capacity).toBe(16);
    const first = m.arena.alloc(5); // 16 entries: fits
    expect(first).toBe(0);
    for (let i = 0; i < 16; i++) {
      m.arena.slots.i32[i] = 1000 + i;
      m.arena.addr.u8.set([i, i, i, i, 0x1a, i], i * 6);
    }
    expect(m.arena.alloc(1)).toBe(16); // 17 entries: one doubling
    expect(m.arena.addr.capacity).toBe(32);
    expect(m.arena.slots.capacity).toBe(32);
    expect(m.addrSab.byteLength).toBe(32 * 6);
    expect(m.slotSab.byteLength).toBe(32 * 4);
    expect(m.arena.alloc(5)).toBe(17); // 33 entries: to 64
    expect(m.arena.addr.capacity).toBe(64);
    expect(m.arena.slots.capacity).toBe(64);
    // the views were re-created and the contents survived both growths
    for (let i = 0; i < 16; i++) {
      expect(m.arena.slots.i32[i]).toBe(1000 + i);
      expect([...m.arena.addr.u8.subarray(i * 6, i * 6 + 6)]).toEqual([i, i, i, i, 0x1a, i]);
    }
    expect(m.ctl[TOP]).toBe(33);
  });

  it('returns -1 when the reservation cannot hold the block; the bump pointer does not move; free blocks still serve', () => {
    const m = make(6, 8, 64);
    expect(m.arena.alloc(6)).toBe(0); // 32
    expect(m.arena.alloc(5)).toBe(32); // 16 → 48
    expect(m.arena.alloc(5)).toBe(48); // 16 → 64: exactly the reservation
    expect(m.arena.addr.capacity).toBe(64);
    expect(m.arena.alloc(1)).toBe(-1);
    expect(m.arena.alloc(6)).toBe(-1);
    expect(m.ctl[TOP]).toBe(64);
    m.arena.free(32, 5);
    expect(m.arena.alloc(4)).toBe(-1); // a free block of another class does not help
    expect(m.arena.alloc(5)).toBe(32);
    expect(m.arena.alloc(5)).toBe(-1);
  });

  it('the smaller of the two reservations bounds the arena', () => {
    const m = make(18, 8, 64, 16); // slot region reserves only 16 entries
    expect(m.arena.alloc(5)).toBe(0);
    expect(m.arena.alloc(1)).toBe(-1);
    expect(m.ctl[TOP]).toBe(16);
    expect(m.arena.slots.capacity).toBe(16);
  });
});

describe('PeerArena.rebuildFreeLists', () => {
  /** Binary decomposition of a gap: the sizes the greedy carving must produce, largest first. */
  function decomposition(gap: number): number[] {
    const out: number[] = [];
    for (let bit = 2 ** 26; bit >= 1; bit /= 2) if (gap >= bit) {
      out.push(bit);
      gap -= bit;
    }
    return out;
  }

  it('carves every gap between used blocks, and the tail up to the bump pointer, into the largest blocks that fit', () => {
    const m = make(6, 128, 128);
    for (let i = 0; i < 100; i++) m.arena.alloc(1); // top = 100
    // leave stale, misleading free lists behind: they must be discarded
    m.arena.free(0, 3);
    m.arena.free(40, 7);
    const used = [
      { start: 90, cls: 2 }, // given out of order
      { start: 3, cls: 3 }, // [3, 7)
      { start: 7, cls: 1 }, // adjacent: no gap
      { start: 20, cls: 4 }, // [20, 28)
    ];
    m.arena.rebuildFreeLists(used);
    const free = allFree(m);
    // gaps: [0,3) = 2+1, [8,20) = 8+4, [28,90) = 32+16+8+4+2, [92,100) = 8
    const expected = [
      { start: 0, cls: 2 }, { start: 2, cls: 1 },
      { start: 8, cls: 4 }, { start: 16, cls: 3 },
      { start: 28, cls: 6 }, { start: 60, cls: 5 }, { start: 76, cls: 4 }, { start: 84, cls: 3 }, { start: 88, cls: 2 },
      { start: 92, cls: 4 },
    ];
    const byStart = (a: { start: number }, b: { start: number }): number => a.start - b.start;
    expect([...free].sort(byStart)).toEqual(expected);
    expectTiling([...free, ...used], 100);
    expect(m.ctl[TOP]).toBe(100);
  });

  it('with no used blocks the whole arena is free; with no gaps nothing is', () => {
    const m = make(6, 64, 64);
    for (let i = 0; i < 37; i++) m.arena.alloc(1);
    m.arena.rebuildFreeLists([]);
    expect(allFree(m).map((b) => classEntries(b.cls))).toEqual([1, 4, 32]); // lists by class ascending
    expectTiling(allFree(m), 37);
    m.arena.rebuildFreeLists([{ start: 0, cls: 6 }, { start: 32, cls: 3 }, { start: 36, cls: 1 }]);
    expect(allFree(m)).toEqual([]);
  });

  it('overlapping used blocks (torn state) are never handed out', () => {
    const m = make(6, 64, 64);
    for (let i = 0; i < 40; i++) m.arena.alloc(1);
    // [4,12) contains [6,8) (a block inside another must not pull the cursor back), [10,14)
    // overlaps the first, then a gap before [20,21)
    const used = [{ start: 4, cls: 4 }, { start: 6, cls: 2 }, { start: 10, cls: 3 }, { start: 20, cls: 1 }];
    m.arena.rebuildFreeLists(used.map((u) => ({ ...u })));
    const free = allFree(m);
    for (const f of free) {
      const a = f.start;
      const b = f.start + classEntries(f.cls);
      for (const u of used) expect(b <= u.start || a >= u.start + classEntries(u.cls), `free [${a},${b}) overlaps used ${u.start}`).toBe(true);
    }
    // exactly the uncovered entries: [0,4), [14,20), [21,40)
    const sizes = free.map((f) => [f.start, classEntries(f.cls)]).sort((x, y) => x[0]! - y[0]!);
    expect(sizes).toEqual([[0, 4], [14, 4], [18, 2], [21, 16], [37, 2], [39, 1]]);
  });

  it('randomized: afterwards, allocating every free block never overlaps a used block and covers exactly the gaps', () => {
    const rnd = prng(77);
    for (let round = 0; round < 200; round++) {
      const cap = 4096;
      const m = make(round % 2 ? 18 : 6, 64, cap);
      // random allocations and frees to get a realistic bump pointer and stale lists
      const live: { start: number; cls: number }[] = [];
      const ops = 20 + Math.floor(rnd() * 150);
      for (let i = 0; i < ops; i++) {
        if (live.length > 0 && rnd() < 0.35) {
          const b = live.splice(Math.floor(rnd() * live.length), 1)[0]!;
          m.arena.free(b.start, b.cls);
        } else {
          const cls = 1 + Math.floor(rnd() * rnd() * 8);
          const start = m.arena.alloc(cls);
          if (start < 0) continue;
          live.push({ start, cls });
        }
      }
      const top = m.ctl[TOP]!;
      // sometimes the free lists are torn as well
      if (rnd() < 0.5) for (let c = 0; c < MAX_CLASS; c++) m.ctl[FREE + c] = rnd() < 0.5 ? NIL : Math.floor(rnd() * top);
      const used = live.map((b) => ({ ...b }));
      m.arena.rebuildFreeLists(used);
      // the lists are well formed and tile the gaps with used blocks
      const free = allFree(m);
      expectTiling([...free, ...live], top);
      // each gap is cut greedily: its blocks, in address order, are the gap's binary decomposition
      const sortedLive = [...live].sort((a, b) => a.start - b.start);
      let cursor = 0;
      const gaps: [number, number][] = [];
      for (const b of sortedLive) {
        if (b.start > cursor) gaps.push([cursor, b.start]);
        cursor = b.start + classEntries(b.cls);
      }
      if (top > cursor) gaps.push([cursor, top]);
      const freeSorted = [...free].sort((a, b) => a.start - b.start);
      let k = 0;
      for (const [from, to] of gaps) {
        const sizes: number[] = [];
        while (k < freeSorted.length && freeSorted[k]!.start < to) sizes.push(classEntries(freeSorted[k++]!.cls));
        expect(sizes, `gap [${from}, ${to})`).toEqual(decomposition(to - from));
      }
      expect(k).toBe(freeSorted.length);
      // allocating every free block hands out exactly those blocks, then the bump pointer moves
      const got: { start: number; cls: number }[] = [];
      for (let c = 1; c < MAX_CLASS; c++) {
        while (m.ctl[FREE + c] !== NIL) got.push({ start: m.arena.alloc(c), cls: c });
      }
      expect(m.ctl[TOP]).toBe(top);
      expectTiling([...got, ...live], top);
      if (top + 1 <= cap) expect(m.arena.alloc(1)).toBe(top);
    }
  });
});

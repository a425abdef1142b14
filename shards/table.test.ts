// HashIndex (table.ts): linear probing with backward-shift deletion.
import { describe, expect, it } from 'vitest';
import { HashIndex, type KeyMatcher } from './table.js';
import { prng } from '../test/support/prng.js';

// ---------------------------------------------------------------------------------------
// HashIndex (unchanged by the redesign).
// ---------------------------------------------------------------------------------------

describe('HashIndex', () => {
  /** Index over slots whose keys are small integers, hashes chosen by the test. */
  function model(capacity: number, maxCapacity = capacity): { index: HashIndex; m: KeyMatcher; keyOf: Map<number, number> } {
    const sab = new SharedArrayBuffer(HashIndex.bytesFor(capacity), { maxByteLength: HashIndex.bytesFor(maxCapacity) });
    const keyOf = new Map<number, number>();
    const m: KeyMatcher = { matches: (slot, _key, keyOff) => keyOf.get(slot) === keyOff };
    return { index: new HashIndex(sab), m, keyOf };
  }
  const none = new Uint8Array(0);

  /** Every entry is reachable from its home position without crossing an empty cell. */
  function checkInvariant(index: HashIndex): void {
    const t = index.i32;
    for (let i = 0; i < index.capacity; i++) {
      if (t[i * 2 + 1] === 0) continue;
      let j = t[i * 2]! & index.mask;
      while (j !== i) {
        if (t[j * 2 + 1] === 0) throw new Error(`entry at ${i} unreachable from its home ${t[i * 2]! & index.mask}`);
        j = (j + 1) & index.mask;
      }
    }
  }

  it('finds, inserts and removes with many identical hashes and clusters wrapping the end', () => {
    const rnd = prng(7);
    const { index, m, keyOf } = model(64);
    expect(index.capacity).toBe(64);
    expect(index.maxEntries).toBe(64);
    const hashes = [0, 1, 63, 62, 63 + 64, -1, 0x7fffffff, 31];
    const live = new Map<number, { key: number; hash: number }>(); // slot → key, hash
    let nextKey = 1000;
    for (let op = 0; op < 20_000; op++) {
      if (live.size < 32 && (live.size === 0 || rnd() < 0.55)) {
        let slot = Math.floor(rnd() * 200);
        while (live.has(slot)) slot = (slot + 1) % 200;
        const hash = hashes[Math.floor(rnd() * hashes.length)]!;
        const key = nextKey++;
        keyOf.set(slot, key);
        expect(index.find(hash, none, key, 0, m)).toBe(-1);
        index.insert(hash, slot);
        live.set(slot, { key, hash });
      } else {
        const slots = [...live.keys()];
        const slot = slots[Math.floor(rnd() * slots.length)]!;
        const { hash, key } = live.get(slot)!;
        index.remove(hash, slot);
        live.delete(slot);
        expect(index.find(hash, none, key, 0, m)).toBe(-1);
        keyOf.delete(slot);
      }
      if (op % 50 === 0) {
        checkInvariant(index);
        let entries = 0;
        for (let i = 0; i < 64; i++) if (index.i32[i * 2 + 1] !== 0) entries++;
        expect(entries).toBe(live.size);
        for (const [slot, { key, hash }] of live) expect(index.find(hash, none, key, 0, m)).toBe(slot);
      }
    }
  });

  it('remove of an absent slot changes nothing; reset grows and empties', () => {
    const { index, m, keyOf } = model(16, 64);
    keyOf.set(3, 3);
    keyOf.set(4, 4);
    index.insert(5, 3);
    index.insert(5, 4);
    const before = index.i32.slice();
    index.remove(5, 9);
    index.remove(6, 3);
    expect(index.i32).toEqual(before);
    expect(index.find(5, none, 4, 0, m)).toBe(4);
    index.reset(64);
    expect(index.capacity).toBe(64);
    expect(index.mask).toBe(63);
    expect(index.find(5, none, 4, 0, m)).toBe(-1);
    expect(index.i32.every((v) => v === 0)).toBe(true);
  });
});

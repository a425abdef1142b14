import { describe, expect, it } from 'vitest';
import { prng } from '../../test/support/prng.js';
import { HashSorter } from './hash-sort.js';

describe('HashSorter.sortUnique', () => {
  it('sorts 20-byte keys by their bytes and keeps one of each, like a sort of strings would', () => {
    const rnd = prng(3);
    const sorter = new HashSorter(8); // grows past its capacity when asked
    for (let round = 0; round < 300; round++) {
      const n = Math.floor(rnd() * 200);
      const pool = Array.from({ length: 1 + Math.floor(rnd() * 60) }, () => Uint8Array.from({ length: 20 }, () => (rnd() < 0.5 ? 0 : Math.floor(rnd() * 256))));
      const hashes = new Uint8Array(n * 20 + 40).fill(0xaa); // bytes past the keys are not touched
      const picked: string[] = [];
      for (let i = 0; i < n; i++) {
        const k = pool[Math.floor(rnd() * pool.length)];
        hashes.set(k, i * 20);
        picked.push(Buffer.from(k).toString('latin1'));
      }
      const want = [...new Set(picked)].sort((a, b) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')));
      const m = sorter.sortUnique(hashes, n);
      expect(m).toBe(want.length);
      const got = Array.from({ length: m }, (_, i) => Buffer.from(hashes.subarray(i * 20, i * 20 + 20)).toString('latin1'));
      expect(got).toEqual(want);
      expect(hashes.subarray(n * 20).every((b) => b === 0xaa)).toBe(true);
    }
  });
});

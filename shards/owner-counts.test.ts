import { describe, expect, it } from 'vitest';
import { OwnerCounts } from './owner-counts.js';

describe('OwnerCounts', () => {
  it('agrees with a Map through random adds and removes, growing and shrinking', () => {
    const t = new OwnerCounts(16);
    const model = new Map<string, number>();
    let seed = 42;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let op = 0; op < 50_000; op++) {
      const a = Math.floor(rnd() * 50);
      const b = Math.floor(rnd() * 200);
      const k = `${a}:${b}`;
      if (rnd() < 0.55) {
        t.add(a, b);
        model.set(k, (model.get(k) ?? 0) + 1);
      } else if (model.has(k)) {
        t.remove(a, b);
        const n = model.get(k)! - 1;
        if (n === 0) model.delete(k);
        else model.set(k, n);
      }
      if (op % 997 === 0) {
        expect(t.size).toBe(model.size);
        for (const [key, n] of model) expect(t.get(...(key.split(':').map(Number) as [number, number]))).toBe(n);
      }
    }
    for (const [key, n] of model) expect(t.get(...(key.split(':').map(Number) as [number, number]))).toBe(n);
  });
});

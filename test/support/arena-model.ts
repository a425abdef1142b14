import { MIN_CLASS, classEntries } from '../../shards/arena.js';

/**
 * Reference model for the arena tests: the maximal aligned blocks of [from, to), in address
 * order — at each point the largest block of at least MIN_CLASS that starts at a multiple of
 * its size and fits. What a wholly free range of a buddy arena is made of.
 */
export function alignedBlocks(from: number, to: number): { start: number; cls: number }[] {
  const out: { start: number; cls: number }[] = [];
  while (from < to) {
    let size = classEntries(MIN_CLASS);
    while (from % (size * 2) === 0 && from + size * 2 <= to) size *= 2;
    out.push({ start: from, cls: Math.log2(size) + 1 });
    from += size;
  }
  return out;
}

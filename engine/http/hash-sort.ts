// Sorting 20-byte keys (info_hashes) in place, duplicates dropped: a bencoded dictionary
// wants its keys sorted and each once. A bottom-up merge sort of indexes over buffers kept
// between calls: O(n log n) comparisons and nothing allocated per scrape.

export class HashSorter {
  private idx: Int32Array;
  private tmp: Int32Array;
  private keys: Uint8Array;

  /** `capacity`: the most keys one call sorts without growing its buffers. */
  constructor(capacity: number) {
    this.idx = new Int32Array(capacity);
    this.tmp = new Int32Array(capacity);
    this.keys = new Uint8Array(capacity * 20);
  }

  /**
   * Sort the `count` keys at hashes[0 .. count*20) ascending by their bytes, keep one of
   * each, and return how many are left (at the front of `hashes`).
   */
  sortUnique(hashes: Uint8Array, count: number): number {
    if (count > this.idx.length) this.grow(count);
    let a = this.idx;
    let b = this.tmp;
    for (let i = 0; i < count; i++) a[i] = i;
    for (let width = 1; width < count; width *= 2) {
      for (let lo = 0; lo < count; lo += 2 * width) {
        const mid = Math.min(lo + width, count);
        const hi = Math.min(lo + 2 * width, count);
        let i = lo;
        let j = mid;
        let k = lo;
        while (i < mid && j < hi) b[k++] = compare(hashes, a[i], a[j]) <= 0 ? a[i++] : a[j++];
        while (i < mid) b[k++] = a[i++];
        while (j < hi) b[k++] = a[j++];
      }
      const t = a;
      a = b;
      b = t;
    }
    const keys = this.keys;
    let n = 0;
    for (let k = 0; k < count; k++) {
      const from = a[k] * 20;
      if (n > 0 && equalAt(keys, (n - 1) * 20, hashes, from)) continue;
      for (let x = 0; x < 20; x++) keys[n * 20 + x] = hashes[from + x];
      n++;
    }
    hashes.set(keys.subarray(0, n * 20), 0);
    return n;
  }

  private grow(count: number): void {
    this.idx = new Int32Array(count);
    this.tmp = new Int32Array(count);
    this.keys = new Uint8Array(count * 20);
  }
}

function compare(h: Uint8Array, x: number, y: number): number {
  const a = x * 20;
  const b = y * 20;
  for (let i = 0; i < 20; i++) {
    const d = h[a + i] - h[b + i];
    if (d !== 0) return d;
  }
  return 0;
}

function equalAt(a: Uint8Array, ao: number, b: Uint8Array, bo: number): boolean {
  for (let i = 0; i < 20; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

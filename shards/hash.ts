// Seeded 32-bit hashes of 20-byte keys for the open-addressing indexes.
//
// info_hashes are SHA-1 output and uniform, but in open mode anyone chooses them, and
// peer_ids start with client prefixes ("-qB4630-"): a seeded mix over all five words keeps
// probe chains short whatever clients send (no hash flooding). The seed is per process and
// stored in shared memory so a respawned shard finds its entries again.

function word(u8: Uint8Array, off: number): number {
  return u8[off] | (u8[off + 1] << 8) | (u8[off + 2] << 16) | (u8[off + 3] << 24);
}

function mix(h: number, w: number): number {
  w = Math.imul(w, 0xcc9e2d51);
  w = (w << 15) | (w >>> 17);
  w = Math.imul(w, 0x1b873593);
  h ^= w;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/** murmur3-style hash of the 20 bytes at u8[off], mixed with `extra` (e.g. a swarm slot). */
export function hash20(u8: Uint8Array, off: number, seed: number, extra = 0): number {
  let h = seed ^ extra;
  h = mix(h, word(u8, off));
  h = mix(h, word(u8, off + 4));
  h = mix(h, word(u8, off + 8));
  h = mix(h, word(u8, off + 12));
  h = mix(h, word(u8, off + 16));
  return finish(h ^ 20);
}

/** True when the 20 bytes at a[ao] equal those at b[bo]. */
export function equal20(a: Uint8Array, ao: number, b: Uint8Array, bo: number): boolean {
  for (let i = 0; i < 20; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

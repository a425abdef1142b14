import type { ShardPool } from '../../shards/channel.js';
import { CTL, SW, SWF_LIVE } from '../../shards/layout.js';

// Full scrape (when enabled): read every shard's swarm slab directly from shared memory,
// without messaging the shards. Counters are u32 words written by one thread, so each read
// is whole; a swarm created or freed during the walk may be missed or seen empty, which is
// what a scrape taken a moment earlier or later would show anyway.

export function fullScrape(pool: ShardPool): { hashes: Uint8Array; counts: Uint32Array; count: number } {
  const parts: Array<{ u8: Uint8Array; dv: DataView; high: number }> = [];
  let total = 0;
  for (const s of pool.shards) {
    const len = s.memory.swarms.byteLength;
    const high = Math.min(Atomics.load(s.ctl, CTL.SWARM_HIGH), Math.floor(len / SW.SIZE));
    parts.push({ u8: new Uint8Array(s.memory.swarms, 0, len), dv: new DataView(s.memory.swarms, 0, len), high });
    total += high;
  }
  const hashes = new Uint8Array(total * 20);
  const counts = new Uint32Array(total * 3);
  let n = 0;
  for (const { u8, dv, high } of parts) {
    for (let slot = 0; slot < high; slot++) {
      const at = slot * SW.SIZE;
      if (!(u8[at + SW.FLAGS] & SWF_LIVE)) continue;
      hashes.set(u8.subarray(at + SW.INFO_HASH, at + SW.INFO_HASH + 20), n * 20);
      counts[n * 3] = dv.getUint32(at + SW.SEED4, true) + dv.getUint32(at + SW.SEED6, true);
      counts[n * 3 + 1] = dv.getUint32(at + SW.COMPLETED, true);
      counts[n * 3 + 2] = dv.getUint32(at + SW.LEECH4, true) + dv.getUint32(at + SW.LEECH6, true);
      n++;
    }
  }
  return { hashes: hashes.subarray(0, n * 20), counts: counts.subarray(0, n * 3), count: n };
}

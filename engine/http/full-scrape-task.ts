import { gzipSync } from 'node:zlib';
import { Piscina } from 'piscina';
import { ShardControl, SwarmRecord, SWF_LIVE } from '../../shards/memory-layout.js';
import { BencodeWriter } from './bencode.js';
import { encodeScrape, maxScrapeBytes, sortedOrder } from './encode.js';

// A full scrape, built on a piscina worker: every shard's swarm slab read straight from
// shared memory (no message to the shards), sorted, bencoded and gzipped there, so the
// acceptor's loop only hands over the finished bytes. Counters are u32 words written by one
// thread, so each read is whole; a swarm created or freed during the walk may be missed or
// seen empty, as in a scrape taken a moment earlier or later.

export interface FullScrapeTask {
  /** per shard: its control block and swarm slab */
  shards: { ctl: SharedArrayBuffer; swarms: SharedArrayBuffer }[];
  minInterval: number;
}

export interface FullScrapeResult {
  body: Uint8Array;
  gzip: Uint8Array;
  swarms: number;
}

export function buildFullScrape(task: FullScrapeTask): FullScrapeResult {
  let total = 0;
  const parts = task.shards.map(({ ctl, swarms }) => {
    const len = swarms.byteLength;
    const high = Math.min(Atomics.load(new Int32Array(ctl), ShardControl.SWARM_HIGH), Math.floor(len / SwarmRecord.SIZE));
    total += high;
    return { u8: new Uint8Array(swarms, 0, len), dv: new DataView(swarms, 0, len), high };
  });
  const hashes = new Uint8Array(total * 20);
  const counts = new Uint32Array(total * 3);
  let n = 0;
  for (const { u8, dv, high } of parts) {
    for (let slot = 0; slot < high; slot++) {
      const at = slot * SwarmRecord.SIZE;
      if (!(u8[at + SwarmRecord.FLAGS] & SWF_LIVE)) continue;
      hashes.set(u8.subarray(at + SwarmRecord.INFO_HASH, at + SwarmRecord.INFO_HASH + 20), n * 20);
      counts[n * 3] = dv.getUint32(at + SwarmRecord.SEED4, true) + dv.getUint32(at + SwarmRecord.SEED6, true) + dv.getUint32(at + SwarmRecord.SEEDW, true);
      counts[n * 3 + 1] = dv.getUint32(at + SwarmRecord.COMPLETED, true);
      counts[n * 3 + 2] = dv.getUint32(at + SwarmRecord.LEECH4, true) + dv.getUint32(at + SwarmRecord.LEECH6, true) + dv.getUint32(at + SwarmRecord.LEECHW, true);
      n++;
    }
  }
  // Sorted, each hash once: a swarm freed and created again in another slot during the walk
  // is seen twice (its first sighting kept).
  const sorted = sortedOrder(hashes, n);
  let unique = 0;
  for (let k = 0; k < sorted.length; k++) {
    if (unique > 0 && sameHash(hashes, sorted[unique - 1], sorted[k])) continue;
    sorted[unique++] = sorted[k];
  }
  sorted.length = unique;
  const body = new Uint8Array(encodeScrape(new BencodeWriter(maxScrapeBytes(unique)), hashes, counts, sorted, task.minInterval));
  return { body, gzip: gzipSync(body), swarms: unique };
}

function sameHash(h: Uint8Array, a: number, b: number): boolean {
  for (let i = 0; i < 20; i++) if (h[a * 20 + i] !== h[b * 20 + i]) return false;
  return true;
}

/**
 * The piscina task. Its answer is one buffer, moved to the acceptor rather than copied:
 * u32 body length, u32 swarms, the body, then its gzip (unpack with unpackFullScrape).
 */
export default function (task: FullScrapeTask): Uint8Array {
  const r = buildFullScrape(task);
  const out = new Uint8Array(8 + r.body.length + r.gzip.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, r.body.length, true);
  dv.setUint32(4, r.swarms, true);
  out.set(r.body, 8);
  out.set(r.gzip, 8 + r.body.length);
  return Piscina.move(out) as Uint8Array;
}

export function unpackFullScrape(packed: Uint8Array): FullScrapeResult {
  const dv = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const len = dv.getUint32(0, true);
  return { body: packed.subarray(8, 8 + len), gzip: packed.subarray(8 + len), swarms: dv.getUint32(4, true) };
}

// A shard thread killed mid-run is respawned on the same memory: swarms are intact,
// every request in flight gets an answer, and the shard serves again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tracker } from '../dist/engine/tracker.js';
import { announcePath, decode, decodeRawKeys, get, hashForShard, hexKey, peerId, pct, startTestTracker } from './helpers.js';

let t: Tracker;
let port: number;

beforeAll(async () => {
  t = await startTestTracker({ shards: { count: 2 } });
  port = t.httpPort;
});
afterAll(async () => {
  await t?.close();
});

async function scrapeCounts(hashes: Uint8Array[]): Promise<number[][]> {
  const out: number[][] = [];
  for (let i = 0; i < hashes.length; i += 50) {
    const part = hashes.slice(i, i + 50);
    const r = await get(port, `/scrape?${part.map((h) => `info_hash=${pct(h)}`).join('&')}`);
    const files = (decodeRawKeys(r.body) as Map<string, any>).get(hexKey('files')) as Map<string, Map<string, number>>;
    for (const h of part) {
      const f = files.get(Buffer.from(h).toString('hex'))!;
      out.push([f.get(hexKey('complete'))!, f.get(hexKey('incomplete'))!, f.get(hexKey('downloaded'))!]);
    }
  }
  return out;
}

describe('shard restart', () => {
  it('keeps swarms intact when a shard thread dies', async () => {
    const hashes = Array.from({ length: 120 }, (_, i) => hashForShard(i % 2, 2));
    for (const [i, ih] of hashes.entries()) {
      const ps = Array.from({ length: 1 + (i % 5) }, (_, k) => {
        const id = peerId();
        return get(port, announcePath({ infoHash: ih, peerId: id, port: 1000 + k, left: k % 2 === 0 ? 0 : 100, event: k === 2 ? 'completed' : 'started' }));
      });
      await Promise.all(ps);
    }
    const before = await scrapeCounts(hashes);
    expect(before.some(([s, l]) => s > 0 && l > 0)).toBe(true);

    await t.pool.killShard(0);
    await t.pool.shardUp(0);
    const after = await scrapeCounts(hashes);
    expect(after).toEqual(before);

    // the respawned shard keeps serving its swarms, peers included
    const ih = hashes[0];
    const d = decode((await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 5555 }))).body);
    expect(d.complete).toBe(before[0][0]);
    expect(Buffer.from(d.peers).length / 6).toBe(before[0][0]);
  });

  it('answers every request in flight when a shard dies under load', async () => {
    const hashes = Array.from({ length: 40 }, (_, i) => hashForShard(i % 2, 2));
    const inflight = Array.from({ length: 600 }, (_, i) =>
      get(port, announcePath({ infoHash: hashes[i % hashes.length], peerId: peerId(), port: 2000 + (i % 1000), left: i % 3 === 0 ? 0 : 10 })),
    );
    setTimeout(() => void t.pool.killShard(0), 5);
    const replies = await Promise.all(inflight);
    let failed = 0;
    for (const r of replies) {
      expect(r.status).toBe(200);
      const d = decode(r.body);
      if (d['failure reason']) {
        expect(Buffer.from(d['failure reason']).toString()).toMatch(/restarting|busy/);
        failed++;
      } else {
        expect(typeof d.complete).toBe('number');
      }
    }
    expect(failed).toBeLessThan(replies.length);
    await t.pool.shardUp(0);
    const d = decode((await get(port, announcePath({ infoHash: hashes[0], peerId: peerId(), port: 7777 }))).body);
    expect(d['failure reason']).toBeUndefined();
    // counts still agree with the peer lists after recovery
    const [counts] = await scrapeCounts([hashes[0]]);
    expect(counts[0] + counts[1]).toBeGreaterThan(0);
  });

  it('gives up (to its supervisor) when a shard keeps dying, instead of respawning forever', async () => {
    const fatal: string[] = [];
    const t2 = await startTestTracker({ shards: { count: 1 } }, (msg) => fatal.push(msg));
    try {
      for (let i = 0; i < 5; i++) {
        await t2.pool.killShard(0);
        await t2.pool.shardUp(0);
      }
      expect(fatal).toEqual([]); // five deaths a minute are within the budget
      await t2.pool.killShard(0);
      expect(fatal).toHaveLength(1);
      expect(fatal[0]).toMatch(/shard 0 died 6 times/);
    } finally {
      await t2.close();
    }
  });
});

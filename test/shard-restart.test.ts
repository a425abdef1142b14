// A shard thread killed mid-run (or stuck, and ended by the watchdog) is respawned on the
// same memory: swarms are intact, every request in flight gets an answer, and the shard
// serves again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tracker } from '../dist/engine/tracker.js';
import { announcePath, decode, decodeRawKeys, failure, get, hashForShard, hexKey, peerId, pct, startTestTracker, until } from './helpers.js';

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

  it('turns /ready to 503 for a shard that stops answering, and the watchdog replaces it', async () => {
    const logs: string[] = [];
    const t2 = await startTestTracker({ shards: { count: 2, ready_heartbeat_seconds: 2, watchdog_seconds: 4 } }, undefined, (m) => logs.push(m));
    try {
      const admin = `http://127.0.0.1:${t2.admin!.port}`;
      const ready = async () => {
        const r = await fetch(`${admin}/ready`);
        return { status: r.status, body: (await r.json()) as { problems: string[] } };
      };
      const age = async () => {
        const text = await (await fetch(`${admin}/metrics`)).text();
        return Number(/^shardtrack_shard_heartbeat_age_seconds\{shard="0"\} (\d+)/m.exec(text)?.[1] ?? NaN);
      };
      const known = hashForShard(0, 2);
      expect(failure((await get(t2.httpPort, announcePath({ infoHash: known, peerId: peerId(), port: 1, left: 0 }))).body)).toBeUndefined();
      expect((await ready()).status).toBe(200);
      expect(await age()).toBeLessThanOrEqual(1);

      // A real hang: every entry of shard 0's swarm index taken by a key that never matches,
      // so the next lookup of an unknown info_hash probes forever (as a corrupted table would).
      const index = new Int32Array(t2.pool.shards[0].memory.swarmIndex);
      for (let i = 0; i < index.length; i += 2) {
        index[i] = 0x5eed;
        index[i + 1] = 1;
      }
      const stuck = get(t2.httpPort, announcePath({ infoHash: hashForShard(0, 2), peerId: peerId(), port: 2 }));
      await until('/ready to name the stuck shard', async () => {
        const r = await ready();
        return r.status === 503 && r.body.problems.some((p) => /^shard 0 has not turned its loop/.test(p));
      });
      expect(await age()).toBeGreaterThan(2);
      // shard 1 still serves meanwhile
      expect(failure((await get(t2.httpPort, announcePath({ infoHash: hashForShard(1, 2), peerId: peerId(), port: 3 }))).body)).toBeUndefined();

      // the watchdog ends the thread: the stuck request is answered, and a new thread
      // rebuilds the index from the swarm records
      expect(failure((await stuck).body)).toBe('tracker was restarting this swarm, try again');
      expect(logs.some((l) => /shard 0 has not turned its loop for \d+ s \(shards.watchdog_seconds = 4\): terminating it/.test(l))).toBe(true);
      await t2.pool.shardUp(0);
      await until('/ready to be 200 again', async () => (await ready()).status === 200);
      expect(t2.pool.shards[0].restarts).toBe(1);
      expect(index.some((w, i) => i % 2 === 1 && w === 0)).toBe(true); // rebuilt: free entries again
      const d = decode((await get(t2.httpPort, announcePath({ infoHash: known, peerId: peerId(), port: 4 }))).body);
      expect(d.complete).toBe(1); // the swarm survived
    } finally {
      await t2.close();
    }
  }, 30_000);

  it('does not take a stall of the acceptor for a stuck shard', async () => {
    const logs: string[] = [];
    const t2 = await startTestTracker({ shards: { count: 2, ready_heartbeat_seconds: 2, watchdog_seconds: 2 } }, undefined, (m) => logs.push(m));
    try {
      // this thread (the acceptor's) busy for 4 s: no tick, while the shards keep turning
      const end = Date.now() + 4000;
      while (Date.now() < end);
      const at = t2.pool.now();
      await until('two ticks of the pool after it', () => t2.pool.now() >= at + 2, 5000);
      expect(logs.filter((l) => /has not turned its loop/.test(l))).toEqual([]);
      expect(t2.pool.shards.map((s) => s.restarts)).toEqual([0, 0]);
      expect((await fetch(`http://127.0.0.1:${t2.admin!.port}/ready`)).status).toBe(200);
    } finally {
      await t2.close();
    }
  }, 30_000);
});

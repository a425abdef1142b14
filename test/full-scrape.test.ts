// Full scrape (tracker.full_scrape): every swarm of every shard in one sorted answer, built
// off the acceptor's loop on a piscina worker, kept for full_scrape_cache_seconds, gzipped
// for clients that accept it.
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tracker } from '../dist/engine/tracker.js';
import { announcePath, decodeRawKeys, get, hashForShard, hexKey, peerId, startTestTracker, until } from './helpers.js';

let t: Tracker;
const hashes = Array.from({ length: 60 }, (_, i) => hashForShard(i % 2, 2));

beforeAll(async () => {
  t = await startTestTracker({ shards: { count: 2 }, tracker: { full_scrape: true, full_scrape_cache_seconds: 2 } });
  for (const [i, ih] of hashes.entries()) {
    for (let k = 0; k <= i % 3; k++) await get(t.httpPort, announcePath({ infoHash: ih, peerId: peerId(), port: 1000 + k, left: k === 0 ? 0 : 10 }));
  }
});
afterAll(async () => {
  await t?.close();
});

type Files = Map<string, Map<string, number>>;
const filesOf = (body: Buffer): Files => (decodeRawKeys(body) as Map<string, Map<string, unknown>>).get(hexKey('files')) as Files;

describe('full scrape', () => {
  it('answers every swarm of every shard, keys sorted, with their counts', async () => {
    const r = await get(t.httpPort, '/scrape');
    expect(r.headers['content-encoding']).toBeUndefined();
    const files = filesOf(r.body); // (decodeRawKeys also checks the keys are sorted)
    expect(files.size).toBe(hashes.length);
    for (const [i, ih] of hashes.entries()) {
      const f = files.get(Buffer.from(ih).toString('hex'))!;
      expect(f.get(hexKey('complete'))).toBe(1);
      expect(f.get(hexKey('incomplete'))).toBe(i % 3);
    }
  });

  it('is gzipped for a client that accepts it', async () => {
    const r = await get(t.httpPort, '/scrape', { headers: { 'accept-encoding': 'gzip, deflate' } });
    expect(r.headers['content-encoding']).toBe('gzip');
    expect(filesOf(gunzipSync(r.body)).size).toBe(hashes.length);
  });

  it('is served from its cache until full_scrape_cache_seconds pass, then rebuilt', async () => {
    // a build that has just finished (a request past the cache time starts one)
    const before = t.http.fullScrapeBuilds;
    await until('a fresh build', async () => (await get(t.httpPort, '/scrape'), t.http.fullScrapeBuilds > before), 5000);
    const late = hashForShard(1, 2);
    await get(t.httpPort, announcePath({ infoHash: late, peerId: peerId(), port: 2000 }));
    // within the cache time: the answer built before the new swarm, and no new build
    const builds = t.http.fullScrapeBuilds;
    expect(filesOf((await get(t.httpPort, '/scrape')).body).has(Buffer.from(late).toString('hex'))).toBe(false);
    expect(t.http.fullScrapeBuilds).toBe(builds);
    // later: a request past the time starts a rebuild (and gets the old bytes); a later one the new
    await until('the new swarm in a full scrape', async () => filesOf((await get(t.httpPort, '/scrape')).body).has(Buffer.from(late).toString('hex')), 8000);
  });

  it('answers many full scrapes at once from one build, and announces meanwhile', async () => {
    const before = t.http.fullScrapeBuilds;
    const scrapes = Array.from({ length: 40 }, () => get(t.httpPort, '/scrape'));
    const r = await get(t.httpPort, announcePath({ infoHash: hashes[0], peerId: peerId(), port: 3000 }));
    expect(r.status).toBe(200);
    for (const s of await Promise.all(scrapes)) expect(filesOf(s.body).size).toBeGreaterThanOrEqual(hashes.length);
    expect(t.http.fullScrapeBuilds - before).toBeLessThanOrEqual(1); // not one walk of the tables per request
  });

  it('is not gzipped for a client that refuses it, and says it varies by Accept-Encoding', async () => {
    const r = await get(t.httpPort, '/scrape', { headers: { 'accept-encoding': 'gzip;q=0, identity' } });
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(r.headers.vary).toBe('Accept-Encoding');
    expect(filesOf(r.body).size).toBeGreaterThanOrEqual(hashes.length);
  });
});

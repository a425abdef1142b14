// Announce and scrape over real HTTP against a real tracker with two shard threads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tracker } from '../dist/engine/tracker.js';
import {
  announcePath, compactPeers, compactPeers6, decode, decodeRawKeys, failure, get, hash, hashForShard, hexKey, pct, peerId, startTestTracker, text,
} from './helpers.js';

let t: Tracker;
let port: number;

beforeAll(async () => {
  t = await startTestTracker({ tracker: { numwant_max: 80, interval: 1800, min_interval: 300, interval_jitter: 60 } });
  port = t.httpPort;
});
afterAll(async () => {
  await t?.close();
});

describe('announce', () => {
  it('answers a first announce with counts, intervals and no peers', async () => {
    const r = await get(port, announcePath({ infoHash: hash(), peerId: peerId(), port: 6881, event: 'started' }));
    expect(r.status).toBe(200);
    const d = decode(r.body);
    expect(d.complete).toBe(0);
    expect(d.incomplete).toBe(1);
    expect(d.downloaded).toBe(0);
    expect(d.interval).toBeGreaterThanOrEqual(1800);
    expect(d.interval).toBeLessThanOrEqual(1860);
    expect(d['min interval']).toBe(300);
    expect(Buffer.from(d.peers).length).toBe(0);
    // keys are sorted (bencode canonical form): re-encoding gives the same bytes
    expect(Object.keys(d)).toEqual([...Object.keys(d)].sort());
  });

  it('gives a leecher the seeder (compact, BEP 23) and never the asker itself', async () => {
    const ih = hash();
    await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 7001, left: 0, event: 'started' }));
    const me = peerId();
    const r1 = decode((await get(port, announcePath({ infoHash: ih, peerId: me, port: 7002, event: 'started' }))).body);
    expect(r1.complete).toBe(1);
    expect(r1.incomplete).toBe(1);
    expect(compactPeers(r1.peers)).toEqual(['127.0.0.1:7001']);
    const r2 = decode((await get(port, announcePath({ infoHash: ih, peerId: me, port: 7002 }))).body);
    expect(compactPeers(r2.peers)).toEqual(['127.0.0.1:7001']);
  });

  it('gives seeders only leechers', async () => {
    const ih = hash();
    for (let i = 0; i < 5; i++) await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 7100 + i, left: 0 }));
    for (let i = 0; i < 3; i++) await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 7200 + i, left: 10 }));
    const d = decode((await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 7300, left: 0 }))).body);
    expect(d.complete).toBe(6);
    expect(d.incomplete).toBe(3);
    expect(compactPeers(d.peers).sort()).toEqual(['127.0.0.1:7200', '127.0.0.1:7201', '127.0.0.1:7202']);
  });

  it('honours numwant, its default and its maximum, and rotates through the swarm', async () => {
    const ih = hash();
    for (let i = 0; i < 100; i++) await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 8000 + i, left: 0 }));
    const ask = async (numwant?: number) =>
      compactPeers(decode((await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 9000, numwant }))).body).peers);
    expect(await ask(5)).toHaveLength(5);
    expect(await ask(0)).toHaveLength(0);
    expect(await ask()).toHaveLength(50); // numwant_default
    expect(await ask(1000)).toHaveLength(80); // numwant_max
    // rotation: successive answers of 25 cover all 100 seeders
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) for (const p of await ask(25)) seen.add(p);
    expect(seen.size).toBe(100);
  });

  it('counts completed once per peer and removes stopped peers', async () => {
    const ih = hash();
    const a = peerId();
    await get(port, announcePath({ infoHash: ih, peerId: a, port: 6001, event: 'started', left: 100 }));
    let d = decode((await get(port, announcePath({ infoHash: ih, peerId: a, port: 6001, event: 'completed', left: 0, downloaded: 100 }))).body);
    expect([d.complete, d.incomplete, d.downloaded]).toEqual([1, 0, 1]);
    d = decode((await get(port, announcePath({ infoHash: ih, peerId: a, port: 6001, event: 'completed', left: 0, downloaded: 100 }))).body);
    expect(d.downloaded).toBe(1);
    d = decode((await get(port, announcePath({ infoHash: ih, peerId: a, port: 6001, event: 'stopped', left: 0 }))).body);
    expect([d.complete, d.incomplete, d.downloaded]).toEqual([0, 0, 1]);
    expect(Buffer.from(d.peers).length).toBe(0);
    // stopped for an unknown peer/torrent is harmless
    d = decode((await get(port, announcePath({ infoHash: hash(), peerId: peerId(), port: 6001, event: 'stopped' }))).body);
    expect([d.complete, d.incomplete]).toEqual([0, 0]);
  });

  it('treats event=paused peers as not wanting seeders', async () => {
    const ih = hash();
    await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 6101, left: 0 }));
    await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 6102, left: 50 }));
    const d = decode((await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 6103, left: 10, event: 'paused' }))).body);
    expect(compactPeers(d.peers)).toEqual(['127.0.0.1:6102']);
    expect(d.incomplete).toBe(2);
  });

  it('answers non-compact lists with and without peer ids', async () => {
    const ih = hash();
    const seed = peerId();
    await get(port, announcePath({ infoHash: ih, peerId: seed, port: 6201, left: 0 }));
    let d = decode((await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 6202, compact: 0 }))).body);
    expect(d.peers).toHaveLength(1);
    expect(text(d.peers[0].ip)).toBe('127.0.0.1');
    expect(d.peers[0].port).toBe(6201);
    expect(Buffer.from(d.peers[0]['peer id']).equals(Buffer.from(seed))).toBe(true);
    d = decode((await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 6203, compact: 0, noPeerId: true }))).body);
    expect(Object.keys(d.peers[0]).sort()).toEqual(['ip', 'port']);
  });

  it('serves IPv6 clients peers6 (BEP 7) and keeps families apart', async () => {
    const ih = hash();
    await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 6301, left: 0 }), { host: '::1' });
    await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 6302, left: 0 }));
    const d6 = decode((await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 6303 }), { host: '::1' })).body);
    expect(Buffer.from(d6.peers).length).toBe(0);
    expect(compactPeers6(d6.peers6)).toEqual([{ ip: '00000000000000000000000000000001', port: 6301 }]);
    const d4 = decode((await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 6304 }))).body);
    expect(compactPeers(d4.peers)).toEqual(['127.0.0.1:6302']);
    expect(d4.peers6).toBeUndefined();
    expect(d4.complete).toBe(2);
    // non-compact IPv6 entries carry the address as text
    const dn = decode((await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 6305, compact: 0 }), { host: '::1' })).body);
    expect(text(dn.peers[0].ip)).toBe('::1');
  });

  it('keeps another client from taking over a peer_id', async () => {
    const ih = hash();
    const id = peerId();
    await get(port, announcePath({ infoHash: ih, peerId: id, port: 6401, key: 'aaaa1111' }));
    // from another address with another key (or none): refused, nothing changes
    for (const key of ['bbbb2222', undefined]) {
      const r = await get(port, announcePath({ infoHash: ih, peerId: id, port: 6402, key, event: 'stopped' }), { localAddress: '127.0.0.2' });
      expect(failure(r.body)).toMatch(/peer_id is in use/);
    }
    // from another address with the peer's key: the client moved, and keeps its peer
    expect(failure((await get(port, announcePath({ infoHash: ih, peerId: id, port: 6403, key: 'aaaa1111' }), { localAddress: '127.0.0.3' })).body)).toBeUndefined();
    // from the address it announces from, any key will do
    const d = decode((await get(port, announcePath({ infoHash: ih, peerId: id, port: 6403, key: 'cccc3333' }), { localAddress: '127.0.0.3' })).body);
    expect(d.incomplete).toBe(1);
    expect(decode((await get(port, announcePath({ infoHash: ih, peerId: id, port: 6403, event: 'stopped' }), { localAddress: '127.0.0.3' })).body).incomplete).toBe(0);
  });
});

describe('growth', () => {
  it('grows peer and swarm tables past their initial sizes while serving', async () => {
    // INITIAL_PEERS is 4096 and INITIAL_SWARMS 1024 per shard: 12,000 peers in 3,000 swarms
    // forces slab growth and index rebuilds on both shards mid-traffic.
    const swarms = Array.from({ length: 3000 }, () => hash());
    const jobs = Array.from({ length: 12000 }, (_, i) => () =>
      get(port, announcePath({ infoHash: swarms[i % 3000], peerId: peerId(), port: 10000 + (i % 50000), left: i % 4 === 0 ? 0 : 1 })));
    const replies: Array<Record<string, any>> = [];
    for (let i = 0; i < jobs.length; i += 200) replies.push(...(await Promise.all(jobs.slice(i, i + 200).map((j) => j()))).map((r) => decode(r.body)));
    expect(replies.filter((d) => d['failure reason'])).toEqual([]);
    const s = decodeRawKeys((await get(port, `/scrape?${swarms.slice(0, 60).map((h) => `info_hash=${pct(h)}`).join('&')}`)).body) as Map<string, any>;
    for (const f of (s.get(hexKey('files')) as Map<string, Map<string, number>>).values()) {
      expect(f.get(hexKey('complete'))! + f.get(hexKey('incomplete'))!).toBe(4);
    }
  });
});

describe('scrape (BEP 48)', () => {
  it('merges many info_hashes across both shards into one sorted answer', async () => {
    const hashes = [hashForShard(0, 2), hashForShard(1, 2), hashForShard(0, 2), hashForShard(1, 2)];
    for (const [i, ih] of hashes.entries()) {
      for (let s = 0; s <= i; s++) await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 5000 + s, left: 0 }));
      await get(port, announcePath({ infoHash: ih, peerId: peerId(), port: 5100, left: 5 }));
    }
    const unknown = hash();
    const q = [...hashes, unknown, hashes[0]].map((h) => `info_hash=${pct(h)}`).join('&');
    const r = await get(port, `/scrape?${q}`);
    // decodeRawKeys also checks every dictionary's keys are in sorted byte order
    const d = decodeRawKeys(r.body) as Map<string, any>;
    const files = d.get(hexKey('files')) as Map<string, Map<string, number>>;
    expect(files.size).toBe(5);
    for (const [i, ih] of hashes.entries()) {
      const f = files.get(Buffer.from(ih).toString('hex'))!;
      expect([f.get(hexKey('complete')), f.get(hexKey('incomplete')), f.get(hexKey('downloaded'))]).toEqual([i + 1, 1, 0]);
    }
    const u = files.get(Buffer.from(unknown).toString('hex'))!;
    expect([u.get(hexKey('complete')), u.get(hexKey('incomplete')), u.get(hexKey('downloaded'))]).toEqual([0, 0, 0]);
    expect((d.get(hexKey('flags')) as Map<string, number>).get(hexKey('min_request_interval'))).toBe(300);
  });

  it('refuses full scrape by default', async () => {
    expect(failure((await get(port, '/scrape')).body)).toMatch(/full scrape is disabled/);
  });

  it('refuses too many info_hashes', async () => {
    const q = Array.from({ length: 65 }, () => `info_hash=${pct(hash())}`).join('&');
    expect(failure((await get(port, `/scrape?${q}`)).body)).toBe('too many info_hashes in one scrape');
  });
});

describe('bad input', () => {
  const ih = pct(hash());
  const pid = pct(peerId());
  const ok = `info_hash=${ih}&peer_id=${pid}&port=6881&uploaded=0&downloaded=0&left=0`;
  const cases: Array<[string, string]> = [
    ['', 'missing info_hash'],
    [`peer_id=${pid}&port=1&uploaded=0&downloaded=0&left=0`, 'missing info_hash'],
    [ok.replace(ih, '%AnnounceAnswer%BB'), 'info_hash must be 20 bytes'],
    [ok.replace(ih, ih + '%00'), 'info_hash must be 20 bytes'],
    [ok.replace(ih, '%ZZ'), 'info_hash must be 20 bytes'],
    [ok.replace(pid, 'short'), 'peer_id must be 20 bytes'],
    [`info_hash=${ih}&port=1&uploaded=0&downloaded=0&left=0`, 'missing peer_id'],
    [ok.replace('port=6881', 'port=0'), 'port must be an integer from 1 to 65535'],
    [ok.replace('port=6881', 'port=70000'), 'port must be an integer from 1 to 65535'],
    [ok.replace('port=6881', 'port=abc'), 'port must be an integer from 1 to 65535'],
    [ok.replace('port=6881&', ''), 'missing port'],
    [ok.replace('uploaded=0', 'uploaded=-5'), 'uploaded must be a non-negative integer below 2^53'],
    [ok.replace('downloaded=0', 'downloaded=1e9'), 'downloaded must be a non-negative integer below 2^53'],
    [ok.replace('left=0', 'left=99999999999999999999'), 'left must be a non-negative integer below 2^53'],
    [ok.replace('&left=0', ''), 'missing left'],
    [ok + '&event=exploded', 'unknown event (expected started, stopped, completed, paused or none)'],
    [ok + '&numwant=lots', 'numwant must be an integer'],
    [ok + '&compact=2', 'compact must be 0 or 1'],
  ];
  it.each(cases)('announce?%s → %s', async (query, reason) => {
    const r = await get(port, `/announce?${query}`);
    expect(r.status).toBe(200);
    expect(failure(r.body)).toBe(reason);
  });

  it('refuses oversized query strings early and keeps serving', async () => {
    const r = await get(port, `/announce?${ok}&pad=${'x'.repeat(9000)}`);
    expect(failure(r.body)).toBe('request too long');
    const d = decode((await get(port, `/announce?${ok}`)).body);
    expect(d['failure reason']).toBeUndefined();
  });

  it('answers unknown paths with 404', async () => {
    expect((await get(port, '/')).status).toBe(404);
    expect((await get(port, '/a/b/announce')).status).toBe(404);
    expect((await get(port, '/favicon.ico')).status).toBe(404);
  });

  it('survives a flood of garbage and still answers', async () => {
    const junk = ['%', '%%%%', '&&&&', '=&=&=', 'info_hash=' + '%FF'.repeat(500), 'port=' + '9'.repeat(200), 'event', '\u00e9=\u00e9'];
    await Promise.all(Array.from({ length: 400 }, (_, i) => get(port, `/announce?${encodeURI(junk[i % junk.length])}`)));
    const d = decode((await get(port, `/announce?${ok}`)).body);
    expect(d.complete).toBeGreaterThanOrEqual(1);
  });
});

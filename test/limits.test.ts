// Limits end to end: real announces and scrapes over HTTP and UDP, each limit with its
// refusal text, the limiter's memory bound under a flood from many loopback addresses,
// automatic bans with their expiry and the admin API that lists and lifts them, and the
// evidence a refused extra peer leaves (PostgreSQL, a schema of its own).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigOverrides } from '../dist/engine/config.js';
import type { Tracker } from '../dist/engine/tracker.js';
import { announcePath, decode, defaultLimits, failure, freeUdpPort, get, hash, hashForShard, peerId, startTestTracker, until } from './helpers.js';
import { PG_URL, testSchema, type TestSchema } from './support/pg.js';
import { announcePacket, errorText, UdpClient } from './support/udp-client.js';

const running: Tracker[] = [];
const schemas: TestSchema[] = [];
afterEach(async () => {
  for (const t of running.splice(0)) await t.close();
  for (const s of schemas.splice(0)) await s.drop();
});

/** A tracker with the default limits, then `o` on top. */
async function start(o: ConfigOverrides = {}): Promise<Tracker> {
  const d = defaultLimits();
  const t = await startTestTracker({ ...o, limits: { ...d.limits, ...o.limits }, tracker: { ...d.tracker, ...o.tracker } });
  running.push(t);
  return t;
}

const PK = 'limitslimitslimitslimits00000001';
const PK2 = 'limitslimitslimitslimits00000002';

function announce(t: Tracker, p: { ih?: Uint8Array; id?: Uint8Array; event?: string; left?: number; uploaded?: number; downloaded?: number; from?: string; passkey?: string }) {
  const a = { infoHash: p.ih ?? hash(), peerId: p.id ?? peerId(), port: 6881, left: p.left ?? 10, uploaded: p.uploaded ?? 0, downloaded: p.downloaded ?? 0, event: p.event };
  return get(t.httpPort, announcePath(a, p.passkey ? `/${p.passkey}` : ''), { host: '127.0.0.1', localAddress: p.from });
}

describe('limits', () => {
  it('rate-limits an address with a token bucket, says when to retry, and leaves other addresses alone', async () => {
    const t = await start({ limits: { address_rate: 1, address_burst: 5 } });
    for (let i = 0; i < 5; i++) expect(failure((await announce(t, { from: '127.0.0.11' })).body)).toBeUndefined();
    const refused = failure((await announce(t, { from: '127.0.0.11' })).body);
    expect(refused).toMatch(/^too many requests from your address: retry in [1-9]\d* seconds$/);
    // scrapes draw on the same bucket
    expect(failure((await get(t.httpPort, `/scrape?info_hash=${'%00'.repeat(20)}`, { host: '127.0.0.1', localAddress: '127.0.0.11' })).body)).toMatch(/too many requests/);
    expect(failure((await announce(t, { from: '127.0.0.12' })).body)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 1100)); // a token back
    expect(failure((await announce(t, { from: '127.0.0.11' })).body)).toBeUndefined();
  });

  it('slows a client down past its rate without banning it', async () => {
    const t = await start({ limits: { address_rate: 1, address_burst: 2, autoban_failures: 5 } });
    const answers = await Promise.all(Array.from({ length: 30 }, () => announce(t, { from: '127.0.0.13' })));
    expect(answers.map((a) => failure(a.body)).filter((f) => f?.startsWith('too many requests from your address')).length).toBe(28);
    expect(t.limits.autoBans(Date.now())).toEqual([]);
  });

  it('rate-limits a passkey across addresses', async () => {
    const t = await start({ tracker: { private: true }, limits: { passkey_rate: 1, passkey_burst: 3 } });
    t.registry.upsertUser({ id: 7, passkey: PK, canLeech: true });
    t.registry.upsertUser({ id: 8, passkey: PK2, canLeech: true });
    for (let i = 0; i < 3; i++) expect(failure((await announce(t, { passkey: PK, from: `127.0.1.${i + 1}` })).body)).toBeUndefined();
    expect(failure((await announce(t, { passkey: PK, from: '127.0.1.9' })).body)).toMatch(/^too many requests with your passkey: retry in \d+ seconds$/);
    expect(failure((await announce(t, { passkey: PK2, from: '127.0.1.9' })).body)).toBeUndefined();
  });

  it('refuses an announce sooner than min interval with how long to wait, leaves the peer as it was, and lets stopped and a first completed through', async () => {
    const t = await start({ tracker: { interval: 600, min_interval: 300 } });
    const ih = hash();
    const id = peerId();
    expect(failure((await announce(t, { ih, id, event: 'started', left: 100 })).body)).toBeUndefined();
    const soon = failure((await announce(t, { ih, id, left: 50, downloaded: 50 })).body);
    expect(soon).toMatch(/^announced sooner than the min interval allows: wait (29[89]|300) seconds$/);
    // a repeat of what the peer last said (a retry after a lost answer) is answered, once
    expect(decode((await announce(t, { ih, id, left: 100, event: 'started' })).body)).toMatchObject({ incomplete: 1 });
    expect(failure((await announce(t, { ih, id, left: 100 })).body)).toMatch(/min interval/);
    // the peer is still the leecher it was
    const other = decode((await announce(t, { ih, left: 0 })).body);
    expect(other).toMatchObject({ complete: 1, incomplete: 1 });
    expect(failure((await announce(t, { ih, id, left: 0, downloaded: 100, event: 'completed' })).body)).toBeUndefined();
    // a second completed is an announce like any
    expect(failure((await announce(t, { ih, id, left: 0, downloaded: 100, uploaded: 5, event: 'completed' })).body)).toMatch(/min interval/);
    expect(decode((await announce(t, { ih, id, event: 'stopped', left: 0 })).body)['failure reason']).toBeUndefined();
    expect(decode((await announce(t, { ih, left: 0 })).body)).toMatchObject({ complete: 2, incomplete: 0 }); // it left; another seeder joined
  });

  it('caps the peers of one user in one swarm, and leaves a too_many_peers flag', async () => {
    const db = await testSchema();
    schemas.push(db);
    const t = await start({
      tracker: { private: true, max_peers_per_user_torrent: 2 },
      database: { enabled: true, url: PG_URL, schema: db.name, data_dir: mkdtempSync(join(tmpdir(), 'shardtrack-limits-')) },
      persistence: { flush_interval_ms: 50 },
    });
    const [u] = await db.sql`INSERT INTO users (passkey) VALUES (${PK}) RETURNING id`;
    const ih = hash();
    const [tor] = await db.sql`INSERT INTO torrents (info_hash) VALUES (${Buffer.from(ih)}) RETURNING id`;
    await until('the registry', () => t.registry.user(PK) !== undefined && t.registry.torrentId(ih, 0) === Number(tor.id));
    expect(failure((await announce(t, { ih, passkey: PK })).body)).toBeUndefined();
    const second = peerId();
    expect(failure((await announce(t, { ih, id: second, passkey: PK })).body)).toBeUndefined();
    expect(failure((await announce(t, { ih, passkey: PK })).body)).toBe('too many of your clients in this swarm');
    // another swarm is another count; a stop frees a place
    expect(failure((await announce(t, { passkey: PK })).body)).toBeUndefined();
    expect(failure((await announce(t, { ih, id: second, passkey: PK, event: 'stopped' })).body)).toBeUndefined();
    expect(failure((await announce(t, { ih, passkey: PK })).body)).toBeUndefined();
    await until('the flag', async () => (await db.sql`SELECT 1 FROM cheat_flags WHERE kind = 'too_many_peers'`).length === 1);
    const [f] = await db.sql`SELECT user_id, torrent_id, evidence FROM cheat_flags WHERE kind = 'too_many_peers'`;
    expect([Number(f.user_id), Number(f.torrent_id)]).toEqual([Number(u.id), Number(tor.id)]);
    // refused announces are never accounted: no ledger row beyond the admitted peers' baselines
    const [h] = await db.sql`SELECT uploaded, downloaded FROM history WHERE user_id = ${u.id}`;
    expect([Number(h.uploaded), Number(h.downloaded)]).toEqual([0, 0]);
  });

  it('caps the swarms of one address in open mode', async () => {
    const t = await start({ shards: { count: 2 }, limits: { max_swarms_per_address: 4 } }); // ceil(1.5 × 4 / 2) = 3 a shard
    const results: (string | undefined)[] = [];
    for (let i = 0; i < 12; i++) results.push(failure((await announce(t, { ih: hashForShard(i % 2, 2), from: '127.0.2.1' })).body));
    const refused = results.filter((r) => r !== undefined);
    expect(refused.length).toBe(6);
    expect(new Set(refused)).toEqual(new Set(['your address is in too many swarms']));
    expect(failure((await announce(t, { from: '127.0.2.2' })).body)).toBeUndefined();
  });

  it('bans an address that keeps failing, says for how long, lets it expire, and the admin API lists and lifts bans', async () => {
    const db = await testSchema();
    schemas.push(db);
    const t = await start({
      tracker: { private: true },
      limits: { autoban_failures: 5, autoban_window_seconds: 60, autoban_seconds: 2 },
      database: { enabled: true, url: PG_URL, schema: db.name, data_dir: mkdtempSync(join(tmpdir(), 'shardtrack-limits-')) },
    });
    const admin = (method: string, path: string) =>
      fetch(`http://127.0.0.1:${t.admin!.port}/api/v1${path}`, { method, headers: { authorization: `Bearer ${t.admin!.firstToken}` } });
    for (let i = 0; i < 5; i++) expect(failure((await announce(t, { passkey: 'x'.repeat(32), from: '127.0.3.1' })).body)).toBe('unknown passkey');
    const banned = failure((await announce(t, { passkey: 'x'.repeat(32), from: '127.0.3.1' })).body);
    expect(banned).toMatch(/^too many failed requests from your address: temporarily banned: retry in [12] seconds$/);
    expect(failure((await announce(t, { passkey: 'x'.repeat(32), from: '127.0.3.2' })).body)).toBe('unknown passkey'); // others unaffected
    const list = await (await admin('GET', '/auto-bans')).json();
    expect(list.items).toEqual([{ address: '127.0.3.1', until: expect.any(String) }]);
    // expiry
    await new Promise((r) => setTimeout(r, 2100));
    expect(failure((await announce(t, { passkey: 'x'.repeat(32), from: '127.0.3.1' })).body)).toBe('unknown passkey');
    // banned again, lifted through the API
    for (let i = 0; i < 5; i++) await announce(t, { passkey: 'x'.repeat(32), from: '127.0.3.1' });
    expect((await (await admin('GET', '/auto-bans')).json()).total).toBe(1);
    expect((await admin('DELETE', '/auto-bans/127.0.3.1')).status).toBe(204);
    expect((await admin('DELETE', '/auto-bans/127.0.3.1')).status).toBe(404);
    expect((await admin('DELETE', '/auto-bans/nonsense')).status).toBe(400);
    expect(failure((await announce(t, { passkey: 'x'.repeat(32), from: '127.0.3.1' })).body)).toBe('unknown passkey');
    const metrics = await (await fetch(`http://127.0.0.1:${t.admin!.port}/metrics`)).text();
    expect(metrics).toMatch(/shardtrack_auto_bans_total 2/);
  });

  it('applies the limits to UDP past the connection id, with the same texts', async () => {
    const t = await start({ udp: { host: '127.0.0.1', port: await freeUdpPort() }, limits: { address_rate: 1, address_burst: 2 } });
    const c = new UdpClient('127.0.0.1', t.udpPort, '127.0.0.21');
    await c.open();
    try {
      const send = async () => c.request(announcePacket({ conn: await c.connect(), infoHash: hash(), peerId: peerId(), port: 7000 }));
      expect((await send()).readUInt32BE(0)).toBe(1);
      expect((await send()).readUInt32BE(0)).toBe(1);
      expect(errorText(await send())).toMatch(/^too many requests from your address: retry in \d+ seconds$/);
    } finally {
      c.close();
    }
  });

  it('keeps the limiter\'s memory fixed under a flood from many addresses', async () => {
    const t = await start({ limits: { table_entries: 1024 } });
    const view = () => t.limits.tables[0];
    const before = view();
    expect(before).toMatchObject({ capacity: 1024, entries: 0 });
    // 3,000 distinct loopback sources, 50 at a time
    for (let i = 0; i < 3000; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, k) => announce(t, { from: `127.1.${(i + k) >> 8}.${(i + k) & 0xff}` })));
    }
    const after = view();
    expect(after.capacity).toBe(1024);
    expect(after.bytes).toBe(before.bytes);
    expect(after.entries).toBeLessThanOrEqual(1024);
    expect(after.entries).toBeGreaterThan(900);
    expect(after.evictions).toBeGreaterThanOrEqual(3000 - 1024);
  });
});

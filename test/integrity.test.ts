// Integrity end to end: real announces over HTTP and UDP to a private tracker on the real
// PostgreSQL (a schema of its own), each claim credited only up to its bound, and each cut
// flagged with its evidence, readable and resolvable through the admin API.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tracker } from '../dist/engine/tracker.js';
import { announcePath, decode, freeUdpPort, get, hash, peerId, startTestTracker, until } from './helpers.js';
import { PG_URL, testSchema, type TestSchema } from './support/pg.js';
import { announcePacket, parseAnnounce, UdpClient } from './support/udp-client.js';

const RATE = 1000; // accounting.max_upload_rate in these tests: bytes a second

let db: TestSchema;
let t: Tracker;
let token: string;

beforeAll(async () => {
  db = await testSchema();
  t = await startTestTracker({
    tracker: { private: true },
    udp: { host: '127.0.0.1', port: await freeUdpPort() },
    accounting: { max_upload_rate: RATE },
    database: { enabled: true, url: PG_URL, schema: db.name, data_dir: mkdtempSync(join(tmpdir(), 'shardtrack-integrity-')) },
    persistence: { flush_interval_ms: 50 },
  });
  token = t.admin!.firstToken!;
}, 30_000);
afterAll(async () => {
  await t?.close();
  await db?.drop();
});

const second = () => new Promise((r) => setTimeout(r, 1100));

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${t.admin!.port}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** A user and a registered torrent (of `size` bytes), loaded by the running tracker. */
async function setUp(size = 0) {
  const { body: u } = await api('POST', '/users', {});
  const ih = hash();
  const { body: tor } = await api('POST', '/torrents', { info_hash: Buffer.from(ih).toString('hex'), size });
  return { user: u as { id: number; passkey: string }, torrent: tor as { id: number }, ih };
}

interface Claim {
  uploaded?: number;
  downloaded?: number;
  left?: number;
  event?: string;
}

/** An HTTP client of one peer_id: announces its claims and fails the test on a failure reason. */
function client(passkey: string, ih: Uint8Array) {
  const id = peerId();
  return async (c: Claim) => {
    const r = await get(t.httpPort, announcePath({ infoHash: ih, peerId: id, port: 6881, uploaded: c.uploaded ?? 0, downloaded: c.downloaded ?? 0, left: c.left ?? 0, event: c.event }, `/${passkey}`));
    const d = decode(r.body);
    expect(d['failure reason']).toBeUndefined();
    return d;
  };
}

async function history(user: number, torrent: number) {
  const [h] = await db.sql`SELECT uploaded, downloaded, uploaded_credited, downloaded_credited FROM history WHERE user_id = ${user} AND torrent_id = ${torrent}`;
  return h === undefined ? undefined : { uploaded: Number(h.uploaded), downloaded: Number(h.downloaded), uploadedCredited: Number(h.uploaded_credited), downloadedCredited: Number(h.downloaded_credited) };
}

async function flags(user: number, kind?: string) {
  await until(`user ${user}'s ${kind ?? 'any'} flag`, async () => (await api('GET', `/flags?user_id=${user}${kind ? `&kind=${kind}` : ''}`)).body.total > 0);
  return (await api('GET', `/flags?user_id=${user}${kind ? `&kind=${kind}` : ''}`)).body.items as Array<{ id: number; kind: string; peer_id_hex: string | null; torrent_id: number; evidence: Record<string, number>; resolved_at: string | null }>;
}

/** A leecher of another user in the swarm, so that upload has someone to go to. */
async function leecherIn(ih: Uint8Array): Promise<void> {
  const { body: other } = await api('POST', '/users', {});
  await until('the new user to reach the tracker', () => t.registry.user(other.passkey) !== undefined);
  await client(other.passkey, ih)({ left: 1000, event: 'started' });
}

async function ready(s: Awaited<ReturnType<typeof setUp>>) {
  await until('the registry to hold the user and torrent', () => t.registry.user(s.user.passkey) !== undefined && t.registry.registeredTorrents > 0 && t.registry.torrentId(s.ih, 0) === s.torrent.id);
  return s;
}

describe('integrity', () => {
  it('credits upload up to max_upload_rate × seconds since the previous announce and flags the rest (HTTP)', async () => {
    const s = await ready(await setUp());
    await leecherIn(s.ih);
    const seed = client(s.user.passkey, s.ih);
    await seed({ event: 'started' });
    await second();
    await seed({ uploaded: 1e12 });
    const [f] = await flags(s.user.id, 'upload_over_rate');
    expect(f).toMatchObject({ torrent_id: s.torrent.id, resolved_at: null });
    expect(f.evidence.uploaded).toBe(1e12);
    expect(f.evidence.seconds).toBeGreaterThanOrEqual(1);
    expect(f.evidence.uploaded_credited).toBe(RATE * f.evidence.seconds);
    expect(f.evidence.total_uploaded).toBe(1e12);
    expect(f.evidence.ip).toMatch(/^(127\.0\.0\.1|0:0:0:0:0:0:0:1)$/);
    const h = await history(s.user.id, s.torrent.id);
    expect(h).toEqual({ uploaded: 1e12, downloaded: 0, uploadedCredited: RATE * f.evidence.seconds, downloadedCredited: 0 });
  });

  it('credits no upload in a swarm that had no leecher of another user, and flags it', async () => {
    const s = await ready(await setUp());
    const seed = client(s.user.passkey, s.ih);
    await seed({ event: 'started' });
    // the user's own leecher does not count
    await client(s.user.passkey, s.ih)({ left: 500, event: 'started' });
    await second();
    await seed({ uploaded: 700 });
    const [f] = await flags(s.user.id, 'upload_no_leechers');
    expect(f.evidence).toMatchObject({ uploaded: 700, uploaded_credited: 0 });
    expect(await history(s.user.id, s.torrent.id)).toMatchObject({ uploaded: 700, uploadedCredited: 0 });
  });

  it('credits upload to a leecher that left since the previous announce, within the bound, without a flag', async () => {
    const s = await ready(await setUp());
    const { body: other } = await api('POST', '/users', {});
    await until('the new user to reach the tracker', () => t.registry.user(other.passkey) !== undefined);
    const leech = client(other.passkey, s.ih);
    await leech({ left: 1000, event: 'started' });
    const seed = client(s.user.passkey, s.ih);
    await seed({ event: 'started' });
    await leech({ left: 1000, downloaded: 0, event: 'stopped' });
    await second();
    await seed({ uploaded: 900 });
    await until('the upload in the ledger', async () => (await history(s.user.id, s.torrent.id))?.uploadedCredited === 900);
    expect((await api('GET', `/flags?user_id=${s.user.id}`)).body.total).toBe(0);
  });

  it('does not multiply the allowance through started/stopped pairs of new peer_ids', async () => {
    const s = await ready(await setUp());
    await leecherIn(s.ih);
    const t0 = Date.now();
    for (let i = 0; i < 10; i++) {
      const c = client(s.user.passkey, s.ih);
      await c({ event: 'started' });
      await c({ uploaded: 1e9, event: 'stopped' });
    }
    const seconds = Math.ceil((Date.now() - t0) / 1000) + 1;
    await until('the raw claims in the ledger', async () => (await history(s.user.id, s.torrent.id))?.uploaded === 1e10);
    // at most what the seconds that passed allow, whatever the number of pairs
    expect((await history(s.user.id, s.torrent.id))!.uploadedCredited).toBeLessThanOrEqual(RATE * seconds);
  });

  it('credits upload when a lower downloaded comes from failed pieces, without a flag', async () => {
    const s = await ready(await setUp());
    await leecherIn(s.ih);
    const leech = client(s.user.passkey, s.ih);
    await leech({ left: 5000, downloaded: 0, event: 'started' });
    await second();
    await leech({ left: 4000, downloaded: 1000, uploaded: 100 });
    await second();
    await leech({ left: 4000, downloaded: 900, uploaded: 300 }); // libtorrent: a piece failed its hash check
    await until('the upload in the ledger', async () => (await history(s.user.id, s.torrent.id))?.uploadedCredited === 300);
    expect((await history(s.user.id, s.torrent.id))!.downloaded).toBe(1000);
    expect((await api('GET', `/flags?user_id=${s.user.id}`)).body.total).toBe(0);
  });

  it('remembers another user\'s leecher that left before the user\'s own leecher did', async () => {
    const s = await ready(await setUp());
    const { body: other } = await api('POST', '/users', {});
    await until('the new user to reach the tracker', () => t.registry.user(other.passkey) !== undefined);
    const seedbox = client(s.user.passkey, s.ih);
    await seedbox({ event: 'started' });
    const theirs = client(other.passkey, s.ih);
    await theirs({ left: 100, event: 'started' });
    const home = client(s.user.passkey, s.ih);
    await home({ left: 100, event: 'started' });
    await second();
    await theirs({ left: 0, downloaded: 100, event: 'completed' });
    await home({ left: 0, downloaded: 100, event: 'completed' });
    await second();
    await seedbox({ uploaded: 100 });
    await until('the upload in the ledger', async () => (await history(s.user.id, s.torrent.id))?.uploadedCredited === 100);
    expect((await api('GET', `/flags?user_id=${s.user.id}&kind=upload_no_leechers`)).body.total).toBe(0);
  });

  it('flags counters that go backwards without started, credits nothing for them, and never flags a restart', async () => {
    const s = await ready(await setUp());
    await leecherIn(s.ih);
    const seed = client(s.user.passkey, s.ih);
    await seed({ event: 'started' });
    await second();
    await seed({ uploaded: 800 });
    await second();
    await seed({ uploaded: 100 }); // backwards, no started: flagged, a new baseline
    await second();
    await seed({ uploaded: 300 }); // +200 from the new baseline
    await second();
    await seed({ uploaded: 0, event: 'started' }); // a client restart: baseline, no flag
    await second();
    await seed({ uploaded: 50 });
    const fs = await flags(s.user.id);
    expect(fs.map((f) => f.kind)).toEqual(['counters_backwards']);
    expect(fs[0].evidence).toMatchObject({ total_uploaded: 100, uploaded: 0, uploaded_credited: 0 });
    await until('the ledger', async () => (await history(s.user.id, s.torrent.id))?.uploadedCredited === 800 + 200 + 50);
  });

  it('credits download up to the torrent\'s size per session, flags the rest, and flags a lifetime download past twice the size', async () => {
    const s = await ready(await setUp(1000));
    const leech = client(s.user.passkey, s.ih);
    await leech({ left: 1000, event: 'started' });
    await second();
    await leech({ downloaded: 600, left: 400 });
    await second();
    await leech({ downloaded: 2500, left: 0, event: 'completed' }); // 1,900 more claimed, 400 left of the size
    const [f] = await flags(s.user.id, 'download_over_size');
    expect(f.evidence).toMatchObject({ downloaded: 1900, downloaded_credited: 400, total_downloaded: 2500 });
    const [twice] = await flags(s.user.id, 'download_over_twice_size');
    expect(twice.evidence).toMatchObject({ downloaded: 2500, size: 1000 });
    expect(twice.peer_id_hex).toBeNull();
    expect(await history(s.user.id, s.torrent.id)).toMatchObject({ downloaded: 2500, downloadedCredited: 1000 });
    // a snatch: the tracker saw this peer leech
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM snatches WHERE user_id = ${s.user.id}`;
    expect(n).toBe(1);
  });

  it('counts no snatch for a completed without a download', async () => {
    const s = await ready(await setUp());
    const seed = client(s.user.passkey, s.ih);
    await seed({ event: 'started' });
    await second();
    const d = await seed({ event: 'completed' });
    expect(d.downloaded ?? 0).toBe(0);
    await second();
    await seed({});
    await until('the announces in the ledger', async () => (await history(s.user.id, s.torrent.id)) !== undefined);
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM snatches WHERE user_id = ${s.user.id}`;
    expect(n).toBe(0);
  });

  it('bounds UDP announces the same way', async () => {
    const s = await ready(await setUp());
    await leecherIn(s.ih);
    const c = new UdpClient('127.0.0.1', t.udpPort!);
    await c.open();
    try {
      const id = peerId();
      const send = async (uploaded: number, event = 0) => {
        const conn = await c.connect();
        // BEP 41: the passkey path travels as URL data
        const path = Buffer.from(`/${s.user.passkey}/announce`);
        const options = Buffer.concat([Buffer.from([2, path.length]), path, Buffer.from([0])]);
        return parseAnnounce(await c.request(announcePacket({ conn, infoHash: s.ih, peerId: id, port: 7000, left: 0, uploaded, event, options })));
      };
      await send(0, 2);
      await second();
      await send(5e9);
      const [f] = await flags(s.user.id, 'upload_over_rate');
      expect(f.peer_id_hex).toBe(Buffer.from(id).toString('hex'));
      expect(f.evidence.uploaded).toBe(5e9);
      expect(f.evidence.uploaded_credited).toBe(RATE * f.evidence.seconds);
    } finally {
      c.close();
    }
  });

  it('lists, filters, shows and resolves flags through the admin API, and counts them in /metrics', async () => {
    const s = await ready(await setUp());
    const seed = client(s.user.passkey, s.ih);
    await seed({ event: 'started' });
    await second();
    await seed({ uploaded: 10 });
    const [f] = await flags(s.user.id, 'upload_no_leechers');
    expect((await api('GET', `/flags/${f.id}`)).body).toMatchObject({ id: f.id, kind: 'upload_no_leechers', user_id: s.user.id });
    expect((await api('GET', '/flags/999999999')).status).toBe(404);
    expect((await api('GET', '/flags?kind=nonsense')).status).toBe(400);
    const open = (await api('GET', '/flags?unresolved=true&per_page=500')).body.items.map((x: { id: number }) => x.id);
    expect(open).toContain(f.id);
    const since = new Date(Date.now() + 60_000).toISOString();
    expect((await api('GET', `/flags?since=${since}`)).body.total).toBe(0);
    const done = await api('POST', `/flags/${f.id}/resolve`, { resolved_by: 'mod-ana', resolution: 'seedbox misreport' });
    expect(done.body).toMatchObject({ resolved_by: 'mod-ana', resolution: 'seedbox misreport', resolved_at: expect.any(String) });
    expect((await api('POST', `/flags/${f.id}/resolve`, { resolved_by: 'mod-bo' })).status).toBe(409);
    expect((await api('POST', `/flags/${f.id}/resolve`, {})).status).toBe(400);
    expect((await api('GET', '/flags?unresolved=true&per_page=500')).body.items.map((x: { id: number }) => x.id)).not.toContain(f.id);
    const metrics = await (await fetch(`http://127.0.0.1:${t.admin!.port}/metrics`)).text();
    expect(metrics).toMatch(/shardtrack_cheats_total\{kind="upload_no_leechers"\} [1-9]/);
    expect(metrics).toMatch(/shardtrack_cheats_total\{kind="download_over_twice_size"\} \d/);
  });

  it('saturates totals instead of refusing rows, and keeps huge claims out of the dead letters', async () => {
    const s = await ready(await setUp());
    await db.sql`INSERT INTO history (user_id, torrent_id, uploaded, first_announce, last_announce) VALUES (${s.user.id}, ${s.torrent.id}, 9223372036854775000, now(), now())`;
    await leecherIn(s.ih);
    const seed = client(s.user.passkey, s.ih);
    await seed({ event: 'started' });
    await second();
    await seed({ uploaded: 2 ** 52 });
    await until('the saturated total', async () => {
      const [h] = await db.sql`SELECT uploaded::text AS u FROM history WHERE user_id = ${s.user.id} AND torrent_id = ${s.torrent.id}`;
      return h.u === '9223372036854775807';
    });
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM dead_letters`;
    expect(n).toBe(0);
  });
});


// The admin API through real HTTP against a real tracker on the real database (a schema of
// its own): authentication, validation, pagination, every resource, and the effect of a
// change on the very next announce.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tracker } from '../dist/engine/tracker.js';
import { announcePath, decode, failure, get, hash, peerId, startTestTracker, until } from './helpers.js';
import { PG_URL, testSchema, type TestSchema } from './support/pg.js';

let db: TestSchema;
let t: Tracker;
let token: string;
let base: string;

beforeAll(async () => {
  db = await testSchema();
  t = await startTestTracker({
    tracker: { private: true, require_registered_torrents: true },
    database: { enabled: true, url: PG_URL, schema: db.name, data_dir: mkdtempSync(join(tmpdir(), 'shardtrack-admin-')) },
  });
  token = t.admin!.firstToken!;
  base = `http://127.0.0.1:${t.admin!.port}`;
}, 30_000);
afterAll(async () => {
  await t?.close();
  await db?.drop();
});

async function call(method: string, path: string, body?: unknown, auth: string | null = token) {
  const res = await fetch(base + path, {
    method,
    headers: { ...(auth ? { authorization: `Bearer ${auth}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const announce = (passkey: string, infoHash: Uint8Array, left = 100) =>
  get(t.httpPort, announcePath({ infoHash, peerId: peerId(), port: 6881, left }, `/${passkey}`));

describe('admin API', () => {
  it('made a first token on the first start, and refuses requests without a live one', async () => {
    expect(token).toMatch(/^st_[A-Za-z0-9_-]{32}$/);
    expect(await call('GET', '/api/v1/users', undefined, null)).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
    expect(await call('GET', '/api/v1/users', undefined, 'st_nope')).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
    const made = await call('POST', '/api/v1/tokens', { name: 'ci' });
    expect(made.status).toBe(201);
    expect((await call('GET', '/api/v1/tokens', undefined, made.body.token)).status).toBe(200);
    expect((await call('DELETE', `/api/v1/tokens/${made.body.id}`)).status).toBe(204);
    expect((await call('GET', '/api/v1/tokens', undefined, made.body.token)).status).toBe(401); // revoked at once
    const [{ sha }] = await db.sql`SELECT encode(token_sha256, 'hex') AS sha FROM admin_tokens WHERE id = ${made.body.id}`;
    expect(sha).not.toContain(Buffer.from(made.body.token).toString('hex')); // only the hash is stored
  });

  it('validates parameters, queries and bodies with clear errors', async () => {
    expect(await call('GET', '/api/v1/users/abc')).toMatchObject({ status: 400, body: { error: 'invalid_params', message: expect.stringMatching(/^id: /) } });
    expect(await call('GET', '/api/v1/users?per_page=5000')).toMatchObject({ status: 400, body: { error: 'invalid_query', message: expect.stringMatching(/per_page/) } });
    expect(await call('POST', '/api/v1/users', '{not json')).toMatchObject({ status: 400, body: { error: 'invalid_body' } });
    expect(await call('POST', '/api/v1/users', { passkey: 'short' })).toMatchObject({ status: 400, body: { error: 'invalid_body', message: expect.stringMatching(/passkey/) } });
    expect(await call('POST', '/api/v1/users', { nope: 1 })).toMatchObject({ status: 400, body: { error: 'invalid_body' } });
    expect(await call('GET', '/api/v1/users/999999')).toMatchObject({ status: 404, body: { error: 'not_found' } });
    const k = 'a'.repeat(32);
    expect((await call('POST', '/api/v1/users', { passkey: k })).status).toBe(201);
    expect(await call('POST', '/api/v1/users', { passkey: k })).toMatchObject({ status: 409, body: { error: 'conflict' } });
  });

  it('manages users; passkey resets, leeching rights and deletion apply to the next announce', async () => {
    const ih = hash();
    expect((await call('POST', '/api/v1/torrents', { info_hash: Buffer.from(ih).toString('hex') })).status).toBe(201);
    const { body: u } = await call('POST', '/api/v1/users', { class: 'power' });
    expect(u).toMatchObject({ class: 'power', can_leech: true, enabled: true, uploaded: 0 });
    expect(failure((await announce(u.passkey, ih)).body)).toBeUndefined();

    expect((await call('PATCH', `/api/v1/users/${u.id}`, { can_leech: false })).body.can_leech).toBe(false);
    expect(failure((await announce(u.passkey, ih)).body)).toBe('your leeching privileges are disabled');
    expect(failure((await announce(u.passkey, ih, 0)).body)).toBeUndefined(); // seeding still works
    await call('PATCH', `/api/v1/users/${u.id}`, { can_leech: true });

    const { body: reset } = await call('POST', `/api/v1/users/${u.id}/passkey`, { grace_seconds: 3600 });
    expect(reset.passkey).not.toBe(u.passkey);
    expect(reset.old_passkey).toBe(u.passkey);
    expect(failure((await announce(reset.passkey, ih)).body)).toBeUndefined();
    expect(failure((await announce(u.passkey, ih)).body)).toBeUndefined(); // within its grace window
    // a passkey in its grace window belongs to its user: nobody else may take it
    expect(await call('POST', '/api/v1/users', { passkey: u.passkey })).toMatchObject({ status: 409, body: { error: 'conflict' } });
    const { body: hard } = await call('POST', `/api/v1/users/${u.id}/passkey`, {});
    expect(failure((await announce(reset.passkey, ih)).body)).toBe('unknown passkey'); // no grace: gone at once
    expect(failure((await announce(hard.passkey, ih)).body)).toBeUndefined();

    const { body: credited } = await call('POST', `/api/v1/users/${u.id}/credit`, { uploaded: 5_000_000, bonus: 1.5 });
    expect(credited).toMatchObject({ uploaded_credited: 5_000_000, bonus: 1.5, uploaded: 0 });

    expect((await call('DELETE', `/api/v1/users/${u.id}`)).status).toBe(204);
    expect(failure((await announce(hard.passkey, ih)).body)).toBe('unknown passkey');
    expect((await call('GET', `/api/v1/users/${u.id}`)).status).toBe(404);
  });

  it('lists with pagination and filters', async () => {
    for (let i = 0; i < 7; i++) await call('POST', '/api/v1/users', { class: 'pager' });
    const p1 = await call('GET', '/api/v1/users?class=pager&per_page=3&page=1');
    const p3 = await call('GET', '/api/v1/users?class=pager&per_page=3&page=3');
    expect(p1.body).toMatchObject({ page: 1, per_page: 3, total: 7 });
    expect(p1.body.items).toHaveLength(3);
    expect(p3.body.items).toHaveLength(1);
    const ids = [...p1.body.items, ...(await call('GET', '/api/v1/users?class=pager&per_page=3&page=2')).body.items, ...p3.body.items].map((u: { id: number }) => u.id);
    expect(new Set(ids).size).toBe(7);
    expect((await call('GET', '/api/v1/users?class=pager&page=4&per_page=3')).body).toMatchObject({ items: [], total: 7 });
  });

  it('registers, changes and deletes torrents; announces follow at once', async () => {
    const { body: u } = await call('POST', '/api/v1/users', {});
    const ih = hash();
    const hex = Buffer.from(ih).toString('hex');
    expect(failure((await announce(u.passkey, ih)).body)).toBe('torrent not registered with this tracker');
    const { status, body: tor } = await call('POST', '/api/v1/torrents', { info_hash: hex, name: 'x', size: 1000, download_multiplier: 0 });
    expect(status).toBe(201);
    expect(tor).toMatchObject({ info_hash: hex, download_multiplier: 0, upload_multiplier: 1 });
    expect(failure((await announce(u.passkey, ih)).body)).toBeUndefined();
    expect((await call('GET', `/api/v1/torrents?info_hash=${hex}`)).body.items.map((x: { id: number }) => x.id)).toEqual([tor.id]);
    expect((await call('GET', '/api/v1/torrents?freeleech=true')).body.items.map((x: { id: number }) => x.id)).toContain(tor.id);
    expect((await call('PATCH', `/api/v1/torrents/${tor.id}`, { download_multiplier: 1, upload_multiplier: 2 })).body).toMatchObject({ download_multiplier: 1, upload_multiplier: 2 });
    expect(await call('POST', '/api/v1/torrents', { info_hash: hex })).toMatchObject({ status: 409 });
    expect(await call('POST', '/api/v1/torrents', { info_hash: Buffer.from(hash()).toString('hex'), info_hash_v2: hex })).toMatchObject({ status: 409 });
    expect(await call('POST', '/api/v1/torrents', { info_hash: 'zz' })).toMatchObject({ status: 400, body: { error: 'invalid_body' } });
    expect(await call('DELETE', `/api/v1/torrents/${tor.id}`, {})).toMatchObject({ status: 400 }); // a reason is required
    const del = await call('DELETE', `/api/v1/torrents/${tor.id}`, { reason: 'dupe of 12' });
    expect(del.body).toMatchObject({ deleted_reason: 'dupe of 12' });
    expect(failure((await announce(u.passkey, ih)).body)).toBe('torrent deleted from this tracker: dupe of 12');
    expect((await call('GET', '/api/v1/torrents?deleted=true')).body.items.map((x: { id: number }) => x.id)).toContain(tor.id);
  });

  it('bans networks and keeps a client allow-list, effective on the next announce', async () => {
    const { body: u } = await call('POST', '/api/v1/users', {});
    const ih = hash();
    await call('POST', '/api/v1/torrents', { info_hash: Buffer.from(ih).toString('hex') });
    expect(await call('POST', '/api/v1/bans', { network: 'not an ip', reason: 'x' })).toMatchObject({ status: 400 });
    const { body: ban } = await call('POST', '/api/v1/bans', { network: '127.0.0.0/8', reason: 'test' });
    expect(ban).toMatchObject({ network: '127.0.0.0/8', reason: 'test', expires_at: null });
    expect(failure((await announce(u.passkey, ih)).body)).toBe('your IP address is banned from this tracker');
    expect((await call('GET', '/api/v1/bans?active=true')).body.total).toBe(1);
    expect((await call('DELETE', `/api/v1/bans/${ban.id}`)).status).toBe(204);
    expect(failure((await announce(u.passkey, ih)).body)).toBeUndefined();

    const { body: c } = await call('POST', '/api/v1/clients', { peer_id_prefix: '-TR30', name: 'Transmission 3' });
    expect(c).toMatchObject({ peer_id_prefix_hex: Buffer.from('-TR30').toString('hex') });
    expect(failure((await announce(u.passkey, ih)).body)).toMatch(/client is not allowed/); // helpers send -qB4630-
    await call('POST', '/api/v1/clients', { peer_id_prefix_hex: Buffer.from('-qB').toString('hex'), name: 'qBittorrent' });
    expect(failure((await announce(u.passkey, ih)).body)).toBeUndefined();
    expect(await call('POST', '/api/v1/clients', { name: 'neither' })).toMatchObject({ status: 400 });
    for (const x of (await call('GET', '/api/v1/clients')).body.items) await call('DELETE', `/api/v1/clients/${x.id}`);
  });

  it('shows the ledger per user and torrent, and tracker stats', async () => {
    const { body: u } = await call('POST', '/api/v1/users', {});
    const ih = hash();
    const { body: tor } = await call('POST', '/api/v1/torrents', { info_hash: Buffer.from(ih).toString('hex') });
    const id = peerId();
    // a leecher completing a second later (the tracker credits nothing within one second)
    for (const [up, left, event] of [[0, 100, 'started'], [4096, 0, 'completed']] as const) {
      if (event === 'completed') await new Promise((r) => setTimeout(r, 1100));
      const r = await get(t.httpPort, announcePath({ infoHash: ih, peerId: id, port: 7000, uploaded: up, downloaded: 100 - left, left, event }, `/${u.passkey}`));
      expect(decode(r.body)['failure reason']).toBeUndefined();
    }
    let h = await call('GET', `/api/v1/users/${u.id}/history`);
    await until('the ledger to have the upload', async () => (h = await call('GET', `/api/v1/users/${u.id}/history`)).body.items[0]?.uploaded === 4096);
    expect(h.body.items).toEqual([expect.objectContaining({ user_id: u.id, torrent_id: tor.id, uploaded: 4096, completed_at: expect.any(String) })]);
    expect((await call('GET', `/api/v1/torrents/${tor.id}/history`)).body.total).toBe(1);
    expect((await call('GET', '/api/v1/users/999999/history')).status).toBe(404);
    expect((await call('GET', `/api/v1/torrents/${tor.id}/snatches`)).body.items).toEqual([expect.objectContaining({ user_id: u.id })]);
    expect((await call('GET', `/api/v1/torrents/${tor.id}`)).body).toMatchObject({ id: tor.id, snatches: 1 });
    expect((await call('GET', `/api/v1/users/${u.id}/snatches`)).body.items).toEqual([expect.objectContaining({ torrent_id: tor.id })]);
    const { body: stats } = await call('GET', '/api/v1/stats');
    expect(stats).toMatchObject({ shards: 2, persistence: { database_up: true } });
    expect(stats.peers.seeders + stats.peers.leechers).toBeGreaterThan(0);
  });

  it('shows a live swarm from the shards\' memory', async () => {
    const { body: u } = await call('POST', '/api/v1/users', {});
    const ih = hash();
    const hex = Buffer.from(ih).toString('hex');
    await call('POST', '/api/v1/torrents', { info_hash: hex });
    const seeder = peerId();
    await get(t.httpPort, announcePath({ infoHash: ih, peerId: seeder, port: 7001, uploaded: 10, left: 0 }, `/${u.passkey}`));
    await get(t.httpPort, announcePath({ infoHash: ih, peerId: peerId(), port: 7002, left: 500 }, `/${u.passkey}`));
    const { status, body } = await call('GET', `/api/v1/swarms/${hex}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ info_hash: hex, seeders: 1, leechers: 1 });
    expect(body.peers).toEqual([
      expect.objectContaining({ peer_id: Buffer.from(seeder).toString('hex'), client: '-qB4630-', ip: '127.0.0.1', port: 7001, seeder: true, user_id: u.id, uploaded: 10, left: 0 }),
      expect.objectContaining({ ip: '127.0.0.1', port: 7002, seeder: false, left: 500 }),
    ]);
    expect((await call('GET', `/api/v1/swarms/${hex}?limit=1`)).body.peers).toHaveLength(1);
    expect((await call('GET', `/api/v1/swarms/${'0'.repeat(40)}`)).status).toBe(404);
    expect((await call('GET', '/api/v1/swarms/xyz')).status).toBe(400);
  });

  it('publishes a valid OpenAPI 3.1 document describing every route', async () => {
    const res = await fetch(`${base}/api/v1/openapi.json`);
    expect(res.status).toBe(200);
    const doc = await res.json();
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    for (const r of t.admin!.api.routes) {
      expect(doc.paths[`/api/v1${r.path.replace(/:(\w+)/g, '{$1}')}`]?.[r.method], `${r.method} ${r.path}`).toBeDefined();
    }
  });

  it('answers /health and /ready', async () => {
    expect(await (await fetch(`${base}/health`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', problems: [], degraded: [] });
  });
});

describe('admin routes on the tracker port, without a database', () => {
  it('serve /health and /ready beside announces; the API needs the database', async () => {
    const t2 = await startTestTracker({ admin: { on_tracker_port: true } });
    try {
      expect(t2.admin!.port).toBe(0);
      const h = await fetch(`http://127.0.0.1:${t2.httpPort}/health`);
      expect(await h.json()).toEqual({ status: 'ok' });
      expect((await fetch(`http://127.0.0.1:${t2.httpPort}/ready`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${t2.httpPort}/api/v1/users`)).status).toBe(404);
      // no metrics token: /metrics stays off the public port
      expect((await fetch(`http://127.0.0.1:${t2.httpPort}/metrics`)).status).toBe(404);
      expect(decode((await get(t2.httpPort, announcePath({ infoHash: hash(), peerId: peerId(), port: 1 }))).body).incomplete).toBe(1);
      // a shard that is down makes the tracker not ready
      await t2.pool.killShard(0);
      // (its replacement is being spawned: a new thread takes tens of ms to reach its loop)
      const r = await fetch(`http://127.0.0.1:${t2.httpPort}/ready`);
      expect(r.status).toBe(503);
      expect((await r.json()).problems).toEqual([expect.stringMatching(/^shard 0 is (not running|starting \(recovering its tables\))$/)]);
      await t2.pool.shardUp(0);
      expect((await fetch(`http://127.0.0.1:${t2.httpPort}/ready`)).status).toBe(200);
    } finally {
      await t2.close();
    }
  });
});

describe('metrics on the tracker port', () => {
  it('need the metrics token there', async () => {
    const t3 = await startTestTracker({ admin: { on_tracker_port: true, metrics_token: 'scrape-secret' } });
    try {
      const url = `http://127.0.0.1:${t3.httpPort}/metrics`;
      const none = await fetch(url);
      expect(none.status).toBe(401);
      expect((await none.json()).error).toBe('unauthorized');
      expect((await fetch(url, { headers: { authorization: 'Bearer scrape-secreT' } })).status).toBe(401);
      const ok = await fetch(url, { headers: { authorization: 'Bearer scrape-secret' } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toMatch(/^# HELP shardtrack_/m);
    } finally {
      await t3.close();
    }
  });
});

describe('metrics on the admin listener', () => {
  it('serve the Prometheus exposition without a token', async () => {
    const t3 = await startTestTracker({});
    try {
      await get(t3.httpPort, announcePath({ infoHash: hash(), peerId: peerId(), port: 1 }));
      const r = await fetch(`http://127.0.0.1:${t3.admin!.port}/metrics`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/text\/plain/);
      expect(await r.text()).toMatch(/^shardtrack_announces_total\{protocol="http",event="none",outcome="ok"\} 1$/m);
    } finally {
      await t3.close();
    }
  });
});

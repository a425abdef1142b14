import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { prng } from '../test/support/prng.js';
import { testSchema, type TestSchema } from '../test/support/pg.js';
import { aggregate, flushBatch, type AccountingRecord } from './ledger.js';
import { migrate } from './migrate.js';

let db: TestSchema;
beforeEach(async () => {
  db = await testSchema();
  await migrate(db.sql);
  for (let u = 1; u <= 20; u++) await db.sql`INSERT INTO users (id, passkey) VALUES (${u}, ${'k'.repeat(31) + String.fromCharCode(96 + u)})`;
  for (let t = 1; t <= 30; t++) await db.sql`INSERT INTO torrents (id, info_hash) VALUES (${t}, ${Buffer.alloc(20, t)})`;
});
afterEach(async () => {
  await db?.drop();
});

function record(rnd: () => number, over: Partial<AccountingRecord> = {}): AccountingRecord {
  const up = Math.floor(rnd() * 2 ** 34);
  const down = Math.floor(rnd() * 2 ** 33);
  return {
    user: 1 + Math.floor(rnd() * 20),
    torrent: 1 + Math.floor(rnd() * 30),
    uploaded: up,
    downloaded: down,
    uploadedCredited: up * 2,
    downloadedCredited: Math.floor(down / 2),
    seedTime: Math.floor(rnd() * 1800),
    leechTime: Math.floor(rnd() * 1800),
    completed: rnd() < 0.05,
    at: 1_790_000_000 + Math.floor(rnd() * 86_400),
    ...over,
  };
}

const num = (x: unknown) => Number(x);

describe('ledger flush', () => {
  it('totals equal the sum of the deltas after thousands of records in many batches', async () => {
    const rnd = prng(11);
    const all: AccountingRecord[] = [];
    for (let b = 1; b <= 20; b++) {
      const batch = Array.from({ length: 250 }, () => record(rnd));
      all.push(...batch);
      expect(await flushBatch(db.sql, b, batch)).toEqual({ applied: true, rows: aggregate(batch).length, deadLetters: 0 });
    }
    const want = aggregate(all);
    const got = await db.sql`SELECT user_id, torrent_id, uploaded, downloaded, uploaded_credited, downloaded_credited, seed_time, leech_time FROM history ORDER BY user_id, torrent_id`;
    expect(got.length).toBe(want.length);
    const byKey = new Map(want.map((r) => [`${r.user}:${r.torrent}`, r]));
    for (const g of got) {
      const w = byKey.get(`${g.user_id}:${g.torrent_id}`)!;
      expect([num(g.uploaded), num(g.downloaded), num(g.uploaded_credited), num(g.downloaded_credited), num(g.seed_time), num(g.leech_time)]).toEqual([
        w.uploaded, w.downloaded, w.uploadedCredited, w.downloadedCredited, w.seedTime, w.leechTime,
      ]);
    }
    const users = await db.sql`SELECT id, uploaded, downloaded_credited, seed_time FROM users ORDER BY id`;
    for (const u of users) {
      const mine = all.filter((r) => r.user === Number(u.id));
      expect(num(u.uploaded)).toBe(mine.reduce((s, r) => s + r.uploaded, 0));
      expect(num(u.downloaded_credited)).toBe(mine.reduce((s, r) => s + r.downloadedCredited, 0));
      expect(num(u.seed_time)).toBe(mine.reduce((s, r) => s + r.seedTime, 0));
    }
    // snatches: once per (user, torrent) that completed, counted on the torrent too
    const pairs = new Set(all.filter((r) => r.completed).map((r) => `${r.user}:${r.torrent}`));
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM snatches`;
    expect(n).toBe(pairs.size);
    const [{ s }] = await db.sql`SELECT sum(snatches)::int AS s FROM torrents`;
    expect(s).toBe(pairs.size);
  });

  it('applies a replayed batch id once (a crash between commit and journal ack)', async () => {
    const rnd = prng(3);
    const batch = Array.from({ length: 100 }, () => record(rnd, { completed: true }));
    expect((await flushBatch(db.sql, 7, batch)).applied).toBe(true);
    const before = await db.sql`SELECT sum(uploaded)::text AS up, (SELECT sum(snatches) FROM torrents)::int AS sn FROM users`;
    expect(await flushBatch(db.sql, 7, batch)).toEqual({ applied: false, rows: 0, deadLetters: 0 });
    const after = await db.sql`SELECT sum(uploaded)::text AS up, (SELECT sum(snatches) FROM torrents)::int AS sn FROM users`;
    expect(after).toEqual(before);
  });

  it('dead-letters what PostgreSQL refuses and writes the rest of the batch', async () => {
    const rnd = prng(5);
    const good = Array.from({ length: 50 }, () => record(rnd));
    const unknownUser = record(rnd, { user: 999 });
    const unknownTorrent = record(rnd, { torrent: 999 });
    // a negative total for user 20 violates users.uploaded >= 0: only that row is refused
    const negative = record(rnd, { user: 20, torrent: 1, uploaded: -(2 ** 40) });
    const batch = [...good.filter((r) => !(r.user === 20 && r.torrent === 1)), unknownUser, unknownTorrent, negative];
    const res = await flushBatch(db.sql, 1, batch);
    expect(res.deadLetters).toBe(3);
    const letters = await db.sql`SELECT reason FROM dead_letters WHERE batch_id = 1 ORDER BY id`;
    expect(letters.map((l) => l.reason)).toEqual([expect.stringMatching(/unknown user 999/), expect.stringMatching(/unknown torrent 999/), expect.stringMatching(/check/i)]);
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM history`;
    expect(n).toBe(aggregate(batch).length - 3);
  });

  it('keeps each peer\'s last state in the peers table, drops stopped peers, and keeps open-mode peers out of the ledger', async () => {
    const peer = (n: number, infoHash: number, up: number, stopped = false) => ({
      identity: Buffer.concat([Buffer.alloc(20, n), Buffer.alloc(20, infoHash)]),
      ip: Buffer.from('00000000000000000000ffff7f000001', 'hex'),
      port: 6881, key: 7, hasKey: true, uploaded: up, downloaded: 0, left: 0, paused: false, stopped,
    });
    const at = 1_790_000_000;
    const base = { uploadedCredited: 0, downloadedCredited: 0, downloaded: 0, seedTime: 0, leechTime: 0, completed: false, at };
    await flushBatch(db.sql, 1, [
      { ...base, user: 1, torrent: 1, uploaded: 0, peer: peer(1, 1, 100) },
      { ...base, user: 1, torrent: 1, uploaded: 50, peer: peer(1, 1, 150) }, // the same peer again: the last state wins
      { ...base, user: 2, torrent: 1, uploaded: 0, peer: peer(2, 1, 10) },
      { ...base, user: 0, torrent: 0, uploaded: 0, peer: peer(3, 9, 5) }, // open mode: a peer, no ledger row
    ]);
    const rows = async () =>
      (await db.sql`SELECT encode(peer_id, 'hex') AS id, encode(info_hash, 'hex') AS h, user_id, torrent_id, uploaded, port, encode(ip, 'hex') AS ip FROM peers ORDER BY peer_id`).map(
        (r) => [r.id.slice(0, 2), r.h.slice(0, 2), r.user_id === null ? null : Number(r.user_id), r.torrent_id === null ? null : Number(r.torrent_id), Number(r.uploaded), r.port, r.ip],
      );
    expect(await rows()).toEqual([
      ['01', '01', 1, 1, 150, 6881, '00000000000000000000ffff7f000001'],
      ['02', '01', 2, 1, 10, 6881, '00000000000000000000ffff7f000001'],
      ['03', '09', null, null, 5, 6881, '00000000000000000000ffff7f000001'],
    ]);
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM history`;
    expect(n).toBe(2);
    await flushBatch(db.sql, 2, [{ ...base, user: 1, torrent: 1, uploaded: 1, peer: peer(1, 1, 151, true) }]);
    expect((await rows()).map((r) => r[0])).toEqual(['02', '03']);
  });
});

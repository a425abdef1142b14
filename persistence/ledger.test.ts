import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { prng } from '../test/support/prng.js';
import { testSchema, type TestSchema } from '../test/support/pg.js';
import { until } from '../test/support/until.js';
import { aggregate, flushBatch, type LedgerRecord } from './ledger.js';
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

function record(rnd: () => number, over: Partial<LedgerRecord> = {}): LedgerRecord {
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
  it.each([1, 3])('totals equal the sum of the deltas after thousands of records in many batches (%i parts)', async (parts) => {
    const rnd = prng(11);
    const all: LedgerRecord[] = [];
    for (let b = 1; b <= 20; b++) {
      const batch = Array.from({ length: 250 }, () => record(rnd));
      all.push(...batch);
      expect(await flushBatch(db.sql, b, batch, { parts })).toEqual({ applied: true, rows: aggregate(batch).length, deadLetters: 0, flagsTwiceSize: 0 });
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
    expect(await flushBatch(db.sql, 7, batch)).toEqual({ applied: false, rows: 0, deadLetters: 0, flagsTwiceSize: 0 });
    const after = await db.sql`SELECT sum(uploaded)::text AS up, (SELECT sum(snatches) FROM torrents)::int AS sn FROM users`;
    expect(after).toEqual(before);
  });

  it('skips a replay of a batch whose applied_batches rows were pruned long after (a restored backup)', async () => {
    const rnd = prng(13);
    const batch = Array.from({ length: 50 }, () => record(rnd));
    const journal = 'J/run1';
    expect((await flushBatch(db.sql, 5, batch, { journal })).applied).toBe(true);
    // the run goes on more than 100,000 batches: batch 5's rows are pruned
    expect((await flushBatch(db.sql, 100_006, [record(rnd)], { journal })).applied).toBe(true);
    expect((await db.sql`SELECT 1 FROM applied_batches WHERE journal = ${journal} AND batch_id = 5`).length).toBe(0);
    const before = await db.sql`SELECT sum(uploaded)::text AS up FROM users`;
    expect(await flushBatch(db.sql, 5, batch, { journal })).toEqual({ applied: false, rows: 0, deadLetters: 0, flagsTwiceSize: 0 });
    expect(await db.sql`SELECT sum(uploaded)::text AS up FROM users`).toEqual(before);
    // another run of the same journal knows nothing of it: its batch 5 is its own
    expect((await flushBatch(db.sql, 5, batch, { journal: 'J/run2' })).applied).toBe(true);
  });

  it('replays a batch cut into parts the way it was first cut, whatever the setting is now', async () => {
    const rnd = prng(4);
    const batch = Array.from({ length: 200 }, () => record(rnd, { completed: rnd() < 0.3 }));
    // cut into 4; parts 0, 1 and 3 committed before a crash; part 2 did not
    for (const part of [-1, 0, 1, 3]) await db.sql`INSERT INTO applied_batches (journal, batch_id, part, parts, records) VALUES ('', 1, ${part}, 4, 50)`;
    const r = await flushBatch(db.sql, 1, batch, { parts: 1 });
    const mine = aggregate(batch.filter((x) => x.user % 4 === 2));
    expect(r).toEqual({ applied: true, rows: mine.length, deadLetters: 0, flagsTwiceSize: 0 });
    const users = await db.sql`SELECT DISTINCT user_id::int AS u FROM history ORDER BY 1`;
    expect(users.map((x) => x.u)).toEqual([...new Set(mine.map((x) => x.user))].sort((x, y) => x - y));
    const parts = await db.sql`SELECT part, parts FROM applied_batches WHERE batch_id = 1 ORDER BY part`;
    expect(parts.map((x) => [x.part, x.parts])).toEqual([[-1, 4], [0, 4], [1, 4], [2, 4], [3, 4]]);
    expect(await flushBatch(db.sql, 1, batch, { parts: 2 })).toEqual({ applied: false, rows: 0, deadLetters: 0, flagsTwiceSize: 0 });
  });

  it('replays a batch a tracker older than the cut wrote as one part as one part', async () => {
    const rnd = prng(8);
    const batch = Array.from({ length: 100 }, () => record(rnd));
    await db.sql`INSERT INTO applied_batches (journal, batch_id, records) VALUES ('', 1, 100)`; // part 0 of 1, no cut row
    expect(await flushBatch(db.sql, 1, batch, { parts: 3 })).toEqual({ applied: false, rows: 0, deadLetters: 0, flagsTwiceSize: 0 });
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM history`;
    expect(n).toBe(0);
  });

  it('forgets applied batch ids long acknowledged', async () => {
    const rnd = prng(6);
    for (const id of [1, 2, 3, 100_002, 100_003]) await flushBatch(db.sql, id, [record(rnd)], { journal: 'j' });
    await flushBatch(db.sql, 5, [record(rnd)], { journal: 'other' });
    const ids = await db.sql`SELECT journal, batch_id::int AS id FROM applied_batches WHERE part >= 0 ORDER BY journal, batch_id`;
    expect(ids.map((r) => `${r.journal}:${r.id}`)).toEqual(['j:3', 'j:100002', 'j:100003', 'other:5']);
    // another journal's rows go once they are a month old
    await db.sql`UPDATE applied_batches SET applied_at = now() - interval '31 days' WHERE journal = 'other'`;
    await db.sql`INSERT INTO applied_batches (journal, batch_id, records, applied_at) VALUES ('recent', 1, 1, now() - interval '29 days')`;
    await flushBatch(db.sql, 3600, [record(rnd)], { journal: 'j' });
    const left = await db.sql`SELECT DISTINCT journal FROM applied_batches ORDER BY journal`;
    expect(left.map((r) => r.journal)).toEqual(['j', 'recent']);
  });

  it('makes a user\'s delete wait for a flush in flight, then removes what the flush wrote', async () => {
    const rnd = prng(12);
    const batch = [record(rnd, { user: 5, torrent: 1 }), record(rnd, { user: 6, torrent: 2 })];
    const site = db.connect();
    const other = db.connect();
    let deleted = false;
    let flushed = false;
    let flush: Promise<unknown> | undefined;
    let deleting: Promise<unknown> | undefined;
    await site.begin(async (tx) => {
      // a site holds user 6's row: the flush takes its lock, writes user 5's rows and waits on user 6
      await tx`SELECT 1 FROM users WHERE id = 6 FOR UPDATE`;
      flush = flushBatch(db.sql, 1, batch).then(() => (flushed = true));
      await until('the flush to hold the advisory lock shared', async () => (await other`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' AND granted
        AND objid = (hashtext('shardtrack-ledger:' || current_schema())::bigint & 4294967295)::text::oid`)[0].n > 0);
      deleting = other`DELETE FROM users WHERE id = 5`.then(() => (deleted = true));
      // the delete's trigger asks for the lock exclusively, and waits
      await until('the delete to wait on the flushes\' lock', async () => (await db.sql`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ExclusiveLock' AND NOT granted
        AND objid = (hashtext('shardtrack-ledger:' || current_schema())::bigint & 4294967295)::text::oid`)[0].n > 0);
      expect([flushed, deleted]).toEqual([false, false]);
    });
    await flush;
    await deleting;
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM history WHERE user_id = 5`;
    expect(n).toBe(0);
    const [{ m }] = await db.sql`SELECT count(*)::int AS m FROM history WHERE user_id = 6`;
    expect(m).toBe(1);
    // the flush found user 5 (the delete did not come first): nothing dead-lettered
    const [{ d }] = await db.sql`SELECT count(*)::int AS d FROM dead_letters`;
    expect(d).toBe(0);
  });

  it('dead-letters what PostgreSQL refuses and writes the rest of the batch', async () => {
    const rnd = prng(5);
    const good = Array.from({ length: 50 }, () => record(rnd));
    const unknownUser = record(rnd, { user: 999 });
    const unknownTorrent = record(rnd, { torrent: 999 });
    // a negative delta for user 20 is out of range: only that row is refused, before any SQL
    const negative = record(rnd, { user: 20, torrent: 1, uploaded: -(2 ** 40) });
    const batch = [...good.filter((r) => !(r.user === 20 && r.torrent === 1)), unknownUser, unknownTorrent, negative];
    const res = await flushBatch(db.sql, 1, batch);
    expect(res.deadLetters).toBe(3);
    const letters = await db.sql`SELECT reason FROM dead_letters WHERE batch_id = 1 ORDER BY id`;
    expect(letters.map((l) => l.reason)).toEqual([expect.stringMatching(/out of range/), expect.stringMatching(/unknown user 999/), expect.stringMatching(/unknown torrent 999/)]);
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM history`;
    expect(n).toBe(aggregate(batch).length - 3);
  });

  it('keeps open-mode peers out of the ledger and writes no peers rows (the swarms live in checkpoints and the journal)', async () => {
    const peer = (n: number, infoHash: number, up: number, stopped = false) => ({
      identity: Buffer.concat([Buffer.alloc(20, n), Buffer.alloc(20, infoHash)]),
      ip: Buffer.from('00000000000000000000ffff7f000001', 'hex'),
      port: 6881, key: 7, hasKey: true, uploaded: up, downloaded: 0, left: 0, paused: false, stopped,
    });
    const at = 1_790_000_000;
    const base = { uploadedCredited: 0, downloadedCredited: 0, downloaded: 0, seedTime: 0, leechTime: 0, completed: false, at };
    const r = await flushBatch(db.sql, 1, [
      { ...base, user: 1, torrent: 1, uploaded: 0, peer: peer(1, 1, 100) },
      { ...base, user: 1, torrent: 1, uploaded: 50, peer: peer(1, 1, 150) },
      { ...base, user: 2, torrent: 1, uploaded: 0, peer: peer(2, 1, 2 ** 64) }, // a total no column could hold: only a state
      { ...base, user: 0, torrent: 0, uploaded: 0, peer: peer(3, 9, 5) }, // open mode: a peer, no ledger row
    ]);
    expect(r).toEqual({ applied: true, rows: 2, deadLetters: 0, flagsTwiceSize: 0 });
    const history = await db.sql`SELECT user_id, uploaded FROM history ORDER BY user_id`;
    expect(history.map((h) => [Number(h.user_id), Number(h.uploaded)])).toEqual([[1, 50], [2, 0]]);
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM peers`;
    expect(n).toBe(0);
  });
});

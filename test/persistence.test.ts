// The ledger end to end: a real tracker with its persistence thread on a real PostgreSQL
// (a schema of its own per test), driven over HTTP by simulated clients.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Tracker } from '../dist/engine/tracker.js';
import { PersistenceStats } from '../dist/contract/persistence-stats.js';
import { announcePath, decode, failure, get, peerId, until } from './helpers.js';
import { LedgerSim, ledgerTotals, nonZero, seedRegistry } from './support/ledger-sim.js';
import { LedgerTrackers } from './support/ledger-trackers.js';
import { PG_URL, testSchema, type TestSchema } from './support/pg.js';
import { prng } from './support/prng.js';

let db: TestSchema;
let dataDir: string;
const trackers = new LedgerTrackers();
beforeEach(async () => {
  db = await testSchema();
  dataDir = mkdtempSync(join(tmpdir(), 'shardtrack-db-'));
});
afterEach(async () => {
  await trackers.closeAll();
  await db?.drop();
});

const start = (): Promise<Tracker> => trackers.start(db.name, dataDir);
const stop = (t: Tracker): Promise<void> => trackers.stop(t);

/** Seed users and torrents and wait until the running tracker has loaded them. */
async function seeded(t: Tracker, users: number, torrents: number) {
  const wantUsers = t.registry.userCount + users; // (counted first: the reload may land before seedRegistry returns)
  const wantTorrents = t.registry.registeredTorrents + torrents;
  const reg = await seedRegistry(db.sql, users, torrents);
  await until('the registry reload that NOTIFY triggers', () => t.registry.userCount === wantUsers && t.registry.registeredTorrents === wantTorrents);
  return reg;
}

describe('persistence', () => {
  it('keeps a ledger equal to the sum of announced deltas, with multipliers and snatches', async () => {
    const t = await start();
    expect(t.registry.userCount).toBe(1); // private mode on an empty database: a first user
    const { users, torrents } = await seeded(t, 12, 9);
    const sim = new LedgerSim(prng(4), users, torrents, 150);
    await sim.run(t.httpPort, 3000);
    await sim.finish(t.httpPort);
    await stop(t); // SIGTERM path: everything taken is committed before close returns

    expect(await ledgerTotals(db.sql).then(nonZero)).toEqual(nonZero(sim.totals()));
    // user totals are the sums of their history rows
    const off = await db.sql`SELECT u.id FROM users u LEFT JOIN history h ON h.user_id = u.id GROUP BY u.id
                             HAVING u.uploaded <> coalesce(sum(h.uploaded), 0) OR u.downloaded_credited <> coalesce(sum(h.downloaded_credited), 0)`;
    expect(off).toEqual([]);
    const snatched = await db.sql`SELECT user_id, torrent_id FROM snatches`;
    expect(new Set(snatched.map((s) => `${s.user_id}:${s.torrent_id}`))).toEqual(sim.completedPairs);
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM dead_letters`;
    expect(n).toBe(0);
  }, 60_000);

  it('keeps serving through database outages and loses nothing', async () => {
    const t = await start();
    const stats = t.persistence!.stats;
    const { users, torrents } = await seeded(t, 8, 6);
    const sim = new LedgerSim(prng(9), users, torrents, 100);
    await sim.run(t.httpPort, 400);

    // 1. Connections terminated over and over while clients keep announcing.
    const admin = postgres(PG_URL, { max: 1, onnotice: () => {} });
    let waves = 0;
    try {
      await sim.run(t.httpPort, 1200, 40, async () => {
        if (waves++ % 3 === 0) {
          await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ${`shardtrack/${db.name}`}`;
        }
      });

      // 2. A sustained outage: the ledger's table is unreachable, so every commit fails and
      // batches pile up in the journal while announces are still answered.
      await admin.unsafe(`ALTER TABLE ${db.name}.history RENAME TO history_away`);
      const failuresBefore = stats[PersistenceStats.FLUSH_FAILURES];
      await sim.run(t.httpPort, 800);
      // (up to 10 s more if a terminated connection left the driver hanging: the watchdog's timeout)
      await until('commits to fail', () => stats[PersistenceStats.FLUSH_FAILURES] > failuresBefore && stats[PersistenceStats.PENDING_BATCHES] > 1, 30_000);
      expect(stats[PersistenceStats.JOURNAL_BYTES]).toBeGreaterThan(0);
      await admin.unsafe(`ALTER TABLE ${db.name}.history_away RENAME TO history`);
    } finally {
      await admin.end({ timeout: 1 });
    }
    await until('the journal to drain once the database is back', () => stats[PersistenceStats.PENDING_BATCHES] === 0, 30_000);
    expect(stats[PersistenceStats.DB_UP]).toBe(1);
    await sim.run(t.httpPort, 200);
    await sim.finish(t.httpPort);
    await stop(t);
    expect(await ledgerTotals(db.sql).then(nonZero)).toEqual(nonZero(sim.totals()));
  }, 90_000);

  it('puts swarms back after a restart and counts the next announce from what the ledger holds', async () => {
    let t = await start();
    const { users, torrents } = await seeded(t, 1, 1);
    const [u] = users;
    const [tor] = torrents;
    const seeder = peerId();
    const leecher = peerId();
    const ann = (id: Uint8Array, up: number, left: number, event?: string) =>
      get(t.httpPort, announcePath({ infoHash: tor.infoHash, peerId: id, port: 7000, uploaded: up, downloaded: 0, left, event }, `/${u.passkey}`));
    await ann(seeder, 0, 0, 'started');
    await ann(leecher, 0, 500, 'started');
    await ann(seeder, 1000, 0);
    await stop(t);

    t = await start();
    expect(t.restoredPeers).toBe(2);
    const r = decode((await ann(leecher, 0, 500)).body);
    expect([r.complete, r.incomplete]).toEqual([1, 1]); // the seeder is there before it announces again
    await ann(seeder, 5000, 0); // +4000 since what the ledger counted, not +5000
    await stop(t);
    const [h] = await db.sql`SELECT uploaded, uploaded_credited FROM history WHERE user_id = ${u.id} AND torrent_id = ${tor.id}`;
    expect(Number(h.uploaded)).toBe(5000);
    expect(Number(h.uploaded_credited)).toBe(5000 * tor.up);
  }, 60_000);

  it('counts a new data directory\'s batches on a database that has seen another journal', async () => {
    let t = await start();
    const { users, torrents } = await seeded(t, 4, 3);
    const sim = new LedgerSim(prng(33), users, torrents, 40);
    await sim.run(t.httpPort, 300);
    await sim.finish(t.httpPort); // the swarms live in the data directory: the next sessions start afresh
    await stop(t);
    dataDir = mkdtempSync(join(tmpdir(), 'shardtrack-db-')); // a redeploy without its volume: batch ids start at 1 again
    t = await start();
    await sim.run(t.httpPort, 300);
    await sim.finish(t.httpPort);
    await stop(t);
    expect(await ledgerTotals(db.sql).then(nonZero)).toEqual(nonZero(sim.totals()));
    const [{ n }] = await db.sql`SELECT count(DISTINCT journal)::int AS n FROM applied_batches`;
    expect(n).toBe(2);
  }, 60_000);

  it('applies registry edits made directly in the database without restart', async () => {
    const t = await start();
    const { users, torrents } = await seeded(t, 1, 1);
    const path = announcePath({ infoHash: torrents[0].infoHash, peerId: peerId(), port: 7000, left: 10 }, `/${users[0].passkey}`);
    expect(failure((await get(t.httpPort, path)).body)).toBeUndefined();
    await db.sql`UPDATE users SET can_leech = false WHERE id = ${users[0].id}`;
    await until('can_leech to reach the cache', async () => failure((await get(t.httpPort, path)).body) === 'your leeching privileges are disabled');
    await db.sql`INSERT INTO bans (network, reason) VALUES ('127.0.0.0/8', 'test')`;
    await until('the ban to reach the cache', async () => failure((await get(t.httpPort, path)).body) === 'your IP address is banned from this tracker');
    await db.sql`DELETE FROM bans`;
    await db.sql`UPDATE users SET enabled = false WHERE id = ${users[0].id}`;
    await until('the disabled user to be unknown', async () => failure((await get(t.httpPort, path)).body) === 'unknown passkey');
  }, 30_000);
});

// The ledger across a crash: the tracker process is SIGKILLed while clients announce
// (records in the rings, in a journal write, in a database transaction: wherever they
// are), started again on the same journal and database, and the ledger must still equal
// what the clients reported, with nothing counted twice.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { announcePath, failure, get, spawnTracker, until, type TrackerProcess } from './helpers.js';
import { LedgerSim, ledgerTotals, nonZero, seedRegistry } from './support/ledger-sim.js';
import { PG_URL, testSchema, type TestSchema } from './support/pg.js';
import { prng } from './support/prng.js';

let db: TestSchema;
let proc: TrackerProcess | undefined;
beforeEach(async () => {
  db = await testSchema();
});
afterEach(async () => {
  await proc?.kill();
  await db?.drop();
});

describe('persistence across a crash', () => {
  it('SIGKILL mid-run, restart: the ledger equals what clients reported, nothing counted twice', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'shardtrack-crash-'));
    const env = {
      SHARDTRACK_DATABASE__URL: PG_URL,
      SHARDTRACK_DATABASE__SCHEMA: db.name,
      SHARDTRACK_DATABASE__DATA_DIR: dataDir,
      SHARDTRACK_PERSISTENCE__FLUSH_INTERVAL_MS: '40',
      // checkpoints taken while serving: the restart puts a fuzzy one and the journal after it together
      SHARDTRACK_CHECKPOINT__ENABLED: 'true',
      SHARDTRACK_CHECKPOINT__INTERVAL_SECONDS: '1',
      SHARDTRACK_SHARDS__COUNT: '2',
      // simulated clients announce far faster (and with more peers a user) than the limits allow
      SHARDTRACK_LIMITS__ADDRESS_RATE: '0',
      SHARDTRACK_LIMITS__PASSKEY_RATE: '0',
      SHARDTRACK_LIMITS__ENFORCE_MIN_INTERVAL: 'false',
      SHARDTRACK_LIMITS__AUTOBAN_FAILURES: '0',
      SHARDTRACK_LIMITS__MAX_INFLIGHT_PER_ADDRESS: '0',
      SHARDTRACK_TRACKER__MAX_PEERS_PER_USER_TORRENT: '0',
    };
    proc = await spawnTracker(env);
    const { users, torrents } = await seedRegistry(db.sql, 10, 8);
    const probe = announcePath({ infoHash: torrents[0].infoHash, peerId: Buffer.alloc(20, 1), port: 1, event: 'stopped' }, `/${users[9].passkey}`);
    await until('the registry to load', async () => failure((await get(proc!.port, probe)).body) === undefined, 15_000);

    const sim = new LedgerSim(prng(21), users, torrents, 120);
    sim.stops = false; // a stop lost in the crash would be a delta nobody reports again
    // every peer's first announce (its baseline) is committed before the crash
    await sim.announce(proc.port, sim.peers.map((_, i) => i));
    await until('the baselines to be journalled (and committed)', async () => (await db.sql`SELECT coalesce(sum(records), 0)::int AS n FROM applied_batches`)[0].n >= 120, 15_000);

    // announce flat out, and SIGKILL the tracker in the middle of it
    let killed = false;
    const load = sim.runUntil(proc.port, () => killed);
    await sim.run(proc.port, 400); // some committed history first
    await new Promise((r) => setTimeout(r, 150 + Math.floor(Math.random() * 300)));
    await proc.kill();
    killed = true;
    await load;

    // the same journal and database: unacknowledged batches are replayed (exactly once),
    // peers come back with the totals the ledger counted
    proc = await spawnTracker(env);
    expect(proc.log()).toMatch(/restored 1[0-9]{2} peers/);
    if (process.env.CRASH_DEBUG) console.log(proc.log());
    await until('the registry to load', async () => failure((await get(proc!.port, probe)).body) === undefined, 15_000);
    await sim.run(proc.port, 600);
    await sim.announce(proc.port, sim.peers.map((_, i) => i));
    await sim.finish(proc.port); // every client reports its totals once more
    expect(await proc.stop()).toBe(0);
    proc = undefined;

    expect(await ledgerTotals(db.sql).then(nonZero)).toEqual(nonZero(sim.totals()));
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM dead_letters`;
    expect(n).toBe(0);
  }, 90_000);
});

// The journal's identity across copies of a data directory (a clone, a restored backup) and
// its lock: every batch counted exactly once, a second tracker kept off a directory in use,
// and a journal too old for the database to tell its replays refused with what to do.
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AccountingRecord } from '../dist/contract/accounting.js';
import type { Tracker } from '../dist/engine/tracker.js';
import { Journal } from '../dist/persistence/journal.js';
import { spawnTracker, until } from './helpers.js';
import { perTestLedger } from './support/ledger-trackers.js';
import { LedgerSim, ledgerTotals, nonZero, seedRegistry } from './support/ledger-sim.js';
import { PG_URL } from './support/pg.js';
import { prng } from './support/prng.js';

const ledger = perTestLedger();
const trackers = ledger.trackers;

const start = (dataDir: string): Promise<Tracker> => trackers.start(ledger.db.name, dataDir);
const stop = (t: Tracker): Promise<void> => trackers.stop(t);

describe('journal identity', () => {
  it('counts every batch of a copied data directory and of its original once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrack-orig-'));
    let t = await start(dir);
    const want = t.registry.userCount + 4;
    const { users, torrents } = await seedRegistry(ledger.db.sql, 4, 3);
    await until('the registry', () => t.registry.userCount === want);
    // every session stops at each finish: the copy, behind the ledger once the original went
    // on, starts its swarms empty (test/checkpoint-journal.test.ts), and no delta hangs on it
    const sim = new LedgerSim(prng(51), users, torrents, 30);
    await sim.run(t.httpPort, 200);
    await sim.finish(t.httpPort);
    await stop(t);
    // a copy of the data directory (a clone, a backup restored elsewhere): same journal identity and batch ids
    const copy = mkdtempSync(join(tmpdir(), 'shardtrack-copy-'));
    cpSync(dir, copy, { recursive: true });
    for (const d of [dir, copy]) { // the copy last: nothing after it could recount what it lost
      t = await start(d);
      await sim.run(t.httpPort, 200);
      await sim.finish(t.httpPort);
      await stop(t);
    }
    expect(await ledgerTotals(ledger.db.sql).then(nonZero)).toEqual(nonZero(sim.totals()));
  }, 90_000);

  it('keeps a second tracker off a data directory in use', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrack-lock-'));
    const env = { SHARDTRACK_DATABASE__URL: PG_URL, SHARDTRACK_DATABASE__SCHEMA: ledger.db.name, SHARDTRACK_DATABASE__DATA_DIR: dir };
    const first = await spawnTracker(env);
    try {
      await expect(spawnTracker(env)).rejects.toThrow(new RegExp(`the data directory ${dir} is in use by process ${first.pid}`));
    } finally {
      expect(await first.stop()).toBe(0);
    }
    // released at a clean stop (and a stale one, of a process gone, is taken over)
    const again = await spawnTracker(env);
    await again.kill();
    expect(await (await spawnTracker(env)).stop()).toBe(0);
  }, 90_000);

  it('refuses to replay a journal older than the database remembers, saying what to do', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrack-old-'));
    const journal = Journal.open(join(dir, 'journal'));
    const rec = new Uint8Array(AccountingRecord.SIZE); // one record at tracker clock 0
    journal.append(1, [{ epoch: Math.floor(Date.now() / 1000) - 31 * 86400, data: rec, v: 2, run: 'abc' }]);
    journal.close();
    await expect(start(dir)).rejects.toThrow(/oldest from .*older than the database remembers which batches it applied \(30 days\).*move .*journal aside/);
  });
});

// Private trackers on the ledger (a test's own PostgreSQL schema), started and stopped by a
// test and closed after it whatever happened.
import type { Tracker } from '../../dist/engine/tracker.js';
import type { ConfigOverrides } from '../../dist/engine/config.js';
import { afterEach, beforeEach } from 'vitest';
import { startTestTracker } from '../helpers.js';
import { PG_URL, testSchema, type TestSchema } from './pg.js';

export class LedgerTrackers {
  private readonly running: Tracker[] = [];

  /** A private tracker writing its ledger into `schema`, its journal under `dataDir`. */
  async start(schema: string, dataDir: string, extra: ConfigOverrides = {}): Promise<Tracker> {
    const t = await startTestTracker({
      tracker: { private: true },
      database: { enabled: true, url: PG_URL, schema, data_dir: dataDir },
      persistence: { flush_interval_ms: 50 },
      checkpoint: { enabled: true, interval_seconds: 0 }, // at shutdown: the swarms come back from it and the journal
      ...extra,
    });
    this.running.push(t);
    return t;
  }

  /** SIGTERM's path: everything taken is committed before this returns. */
  async stop(t: Tracker): Promise<void> {
    this.running.splice(this.running.indexOf(t), 1);
    await t.close();
  }

  async closeAll(): Promise<void> {
    for (const t of this.running.splice(0)) await t.close();
  }
}

/**
 * For the tests of the enclosing file or describe: a schema of their own per test (`db`,
 * set before each) and the trackers they start on it, both gone after each test.
 */
export function perTestLedger(): { readonly db: TestSchema; readonly trackers: LedgerTrackers } {
  let db: TestSchema | undefined;
  const trackers = new LedgerTrackers();
  beforeEach(async () => {
    db = await testSchema();
  });
  afterEach(async () => {
    await trackers.closeAll();
    await db?.drop();
  });
  return {
    get db() {
      return db!;
    },
    trackers,
  };
}

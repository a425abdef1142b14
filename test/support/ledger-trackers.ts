// Private trackers on the ledger (a test's own PostgreSQL schema), started and stopped by a
// test and closed after it whatever happened.
import type { Tracker } from '../../dist/engine/tracker.js';
import { startTestTracker } from '../helpers.js';
import { PG_URL } from './pg.js';

export class LedgerTrackers {
  private readonly running: Tracker[] = [];

  /** A private tracker writing its ledger into `schema`, its journal under `dataDir`. */
  async start(schema: string, dataDir: string): Promise<Tracker> {
    const t = await startTestTracker({
      tracker: { private: true },
      database: { enabled: true, url: PG_URL, schema, data_dir: dataDir },
      persistence: { flush_interval_ms: 50 },
      checkpoint: { enabled: true, interval_seconds: 0 }, // at shutdown: the swarms come back from it and the journal
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

import { join } from 'node:path';
import postgres from 'postgres';
import type { Logger } from '../contract/log.js';
import { PersistenceStats } from '../contract/persistence-stats.js';
import { embeddedClient, startEmbedded, type Embedded } from './embedded.js';
import { migrate } from './migrate.js';
import { PG_COMMON } from './pg.js';

// The persistence thread's database client: opening it (the configured PostgreSQL, or the
// embedded one), bringing the schema up to date, calls that cannot hang the thread, and
// the up/down state with its retry back-off, published in the stats block.

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 10_000;
/** A database call that takes longer is abandoned with its client. */
export const DB_TIMEOUT_MS = 10_000;

export interface DatabaseSettings {
  url: string; // '' = the embedded database under dataDir
  schema: string;
  dataDir: string;
  /** Connections beside the one registry reads use: a batch is written on this many at once. */
  flushConnections: number;
}

export class Database {
  /** The client, or undefined while there is none (never connected, or dropped). */
  sql: postgres.Sql | undefined;
  /** The embedded database, once started (it outlives dropped clients). */
  embedded: Embedded | undefined;
  /** No call before this time (ms): the back-off after a failure. */
  retryAt = 0;
  private retryMs = RETRY_MIN_MS;
  private lost = lostSignal();

  constructor(
    private readonly settings: DatabaseSettings,
    private readonly stats: Float64Array,
    private readonly log: Logger,
  ) {}

  get up(): boolean {
    return this.sql !== undefined && this.stats[PersistenceStats.DB_UP] === 1;
  }

  /** Open (or reopen) the database and bring its schema up to date. False when unreachable. */
  async connect(): Promise<boolean> {
    const s = this.settings;
    try {
      if (this.sql === undefined) {
        const common = { ...PG_COMMON, connection: { search_path: s.schema, application_name: `shardtrack/${s.schema}` } };
        if (s.url === '') {
          this.embedded ??= await startEmbedded(join(s.dataDir, 'pglite'));
          this.sql = postgres({ ...common, ...embeddedClient(this.embedded.address) });
        } else {
          this.sql = postgres(s.url, { ...common, max: s.flushConnections + 1 }); // + registry reads beside a flush
        }
        if (s.schema !== 'public') await this.sql`CREATE SCHEMA IF NOT EXISTS ${this.sql(s.schema)}`;
        const applied = await migrate(this.sql);
        if (applied.length > 0) this.log(`schema migrated to version ${applied.at(-1)}`);
      }
      this.setUp();
      return true;
    } catch (e) {
      this.failed(`database unreachable: ${(e as Error).message}`);
      // a client that never connected is rebuilt on the next attempt (schema, migrations)
      await this.sql?.end({ timeout: 1 }).catch(() => {});
      this.sql = undefined;
      return false;
    }
  }

  /**
   * A database call that cannot hang the thread: it fails when the client is dropped (see
   * drop()) or after `ms`, and the client is then replaced.
   */
  guarded<T>(op: Promise<T>, ms = DB_TIMEOUT_MS): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.drop(`no answer within ${Math.round(ms / 1000)} s`);
        reject(new Error('database call timed out'));
      }, ms);
    });
    return Promise.race([op, timeout, this.lost.promise]).finally(() => clearTimeout(timer));
  }

  /**
   * Give up on the current client (a connection it can no longer use, a call that never
   * returns): calls in flight fail, and the next attempt connects afresh.
   */
  drop(why: string): void {
    const old = this.sql;
    if (old === undefined) return;
    this.sql = undefined;
    this.failed(`database client dropped (${why})`);
    this.lost.reject(new Error(`database client dropped: ${why}`));
    this.lost = lostSignal();
    void old.end({ timeout: 0 }).catch(() => {});
  }

  /** A call worked: the database is up (said once after an outage). */
  setUp(): void {
    const st = this.stats;
    if (st[PersistenceStats.DB_UP] === 0 && st[PersistenceStats.BATCHES_COMMITTED] + st[PersistenceStats.FLUSH_FAILURES] > 0) this.log('database reachable again');
    st[PersistenceStats.DB_UP] = 1;
    this.retryMs = RETRY_MIN_MS;
  }

  /** A call failed: down, and the next attempt waits a little longer (up to 10 s). */
  failed(msg: string): void {
    const st = this.stats;
    if (st[PersistenceStats.DB_UP] === 1 || st[PersistenceStats.FLUSH_FAILURES] === 0) this.log(`${msg}; accounting continues into the journal`, 'error');
    st[PersistenceStats.DB_UP] = 0;
    st[PersistenceStats.FLUSH_FAILURES]++;
    this.retryAt = Date.now() + this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  async close(): Promise<void> {
    await this.sql?.end({ timeout: 2 }).catch(() => {});
    await this.embedded?.close().catch(() => {});
  }
}

function lostSignal(): { promise: Promise<never>; reject: (e: Error) => void } {
  let reject!: (e: Error) => void;
  const promise = new Promise<never>((_, r) => (reject = r));
  promise.catch(() => {}); // observed through guarded() only
  return { promise, reject };
}

import { existsSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import type { Logger } from '../contract/log.js';
import { PersistenceStats } from '../contract/persistence-stats.js';
import type { Multipliers, RegistryDelta, RegistrySnapshot } from '../contract/registry.js';
import type { Database } from './database.js';
import { isEmpty, loadChanges, loadRegistry } from './registry.js';
import { privateDir, writePrivate } from './private-files.js';

// Keeps the acceptor's registry caches in step with the database: a whole read at start,
// then the changes since the last read (the change log of migration 0007), on NOTIFY (within
// a second of an edit), on the admin API's request, and every few seconds regardless (a
// NOTIFY can be missed; the embedded database has none). A copy is kept on disk so that a
// start while the database is away still serves the users it knew.

const POLL_MS = 5_000;
const CHANGES_TRUSTED_MS = 12 * 3600_000; // the log keeps a day (pruneChanges): older reads reload whole
const SNAPSHOT_EVERY_MS = 3600_000;
export const REGISTRY_TIMEOUT_MS = 120_000; // a whole read at millions of rows takes seconds
const FAILURE_REPEAT_MS = 60_000;

/** Where registry reads go: the acceptor, through the thread's port. */
export interface RegistryOut {
  snapshot(snapshot: RegistrySnapshot, reload?: number): void;
  delta(delta: RegistryDelta, reload?: number): void;
  failed(reload: number): void;
}

export class RegistrySync {
  /** Torrents' multipliers as last read: the thread credits accounting records with them. */
  multipliers = new Map<number, Multipliers>();
  private read: Promise<void> | undefined; // the read in flight
  private since: string | undefined; // where the next read of the change log starts
  private readAt = 0; // when the caches were last brought up to date
  private nextPoll = 0;
  private failedAt = 0; // when a failing poll last said so (0: polls work)
  private snapshotSavedAt: number;
  private notifyTimer: NodeJS.Timeout | undefined;
  private readonly snapshotPath: string;

  constructor(
    private readonly db: Database,
    private readonly out: RegistryOut,
    private readonly stats: Float64Array,
    private readonly log: Logger,
    dataDir: string,
    private readonly now: () => number = Date.now,
  ) {
    this.snapshotPath = join(dataDir, 'registry.snapshot');
    this.snapshotSavedAt = now();
  }

  /** Read since start (a whole read has succeeded): polls and snapshots may run. */
  get following(): boolean {
    return this.since !== undefined;
  }

  /**
   * Bring the acceptor's caches up to date: the changes since the last read (a few rows),
   * or everything when there is no last read, it is too old for the change log (pruned
   * after a day) or the log says so (a TRUNCATE, a bulk change, a restored database). One
   * read at a time: a later one waits for the one in flight, which may have begun before
   * the change it is asked for, so caches never go back in time.
   */
  reload(reload?: number): Promise<void> {
    return this.inTurn(() => this.readNow(reload));
  }

  /** The admin API changed the registry: load it now and say which request this answers. */
  async reloadFor(id: number): Promise<void> {
    try {
      await this.db.guarded(this.reload(id), REGISTRY_TIMEOUT_MS); // (throws when the database is unreachable)
    } catch (e) {
      this.log(`registry reload failed: ${(e as Error).message}`, 'warn');
      this.out.failed(id);
    }
  }

  /**
   * Every tick while the database is up: poll the change log every few seconds, else
   * rewrite the saved snapshot hourly. A failing poll says so once a minute, and says when
   * reads work again. Returns the read it started, if any (settles, never rejects).
   */
  tick(): Promise<void> | undefined {
    if (!this.following || this.read !== undefined) return undefined;
    const now = this.now();
    if (now >= this.nextPoll) {
      this.nextPoll = now + POLL_MS;
      return this.db.guarded(this.reload(), REGISTRY_TIMEOUT_MS).then(
        () => {
          if (this.failedAt > 0) this.log('registry reads work again');
          this.failedAt = 0;
        },
        (e) => {
          if (now - this.failedAt <= FAILURE_REPEAT_MS) return;
          this.log(`registry read failed: ${(e as Error).message}`, 'warn');
          this.failedAt = now;
        },
      );
    }
    if (now - this.snapshotSavedAt > SNAPSHOT_EVERY_MS) {
      return this.db.guarded(this.refreshSnapshot(), REGISTRY_TIMEOUT_MS).catch((e) => this.log(`registry snapshot failed: ${(e as Error).message}`, 'warn'));
    }
    return undefined;
  }

  /**
   * The database is away at start: serve with the registry as it was last seen rather than
   * refuse everyone. False when there is no saved copy.
   */
  loadSaved(): boolean {
    if (!existsSync(this.snapshotPath)) return false;
    const snap = unpack(readFileSync(this.snapshotPath)) as RegistrySnapshot;
    this.apply(snap);
    this.log(`database unreachable at start: serving with the registry saved at the last load (${snap.users.length} users)`, 'error');
    return true;
  }

  /** Edits made directly in the database (a site, the admin API) reach the caches within a second. */
  async listen(schema: string): Promise<void> {
    const prefix = `${schema}.`;
    await this.db.sql!.listen(
      'registry_changed',
      (payload) => {
        if (!payload.startsWith(prefix) || this.notifyTimer !== undefined) return;
        // coalesce bursts of edits into one read
        this.notifyTimer = setTimeout(() => {
          this.notifyTimer = undefined;
          this.reload().catch((e) => this.log(`registry reload failed: ${(e as Error).message}`, 'warn'));
        }, 100);
      },
      () => {
        // (re)connected: anything missed while the connection was down is picked up now
        if (this.stats[PersistenceStats.REGISTRY_LOADS] > 0) this.reload().catch(() => {});
      },
    );
  }

  /** Registry reads run one at a time, each after the one in flight. */
  private async inTurn(read: () => Promise<void>): Promise<void> {
    while (this.read !== undefined) await this.read.catch(() => {});
    this.read = read();
    try {
      await this.read;
    } finally {
      this.read = undefined;
    }
  }

  private async readNow(reload?: number): Promise<void> {
    const sql = this.db.sql;
    if (sql === undefined) throw new Error('database unreachable');
    const fresh = this.since !== undefined && this.now() - this.readAt < CHANGES_TRUSTED_MS;
    const changes = fresh ? await loadChanges(sql, this.since!) : null;
    this.readAt = this.now();
    if (changes !== null) {
      this.since = changes.since;
      if (isEmpty(changes.delta) && reload === undefined) return;
      for (const [id, m] of changes.delta.multipliers) {
        if (m === null) this.multipliers.delete(id);
        else this.multipliers.set(id, m);
      }
      this.stats[PersistenceStats.REGISTRY_LOADS]++;
      this.out.delta(changes.delta, reload);
      return;
    }
    const full = await loadRegistry(sql);
    this.since = full.since;
    this.apply(full.snapshot, reload);
    this.save(full.snapshot);
  }

  /** Kept on disk so a start while the database is away can still serve known users. */
  private save(snap: RegistrySnapshot): void {
    const tmp = `${this.snapshotPath}.tmp`;
    privateDir(dirname(tmp));
    writePrivate(tmp, pack(snap));
    renameSync(tmp, this.snapshotPath);
    this.snapshotSavedAt = this.now();
  }

  /**
   * The saved snapshot follows the changes too: rewritten now and then from a whole read
   * (not sent to the acceptor), in turn with the other reads so it is never older than one.
   */
  private refreshSnapshot(): Promise<void> {
    this.snapshotSavedAt = this.now();
    return this.inTurn(async () => {
      if (this.db.sql !== undefined) this.save((await loadRegistry(this.db.sql)).snapshot);
    });
  }

  private apply(snap: RegistrySnapshot, reload?: number): void {
    this.multipliers = new Map(snap.multipliers);
    this.stats[PersistenceStats.REGISTRY_LOADS]++;
    this.out.snapshot(snap, reload);
  }
}

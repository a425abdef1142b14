import { Worker } from 'node:worker_threads';
import type { EmbeddedAddress } from './embedded.js';
import type { RegistryDelta, RegistrySnapshot } from '../contract/registry.js';
import { allocateStats, PersistenceStats } from '../contract/persistence-stats.js';
import type { PersistenceSettings, PersistenceWorkerData } from './persistence-thread.js';
import type { Logger } from '../contract/log.js';
import type { JournalSide } from '../contract/checkpoint.js';

// The acceptor's side of the persistence thread: starts it on the shards' accounting rings,
// hands registry snapshots and restored peers to the engine, exposes the thread's
// counters, and on shutdown waits until everything taken is committed or journalled.

export type FromPersistence =
  | { type: 'log'; msg: string; level: 'error' | 'warn' | 'info' | 'debug' }
  | { type: 'registry'; snapshot: RegistrySnapshot; reload?: number }
  | { type: 'registry-delta'; delta: RegistryDelta; reload?: number }
  | { type: 'restore'; records: Uint8Array; id: number }
  | { type: 'registry-failed'; reload: number }
  | { type: 'first-user'; passkey: string }
  | { type: 'ready'; db: EmbeddedAddress | null; checkpointNow: boolean }
  | { type: 'answer'; id: number; journal?: string; batch?: number; error?: string }
  | { type: 'checkpoint-wanted' }
  | { type: 'closed' }
  | { type: 'fatal'; msg: string };

export type ToPersistence =
  | { type: 'close' }
  | { type: 'reload'; id: number }
  | { type: 'mark'; id: number }
  | { type: 'flush'; id: number; from: number; last: boolean }
  | { type: 'restored'; id: number }
  | { type: 'checkpointed' };

export interface PersistenceOptions extends PersistenceSettings {
  log: Logger;
  /** A registry snapshot to install in the acceptor's caches. */
  onRegistry: (snapshot: RegistrySnapshot) => void;
  onRegistryDelta: (delta: RegistryDelta) => void;
  /** AnnounceRequest records of peers to put back into the swarms (before the tracker listens). */
  onRestore: (records: Uint8Array) => Promise<void>;
  onFirstUser: (passkey: string) => void;
  onFatal: (msg: string) => void;
}

const WORKER_URL = new URL('./persistence-thread.js', import.meta.url);

export class Persistence implements JournalSide {
  /** The thread's counters (PersistenceStats layout), read without messaging it. */
  readonly stats: Float64Array;
  private readonly worker: Worker;
  private restoring: Promise<void> = Promise.resolve();
  private closed: Promise<void> | undefined;
  private exited = false;
  private reloads = 0;
  private readonly waiting = new Map<number, (err?: Error) => void>();
  /** The embedded database's address (for the admin API), or null with a database URL. */
  embeddedDb: EmbeddedAddress | null = null;
  /** The swarms came back without a checkpoint (from the journal, or the old peers table): take one now. */
  checkpointNow = false;
  /** The journal keeps many batches for the checkpoint's tail: a checkpoint now would let them go. */
  onCheckpointWanted: () => void = () => void (this.checkpointNow = true); // (asked before the engine took it over)
  private asks = 0;
  private readonly answers = new Map<number, (m: Extract<FromPersistence, { type: 'answer' }>) => void>();

  private constructor(rings: SharedArrayBuffer[], epoch: number, opts: PersistenceOptions, ready: () => void, fail: (e: Error) => void) {
    const stats = allocateStats();
    this.stats = new Float64Array(stats);
    const { log: _log, onRegistry: _r, onRegistryDelta: _d, onRestore: _s, onFirstUser: _f, onFatal: _x, ...settings } = opts;
    const data: PersistenceWorkerData = { ...settings, rings, stats, epoch };
    this.worker = new Worker(WORKER_URL, { workerData: data, name: 'persistence' });
    let started = false;
    this.worker.on('message', (m: FromPersistence) => {
      switch (m.type) {
        case 'log':
          return opts.log(m.msg, m.level);
        case 'registry':
        case 'registry-delta':
          if (m.type === 'registry') opts.onRegistry(m.snapshot);
          else opts.onRegistryDelta(m.delta);
          if (m.reload !== undefined) {
            // this load answers every reload asked up to it
            for (const [id, done] of this.waiting) if (id <= m.reload) (this.waiting.delete(id), done());
          }
          return;
        case 'restore': {
          const { records, id } = m;
          // answered once in the shards' rings: the thread sends a few buffers ahead, no more
          this.restoring = this.restoring
            .then(() => opts.onRestore(records))
            .finally(() => {
              if (!this.exited) this.worker.postMessage({ type: 'restored', id } satisfies ToPersistence);
            });
          this.restoring.catch(fail); // (the start fails; the thread is not left waiting)
          return;
        }
        case 'registry-failed': {
          const done = this.waiting.get(m.reload);
          this.waiting.delete(m.reload);
          return done?.(new Error('registry reload failed: the change applies once the database is readable'));
        }
        case 'first-user':
          return opts.onFirstUser(m.passkey);
        case 'answer': {
          const done = this.answers.get(m.id);
          this.answers.delete(m.id);
          return done?.(m);
        }
        case 'checkpoint-wanted':
          return this.onCheckpointWanted();
        case 'ready':
          started = true;
          this.embeddedDb = m.db;
          this.checkpointNow = m.checkpointNow;
          this.restoring.then(() => ready(), fail);
          return;
        case 'fatal':
          if (!started) return fail(new Error(m.msg));
          return opts.onFatal(`persistence thread: ${m.msg}`);
        case 'closed':
          return;
      }
    });
    this.worker.on('error', (e) => (started ? opts.onFatal(`persistence thread crashed: ${e.stack ?? e}`) : fail(e)));
    this.worker.on('exit', (code) => {
      this.exited = true;
      for (const done of this.waiting.values()) done(new Error('the persistence thread exited'));
      this.waiting.clear();
      for (const [id, done] of this.answers) done({ type: 'answer', id, error: 'the persistence thread exited' });
      this.answers.clear();
      // Its journal holds everything it took: a restart of the process replays it. Running
      // on without it would fill the accounting rings and stall the shards, so give up.
      if (this.closed === undefined) opts.onFatal(`persistence thread exited (code ${code})`);
      else if (!started) fail(new Error(`persistence thread exited (code ${code}) before it was ready`));
    });
  }

  /** Start the thread; resolves once the registry is loaded and stored peers are back in their swarms. */
  static start(rings: SharedArrayBuffer[], epoch: number, opts: PersistenceOptions): Promise<{ persistence: Persistence }> {
    return new Promise((resolve, reject) => {
      const p: Persistence = new Persistence(rings, epoch, opts, () => resolve({ persistence: p }), (e) => {
        p.closed ??= Promise.resolve();
        void p.worker.terminate();
        reject(e);
      });
    });
  }

  /**
   * Load the registry from the database now; resolves once the acceptor's caches hold it
   * (rejects when the database cannot be read: the change applies on the next load).
   */
  reload(): Promise<void> {
    if (this.exited) return Promise.reject(new Error('the persistence thread is not running'));
    const id = ++this.reloads;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (err?: Error) => (err ? reject(err) : resolve()));
      this.worker.postMessage({ type: 'reload', id } satisfies ToPersistence);
    });
  }

  async mark(): Promise<{ journal: string; batch: number }> {
    const m = await this.ask({ type: 'mark' });
    return { journal: m.journal!, batch: m.batch! };
  }

  async flush(from: number, last: boolean): Promise<void> {
    await this.ask({ type: 'flush', from, last });
  }

  written(): void {
    if (!this.exited) this.worker.postMessage({ type: 'checkpointed' } satisfies ToPersistence);
  }

  private ask(q: { type: 'mark' } | { type: 'flush'; from: number; last: boolean }): Promise<Extract<FromPersistence, { type: 'answer' }>> {
    if (this.exited) return Promise.reject(new Error('the persistence thread is not running'));
    const id = ++this.asks;
    return new Promise((resolve, reject) => {
      this.answers.set(id, (m) => (m.error !== undefined ? reject(new Error(m.error)) : resolve(m)));
      this.worker.postMessage({ ...q, id } satisfies ToPersistence);
    });
  }

  get databaseUp(): boolean {
    return this.stats[PersistenceStats.DB_UP] === 1;
  }

  /**
   * Drain the rings (the shards must have stopped writing), commit what the database takes
   * within the thread's timeout, leave the rest in the journal, and end the thread.
   */
  close(): Promise<void> {
    this.closed ??= this.exited
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          this.worker.on('message', (m: FromPersistence) => {
            if (m.type === 'closed' || m.type === 'fatal') void this.worker.terminate().then(() => resolve());
          });
          this.worker.once('exit', () => resolve());
          this.worker.postMessage({ type: 'close' } satisfies ToPersistence);
        });
    return this.closed;
  }
}

import { Worker } from 'node:worker_threads';
import type { RegistrySnapshot } from './registry.js';
import { allocateStats, PS } from './stats.js';
import type { PersistenceSettings, PersistenceWorkerData } from './worker.js';

// The acceptor's side of the persistence thread: starts it on the shards' accounting rings,
// hands registry snapshots and restored peers to the engine, exposes the thread's
// counters, and on shutdown waits until everything taken is committed or journalled.

export type FromPersistence =
  | { type: 'log'; msg: string; level: 'error' | 'warn' | 'info' | 'debug' }
  | { type: 'registry'; snapshot: RegistrySnapshot }
  | { type: 'restore'; records: Uint8Array }
  | { type: 'first-user'; passkey: string }
  | { type: 'ready'; restored: number }
  | { type: 'closed' }
  | { type: 'fatal'; msg: string };

export type ToPersistence = { type: 'close' };

export interface PersistenceOptions extends PersistenceSettings {
  log: (msg: string, level?: 'error' | 'warn' | 'info' | 'debug') => void;
  /** A registry snapshot to install in the acceptor's caches. */
  onRegistry: (snapshot: RegistrySnapshot) => void;
  /** AQ records of peers to put back into the swarms (before the tracker listens). */
  onRestore: (records: Uint8Array) => Promise<void>;
  onFirstUser: (passkey: string) => void;
  onFatal: (msg: string) => void;
}

const WORKER_URL = new URL('./worker.js', import.meta.url);

export class Persistence {
  /** The thread's counters (PS layout), read without messaging it. */
  readonly stats: Float64Array;
  private readonly worker: Worker;
  private restoring: Promise<void> = Promise.resolve();
  private closed: Promise<void> | undefined;
  private exited = false;

  private constructor(rings: SharedArrayBuffer[], epoch: number, opts: PersistenceOptions, ready: (restored: number) => void, fail: (e: Error) => void) {
    const stats = allocateStats();
    this.stats = new Float64Array(stats);
    const { log: _log, onRegistry: _r, onRestore: _s, onFirstUser: _f, onFatal: _x, ...settings } = opts;
    const data: PersistenceWorkerData = { ...settings, rings, stats, epoch };
    this.worker = new Worker(WORKER_URL, { workerData: data, name: 'persistence' });
    let started = false;
    this.worker.on('message', (m: FromPersistence) => {
      switch (m.type) {
        case 'log':
          return opts.log(m.msg, m.level);
        case 'registry':
          return opts.onRegistry(m.snapshot);
        case 'restore': {
          const records = m.records;
          this.restoring = this.restoring.then(() => opts.onRestore(records));
          return;
        }
        case 'first-user':
          return opts.onFirstUser(m.passkey);
        case 'ready':
          started = true;
          this.restoring.then(() => ready(m.restored), fail);
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
      // Its journal holds everything it took: a restart of the process replays it. Running
      // on without it would fill the accounting rings and stall the shards, so give up.
      if (this.closed === undefined) opts.onFatal(`persistence thread exited (code ${code})`);
      else if (!started) fail(new Error(`persistence thread exited (code ${code}) before it was ready`));
    });
  }

  /** Start the thread; resolves once the registry is loaded and stored peers are back in their swarms. */
  static start(rings: SharedArrayBuffer[], epoch: number, opts: PersistenceOptions): Promise<{ persistence: Persistence; restored: number }> {
    return new Promise((resolve, reject) => {
      const p: Persistence = new Persistence(rings, epoch, opts, (restored) => resolve({ persistence: p, restored }), (e) => {
        p.closed ??= Promise.resolve();
        void p.worker.terminate();
        reject(e);
      });
    });
  }

  get databaseUp(): boolean {
    return this.stats[PS.DB_UP] === 1;
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

import { Worker } from 'node:worker_threads';
import { allocateReplicationStats, ReplicationStats, ShardWords } from '../contract/replication.js';
import type { Logger } from '../contract/log.js';
import type { FromReplication, ReplicationSettings, ReplicationWorkerData, ToReplication } from './thread.js';

// The acceptor's side of the replication thread: starts it on the shards' replication rings,
// passes its log lines on, exposes its counters (ReplicationStats), and on shutdown lets it
// leave the cluster (the other nodes drop this node's peers at once).

const WORKER_URL = new URL('./thread.js', import.meta.url);

export class Replication {
  /** The thread's counters (ReplicationStats layout), read without messaging it. */
  readonly stats: Float64Array;
  private readonly worker: Worker;
  private closed: Promise<void> | undefined;

  private constructor(shards: ReplicationWorkerData['shards'], clockEpoch: number, settings: ReplicationSettings, log: Logger) {
    const stats = allocateReplicationStats();
    this.stats = new Float64Array(stats);
    const data: ReplicationWorkerData = { ...settings, shards, stats, clockEpoch };
    this.worker = new Worker(WORKER_URL, { workerData: data, name: 'replication' });
    this.worker.on('message', (m: FromReplication) => {
      if (m.type === 'log') log(m.msg, m.level);
    });
    this.worker.on('error', (e) => log(`replication thread failed: ${e.stack ?? e}`, 'error'));
    this.worker.on('exit', () => {
      if (this.closed) return;
      // a bug ended it: this node goes on alone (its lease lapses, the other nodes drop its
      // peers); the shards stop writing changes and forwarding, /ready and /metrics say so
      log('replication thread exited: this node serves its own peers only until it restarts', 'error');
      for (const s of shards) Atomics.store(new Int32Array(s.ctl), ShardWords.REPL_ON, 0);
      this.stats[ReplicationStats.REDIS_UP] = 0;
      this.stats[ReplicationStats.SYNCED] = 0;
    });
  }

  static start(shards: ReplicationWorkerData['shards'], clockEpoch: number, settings: ReplicationSettings, log: Logger): Replication {
    return new Replication(shards, clockEpoch, settings, log);
  }

  get redisUp(): boolean {
    return this.stats[ReplicationStats.REDIS_UP] === 1;
  }

  /** Other nodes' peers are loaded (and kept in step since). */
  get synced(): boolean {
    return this.stats[ReplicationStats.SYNCED] === 1;
  }

  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        void this.worker.terminate().then(() => resolve());
      };
      const timer = setTimeout(done, 15_000); // (its loop, a last publish and its retirement: a few Redis timeouts at worst)
      this.worker.on('message', (m: FromReplication) => m.type === 'closed' && done());
      this.worker.on('exit', done);
      const m: ToReplication = { type: 'close' };
      this.worker.postMessage(m);
    });
    return this.closed;
  }
}

import type { JournalSide } from '../contract/checkpoint.js';
import type { Logger } from '../contract/log.js';
import { writeCheckpoint } from '../persistence/checkpoint-file.js';
import { lockDataDir, unlockDataDir } from '../persistence/private-files.js';
import type { ShardPool } from '../shards/pool.js';

// Checkpoints of the swarms (README: checkpoints): every checkpoint.interval_seconds and at
// shutdown the shards write their peers out (shards/snapshot.ts) into data/checkpoint. Each
// is tied to the persistence thread's journal (`JournalSide`), which holds every change to a
// swarm (with a database, the accounting too): the checkpoint names the batch its tail
// starts at, and is put in place only once the records of everything it holds are
// journalled. The persistence thread loads it at start and replays that tail
// (persistence/restore.ts).

export class Checkpoints {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  /** Checkpoints in `dir`: the persistence thread's data directory, locked by it. */
  constructor(
    private readonly pool: ShardPool,
    private readonly dir: string,
    private readonly log: Logger,
    private readonly journal: JournalSide,
  ) {}

  /**
   * Can `dir` hold checkpoints and the journal? A directory in use by another tracker stops
   * the start (two would overwrite each other's); one that cannot be written (a read-only
   * disk) means serving without checkpoints, said in the log.
   */
  static usable(dir: string, log: Logger): boolean {
    try {
      lockDataDir(dir);
    } catch (e) {
      if (/is in use by process/.test((e as Error).message)) throw e;
      log(`checkpoints off: the data directory ${dir} cannot be written (${(e as Error).message}); swarms will not survive a restart`, 'error');
      return false;
    }
    unlockDataDir(dir); // (the persistence thread takes the lock)
    return true;
  }

  /** Take checkpoints every `seconds` (0: only at shutdown). */
  every(seconds: number): void {
    if (seconds <= 0) return;
    this.timer = setInterval(() => void this.take().catch((e: Error) => this.log(`checkpoint failed: ${e.message}`, 'error')), seconds * 1000);
    this.timer.unref();
  }

  /** Write a checkpoint now (or wait for the one being written); `last`: at shutdown. */
  take(last = false): Promise<void> {
    this.running ??= (async () => {
      try {
        const t0 = performance.now();
        const j = this.journal;
        // the tail starts after the last batch journalled before the first swarm is written
        const m = await j.mark();
        const tie = { journal: m.journal, from: m.batch + 1, beforeCommit: () => j.flush(m.batch + 1, last) };
        const peers = await writeCheckpoint(this.dir, this.pool.epoch, (append) => this.pool.snapshotPeers(append), tie);
        j.written();
        this.log(`checkpoint: ${peers} peers written in ${Math.round(performance.now() - t0)} ms`, 'debug');
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** At shutdown, once nothing is served any more: the last, exact checkpoint. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => {});
    await this.take(true);
  }

  /** A start that failed: no checkpoint (the swarms are not what the last one holds). */
  async abandon(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => {});
  }
}

import type { JournalSide } from '../contract/checkpoint.js';
import type { Logger } from '../contract/log.js';
import { newestCheckpoint, writeCheckpoint } from '../persistence/checkpoint-file.js';
import { lockDataDir, unlockDataDir } from '../persistence/private-files.js';
import { RestoreBatches } from '../persistence/restore.js';
import type { ShardPool } from '../shards/pool.js';

// Checkpoints of the swarms (README: checkpoints): every checkpoint.interval_seconds and at
// shutdown the shards write their peers out (shards/snapshot.ts) into data/checkpoint.
// Without a database, the newest whole one is put back at start (here), less the peers
// whose timeout passed meanwhile. With one, each checkpoint is tied to the accounting
// journal (`JournalSide`): it names the batch its tail starts at, and it is put in place
// only once the records of everything it holds are journalled; the persistence thread
// loads it and replays that tail (persistence/restore.ts).

export class Checkpoints {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  private constructor(
    private readonly pool: ShardPool,
    private readonly dir: string,
    private readonly log: Logger,
    private readonly journal: JournalSide | undefined,
  ) {}

  /**
   * Checkpoints in `dir`, locked for this tracker. A directory in use by another tracker
   * stops the start (two would overwrite each other's checkpoints); one that cannot be
   * written (a read-only disk) means serving without checkpoints, said in the log.
   */
  static open(pool: ShardPool, dir: string, log: Logger, journal?: JournalSide): Checkpoints | undefined {
    // with a journal the directory is the persistence thread's, locked by it already
    if (journal) return new Checkpoints(pool, dir, log, journal);
    try {
      lockDataDir(dir);
    } catch (e) {
      if (/is in use by process/.test((e as Error).message)) throw e;
      log(`checkpoints off: the data directory ${dir} cannot be written (${(e as Error).message}); swarms will not survive a restart`, 'error');
      return undefined;
    }
    return new Checkpoints(pool, dir, log, undefined);
  }

  /**
   * Put the newest usable checkpoint's peers back into the shards through `restore` (announce
   * records flagged AF_RESTORE), leaving out those silent for more than `peerTimeout`
   * seconds. Returns how many went back.
   */
  async load(peerTimeout: number, restore: (records: Uint8Array) => Promise<void>): Promise<number> {
    const cp = newestCheckpoint(this.dir, (file, why) => this.log(`checkpoint ${file} ignored: ${why}`, 'error'));
    if (cp === undefined) return 0;
    const now = Date.now() / 1000;
    const out = new RestoreBatches(restore);
    const old = await out.checkpoint(cp, now, peerTimeout);
    await out.flush();
    this.log(`restored ${out.count} peers from the checkpoint written ${Math.round(now - cp.writtenAt)} s ago (${old} had timed out meanwhile)`);
    return out.count;
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
        const m = await j?.mark();
        const tie = j && m && { journal: m.journal, from: m.batch + 1, beforeCommit: () => j.flush(m.batch + 1, last) };
        const peers = await writeCheckpoint(this.dir, this.pool.epoch, (append) => this.pool.snapshotPeers(append), tie);
        j?.written();
        this.log(`checkpoint: ${peers} peers written in ${Math.round(performance.now() - t0)} ms`, 'debug');
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** At shutdown, once nothing is served any more: the last, exact checkpoint; the lock goes. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => {});
    try {
      await this.take(true);
    } finally {
      if (!this.journal) unlockDataDir(this.dir);
    }
  }

  /** A start that failed: no checkpoint (the swarms are not what the last one holds), the lock goes. */
  async abandon(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => {});
    if (!this.journal) unlockDataDir(this.dir);
  }
}

import { AnnounceRequest } from '../contract/requests.js';
import { CHECKPOINT_RECORD, CheckpointRecord } from '../contract/checkpoint.js';
import type { Logger } from '../contract/log.js';
import { newestCheckpoint, writeCheckpoint } from '../persistence/checkpoint-file.js';
import { lockDataDir, unlockDataDir } from '../persistence/private-files.js';
import type { ShardPool } from '../shards/pool.js';

// Checkpoints of the swarms for a tracker without a database (README: checkpoints): every
// checkpoint.interval_seconds and at shutdown the shards write their peers out
// (shards/snapshot.ts) into data/checkpoint; at start the newest whole one is put back,
// less the peers whose timeout passed meanwhile. (With a database, the peers table does
// this job for now.)

/** Restored peers go to the shards this many at a time. */
const RESTORE_BATCH = 8192;

export class Checkpoints {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  private constructor(
    private readonly pool: ShardPool,
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  /**
   * Checkpoints in `dir`, locked for this tracker. A directory in use by another tracker
   * stops the start (two would overwrite each other's checkpoints); one that cannot be
   * written (a read-only disk) means serving without checkpoints, said in the log.
   */
  static open(pool: ShardPool, dir: string, log: Logger): Checkpoints | undefined {
    try {
      lockDataDir(dir);
    } catch (e) {
      if (/is in use by process/.test((e as Error).message)) throw e;
      log(`checkpoints off: the data directory ${dir} cannot be written (${(e as Error).message}); swarms will not survive a restart`, 'error');
      return undefined;
    }
    return new Checkpoints(pool, dir, log);
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
    const dv = new DataView(cp.body.buffer, cp.body.byteOffset, cp.body.byteLength);
    const out = new Uint8Array(RESTORE_BATCH * AnnounceRequest.SIZE);
    let n = 0;
    let kept = 0;
    const odv = new DataView(out.buffer);
    for (let i = 0; i < cp.peers; i++) {
      const r = i * CHECKPOINT_RECORD;
      const age = Math.max(0, Math.floor(now - (cp.epoch + dv.getUint32(r + CheckpointRecord.LAST_SEEN, true))));
      if (age > peerTimeout) continue;
      out.set(cp.body.subarray(r + CheckpointRecord.ANNOUNCE, r + CHECKPOINT_RECORD), n * AnnounceRequest.SIZE);
      odv.setUint32(n * AnnounceRequest.SIZE + AnnounceRequest.RESTORE_AGE, age, true); // it expires on time
      if (++n === RESTORE_BATCH) {
        await restore(out);
        kept += n;
        n = 0;
      }
    }
    if (n > 0) await restore(out.subarray(0, n * AnnounceRequest.SIZE));
    kept += n;
    const age = Math.round(now - cp.writtenAt);
    this.log(`restored ${kept} peers from the checkpoint written ${age} s ago (${cp.peers - kept} had timed out meanwhile)`);
    return kept;
  }

  /** Take checkpoints every `seconds` (0: only at shutdown). */
  every(seconds: number): void {
    if (seconds <= 0) return;
    this.timer = setInterval(() => void this.take().catch((e: Error) => this.log(`checkpoint failed: ${e.message}`, 'error')), seconds * 1000);
    this.timer.unref();
  }

  /** Write a checkpoint now (or wait for the one being written). */
  take(): Promise<void> {
    this.running ??= (async () => {
      try {
        const t0 = performance.now();
        const peers = await writeCheckpoint(this.dir, this.pool.epoch, (append) => this.pool.snapshotPeers(append));
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
      await this.take();
    } finally {
      unlockDataDir(this.dir);
    }
  }

  /** A start that failed: no checkpoint (the swarms are not what the last one holds), the lock goes. */
  async abandon(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => {});
    unlockDataDir(this.dir);
  }
}

import { AccountingRecord, ACF2_WS, ACF_HAS_KEY, ACF_PAUSED, ACF_REFUSED, ACF_STOPPED, ACF_V6 } from '../contract/accounting.js';
import { CHECKPOINT_RECORD, CheckpointRecord } from '../contract/checkpoint.js';
import { AF_COMPACT, AF_HAS_KEY, AF_RESTORE, AF_V6, AnnounceRequest, EVENT_NONE, EVENT_PAUSED, EVENT_STOPPED, KIND_ANNOUNCE } from '../contract/requests.js';
import type { Checkpoint } from './checkpoint-file.js';

// Swarms put back at start, as AnnounceRequest records flagged AF_RESTORE (the shards take
// them like announces, answer nobody and account nothing): first a checkpoint's peers, then
// the accounting journal's records from the checkpoint's batch on, oldest first. Each
// record holds the peer's state after an announce (address, key, reported totals, left;
// a stop removes it), so a peer ends with its last journalled state: exactly the totals the
// ledger counts up to, whatever the checkpoint caught of it while it was being written.
// A peer whose last announce is older than the timeout stays out (it would have expired).

/** Restored peers go to the shards this many at a time. */
const RESTORE_BATCH = 8192;

/** Fills buffers of restore records and hands each over when full (and at the end). */
export class RestoreBatches {
  private buf = new Uint8Array(RESTORE_BATCH * AnnounceRequest.SIZE);
  private dv = new DataView(this.buf.buffer);
  private n = 0;
  /** Records handed over so far. */
  count = 0;

  constructor(private readonly emit: (records: Uint8Array) => void | Promise<void>) {}

  /** Offset of a zeroed record to fill (the caller hands a full buffer over first: `full`). */
  private next(): number {
    const at = this.n++ * AnnounceRequest.SIZE;
    this.buf.fill(0, at, at + AnnounceRequest.SIZE);
    return at;
  }

  private get full(): boolean {
    return this.n === RESTORE_BATCH;
  }

  async flush(): Promise<void> {
    if (this.n === 0) return;
    const full = this.n === RESTORE_BATCH;
    const out = full ? this.buf : this.buf.slice(0, this.n * AnnounceRequest.SIZE);
    this.count += this.n;
    this.n = 0;
    if (full) {
      // handed over whole (the receiver may keep it): the next records go into a new one
      this.buf = new Uint8Array(RESTORE_BATCH * AnnounceRequest.SIZE);
      this.dv = new DataView(this.buf.buffer);
    }
    await this.emit(out);
  }

  /** The checkpoint's peers that have not timed out by `now` (unix s); returns how many were left out. */
  async checkpoint(cp: Checkpoint, now: number, peerTimeout: number): Promise<number> {
    const dv = new DataView(cp.body.buffer, cp.body.byteOffset, cp.body.byteLength);
    let old = 0;
    for (let i = 0; i < cp.peers; i++) {
      const r = i * CHECKPOINT_RECORD;
      const age = Math.max(0, Math.floor(now - (cp.epoch + dv.getUint32(r + CheckpointRecord.LAST_SEEN, true))));
      if (age > peerTimeout) {
        old++;
        continue;
      }
      if (this.full) await this.flush();
      const at = this.next();
      this.buf.set(cp.body.subarray(r + CheckpointRecord.ANNOUNCE, r + CHECKPOINT_RECORD), at);
      this.dv.setUint32(at + AnnounceRequest.RESTORE_AGE, age, true); // it expires on time
    }
    return old;
  }

  /**
   * The peers' states after the announces of one journalled chunk of accounting records
   * (AccountingRecord layout; `epoch` turns their clock into unix seconds). Stops are
   * restored as stops whatever their age: the peer may be in the checkpoint. `withFlags2`:
   * format-3 records, whose WebSocket peers (ACF2_WS) come back as stops.
   */
  async journal(data: Uint8Array, epoch: number, now: number, peerTimeout: number, withFlags2 = true): Promise<void> {
    const src = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const n = Math.floor(data.byteLength / AccountingRecord.SIZE);
    for (let i = 0; i < n; i++) {
      const r = i * AccountingRecord.SIZE;
      const flags = data[r + AccountingRecord.FLAGS];
      if (flags & ACF_REFUSED) continue; // changed nothing
      const age = Math.max(0, Math.floor(now - (epoch + src.getUint32(r + AccountingRecord.AT, true))));
      // a WebSocket peer's socket did not outlive the process: it left (and with it any older
      // copy of its peer_id the checkpoint holds)
      const stopped = (flags & ACF_STOPPED) !== 0 || (withFlags2 && (data[r + AccountingRecord.FLAGS2] & ACF2_WS) !== 0);
      if (!stopped && age > peerTimeout) continue;
      if (this.full) await this.flush();
      const at = this.next();
      const buf = this.buf;
      const dv = this.dv;
      buf[at + AnnounceRequest.KIND] = KIND_ANNOUNCE;
      buf[at + AnnounceRequest.EVENT] = stopped ? EVENT_STOPPED : flags & ACF_PAUSED ? EVENT_PAUSED : EVENT_NONE;
      buf[at + AnnounceRequest.FLAGS] = AF_RESTORE | AF_COMPACT | (flags & ACF_V6 ? AF_V6 : 0) | (flags & ACF_HAS_KEY ? AF_HAS_KEY : 0);
      dv.setUint32(at + AnnounceRequest.USER, src.getUint32(r + AccountingRecord.USER, true), true);
      dv.setUint32(at + AnnounceRequest.TORRENT, src.getUint32(r + AccountingRecord.TORRENT, true), true);
      buf.set(data.subarray(r + AccountingRecord.INFO_HASH, r + AccountingRecord.INFO_HASH + 20), at + AnnounceRequest.INFO_HASH);
      buf.set(data.subarray(r + AccountingRecord.PEER_ID, r + AccountingRecord.PEER_ID + 20), at + AnnounceRequest.PEER_ID);
      buf.set(data.subarray(r + AccountingRecord.IP, r + AccountingRecord.IP + 16), at + AnnounceRequest.IP);
      dv.setUint16(at + AnnounceRequest.PORT, src.getUint16(r + AccountingRecord.PORT, true), true);
      dv.setUint32(at + AnnounceRequest.KEY, src.getUint32(r + AccountingRecord.KEY, true), true);
      dv.setFloat64(at + AnnounceRequest.UPLOADED, src.getFloat64(r + AccountingRecord.TOTAL_UP, true), true);
      dv.setFloat64(at + AnnounceRequest.DOWNLOADED, src.getFloat64(r + AccountingRecord.TOTAL_DOWN, true), true);
      dv.setFloat64(at + AnnounceRequest.LEFT, src.getFloat64(r + AccountingRecord.LEFT, true), true);
      dv.setUint32(at + AnnounceRequest.RESTORE_AGE, age, true);
    }
  }
}

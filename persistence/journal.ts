import { createHash } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, readSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { openPrivate, privateDir, syncDir, writePrivate } from './private-files.js';
import { pack, unpack } from 'msgpackr';

// The accounting journal: batches of records are on disk before they count as taken, so a
// crash or a PostgreSQL outage loses nothing. One append-only file of frames:
//
//   u32 payload length | 8 bytes sha256(payload) prefix | payload (msgpack)
//
// payload = { k: 'batch', id, records } or { k: 'ack', id }. Each append is one write and
// one fsync. On open the file is scanned: a torn or corrupt tail (a crash mid-write) is cut
// off; batches without an ack are pending and are handed back for replay. Replaying a
// batch that did reach the database is harmless: the flush records batch ids in
// applied_batches in the same transaction, so a replay is recognised and skipped there.
// When every batch is acked (and none is kept, below) the file is rewritten empty
// (atomically, by rename).
//
// Acknowledged batches may be kept too (`keepFrom`): the swarms' state since the newest
// checkpoint is in them (persistence/restore.ts), so they stay until a later checkpoint
// no longer needs them. They count in the file's size (the disk budget) like the rest.

const HEADER = 12;
// Under sustained load some batch is always pending, so the file would never be emptied:
// past this size, when at most a quarter of it is still pending, it is rewritten with only
// the pending batches (the disk budget then measures what is really owed to the database).
const COMPACT_AT = 64 << 20;

export interface JournalBatch<R> {
  id: number;
  records: R[];
}

export class Journal<R = unknown> {
  private fd: number;
  private bytes = 0;
  // unacked batches: where their frame's payload is in the file (read back when replayed,
  // so an outage costs disk, bounded by the budget, not memory)
  private readonly pending = new Map<number, Frame>();
  private pendingBytes = 0; // frames of unacked batches
  // acked batches kept for a checkpoint's tail (ids ≥ keepFrom); what a compaction keeps is both
  private readonly kept = new Map<number, Frame>();
  private keptBytes = 0;
  private keepAt: number;
  private lastId = 0;
  /**
   * What opening the file cut off: a torn tail (a crash mid-write: expected, nothing to
   * keep) or, past a frame that fails its checksum, bytes saved aside in `savedTo` for an
   * operator (frames after a damaged one cannot be trusted to be read in place).
   */
  recovered: { cutBytes: number; savedTo?: string } = { cutBytes: 0 };

  private constructor(
    private readonly path: string,
    /** The directory it lives in (an operator may move it aside). */
    readonly dir: string,
    /** This journal's random identity: batch ids are unique only within it. */
    readonly id: string,
    /** Rewrite the file without its acknowledged batches once it is this big and mostly acked. */
    private readonly compactAt: number,
    keep: boolean,
  ) {
    this.fd = openPrivate(path, 'a+');
    this.keepAt = keep ? 0 : Infinity;
  }

  /**
   * Open (or create) the journal in `dir`, recovering what a previous run left. `keep`:
   * acknowledged batches are kept (every one found, until keepFrom() says from where).
   */
  static open<R>(dir: string, opts: { compactAt?: number; keep?: boolean } = {}): Journal<R> {
    privateDir(dir);
    const idFile = join(dir, 'journal.id');
    if (!existsSync(idFile)) {
      // durable before any batch carries it: a crash must not leave batches of an identity that is gone
      writePrivate(idFile, randomBytes(12).toString('hex'), 'wx');
      const fd = openSync(idFile, 'r');
      fsyncSync(fd);
      closeSync(fd);
      syncDir(dir);
    } else chmodSync(idFile, 0o600);
    const j = new Journal<R>(join(dir, 'accounting.journal'), dir, readFileSync(idFile, 'utf8').trim(), opts.compactAt ?? COMPACT_AT, opts.keep ?? false);
    j.recover();
    return j;
  }

  /** Bytes on disk (for the disk budget and its metric). */
  get size(): number {
    return this.bytes;
  }

  /** Highest batch id ever written: new batches continue after it. */
  get lastBatchId(): number {
    return this.lastId;
  }

  /** Batches written and not acknowledged, oldest first. */
  unacked(): JournalBatch<R>[] {
    return this.pendingIds().map((id) => ({ id, records: this.read(id) }));
  }

  /** Ids of the batches written and not acknowledged, oldest first. */
  pendingIds(): number[] {
    return [...this.pending.keys()];
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Bytes of the file no batch needs any more (acknowledged and not kept): a compaction frees them. */
  get deadSize(): number {
    return this.bytes - this.pendingBytes - this.keptBytes;
  }

  /** Bytes of the acknowledged batches kept for a checkpoint. */
  get keptSize(): number {
    return this.keptBytes;
  }

  /**
   * The ids of every batch the file holds (kept and pending) from the newest gap on, oldest
   * first: a run of consecutive ids ending at the last one written.
   */
  tail(): number[] {
    const ids: number[] = [];
    for (let id = this.lastId; this.pending.has(id) || this.kept.has(id); id--) ids.push(id);
    return ids.reverse();
  }

  /**
   * The file holds every batch from `id` to the last one written (`id` one past the last:
   * nothing after it to hold): what a checkpoint's tail from `id` needs.
   */
  holdsFrom(id: number): boolean {
    const tail = this.tail();
    return id >= (tail[0] ?? this.lastId + 1) && id <= this.lastId + 1;
  }

  /** Keep acknowledged batches from `id` on; those before it go (at the next compaction). */
  keepFrom(id: number): void {
    if (!(id >= 0)) throw new Error(`journal keepFrom: not a batch id: ${id}`);
    this.keepAt = id;
    for (const [k, f] of this.kept) {
      if (k >= id) continue;
      this.kept.delete(k);
      this.keptBytes -= HEADER + f.len;
    }
  }

  /** Rewrite the file now with only what is kept and pending. */
  compact(): void {
    this.rewrite();
  }

  /** The records of a batch the file holds (pending or kept), read back from it. */
  read(id: number): R[] {
    const p = this.pending.get(id) ?? this.kept.get(id);
    if (p === undefined) throw new Error(`journal has no batch ${id}`);
    const body = Buffer.allocUnsafe(p.len);
    let got = 0;
    while (got < p.len) got += readSync(this.fd, body, got, p.len - got, p.at + got);
    return (unpack(body) as { records: R[] }).records;
  }

  /** Make a batch durable. Returns once it is fsynced. */
  append(id: number, records: R[]): void {
    if (id <= this.lastId) throw new Error(`journal batch ids must increase: ${id} after ${this.lastId}`);
    const at = this.write({ k: 'batch', id, records });
    this.pending.set(id, { at: at + HEADER, len: this.bytes - at - HEADER, records: records.length });
    this.pendingBytes += this.bytes - at;
    this.lastId = id;
  }

  /**
   * The batch is committed in the database. When nothing is pending the file is emptied;
   * when it is big and mostly acknowledged, it is compacted.
   */
  ack(id: number): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    this.pendingBytes -= HEADER + p.len;
    this.hold(id, p);
    const live = this.pendingBytes + this.keptBytes;
    // emptied when nothing is live; compacted when mostly dead, or (batches kept for a
    // checkpoint being live for long) when the dead part is big and at least the live part
    if (live === 0 || (this.bytes >= this.compactAt && live * 4 <= this.bytes) || (this.deadSize >= this.compactAt && this.deadSize >= live)) this.rewrite();
    else this.write({ k: 'ack', id });
  }

  /** An acknowledged batch: kept if a checkpoint may need it. */
  private hold(id: number, f: Frame): void {
    if (id < this.keepAt) return;
    this.kept.set(id, f);
    this.keptBytes += HEADER + f.len;
  }

  close(): void {
    closeSync(this.fd);
  }

  /** Append one frame (and fsync, unless the caller does); returns its offset in the file. */
  private write(payload: object, sync = true): number {
    const at = this.bytes;
    const body = pack(payload);
    const frame = Buffer.allocUnsafe(HEADER + body.length);
    frame.writeUInt32LE(body.length, 0);
    createHash('sha256').update(body).digest().copy(frame, 4, 0, 8);
    body.copy(frame, HEADER);
    let off = 0;
    while (off < frame.length) off += writeSync(this.fd, frame, off, frame.length - off);
    if (sync) fsyncSync(this.fd);
    this.bytes += frame.length;
    return at;
  }

  /** Scan the file; keep every whole, intact frame; cut the rest. */
  private recover(): void {
    const buf = existsSync(this.path) ? readFileSync(this.path) : Buffer.alloc(0);
    let at = 0;
    let damaged = false;
    while (at + HEADER <= buf.length) {
      const len = buf.readUInt32LE(at);
      if (at + HEADER + len > buf.length) break; // torn tail
      const body = buf.subarray(at + HEADER, at + HEADER + len);
      damaged = !createHash('sha256').update(body).digest().subarray(0, 8).equals(buf.subarray(at + 4, at + 12));
      if (damaged) break;
      let payload: { k: string; id: number; records?: unknown[] };
      try {
        payload = unpack(body);
      } catch {
        damaged = true;
        break;
      }
      if (payload.k === 'batch') {
        this.pending.set(payload.id, { at: at + HEADER, len, records: payload.records?.length ?? 0 });
        this.pendingBytes += HEADER + len;
        if (payload.id > this.lastId) this.lastId = payload.id;
      } else if (payload.k === 'ack') {
        const p = this.pending.get(payload.id);
        if (p && !(payload as { last?: boolean }).last) {
          this.pendingBytes -= HEADER + p.len;
          this.pending.delete(payload.id);
          this.hold(payload.id, p);
        }
        if (payload.id > this.lastId) this.lastId = payload.id;
      }
      at += HEADER + len;
    }
    if (at < buf.length) {
      const rest = buf.subarray(at);
      // a crash can leave the file extended with zeros: a torn tail too, not damage
      if (damaged && rest.every((b) => b === 0)) damaged = false;
      this.recovered = { cutBytes: rest.length };
      if (damaged) {
        // Kept (durably, before the cut) for an operator: the frames past the damage may
        // hold batches and acks that can no longer be read in place.
        const saved = `${this.path}.damaged-${Date.now()}`;
        const fd = openSync(saved, 'w', 0o600);
        writeSync(fd, rest);
        fsyncSync(fd);
        closeSync(fd);
        syncDir(dirname(this.path));
        this.recovered.savedTo = saved;
        // Batch ids up to one per frame the cut bytes could hold may already be in the
        // database (applied_batches): new batches must not reuse them, or they would be
        // taken for replays and skipped.
        this.lastId += Math.ceil(rest.length / (HEADER + 1));
      }
      ftruncateSync(this.fd, at);
      fsyncSync(this.fd);
      this.bytes = at;
      if (damaged) this.write({ k: 'ack', id: this.lastId, last: true }); // the raised sequence survives a restart
      at = this.bytes;
    }
    this.bytes = at;
    if (this.pending.size === 0 && this.kept.size === 0 && at > 0) this.rewrite();
  }

  /**
   * Replace the file (atomically, by rename) with one holding only what is kept and
   * pending: a frame that keeps the id sequence (replays never meet a reused id), then each
   * batch's frame as it was, in id order, then the acks of the kept ones. With nothing kept
   * or pending that is an empty journal.
   */
  private rewrite(): void {
    const tmp = `${this.path}.tmp`;
    const old = this.fd;
    const fd = openPrivate(tmp, 'w+');
    this.fd = fd;
    this.bytes = 0;
    if (this.lastId > 0) this.write({ k: 'ack', id: this.lastId, last: true }, false);
    const frames = [...this.kept, ...this.pending].sort((a, b) => a[0] - b[0]);
    for (const [, p] of frames) {
      const frame = Buffer.allocUnsafe(HEADER + p.len);
      let got = 0;
      while (got < frame.length) got += readSync(old, frame, got, frame.length - got, p.at - HEADER + got);
      let put = 0;
      while (put < frame.length) put += writeSync(fd, frame, put, frame.length - put);
      p.at = this.bytes + HEADER;
      this.bytes += frame.length;
    }
    for (const id of this.kept.keys()) this.write({ k: 'ack', id }, false);
    fsyncSync(fd);
    closeSync(old);
    renameSync(tmp, this.path);
    syncDir(dirname(this.path)); // the rename itself must survive a crash
    if (fstatSync(this.fd).size !== this.bytes) throw new Error('journal rewrite: unexpected file size');
  }
}

/** Where a batch's frame payload is in the file. */
interface Frame {
  at: number;
  len: number;
  records: number;
}

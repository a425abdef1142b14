import { randomBytes } from 'node:crypto';
import { AccountingRecord, CHEAT_KINDS } from '../contract/accounting.js';
import type { Logger } from '../contract/log.js';
import { PersistenceStats } from '../contract/persistence-stats.js';
import type { Multipliers } from '../contract/registry.js';
import { RING_HEADER_BYTES, type ByteRing } from '../contract/ring.js';
import type { Database } from './database.js';
import type { Journal } from './journal.js';
import { APPLIED_DAYS, flushBatch } from './ledger.js';
import type postgres from 'postgres';
import { credit, decode, owesLedger } from './records.js';

// Accounting from the shards' rings into batches: each batch is made durable in the journal
// before the ring space is given back (a record is never in neither place), then committed
// to the database oldest first, exactly once by batch id, and acknowledged.
//
//   rings ──cut()──▶ journal (fsync) ──commitAll()──▶ PostgreSQL ──▶ ack

/** One journalled part of a batch: the records drained from one ring, binary (AccountingRecord layout). */
export interface Chunk {
  epoch: number;
  data: Uint8Array;
  /** Record format: 2 since the CHEATS byte, 3 since FLAGS2 (absent: a batch an older release journalled, whose byte 1 means nothing). */
  v?: number;
  /** The run of the tracker that journalled it (absent: an older release's batch). */
  run?: string;
}

/**
 * The name a batch's id is unique under in applied_batches: the journal's identity and the
 * run that wrote it. Every start is a new run, so a copied data directory (a clone, a
 * restored backup) never writes ids the database has seen from the original: its new
 * batches cannot be mistaken for replays and skipped. A replay after a crash carries the
 * run it was written in, and is recognised. Batches of older releases: the identity alone.
 */
export function batchNamespace(journalId: string, chunk: Pick<Chunk, 'run'> | undefined): string {
  return chunk?.run === undefined ? journalId : `${journalId}/${chunk.run}`;
}

/** The record format this release writes (contract/accounting.ts): 3 since FLAGS2. */
export const RECORD_FORMAT = 3;

export interface BatchSettings {
  /** unix seconds at tracker clock 0 */
  epoch: number;
  journalMaxBytes: number;
  /** transactions a batch is written with in parallel (1 on the embedded database) */
  parts: number;
}

const BUDGET_WARN = 0.8;

export class Batches {
  /** A commit is running (the next waits for it). */
  committing = false;
  /** The journal was closed at shutdown: a commit finishing after it is acked at the next start. */
  journalClosed = false;
  /** The budget made the journal drop the batches a checkpoint needed: a new one is wanted. */
  tailDropped = false;
  private readonly scratch: Uint8Array;
  /** Word views of the scratch and of each ring: a record is copied without a view per record. */
  private readonly scratch32: Int32Array;
  private readonly rings32: Int32Array[];
  private readonly journalledAt = new Map<number, number>(); // batch id → unix s
  /** This start of the tracker (batchNamespace). */
  private readonly run = randomBytes(6).toString('hex');
  /** Claims cut by a bound, by kind: the stats words /metrics reads. */
  private get cheats(): Float64Array {
    return this.stats.subarray(PersistenceStats.CHEATS, PersistenceStats.CHEATS + CHEAT_KINDS.length);
  }
  private budgetWarned = 0;
  /** The last cut left records owed to the ledger in the rings, at the budget. */
  private stalled = false;

  constructor(
    private readonly rings: ByteRing[],
    readonly journal: Journal<Chunk>,
    private readonly db: Database,
    private readonly settings: BatchSettings,
    private readonly multipliers: (torrent: number) => Multipliers | undefined,
    private readonly stats: Float64Array,
    private readonly log: Logger,
  ) {
    this.scratch = new Uint8Array(Math.max(...rings.map((r) => r.sab.byteLength - RING_HEADER_BYTES)));
    this.scratch32 = new Int32Array(this.scratch.buffer);
    this.rings32 = rings.map((r) => new Int32Array(r.sab));
    stats[PersistenceStats.JOURNAL_BUDGET] = settings.journalMaxBytes;
    const now = Date.now() / 1000;
    for (const id of journal.pendingIds()) this.journalledAt.set(id, now);
    this.publish();
  }

  /** Some ring is more than a quarter full: cut now rather than at the interval. */
  get pressure(): boolean {
    return this.rings.some((r) => r.depth() * 4 > r.sab.byteLength);
  }

  get pending(): number {
    return this.journal.pendingCount;
  }

  /**
   * Move every published record into one journal batch. The ring space is released only
   * once the batch is fsynced. A batch of peers' states alone (ACF_STATE: nothing owed to
   * the ledger) is acknowledged at once, kept only for a checkpoint's tail. Past the disk
   * budget, records owed to the ledger stay in the rings (and the shards wait) rather than
   * be dropped; states alone are dropped (a checkpoint is asked for), never waited for. At
   * shutdown (`force`) everything goes to the journal, since the rings die with the
   * process. False when records stayed in the rings.
   */
  cut(force = false): boolean {
    let bytes = 0;
    for (const r of this.rings) bytes += r.depth();
    if (bytes === 0) return true;
    const max = this.settings.journalMaxBytes;
    // (a rewrite always leaves a few small frames dead: compact only when that makes the room)
    if (!force && this.journal.size + bytes > max && this.journal.size - this.journal.deadSize + bytes <= max) this.journal.compact();
    if (!force && this.journal.size + bytes > max && this.journal.keptSize > 0) {
      // Accounting comes first: the batches kept for the checkpoint's tail go. The swarms
      // then come back from the next checkpoint, asked for now (a restart before it: from
      // what is left).
      this.journal.keepFrom(this.journal.lastBatchId + 1);
      this.journal.compact();
      this.tailDropped = true;
      this.log(`journal at its disk budget: the batches kept for the last checkpoint's tail were dropped`, 'warn');
    }
    const over = !force && this.journal.size + bytes > max;
    // (records owed to the ledger waiting at the head of a ring stay there until there is room)
    if (over && this.stalled) return this.stall();
    const { chunks, count, owed } = this.drain();
    if (over) {
      if (!owed) {
        for (const ring of this.rings) ring.release();
        this.stats[PersistenceStats.STATES_DROPPED] += count;
        this.tailDropped = true;
        this.warnStall(`journal at its disk budget (${this.journal.size} of ${max} bytes, owed to the database): peers' states are not journalled until there is room (a crash then loses the swarms' changes since the last checkpoint)`);
        return true;
      }
      for (const ring of this.rings) ring.unread();
      this.stalled = true;
      return this.stall();
    }
    this.stalled = false;
    for (const c of chunks) credit(c.data, c.data.length / AccountingRecord.SIZE, this.settings.epoch, this.multipliers, this.cheats);
    const id = this.journal.lastBatchId + 1;
    this.journal.append(id, chunks);
    for (const ring of this.rings) ring.release();
    if (owed) this.journalledAt.set(id, Date.now() / 1000);
    else this.journal.ack(id); // nothing owed to anyone
    this.stats[PersistenceStats.RECORDS_JOURNALLED] += count;
    this.publish();
    this.warnBudget();
    return true;
  }

  /** Every published record, one chunk a ring (not yet credited); `owed`: some are the ledger's. */
  private drain(): { chunks: Chunk[]; count: number; owed: boolean } {
    const chunks: Chunk[] = [];
    let count = 0;
    let owed = false;
    const to = this.scratch32;
    const WORDS = AccountingRecord.SIZE >> 2;
    for (const [i, ring] of this.rings.entries()) {
      const from = this.rings32[i];
      let n = 0;
      // (records start 8-aligned in the ring; Int32 words, not Float64: bytes are copied as they are)
      for (let off = ring.next(); off >= 0; off = ring.next()) {
        const src = off >> 2;
        const dst = n * WORDS;
        for (let w = 0; w < WORDS; w++) to[dst + w] = from[src + w];
        n++;
      }
      if (n === 0) continue;
      const data = this.scratch.slice(0, n * AccountingRecord.SIZE);
      owed ||= owesLedger(data);
      chunks.push({ epoch: this.settings.epoch, data, v: RECORD_FORMAT, run: this.run });
      count += n;
    }
    return { chunks, count, owed };
  }

  private stall(): false {
    this.stats[PersistenceStats.BUDGET_STALLS]++;
    this.warnStall(`journal at its disk budget (${this.journal.size} of ${this.settings.journalMaxBytes} bytes) with the database away: announces wait until it returns`);
    return false;
  }

  private warnStall(msg: string): void {
    if (Date.now() - this.budgetWarned < 10_000) return;
    this.budgetWarned = Date.now();
    this.log(msg, 'error');
  }

  /**
   * Pending batches that hold peers' states alone (a crash came between a batch's fsync and
   * its acknowledgement): acknowledged, nothing being owed for them. Without a database, at
   * start (with one, commitAll() does it as it goes).
   */
  settleStates(): void {
    for (const id of this.journal.pendingIds()) {
      if (!this.journal.read(id).some((c) => owesLedger(c.data))) this.acked(id);
    }
    this.publish();
  }

  private warnBudget(): void {
    const max = this.settings.journalMaxBytes;
    const owed = this.journal.size - this.journal.keptSize; // (kept batches give way when the budget is reached)
    const share = owed / max;
    if (share >= BUDGET_WARN && Date.now() - this.budgetWarned > 60_000) {
      this.budgetWarned = Date.now();
      this.log(`journal is at ${Math.round(share * 100)}% of its disk budget (${owed} bytes owed to the database): it has been away since batch ${this.journal.pendingIds()[0]}`, 'error');
    }
  }

  /**
   * Before replaying anything (at start, database or not): is the journal one the database
   * can tell the replays of? A batch older than applied_batches remembers (a data directory
   * restored from an old backup) could be counted twice: refused, saying what to do.
   */
  checkAge(): void {
    const ids = this.journal.pendingIds();
    if (ids.length > 0) {
      const [c] = this.journal.read(ids[0]);
      const at = c === undefined || c.data.length < AccountingRecord.SIZE ? 0 : c.epoch + new DataView(c.data.buffer, c.data.byteOffset).getUint32(AccountingRecord.AT, true);
      if (at > 0 && Date.now() / 1000 - at > (APPLIED_DAYS - 1) * 86400) {
        throw new Error(
          `the journal holds ${ids.length} batches not known to be committed, the oldest from ${new Date(at * 1000).toISOString()}: ` +
            `older than the database remembers which batches it applied (${APPLIED_DAYS} days), so replaying them could count them twice. ` +
            `If this data directory was restored from a backup, move ${this.journal.dir} aside and start again (its batches are not replayed; ` +
            `check them against the ledger first: README, "Backups and copies")`,
        );
      }
    }
  }

  /**
   * A database that has applied later batches of this journal than the file holds (a copy
   * of the data directory, an older backup) is said in the log: new batches are counted
   * under this run's own name, so nothing collides. True in that case: the ledger has
   * moved past what this directory's checkpoint and journal say of the peers' totals.
   */
  async checkAhead(sql: postgres.Sql): Promise<boolean> {
    const [{ high }] = await sql<{ high: string | null }[]>`
      SELECT max(batch_id)::text AS high FROM applied_batches WHERE journal = ${this.journal.id} OR journal LIKE ${this.journal.id + '/%'}`;
    if (high !== null && Number(high) > this.journal.lastBatchId) {
      this.log(
        `journal ${this.journal.id} is at batch ${this.journal.lastBatchId} but the database has applied batch ${high} of it: this data directory ` +
          `is a copy or an older backup. Its new batches are counted under this run's own name (nothing collides); its pending ones are replayed once. ` +
          `Its swarms start empty: the totals its checkpoint and journal hold are older than the ledger's (each peer's next announce is a baseline).`,
        'warn',
      );
      return true;
    }
    return false;
  }

  /** Commit pending batches oldest first, until none is left or the database fails. */
  async commitAll(): Promise<void> {
    if (this.committing) return;
    this.committing = true;
    try {
      for (const id of this.journal.pendingIds()) {
        const sql = this.db.sql;
        if (sql === undefined) return; // reconnect first: it also loads the registry and listens
        const chunks = this.journal.read(id);
        const records = chunks.flatMap((c) => decode(c.data, c.epoch, (c.v ?? 1) >= 2));
        if (records.length === 0) {
          // peers' states only (open mode, unregistered torrents): nothing for the ledger
          if (this.journalClosed) return;
          this.acked(id);
          this.publish();
          continue;
        }
        const t0 = performance.now();
        let r;
        try {
          // a batch gets 1 ms a record on top of the usual time
          r = await this.db.guarded(flushBatch(sql, id, records, { journal: batchNamespace(this.journal.id, chunks[0]), parts: this.settings.parts }), 10_000 + records.length);
        } catch (e) {
          this.db.failed(`batch ${id} not committed (${(e as Error).message})`);
          return;
        }
        this.db.setUp();
        this.stats[PersistenceStats.LAST_FLUSH_MS] = performance.now() - t0;
        if (this.journalClosed) return; // committed; acked as a replay at the next start
        this.acked(id);
        this.stats[PersistenceStats.BATCHES_COMMITTED]++;
        this.stats[PersistenceStats.RECORDS_COMMITTED] += records.length;
        if (!r.applied) this.stats[PersistenceStats.BATCHES_REPLAYED]++;
        this.stats[PersistenceStats.FLAGS_TWICE_SIZE] += r.flagsTwiceSize;
        if (r.deadLetters > 0) {
          this.stats[PersistenceStats.DEAD_LETTERS] += r.deadLetters;
          this.log(`batch ${id}: ${r.deadLetters} records refused by the database, kept in dead_letters`, 'warn');
        }
        this.publish();
      }
    } finally {
      this.committing = false;
    }
  }

  private acked(id: number): void {
    this.journal.ack(id);
    this.journalledAt.delete(id);
  }

  /** The journal's size, backlog and oldest pending batch, into the stats block. */
  private publish(): void {
    const s = this.stats;
    s[PersistenceStats.JOURNAL_BYTES] = this.journal.size;
    s[PersistenceStats.PENDING_BATCHES] = this.journal.pendingCount;
    let oldest = 0;
    for (const t of this.journalledAt.values()) if (oldest === 0 || t < oldest) oldest = t;
    s[PersistenceStats.OLDEST_PENDING] = oldest;
  }
}

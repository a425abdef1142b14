// The persistence thread: drains the shards' accounting rings, makes each batch durable in
// the journal before the ring space is given back, commits batches to the database in
// order (exactly once, by batch id), and keeps the acceptor's registry in step with the
// database. Announces never wait on it: the shards only stop when a ring is full, which
// happens only when the journal has reached its disk budget.
//
//   rings ──cut()──▶ journal (fsync) ──commit()──▶ PostgreSQL ──▶ ack
//
// While the database is away, batches pile up in the journal (disk, not memory) and are
// committed oldest first when it returns. A crash at any point replays what the journal
// holds; batches that did reach the database are recognised by id and skipped.
//
// Without a database (`database: false`) the thread keeps only the journal of peers'
// states: every batch is acknowledged once fsynced and kept for the checkpoints' tails.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import type { LogLevel } from '../contract/log.js';
import { ByteRing } from '../contract/ring.js';
import { Batches, type Chunk } from './batches.js';
import { Database, DB_TIMEOUT_MS } from './database.js';
import { Journal } from './journal.js';
import { checkpointFrom, CHECKPOINT_FILE, newestCheckpoint, PREVIOUS_FILE } from './checkpoint-file.js';
import { clearLegacyPeers, restoreLegacyPeers } from './peers.js';
import { RestoreBatches } from './restore.js';
import { lockDataDir, unlockDataDir } from './private-files.js';
import { rmSync } from 'node:fs';
import type { FromPersistence, ToPersistence } from './persistence.js';
import { ensureFirstUser, pruneChanges } from './registry.js';
import { REGISTRY_TIMEOUT_MS, RegistrySync } from './registry-sync.js';

/** What the persistence thread is told to do (configuration, resolved by the engine). */
export interface PersistenceSettings {
  /** False: no ledger and no registry, only the journal of peers' states (for the checkpoints' tails). */
  database: boolean;
  url: string; // '' = the embedded database under dataDir
  schema: string;
  dataDir: string;
  flushIntervalMs: number;
  journalMaxBytes: number;
  /** Transactions (and connections) a batch is written with in parallel; 1 on the embedded database. */
  flushConnections: number;
  peerTimeout: number;
  /**
   * Checkpoints are taken (engine/checkpoints.ts): the swarms come back at start from the
   * newest and the journal's tail after it, kept for them. Off: swarms start empty.
   */
  checkpoints: boolean;
  /** Private mode: create a first user when there is none, and say its passkey. */
  firstUser: boolean;
}

export interface PersistenceWorkerData extends PersistenceSettings {
  rings: SharedArrayBuffer[];
  stats: SharedArrayBuffer;
  epoch: number; // unix seconds at tracker clock 0
}

const TICK_MS = 20;
const PRUNE_EVERY_MS = 60_000;
/** Past this share of the disk budget in batches kept for a checkpoint's tail, a checkpoint is asked for. */
const KEPT_SHARE = 0.25;
const WANT_EVERY_MS = 30_000;
/** Restore buffers (8192 peers each) handed to the acceptor and not yet in the shards' rings. */
const RESTORE_IN_FLIGHT = 4;
const CLOSE_TIMEOUT_MS = 15_000;
const RESTORE_TIMEOUT_MS = 600_000; // reading every peer back at start (millions of rows)

const data = workerData as PersistenceWorkerData;
const port = parentPort!;
const post = (m: FromPersistence): void => port.postMessage(m);
const log = (msg: string, level: LogLevel = 'info'): void => post({ type: 'log', msg: `persistence: ${msg}`, level });

/** The thread's loop: when to cut, commit, reconnect, prune and poll; start-up and shutdown. */
class Persister {
  private readonly stats = new Float64Array(data.stats);
  private readonly db = new Database(data, this.stats, log);
  private readonly registry = new RegistrySync(
    this.db,
    {
      snapshot: (snapshot, reload) => post({ type: 'registry', snapshot, reload }),
      delta: (delta, reload) => post({ type: 'registry-delta', delta, reload }),
      failed: (reload) => post({ type: 'registry-failed', reload }),
    },
    this.stats,
    log,
    data.dataDir,
  );
  private readonly batches: Batches;
  private nextCut = 0;
  private connecting = false;
  private lastPrune = Date.now();
  private closing = false;
  /** Rows of the peers table (releases before checkpoints) still to delete, once the database is up. */
  private legacyRows = true;
  private wanted = 0;
  private restoreSent = 0;
  private restoreAcked = 0;
  private readonly restoreAcks = new Map<number, () => void>();
  private restoring: Promise<void> = Promise.resolve();
  private clearing: Promise<void> | undefined;
  private legacyWarned = 0;

  constructor() {
    lockDataDir(data.dataDir); // the journal, the registry snapshot, credentials: this user's only, and this tracker's
    // compacted well before the budget: with checkpoints the file is never all acknowledged
    const compactAt = Math.min(64 << 20, Math.max(1 << 20, Math.floor(data.journalMaxBytes / 8)));
    const journal = Journal.open<Chunk>(join(data.dataDir, 'journal'), { keep: data.checkpoints, compactAt });
    const cut = journal.recovered;
    if (cut.savedTo !== undefined) log(`journal damaged: ${cut.cutBytes} bytes after the last intact batch could not be read; kept in ${cut.savedTo}`, 'error');
    else if (cut.cutBytes > 0) log(`journal: cut ${cut.cutBytes} bytes of a batch being written when the last run crashed (never taken: its peers' next announces count from their committed totals)`, 'warn');
    this.batches = new Batches(
      data.rings.map((sab) => new ByteRing(sab)),
      journal,
      this.db,
      { epoch: data.epoch, journalMaxBytes: data.journalMaxBytes, parts: data.url === '' ? 1 : data.flushConnections },
      (t) => this.registry.multipliers.get(t),
      this.stats,
      log,
    );
    if (data.database) this.batches.checkAge();
  }

  /**
   * The swarms as the newest checkpoint this journal can complete and the journal's batches
   * from its tail on hold them (persistence/restore.ts). 'none' when there is none (nothing
   * sent to the shards); 'partial' when the journal did not hold its whole tail (without a
   * database only: the next start could not complete it either).
   */
  private async restoreCheckpoint(out: RestoreBatches): Promise<'none' | 'whole' | 'partial'> {
    const j = this.batches.journal;
    const held = j.tail();
    const cp = newestCheckpoint(data.dataDir, (file, why) => log(`checkpoint ${file} ignored: ${why}`, 'warn'), (c) => {
      // without a database there is no ledger to agree with: any whole checkpoint will do,
      // completed by as much of its tail as the journal holds
      if (!data.database) return undefined;
      if (c.journal === '') return 'written without the accounting journal (by a tracker without a database, or an older release)';
      if (c.journal !== j.id) return `written with another journal (${c.journal}; this one is ${j.id})`;
      if (!j.holdsFrom(c.from)) return `the journal no longer holds its tail from batch ${c.from} (it holds ${held[0] ?? j.lastBatchId + 1}…${j.lastBatchId})`;
      return undefined;
    });
    if (cp === undefined) return 'none';
    const now = Date.now() / 1000;
    const old = await out.checkpoint(cp, now, data.peerTimeout);
    const whole = this.tiedHere(cp);
    const tail = whole ? held.filter((id) => id >= cp.from) : [];
    // (a start checkpoint then makes it whole again)
    if (!whole) log(cp.from === 0 ? 'the checkpoint was written by an older release, without a journal: loaded alone' : `the journal does not hold the checkpoint's tail (from batch ${cp.from}): peers that changed after it come back as it holds them`, 'warn');
    await this.replay(out, tail, now);
    log(
      `restoring the swarms: the checkpoint written ${Math.round(now - cp.writtenAt)} s ago (${cp.peers - old} peers; ${old} had timed out meanwhile), ` +
        `then the journal's ${tail.length} batches after it`,
    );
    return whole ? 'whole' : 'partial';
  }

  /**
   * Does the journal hold the whole tail of the checkpoint? One tied to this journal, or
   * without a database one written by a tracker without one (tied to no ledger: journal '').
   */
  private tiedHere(c: { journal: string; from: number }): boolean {
    const j = this.batches.journal;
    const ours = c.journal === j.id || (!data.database && c.journal === '' && c.from > 0);
    return ours && j.holdsFrom(c.from);
  }

  /**
   * Hand restore records to the acceptor, at most RESTORE_IN_FLIGHT buffers unanswered (a
   * journal's tail can hold millions of records: the acceptor's queue must not hold them all).
   */
  private restore(records: Uint8Array): Promise<void> {
    const id = ++this.restoreSent;
    post({ type: 'restore', records, id });
    this.restoring = new Promise<void>((resolve) => this.restoreAcks.set(id, resolve));
    // wait for the one RESTORE_IN_FLIGHT back: the acceptor always has the next ones at hand
    const behind = id - RESTORE_IN_FLIGHT;
    if (behind <= this.restoreAcked) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const before = this.restoreAcks.get(behind)!;
      this.restoreAcks.set(behind, () => (before(), resolve()));
    });
  }

  /** The acceptor has put restore buffer `id` (and every one before it) into the shards' rings. */
  restored(id: number): void {
    this.restoreAcked = id;
    this.restoreAcks.get(id)?.();
    this.restoreAcks.delete(id);
  }

  /**
   * This directory is behind the ledger: its checkpoints (and the batches kept for them)
   * would bring back totals older than those counted, at this start or a later one.
   */
  private forgetCheckpoints(): void {
    for (const f of [CHECKPOINT_FILE, PREVIOUS_FILE]) rmSync(join(data.dataDir, f), { force: true });
    const j = this.batches.journal;
    if (data.checkpoints) {
      j.keepFrom(j.lastBatchId + 1);
      j.compact();
    }
  }

  /** The peers table of an older release, emptied (once) before anything is committed. */
  private clearLegacy(): Promise<void> {
    if (!this.legacyRows || this.db.sql === undefined) return Promise.resolve();
    this.clearing ??= this.db
      .guarded(clearLegacyPeers(this.db.sql))
      .then(() => void (this.legacyRows = false))
      .finally(() => (this.clearing = undefined));
    return this.clearing;
  }

  /**
   * The old peers table could not be emptied: PostgreSQL refused (a lock held by a reader,
   * a privilege): said, and tried again at the next commit, the batches waiting in the
   * journal meanwhile; anything else is the connection's fault.
   */
  private legacyFailed(e: Error): void {
    if (typeof (e as { code?: unknown }).code !== 'string') return this.db.drop(`old peers table: ${e.message}`);
    if (Date.now() - this.legacyWarned < 60_000) return;
    this.legacyWarned = Date.now();
    log(`the peers table of an older release cannot be emptied (${e.message}): the ledger waits for it, its batches kept in the journal`, 'error');
  }

  /** Commit the journal's pending batches (not before the old peers table is emptied). */
  private async commit(): Promise<void> {
    await this.clearLegacy();
    await this.batches.commitAll();
  }

  /** Replay the peers' states in journal batches `ids` (oldest first). */
  private async replay(out: RestoreBatches, ids: number[], now: number): Promise<void> {
    for (const id of ids) for (const c of this.batches.journal.read(id)) await out.journal(c.data, c.epoch, now, data.peerTimeout, (c.v ?? 1) >= 3);
    await out.flush();
  }

  /**
   * Keep the journal's batches that the checkpoint and the previous one need for their
   * tails (the previous one: in case the newest turns out unreadable), or with neither, those
   * from `fallback` on (what the swarms were restored from, until the first checkpoint).
   */
  private keepForCheckpoints(fallback?: number): void {
    const j = this.batches.journal;
    const froms = [CHECKPOINT_FILE, PREVIOUS_FILE]
      .map((f) => checkpointFrom(join(data.dataDir, f)))
      .filter((c) => c !== undefined && this.tiedHere(c))
      .map((c) => c!.from);
    const from = froms.length > 0 ? Math.min(...froms) : fallback;
    if (from !== undefined) j.keepFrom(from);
  }

  async start(): Promise<void> {
    const journal = this.batches.journal;
    if (!data.database) this.batches.settleStates(); // (with one, commit() acknowledges them as it goes)
    const pending = this.batches.pending;
    if (pending > 0) log(`journal holds ${pending} batches not known to be committed: ${data.database ? 'replaying them' : 'kept for a start with the database'}`, 'warn');
    // what the swarms are restored from when no checkpoint will do: the journal's tail as it
    // is now (every batch of it, or with the old peers table as the base, its pending ones)
    const held = journal.tail();
    const firstPending = journal.pendingIds()[0] ?? journal.lastBatchId + 1;
    const out = new RestoreBatches((records) => this.restore(records));
    // A data directory behind the ledger (a copy whose original went on, an older backup)
    // holds totals older than those counted: its swarms start empty. (Without the database
    // at start that cannot be asked: the checkpoint is trusted.)
    let trusted = true;
    if (data.database && (await this.db.connect())) {
      try {
        trusted = !(await this.db.guarded(this.batches.checkAhead(this.db.sql!)));
      } catch (e) {
        this.db.drop(`start: ${(e as Error).message}`);
      }
    }
    if (!trusted) this.forgetCheckpoints();
    // the registry loads while the swarms are put back (neither needs the other)
    // (not on the embedded database: it computes on this thread and answers one client at a time)
    const registryLoad = this.db.sql === undefined || data.url === '' ? undefined : this.db.guarded(this.registry.reload(), REGISTRY_TIMEOUT_MS);
    registryLoad?.catch(() => {}); // (awaited below)
    const restoring = data.checkpoints && trusted;
    const restored = restoring ? await this.restoreCheckpoint(out) : 'none';
    const fromCheckpoint = restored !== 'none';
    let loaded = false;
    let legacy = 0;
    if (this.db.sql !== undefined) {
      try {
        // An older release kept swarms in the peers table, in step with the ledger as
        // committed: without a checkpoint, those rows are the base and the journal's
        // pending batches (written by that release, not in the rows) its tail. Read once,
        // and emptied before this release commits anything (rows left behind the ledger
        // would count the difference twice at a later start).
        if (restoring && !fromCheckpoint) {
          legacy = await this.db.guarded(restoreLegacyPeers(this.db.sql!, data.peerTimeout, (records) => this.restore(records)), RESTORE_TIMEOUT_MS);
        }
        await this.clearLegacy();
        await this.commit();
        if (this.db.sql === undefined) throw new Error('database lost while replaying the journal');
        await (registryLoad ?? this.db.guarded(this.registry.reload(), REGISTRY_TIMEOUT_MS));
        loaded = true;
        if (data.firstUser) {
          const made = await this.db.guarded(ensureFirstUser(this.db.sql!, randomBytes(16).toString('hex')));
          if (made !== null) {
            await this.db.guarded(this.registry.reload(), REGISTRY_TIMEOUT_MS);
            post({ type: 'first-user', passkey: made });
          }
        }
        if (data.url !== '') await this.db.guarded(this.registry.listen(data.schema));
      } catch (e) {
        // serve anyway; the tick loop reconnects, reloads and listens when it can
        this.db.drop(`start: ${(e as Error).message}`);
      }
    }
    // swarms put back from something other than a checkpoint of this journal: a checkpoint
    // now is the base of the next start (and lets the batches kept meanwhile go)
    let unbased = restored === 'partial';
    if (restoring && !fromCheckpoint) {
      // no checkpoint: the swarms as the journal's tail holds them (any run of batches up
      // to the last is safe: each peer ends with its last journalled state)
      const tail = legacy > 0 ? held.filter((id) => id >= firstPending) : held;
      unbased = legacy > 0 || tail.length > 0;
      await this.replay(out, tail, Date.now() / 1000);
      if (legacy > 0) log(`restoring the swarms: ${legacy} peers from the peers table of an older release, then the journal's ${tail.length} batches not in it`);
      else if (tail.length > 0) log(`restoring the swarms: no usable checkpoint; the journal's ${tail.length} batches held`, 'warn');
      this.keepForCheckpoints(held[0] ?? journal.lastBatchId + 1);
    } else if (data.checkpoints) this.keepForCheckpoints(journal.lastBatchId + 1);
    if (data.database && !loaded && !this.registry.loadSaved()) {
      log('database unreachable at start and no saved registry: private announces are refused until it is reachable', 'error');
    }
    await this.restoring;
    post({ type: 'ready', db: this.db.embedded?.address ?? null, checkpointNow: data.checkpoints && unbased });
    this.nextCut = Date.now() + data.flushIntervalMs;
    setInterval(() => this.tick(), TICK_MS);
  }

  /** The database was unreachable (or its client dropped): once it answers, load the registry and follow it. */
  private async reconnect(): Promise<void> {
    this.connecting = true;
    try {
      if (!(await this.db.connect())) return;
      await this.db.guarded(this.registry.reload(), REGISTRY_TIMEOUT_MS);
      if (data.url !== '') await this.db.guarded(this.registry.listen(data.schema));
    } catch (e) {
      // without a registry and LISTEN the client is no use: start over on the next tick
      this.db.drop(`registry load failed: ${(e as Error).message}`);
    } finally {
      this.connecting = false;
    }
  }

  private tick(): void {
    if (this.closing) return;
    const now = Date.now();
    if (now >= this.nextCut || this.batches.pressure) {
      this.nextCut = now + data.flushIntervalMs;
      this.batches.cut();
    }
    if (!data.database) {
      // (only the journal: nothing to commit, nobody to follow)
    } else if (this.db.sql === undefined && !this.connecting && now >= this.db.retryAt) void this.reconnect();
    else if (this.batches.pending > 0 && !this.batches.committing && now >= this.db.retryAt) void this.commit().catch((e: Error) => this.legacyFailed(e));
    const b = this.batches;
    if (data.checkpoints && (b.tailDropped || b.journal.keptSize > data.journalMaxBytes * KEPT_SHARE) && now - this.wanted > WANT_EVERY_MS) {
      this.wanted = now;
      b.tailDropped = false;
      post({ type: 'checkpoint-wanted' });
    }
    // (not while the database is away: the batch retries find out when it is back)
    if (!data.database || !this.db.up || this.connecting) return;
    if (now - this.lastPrune > PRUNE_EVERY_MS) {
      this.lastPrune = now;
      pruneChanges(this.db.sql!).catch(() => {});
    }
    this.registry.tick();
  }

  /** A checkpoint begins: the last batch journalled before its first swarm is written. */
  mark(id: number): void {
    // (without a database the checkpoint names no journal: one with a database must not take it,
    // its users being another registry's)
    post({ type: 'answer', id, journal: data.database ? this.batches.journal.id : '', batch: this.batches.journal.lastBatchId });
  }

  /**
   * A checkpoint whose tail starts at batch `from` is whole: journal what the shards
   * published up to now, and say whether the journal still holds that tail (the disk budget
   * may have made it drop it) before the checkpoint is put in place. At shutdown (`last`)
   * the shards have stopped and everything goes to the journal whatever the budget.
   */
  flush(id: number, from: number, last: boolean): void {
    const j = this.batches.journal;
    if (this.batches.journalClosed) return post({ type: 'answer', id, error: 'the journal is closed' });
    if (!this.batches.cut(last)) return post({ type: 'answer', id, error: 'the journal is at its disk budget (the database has been away): the checkpoint is not put in place' });
    if (!j.holdsFrom(from)) return post({ type: 'answer', id, error: `the journal dropped the checkpoint's tail (from batch ${from}) at its disk budget: the checkpoint is not put in place` });
    post({ type: 'answer', id, batch: j.lastBatchId });
  }

  /** A checkpoint was put in place: the journal keeps only what it and the previous one need. */
  checkpointed(): void {
    if (!this.batches.journalClosed) this.keepForCheckpoints();
  }

  /** The admin API changed the registry: load it now and say which request this answers. */
  reloadFor(id: number): Promise<void> {
    return this.registry.reloadFor(id);
  }

  /** The driver lost a socket nobody was waiting on: replace the client. */
  dropClient(why: string): void {
    this.db.drop(why);
  }

  /** Take everything left in the rings and commit it (or leave it in the journal). */
  async close(): Promise<void> {
    this.closing = true;
    const b = this.batches;
    b.cut(true); // the shards have stopped: this is everything
    const deadline = Date.now() + CLOSE_TIMEOUT_MS;
    while (data.database && b.pending > 0 && Date.now() < deadline) {
      if (!b.committing && !this.connecting && Date.now() >= this.db.retryAt) {
        if (this.db.sql === undefined) await this.reconnect();
        else await this.commit().catch((e: Error) => this.legacyFailed(e));
      }
      if (b.pending > 0) await new Promise((r) => setTimeout(r, 50));
    }
    // a commit started by the tick loop may still be running: the journal stays open for its ack
    while ((b.committing || this.connecting) && Date.now() < deadline + DB_TIMEOUT_MS) await new Promise((r) => setTimeout(r, 20));
    if (b.pending > 0) log(`${b.pending} batches stay in the journal for the next start (${data.database ? 'database away' : 'no database'})`, 'warn');
    b.journalClosed = true;
    // the next start reads the whole file: leave it only what a start needs
    if (b.journal.deadSize > 1 << 20) b.journal.compact();
    b.journal.close();
    await this.db.close();
    unlockDataDir(data.dataDir);
  }
}

const persister = new Persister();

// postgres 3.4.9 can throw from a timer when a connection dies with a small write queued
// (porsager/postgres#1154, #1208; fixes not released): the exception escapes every caller,
// and the connection never writes again. Its internal queries can also reject with
// nobody listening when the connection is closed under them (see pg.ts). Survive both by
// replacing the client; anything else uncaught is a bug and ends the thread (the journal
// keeps what it took).
process.on('uncaughtException', (e) => {
  const driver = /postgres[/\\]src[/\\]connection\.js/.test(e.stack ?? '');
  const lostSocket = e instanceof TypeError && /reading 'write'|socket\.write/.test(e.message);
  const closedUnder = /^CONNECTION_(CLOSED|DESTROYED|ENDED)$/.test(String((e as { code?: unknown }).code));
  if (driver && (lostSocket || closedUnder)) {
    // logged whole: a promise of ours left without a handler would come here too
    log(`database driver error nobody was waiting for (client replaced): ${e.stack ?? e}`, 'warn');
    persister.dropClient('the driver lost its socket');
    return;
  }
  post({ type: 'fatal', msg: `uncaught: ${e.stack ?? e}` });
  process.exit(1);
});

port.on('message', (m: ToPersistence) => {
  if (m.type === 'reload') void persister.reloadFor(m.id);
  if (m.type === 'mark') persister.mark(m.id);
  if (m.type === 'flush') persister.flush(m.id, m.from, m.last);
  if (m.type === 'restored') persister.restored(m.id);
  if (m.type === 'checkpointed') persister.checkpointed();
  if (m.type === 'close') {
    persister
      .close()
      .then(() => post({ type: 'closed' }))
      .catch((e) => post({ type: 'fatal', msg: `close failed: ${(e as Error).stack ?? e}` }));
  }
});
persister.start().catch((e) => post({ type: 'fatal', msg: `start failed: ${(e as Error).stack ?? e}` }));

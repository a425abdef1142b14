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
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { pack, unpack } from 'msgpackr';
import postgres from 'postgres';
import { AC, RING_HEADER_BYTES } from '../shards/layout.js';
import { ByteRing } from '../shards/ring.js';
import { embeddedClient, startEmbedded, type Embedded } from './embedded.js';
import { Journal } from './journal.js';
import { flushBatch } from './ledger.js';
import { migrate } from './migrate.js';
import { PG_COMMON } from './pg.js';
import { restorePeers, prunePeers } from './peers.js';
import { credit, decode, type Multipliers } from './records.js';
import { ensureFirstUser, isEmpty, loadChanges, loadRegistry, pruneChanges, type RegistrySnapshot } from './registry.js';
import { PS } from './stats.js';
import type { FromPersistence, ToPersistence } from './channel.js';

/** What the persistence thread is told to do (configuration, resolved by the engine). */
export interface PersistenceSettings {
  url: string; // '' = the embedded database under dataDir
  schema: string;
  dataDir: string;
  flushIntervalMs: number;
  journalMaxBytes: number;
  /** Transactions (and connections) a batch is written with in parallel; 1 on the embedded database. */
  flushConnections: number;
  peerTimeout: number;
  /** Private mode: create a first user when there is none, and say its passkey. */
  firstUser: boolean;
}

export interface PersistenceWorkerData extends PersistenceSettings {
  rings: SharedArrayBuffer[];
  stats: SharedArrayBuffer;
  epoch: number; // unix seconds at tracker clock 0
}

/** One journalled part of a batch: the records drained from one ring, binary (AC layout). */
interface Chunk {
  epoch: number;
  data: Uint8Array;
}

const TICK_MS = 20;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 10_000;
const PRUNE_EVERY_MS = 60_000;
const REGISTRY_POLL_MS = 5_000; // the change log is read this often even without a NOTIFY (one missed, the embedded database)
const CHANGES_TRUSTED_MS = 12 * 3600_000; // the log keeps a day (pruneChanges): older reads reload whole
const SNAPSHOT_EVERY_MS = 3600_000;
const REGISTRY_TIMEOUT_MS = 120_000; // a whole registry read at millions of rows takes seconds
const BUDGET_WARN = 0.8;
const CLOSE_TIMEOUT_MS = 15_000;
const DB_TIMEOUT_MS = 10_000; // a database call that takes longer is abandoned with its client
const RESTORE_TIMEOUT_MS = 600_000; // reading every peer back at start (millions of rows)

const data = workerData as PersistenceWorkerData;
const port = parentPort!;
const post = (m: FromPersistence): void => port.postMessage(m);
const log = (msg: string, level: 'error' | 'warn' | 'info' | 'debug' = 'info'): void => post({ type: 'log', msg: `persistence: ${msg}`, level });

class Persister {
  private readonly rings = data.rings.map((sab) => new ByteRing(sab));
  private readonly stats = new Float64Array(data.stats);
  private readonly journal = Journal.open<Chunk>(join(data.dataDir, 'journal'));
  private readonly scratch: Uint8Array;
  private multipliers = new Map<number, Multipliers>();
  private sql: postgres.Sql | undefined;
  private lost = lostSignal();
  private embedded: Embedded | undefined;
  private nextCut = 0;
  private committing = false;
  private connecting = false;
  private retryMs = RETRY_MIN_MS;
  private retryAt = 0;
  private lastPrune = Date.now();
  private budgetWarned = 0;
  private closing = false;
  private journalClosed = false;
  private reloadTimer: NodeJS.Timeout | undefined;
  private registryRead: Promise<void> | undefined; // the registry read in flight
  private registrySince: string | undefined; // where the next read of the change log starts
  private registryReadAt = 0; // when the caches were last brought up to date
  private nextRegistryPoll = 0;
  private registryFailedAt = 0; // when a failing poll last said so (0: polls work)
  private snapshotSavedAt = Date.now();
  private readonly journalledAt = new Map<number, number>(); // batch id → unix s
  private readonly snapshotPath = join(data.dataDir, 'registry.snapshot');

  constructor() {
    const largest = Math.max(...data.rings.map((s) => s.byteLength - RING_HEADER_BYTES));
    this.scratch = new Uint8Array(largest);
    this.stats[PS.JOURNAL_BUDGET] = data.journalMaxBytes;
    const now = Date.now() / 1000;
    for (const id of this.journal.pendingIds()) this.journalledAt.set(id, now);
    const cut = this.journal.recovered;
    if (cut.savedTo !== undefined) log(`journal damaged: ${cut.cutBytes} bytes after the last intact batch could not be read; kept in ${cut.savedTo}`, 'error');
    else if (cut.cutBytes > 0) log(`journal: cut ${cut.cutBytes} bytes of a batch being written when the last run crashed (never taken: its peers' next announces count from their committed totals)`, 'warn');
    this.publishJournal();
  }

  async start(): Promise<void> {
    const pending = this.journal.pendingCount;
    if (pending > 0) log(`journal holds ${pending} batches not known to be committed: replaying them`, 'warn');
    let restored = 0;
    let loaded = false;
    if (await this.connect()) {
      try {
        await this.commitAll(); // the journal first: restored peers must carry what it adds
        if (this.sql === undefined) throw new Error('database lost while replaying the journal');
        await this.guarded(this.reloadRegistry(), REGISTRY_TIMEOUT_MS);
        loaded = true;
        if (data.firstUser) {
          const made = await this.guarded(ensureFirstUser(this.sql!, randomBytes(16).toString('hex')));
          if (made !== null) {
            await this.guarded(this.reloadRegistry(), REGISTRY_TIMEOUT_MS);
            post({ type: 'first-user', passkey: made });
          }
        }
        // Restored peers carry the totals the ledger holds; with journal batches still
        // uncommitted those would be behind, and the next deltas would count bytes twice.
        if (this.journal.pendingCount === 0) {
          restored = await this.guarded(restorePeers(this.sql!, data.peerTimeout, (records) => post({ type: 'restore', records })), RESTORE_TIMEOUT_MS);
          this.stats[PS.PEERS_RESTORED] = restored;
        } else {
          log('journal not fully committed at start: swarms start empty (peers re-announce; nothing is counted twice)', 'warn');
        }
        if (data.url !== '') await this.guarded(this.listen());
      } catch (e) {
        // serve anyway; the tick loop reconnects, reloads and listens when it can
        this.dropClient(`start: ${(e as Error).message}`);
      }
    }
    if (!loaded && existsSync(this.snapshotPath)) {
      // Serve with the registry as it was last seen rather than refuse everyone.
      const snap = unpack(readFileSync(this.snapshotPath)) as RegistrySnapshot;
      this.applyRegistry(snap);
      log(`database unreachable at start: serving with the registry saved at the last load (${snap.users.length} users)`, 'error');
    } else if (!loaded) {
      log('database unreachable at start and no saved registry: private announces are refused until it is reachable', 'error');
    }
    post({ type: 'ready', restored, db: this.embedded?.address ?? null });
    this.nextCut = Date.now() + data.flushIntervalMs;
    setInterval(() => this.tick(), TICK_MS);
  }

  // ------------------------------------------------------------------ database

  /** Open (or reopen) the database and bring its schema up to date. False when unreachable. */
  private async connect(): Promise<boolean> {
    try {
      if (this.sql === undefined) {
        const common = { ...PG_COMMON, connection: { search_path: data.schema, application_name: `shardtrack/${data.schema}` } };
        if (data.url === '') {
          this.embedded ??= await startEmbedded(join(data.dataDir, 'pglite'));
          this.sql = postgres({ ...common, ...embeddedClient(this.embedded.address) });
        } else {
          this.sql = postgres(data.url, { ...common, max: data.flushConnections + 1 }); // + registry reloads beside a flush
        }
        if (data.schema !== 'public') await this.sql`CREATE SCHEMA IF NOT EXISTS ${this.sql(data.schema)}`;
        const applied = await migrate(this.sql);
        if (applied.length > 0) log(`schema migrated to version ${applied.at(-1)}`);
      }
      this.setUp(true);
      return true;
    } catch (e) {
      this.failed(`database unreachable: ${(e as Error).message}`);
      // a client that never connected is rebuilt on the next attempt (schema, migrations)
      await this.sql?.end({ timeout: 1 }).catch(() => {});
      this.sql = undefined;
      return false;
    }
  }

  /** The database was unreachable at start: once it answers, load the registry and follow it. */
  private async reconnect(): Promise<void> {
    this.connecting = true;
    try {
      if (!(await this.connect())) return;
      await this.guarded(this.reloadRegistry(), REGISTRY_TIMEOUT_MS);
      if (data.url !== '') await this.guarded(this.listen());
    } catch (e) {
      // without a registry and LISTEN the client is no use: start over on the next tick
      this.dropClient(`registry load failed: ${(e as Error).message}`);
    } finally {
      this.connecting = false;
    }
  }

  /**
   * A database call that cannot hang the thread: it fails when the client is dropped (see
   * dropClient) or after `ms` (a batch gets 1 ms a record on top), and the client is then
   * replaced.
   */
  private guarded<T>(op: Promise<T>, ms = DB_TIMEOUT_MS): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.dropClient(`no answer within ${Math.round(ms / 1000)} s`);
        reject(new Error('database call timed out'));
      }, ms);
    });
    return Promise.race([op, timeout, this.lost.promise]).finally(() => clearTimeout(timer));
  }

  /**
   * Give up on the current client (a connection it can no longer use, a call that never
   * returns): calls in flight fail, and the next tick connects afresh, reloading the
   * registry and listening again.
   */
  dropClient(why: string): void {
    const old = this.sql;
    if (old === undefined) return;
    this.sql = undefined;
    this.failed(`database client dropped (${why})`);
    this.lost.reject(new Error(`database client dropped: ${why}`));
    this.lost = lostSignal();
    void old.end({ timeout: 0 }).catch(() => {});
  }

  private setUp(up: boolean): void {
    if (up && this.stats[PS.DB_UP] === 0 && this.stats[PS.BATCHES_COMMITTED] + this.stats[PS.FLUSH_FAILURES] > 0) log('database reachable again');
    this.stats[PS.DB_UP] = up ? 1 : 0;
    if (up) this.retryMs = RETRY_MIN_MS;
  }

  private failed(msg: string): void {
    if (this.stats[PS.DB_UP] === 1 || this.stats[PS.FLUSH_FAILURES] === 0) log(`${msg}; accounting continues into the journal`, 'error');
    this.stats[PS.DB_UP] = 0;
    this.stats[PS.FLUSH_FAILURES]++;
    this.retryAt = Date.now() + this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  /** Commit pending batches oldest first, until none is left or the database fails. */
  private async commitAll(): Promise<void> {
    if (this.committing) return;
    this.committing = true;
    try {
      for (const id of this.journal.pendingIds()) {
        if (this.sql === undefined) return; // reconnect() first: it also loads the registry and listens
        const chunks = this.journal.read(id);
        const records = chunks.flatMap((c) => decode(c.data, c.epoch));
        const t0 = performance.now();
        let r;
        try {
          r = await this.guarded(flushBatch(this.sql, id, records, { journal: this.journal.id, parts: data.url === '' ? 1 : data.flushConnections }), 10_000 + records.length);
        } catch (e) {
          this.failed(`batch ${id} not committed (${(e as Error).message})`);
          return;
        }
        this.setUp(true);
        this.stats[PS.LAST_FLUSH_MS] = performance.now() - t0;
        if (this.journalClosed) return; // committed; acked as a replay at the next start
        this.journal.ack(id);
        this.journalledAt.delete(id);
        this.stats[PS.BATCHES_COMMITTED]++;
        this.stats[PS.RECORDS_COMMITTED] += records.length;
        if (!r.applied) this.stats[PS.BATCHES_REPLAYED]++;
        if (r.deadLetters > 0) {
          this.stats[PS.DEAD_LETTERS] += r.deadLetters;
          log(`batch ${id}: ${r.deadLetters} records refused by the database, kept in dead_letters`, 'warn');
        }
        this.publishJournal();
      }
    } finally {
      this.committing = false;
    }
  }

  // ------------------------------------------------------------------ rings → journal

  private tick(): void {
    if (this.closing) return;
    const now = Date.now();
    const pressure = this.rings.some((r) => r.depth() * 4 > r.sab.byteLength);
    if (now >= this.nextCut || pressure) {
      this.nextCut = now + data.flushIntervalMs;
      this.cut();
    }
    if (this.sql === undefined && !this.connecting && now >= this.retryAt) void this.reconnect();
    else if (this.journal.pendingCount > 0 && !this.committing && now >= this.retryAt) void this.commitAll();
    if (now - this.lastPrune > PRUNE_EVERY_MS && this.sql !== undefined && this.stats[PS.DB_UP] === 1) {
      this.lastPrune = now;
      prunePeers(this.sql, data.peerTimeout).catch(() => {});
      pruneChanges(this.sql).catch(() => {});
    }
    // (not while the database is away: the batch retries find out when it is back)
    const dbUp = this.sql !== undefined && this.stats[PS.DB_UP] === 1;
    if (dbUp && !this.connecting && this.registrySince !== undefined && this.registryRead === undefined) {
      if (now >= this.nextRegistryPoll) {
        this.nextRegistryPoll = now + REGISTRY_POLL_MS;
        this.guarded(this.reloadRegistry(), REGISTRY_TIMEOUT_MS).then(
          () => {
            if (this.registryFailedAt > 0) log('registry reads work again');
            this.registryFailedAt = 0;
          },
          (e) => {
            if (now - this.registryFailedAt <= 60_000) return; // said once a minute, not every poll
            log(`registry read failed: ${(e as Error).message}`, 'warn');
            this.registryFailedAt = now;
          },
        );
      } else if (now - this.snapshotSavedAt > SNAPSHOT_EVERY_MS) {
        this.guarded(this.refreshSnapshot(), REGISTRY_TIMEOUT_MS).catch((e) => log(`registry snapshot failed: ${(e as Error).message}`, 'warn'));
      }
    }
  }

  /**
   * Move every published record into one journal batch. The ring space is released only
   * once the batch is fsynced: a record is never in neither place. Past the disk budget the
   * records stay in the rings (and the shards wait) rather than be dropped; at shutdown
   * (`force`) they go to the journal anyway, since the rings die with the process.
   */
  private cut(force = false): void {
    let bytes = 0;
    for (const r of this.rings) bytes += r.depth();
    if (bytes === 0) return;
    if (!force && this.journal.size + bytes > data.journalMaxBytes) {
      this.stats[PS.BUDGET_STALLS]++;
      if (Date.now() - this.budgetWarned > 10_000) {
        this.budgetWarned = Date.now();
        log(`journal at its disk budget (${this.journal.size} of ${data.journalMaxBytes} bytes) with the database away: announces wait until it returns`, 'error');
      }
      return;
    }
    const chunks: Chunk[] = [];
    let count = 0;
    for (const ring of this.rings) {
      let n = 0;
      for (let off = ring.next(); off >= 0; off = ring.next()) {
        this.scratch.set(ring.u8.subarray(off, off + AC.SIZE), n * AC.SIZE);
        n++;
      }
      if (n === 0) continue;
      const chunk = this.scratch.slice(0, n * AC.SIZE);
      credit(chunk, n, data.epoch, (t) => this.multipliers.get(t));
      chunks.push({ epoch: data.epoch, data: chunk });
      count += n;
    }
    const id = this.journal.lastBatchId + 1;
    this.journal.append(id, chunks);
    for (const ring of this.rings) ring.release();
    this.journalledAt.set(id, Date.now() / 1000);
    this.stats[PS.RECORDS_JOURNALLED] += count;
    this.publishJournal();
    const share = this.journal.size / data.journalMaxBytes;
    if (share >= BUDGET_WARN && Date.now() - this.budgetWarned > 60_000) {
      this.budgetWarned = Date.now();
      log(`journal is at ${Math.round(share * 100)}% of its disk budget (${this.journal.size} bytes): the database has been away since batch ${this.journal.pendingIds()[0]}`, 'error');
    }
  }

  private publishJournal(): void {
    const s = this.stats;
    s[PS.JOURNAL_BYTES] = this.journal.size;
    s[PS.PENDING_BATCHES] = this.journal.pendingCount;
    let oldest = 0;
    for (const t of this.journalledAt.values()) if (oldest === 0 || t < oldest) oldest = t;
    s[PS.OLDEST_PENDING] = oldest;
  }

  // ------------------------------------------------------------------ registry

  /**
   * Bring the acceptor's caches up to date: the changes since the last read (a few rows),
   * or everything when there is no last read, it is too old for the change log (pruned
   * after a day) or the log says so (a TRUNCATE, a bulk change, a restored database). One
   * read at a time: a later one waits for the one in flight, which may have begun before
   * the change it is asked for, so caches never go back in time.
   */
  private reloadRegistry(reload?: number): Promise<void> {
    return this.inTurn(() => this.readRegistry(reload));
  }

  /** Registry reads run one at a time, each after the one in flight. */
  private async inTurn(read: () => Promise<void>): Promise<void> {
    while (this.registryRead !== undefined) await this.registryRead.catch(() => {});
    this.registryRead = read();
    try {
      await this.registryRead;
    } finally {
      this.registryRead = undefined;
    }
  }

  private async readRegistry(reload?: number): Promise<void> {
    if (this.sql === undefined) throw new Error('database unreachable');
    const fresh = this.registrySince !== undefined && Date.now() - this.registryReadAt < CHANGES_TRUSTED_MS;
    const changes = fresh ? await loadChanges(this.sql, this.registrySince!) : null;
    this.registryReadAt = Date.now();
    if (changes !== null) {
      this.registrySince = changes.since;
      if (isEmpty(changes.delta) && reload === undefined) return;
      for (const [id, m] of changes.delta.multipliers) {
        if (m === null) this.multipliers.delete(id);
        else this.multipliers.set(id, m);
      }
      this.stats[PS.REGISTRY_LOADS]++;
      post({ type: 'registry-delta', delta: changes.delta, reload });
      return;
    }
    const full = await loadRegistry(this.sql);
    this.registrySince = full.since;
    this.applyRegistry(full.snapshot, reload);
    this.saveSnapshot(full.snapshot);
  }

  /** Kept on disk so a start while the database is away can still serve known users. */
  private saveSnapshot(snap: RegistrySnapshot): void {
    const tmp = `${this.snapshotPath}.tmp`;
    writeFileSync(tmp, pack(snap), { mode: 0o600 });
    renameSync(tmp, this.snapshotPath);
    this.snapshotSavedAt = Date.now();
  }

  /**
   * The saved snapshot follows the changes too: rewritten now and then from a whole read
   * (not sent to the acceptor), in turn with the other reads so it is never older than one.
   */
  private refreshSnapshot(): Promise<void> {
    this.snapshotSavedAt = Date.now();
    return this.inTurn(async () => {
      if (this.sql !== undefined) this.saveSnapshot((await loadRegistry(this.sql)).snapshot);
    });
  }

  private applyRegistry(snap: RegistrySnapshot, reload?: number): void {
    this.multipliers = new Map(snap.multipliers);
    this.stats[PS.REGISTRY_LOADS]++;
    post({ type: 'registry', snapshot: snap, reload });
  }

  /** The admin API changed the registry: load it now and say which request this answers. */
  async reloadNow(id: number): Promise<void> {
    try {
      await this.guarded(this.reloadRegistry(id), REGISTRY_TIMEOUT_MS); // (throws when the database is unreachable)
    } catch (e) {
      log(`registry reload failed: ${(e as Error).message}`, 'warn');
      post({ type: 'registry-failed', reload: id });
    }
  }

  /** Edits made directly in the database (a site, the admin API) reach the caches within a second. */
  private async listen(): Promise<void> {
    const prefix = `${data.schema}.`;
    await this.sql!.listen('registry_changed', (payload) => {
      if (!payload.startsWith(prefix) || this.reloadTimer !== undefined) return;
      // coalesce bursts of edits into one reload
      this.reloadTimer = setTimeout(() => {
        this.reloadTimer = undefined;
        this.reloadRegistry().catch((e) => log(`registry reload failed: ${(e as Error).message}`, 'warn'));
      }, 100);
    }, () => {
      // (re)connected: anything missed while the connection was down is picked up now
      if (this.stats[PS.REGISTRY_LOADS] > 0) this.reloadRegistry().catch(() => {});
    });
  }

  // ------------------------------------------------------------------ shutdown

  /** Take everything left in the rings and commit it (or leave it in the journal). */
  async close(): Promise<void> {
    this.closing = true;
    this.cut(true); // the shards have stopped: this is everything
    const deadline = Date.now() + CLOSE_TIMEOUT_MS;
    while (this.journal.pendingCount > 0 && Date.now() < deadline) {
      if (!this.committing && !this.connecting && Date.now() >= this.retryAt) {
        if (this.sql === undefined) await this.reconnect();
        else await this.commitAll();
      }
      if (this.journal.pendingCount > 0) await new Promise((r) => setTimeout(r, 50));
    }
    // a commit started by the tick loop may still be running: the journal stays open for its ack
    while ((this.committing || this.connecting) && Date.now() < deadline + DB_TIMEOUT_MS) await new Promise((r) => setTimeout(r, 20));
    if (this.journal.pendingCount > 0) log(`${this.journal.pendingCount} batches stay in the journal for the next start (database away)`, 'warn');
    this.journalClosed = true;
    this.journal.close();
    await this.sql?.end({ timeout: 2 }).catch(() => {});
    await this.embedded?.close().catch(() => {});
  }
}

function lostSignal(): { promise: Promise<never>; reject: (e: Error) => void } {
  let reject!: (e: Error) => void;
  const promise = new Promise<never>((_, r) => (reject = r));
  promise.catch(() => {}); // observed through guarded() only
  return { promise, reject };
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
  if (m.type === 'reload') void persister.reloadNow(m.id);
  if (m.type === 'close') {
    persister
      .close()
      .then(() => post({ type: 'closed' }))
      .catch((e) => post({ type: 'fatal', msg: `close failed: ${(e as Error).stack ?? e}` }));
  }
});
persister.start().catch((e) => post({ type: 'fatal', msg: `start failed: ${(e as Error).stack ?? e}` }));

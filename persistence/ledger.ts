import type postgres from 'postgres';
import { writeFlags, flagTwiceSize } from './flags.js';
import { nums } from './pg.js';

// Writing accounting batches into the ledger: a transaction per batch (or per part of it,
// written in parallel: see FlushOptions.parts), bulk statements over arrays (unnest)
// instead of a statement per record, and exactly-once by batch id. Columns travel cheaply:
// numbers as one comma-joined text each (the client's per-element array escaping cost more
// than PostgreSQL's work), bytes as one concatenated bytea sliced in SQL (the client cannot
// send arrays of bytea).
//
// (Releases before checkpoints also wrote a peers row per peer here, so that a restart could
// put the swarms back: checkpoints and the journal do that now, persistence/restore.ts.)
//
// A batch (part) is first recorded in applied_batches; if it is already there (a replay
// from the journal after a crash between commit and ack), nothing else is written. Records
// that PostgreSQL cannot take (an unknown user or torrent, a value out of range) never
// block the rest: they are moved to dead_letters with the reason, in the same transaction.
// Parts are cut by user, so no two of them write the same history or user row.

/** One accounting delta, as the shards produce it (deltas, never absolute totals). */
export interface LedgerRecord {
  user: number;
  torrent: number;
  uploaded: number; // bytes since the previous announce of this peer
  downloaded: number;
  uploadedCredited: number; // after multipliers
  downloadedCredited: number; // after freeleech
  seedTime: number; // seconds seeding since the previous announce
  leechTime: number;
  completed: boolean; // this announce was event=completed (counted once per peer)
  /** The announce was refused (evidence of a flag only: no ledger row, no peers row). */
  refused?: boolean;
  /** CHEAT_* bits: what a bound cut off this record's claim (one cheat_flags row each). */
  cheats?: number;
  totalUp?: number; // the peer's reported totals after the announce (evidence)
  totalDown?: number;
  at: number; // unix seconds of the announce
  /** The announcing peer's new state (evidence of a flag; absent: ledger only). */
  peer?: PeerState;
}

/** A peer's totals and address after an announce. */
export interface PeerState {
  identity: Uint8Array; // peer_id (20 bytes) then info_hash (20 bytes)
  ip: Uint8Array; // 16 bytes, IPv4 mapped
  port: number;
  key: number;
  hasKey: boolean;
  uploaded: number; // reported totals
  downloaded: number;
  left: number;
  paused: boolean;
  stopped: boolean; // the peer left
}

export interface FlushResult {
  applied: boolean; // false when the batch id was already applied (a replay)
  rows: number; // (user, torrent) rows written
  deadLetters: number;
  flagsTwiceSize: number; // download_over_twice_size flags written
}

/**
 * Ceiling of any sum sent to PostgreSQL: a batch of many huge claims still fits a bigint
 * (and the columns saturate there: sat_add of 0008), so no row is ever refused for size.
 */
export const SUM_MAX = 2 ** 62;

interface Row {
  user: number;
  torrent: number;
  uploaded: number;
  downloaded: number;
  uploadedCredited: number;
  downloadedCredited: number;
  seedTime: number;
  leechTime: number;
  first: number;
  last: number;
  completedAt: number | null;
}


/**
 * Sum records per (user, torrent): a flush writes each pair once. Records without a user
 * (open mode) or a registered torrent have no place in the ledger (their peers do).
 */
export function aggregate(records: readonly LedgerRecord[]): Row[] {
  const rows = new Map<string, Row>();
  for (const r of records) {
    if (r.user === 0 || r.torrent === 0 || r.refused) continue;
    const k = `${r.user}:${r.torrent}`;
    let row = rows.get(k);
    if (row === undefined) {
      row = { user: r.user, torrent: r.torrent, uploaded: 0, downloaded: 0, uploadedCredited: 0, downloadedCredited: 0, seedTime: 0, leechTime: 0, first: r.at, last: r.at, completedAt: null };
      rows.set(k, row);
    }
    row.uploaded = Math.min(SUM_MAX, row.uploaded + r.uploaded);
    row.downloaded = Math.min(SUM_MAX, row.downloaded + r.downloaded);
    row.uploadedCredited = Math.min(SUM_MAX, row.uploadedCredited + r.uploadedCredited);
    row.downloadedCredited = Math.min(SUM_MAX, row.downloadedCredited + r.downloadedCredited);
    row.seedTime += r.seedTime;
    row.leechTime += r.leechTime;
    if (r.at < row.first) row.first = r.at;
    if (r.at > row.last) row.last = r.at;
    if (r.completed && (row.completedAt === null || r.at < row.completedAt)) row.completedAt = r.at;
  }
  return [...rows.values()];
}

type Tx = postgres.TransactionSql;

export interface FlushOptions {
  /** The journal the batch comes from (batch ids are unique within a journal only). */
  journal?: string;
  /**
   * Transactions to cut the batch into, by user, written in parallel (the client needs as
   * many connections). A batch applied before keeps the cut it had then.
   */
  parts?: number;
}

/** applied_batches rows of a journal kept after their batch is acknowledged (~a day of 1 s batches). */
const APPLIED_KEPT = 100_000;
/** Days applied_batches keeps the rows of journals (and runs) nobody writes any more. */
export const APPLIED_DAYS = 30;

/**
 * Write batch `batchId`: one transaction per part, exactly once each. Batches must come
 * oldest first: every earlier batch of the journal is acknowledged in it (so the ids far
 * below are forgotten here). Throws only when the database itself is unavailable (the
 * caller retries; parts already committed are then skipped).
 */
export async function flushBatch(sql: postgres.Sql, batchId: number, records: readonly LedgerRecord[], o: FlushOptions = {}): Promise<FlushResult> {
  const journal = o.journal ?? '';
  // a replay of a batch whose rows were pruned: applied long ago (0009)
  const [floor] = await sql<{ below: string }[]>`SELECT below FROM applied_floors WHERE journal = ${journal}`;
  if (floor !== undefined && batchId < Number(floor.below)) return { applied: false, rows: 0, deadLetters: 0, flagsTwiceSize: 0 };
  // The cut is settled once per batch, in a row of its own (part -1) committed before any
  // part: a retry, even by a restarted tracker with another setting while a part of the
  // first attempt is still committing, cuts the batch the same way. (A batch applied before
  // the cut was recorded so, by a tracker older than 0006, was one part.)
  await sql`INSERT INTO applied_batches (journal, batch_id, part, parts, records)
            SELECT ${journal}, ${batchId}, -1,
                   coalesce((SELECT parts FROM applied_batches WHERE journal = ${journal} AND batch_id = ${batchId} AND part >= 0 LIMIT 1), ${Math.max(1, o.parts ?? 1)}), 0
            ON CONFLICT (journal, batch_id, part) DO NOTHING`;
  const [{ parts }] = await sql<{ parts: number }[]>`SELECT parts FROM applied_batches WHERE journal = ${journal} AND batch_id = ${batchId} AND part = -1`;
  const rows: Row[][] = Array.from({ length: parts }, () => []);
  const flagged: LedgerRecord[][] = Array.from({ length: parts }, () => []);
  for (const r of records) if (r.cheats && r.user !== 0 && r.torrent !== 0) flagged[r.user % parts].push(r);
  const counts = new Array<number>(parts).fill(0); // records per part, as applied_batches keeps them
  for (const r of records) counts[r.user % parts]++;
  for (const r of aggregate(records)) rows[r.user % parts].push(r);
  const done = await Promise.all(
    rows.map((_, part) =>
      retryConflicts(() =>
        sql.begin((tx) => writePart(tx, { journal, batchId, part, parts, records: counts[part], prune: part === 0 }, rows[part], flagged[part])),
      ),
    ),
  );
  return {
    applied: done.some((d) => d.applied),
    rows: done.reduce((n, d) => n + d.rows, 0),
    deadLetters: done.reduce((n, d) => n + d.deadLetters, 0),
    flagsTwiceSize: done.reduce((n, d) => n + d.flagsTwiceSize, 0),
  };
}

/**
 * A deadlock (40P01: a site's transaction, or parts on the same torrents' snatch counts) or
 * a serialization failure costs a retry of the part, not the batch.
 */
async function retryConflicts<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (attempt >= 5 || (code !== '40P01' && code !== '40001')) throw e;
    }
  }
}

interface Part {
  journal: string;
  batchId: number;
  part: number;
  parts: number;
  records: number; // of the batch's, in this part
  prune: boolean;
}

async function writePart(tx: Tx, p: Part, aggregated: Row[], flagged: LedgerRecord[]): Promise<FlushResult> {
  // A site transaction that deleted a user and then idles holds the lock below: give up
  // (and retry the batch later) rather than wait on it until the watchdog drops the client.
  await tx`SET LOCAL lock_timeout = '5s'`;
  // The lock first: users and torrents are not deleted while this part is written (0006).
  const fresh = await tx`
    WITH l AS (SELECT pg_advisory_xact_lock_shared(hashtext('shardtrack-ledger:' || current_schema())))
    INSERT INTO applied_batches (journal, batch_id, part, parts, records)
    SELECT ${p.journal}, ${p.batchId}, ${p.part}, ${p.parts}, ${p.records} FROM l
    ON CONFLICT (journal, batch_id, part) DO NOTHING RETURNING batch_id`;
  if (fresh.length === 0) return { applied: false, rows: 0, deadLetters: 0, flagsTwiceSize: 0 };
  // again in the part's transaction: a prune committed since flushBatch looked may have
  // raised the floor past this batch (a copy replaying while its original runs on); this
  // narrows that window to the statements between here and the commit
  const [floor] = await tx<{ below: string }[]>`SELECT below FROM applied_floors WHERE journal = ${p.journal}`;
  if (floor !== undefined && p.batchId < Number(floor.below)) return { applied: false, rows: 0, deadLetters: 0, flagsTwiceSize: 0 };
  if (p.prune) {
    // the rows go, the knowledge stays: below the floor every batch of this run was applied
    const floor = p.batchId - APPLIED_KEPT;
    if (floor > 0) {
      await tx`DELETE FROM applied_batches WHERE journal = ${p.journal} AND batch_id < ${floor}`;
      await tx`INSERT INTO applied_floors (journal, below) VALUES (${p.journal}, ${floor})
               ON CONFLICT (journal) DO UPDATE SET below = greatest(applied_floors.below, EXCLUDED.below)`;
    }
    // Journals nobody writes any more (a data directory replaced, a node retired) cannot
    // prune themselves: now and then (hourly at 1 s batches) their month-old rows go.
    if (p.batchId % 3600 === 0) {
      const old = await tx`DELETE FROM applied_batches WHERE journal <> ${p.journal} AND applied_at < now() - make_interval(days => ${APPLIED_DAYS}) RETURNING journal`;
      const gone = [...new Set(old.map((r) => r.journal as string))];
      if (gone.length > 0) await tx`DELETE FROM applied_floors WHERE journal = ANY(string_to_array(${gone.join(',')}, ',')) AND NOT EXISTS (SELECT 1 FROM applied_batches b WHERE b.journal = applied_floors.journal)`;
    }
  }
  let rows = aggregated;
  let dead = 0;
  // Unknown users and torrents are the refusals to expect (deleted meanwhile): set them
  // aside up front rather than failing the statement.
  const users = (await tx<{ id: string }[]>`SELECT id FROM users WHERE id = ANY(${nums(tx, uniq(rows.map((r) => r.user)), 'bigint')})`).map((r) => Number(r.id));
  const torrents = (await tx<{ id: string }[]>`SELECT id FROM torrents WHERE id = ANY(${nums(tx, uniq(rows.map((r) => r.torrent)), 'bigint')})`).map((r) => Number(r.id));
  const knownUsers = new Set(users);
  const knownTorrents = new Set(torrents);
  // Values are checked here, not by PostgreSQL: one bad row must not send the whole part
  // into the row-by-row fallback.
  const insane = rows.filter((r) => !sane(r));
  if (insane.length > 0) {
    dead += await deadLetter(tx, p, insane, () => 'value out of range (not finite, negative or beyond 2^62)');
    rows = rows.filter(sane);
  }
  const orphans = rows.filter((r) => !knownUsers.has(r.user) || !knownTorrents.has(r.torrent));
  if (orphans.length > 0) {
    dead += await deadLetter(tx, p, orphans, (r) => (!knownUsers.has(r.user) ? `unknown user ${r.user}` : `unknown torrent ${r.torrent}`));
    rows = rows.filter((r) => knownUsers.has(r.user) && knownTorrents.has(r.torrent));
  }
  // Anything else PostgreSQL refuses (a value out of range, a constraint) goes to the dead
  // letters, the rest is written.
  rows = await writeRefusing(tx, rows, write, async (r, e) => {
    dead += await deadLetter(tx, p, [r], () => e.message);
  });
  // Evidence, in the transaction that credits (or refuses) the claim: never lost, never twice.
  await writeFlags(tx, flagged);
  const flagsTwiceSize = await flagTwiceSize(tx, rows.filter((r) => r.downloaded > 0));
  return { applied: true, rows: rows.length, deadLetters: dead, flagsTwiceSize };
}

/**
 * Write `items` in one go under a savepoint; if PostgreSQL refuses the data, one by one,
 * handing each refused item to `refused`. Returns the items written. Only refusals of the
 * data itself (isDataError) are an item's fault: anything else (a deadlock, a broken
 * statement, a lost connection) fails the part, which is retried whole.
 */
async function writeRefusing<T>(tx: Tx, items: T[], put: (sp: Tx, items: T[]) => Promise<void>, refused: (item: T, e: Error) => Promise<void>): Promise<T[]> {
  try {
    await tx.savepoint((sp) => put(sp, items));
    return items;
  } catch (e) {
    if (!isDataError(e)) throw e;
  }
  const written: T[] = [];
  for (const item of items) {
    try {
      await tx.savepoint((sp) => put(sp, [item]));
      written.push(item);
    } catch (e) {
      if (!isDataError(e)) throw e;
      await refused(item, e as Error);
    }
  }
  return written;
}

/** SQLSTATE class 22 (data exception: out of range, bad value) or 23 (constraint violated). */
function isDataError(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

const inRange = (x: number): boolean => Number.isFinite(x) && x >= 0 && x <= SUM_MAX;

/** Every number of the row is one a bigint column takes (times are unix seconds). */
function sane(r: Row): boolean {
  return [r.uploaded, r.downloaded, r.uploadedCredited, r.downloadedCredited, r.seedTime, r.leechTime, r.first, r.last].every(inRange);
}

function uniq(xs: number[]): number[] {
  return [...new Set(xs)];
}

async function write(tx: Tx, rows: Row[]): Promise<void> {
  if (rows.length === 0) return;
  const col = (k: keyof Row, type: 'bigint' | 'float8' = 'bigint') => nums(tx, rows.map((r) => r[k] ?? 0), type);
  // times travel as unix seconds (0 = none)
  await tx`
    INSERT INTO history AS h (user_id, torrent_id, uploaded, downloaded, uploaded_credited, downloaded_credited,
                              seed_time, leech_time, first_announce, last_announce, completed_at, active)
    SELECT u, t, up, down, upc, downc, seed, leech, to_timestamp(f), to_timestamp(l), CASE WHEN c > 0 THEN to_timestamp(c) END, true
    FROM unnest(${col('user')}, ${col('torrent')}, ${col('uploaded')}, ${col('downloaded')},
                ${col('uploadedCredited')}, ${col('downloadedCredited')}, ${col('seedTime')},
                ${col('leechTime')}, ${col('first', 'float8')}, ${col('last', 'float8')}, ${col('completedAt', 'float8')})
         AS x(u, t, up, down, upc, downc, seed, leech, f, l, c)
    ON CONFLICT (user_id, torrent_id) DO UPDATE SET
      uploaded = sat_add(h.uploaded, EXCLUDED.uploaded),
      downloaded = sat_add(h.downloaded, EXCLUDED.downloaded),
      uploaded_credited = sat_add(h.uploaded_credited, EXCLUDED.uploaded_credited),
      downloaded_credited = sat_add(h.downloaded_credited, EXCLUDED.downloaded_credited),
      seed_time = h.seed_time + EXCLUDED.seed_time,
      leech_time = h.leech_time + EXCLUDED.leech_time,
      first_announce = least(h.first_announce, EXCLUDED.first_announce),
      last_announce = greatest(h.last_announce, EXCLUDED.last_announce),
      completed_at = coalesce(h.completed_at, EXCLUDED.completed_at),
      active = true`;
  // user totals: summed here, one row per user
  const byUser = new Map<number, Row>();
  for (const r of rows) {
    const u = byUser.get(r.user);
    if (u === undefined) byUser.set(r.user, { ...r });
    else {
      u.uploaded = Math.min(SUM_MAX, u.uploaded + r.uploaded);
      u.downloaded = Math.min(SUM_MAX, u.downloaded + r.downloaded);
      u.uploadedCredited = Math.min(SUM_MAX, u.uploadedCredited + r.uploadedCredited);
      u.downloadedCredited = Math.min(SUM_MAX, u.downloadedCredited + r.downloadedCredited);
      u.seedTime += r.seedTime;
    }
  }
  const us = [...byUser.values()];
  const ucol = (k: keyof Row) => nums(tx, us.map((r) => r[k] ?? 0), 'bigint');
  await tx`
    UPDATE users AS us SET
      uploaded = sat_add(us.uploaded, d.up), downloaded = sat_add(us.downloaded, d.down),
      uploaded_credited = sat_add(us.uploaded_credited, d.upc), downloaded_credited = sat_add(us.downloaded_credited, d.downc),
      seed_time = us.seed_time + d.seed, updated_at = now()
    FROM unnest(${ucol('user')}, ${ucol('uploaded')}, ${ucol('downloaded')}, ${ucol('uploadedCredited')}, ${ucol('downloadedCredited')},
                ${ucol('seedTime')}) AS d(u, up, down, upc, downc, seed)
    WHERE us.id = d.u`;
  const done = rows.filter((r) => r.completedAt !== null);
  if (done.length > 0) {
    // Parts running at once may count snatches on the same torrents: each locks its rows in
    // id order first, so they wait for each other instead of deadlocking.
    await tx`SELECT 1 FROM torrents WHERE id = ANY(${nums(tx, uniq(done.map((r) => r.torrent)), 'bigint')}) ORDER BY id FOR NO KEY UPDATE`;
    // a snatch is counted once per (user, torrent), whichever batch brings it first
    await tx`
      WITH s AS (
        INSERT INTO snatches (user_id, torrent_id, completed_at)
        SELECT u, t, to_timestamp(c)
        FROM unnest(${nums(tx, done.map((r) => r.user), 'bigint')}, ${nums(tx, done.map((r) => r.torrent), 'bigint')},
                    ${nums(tx, done.map((r) => r.completedAt!), 'float8')}) AS x(u, t, c)
        ON CONFLICT DO NOTHING
        RETURNING torrent_id)
      UPDATE torrents AS t SET snatches = t.snatches + c.n
      FROM (SELECT torrent_id, count(*) AS n FROM s GROUP BY torrent_id) AS c
      WHERE t.id = c.torrent_id`;
  }
}

async function deadLetter(tx: Tx, p: Part, rows: Row[], reason: (r: Row) => string): Promise<number> {
  for (const r of rows) {
    await tx`INSERT INTO dead_letters (journal, batch_id, record, reason) VALUES (${p.journal}, ${p.batchId}, ${tx.json(r as unknown as postgres.JSONValue)}, ${reason(r)})`;
  }
  return rows.length;
}

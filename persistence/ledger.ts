import type postgres from 'postgres';

// Writing accounting batches into the ledger: one transaction per batch, bulk statements
// over arrays (unnest) instead of a statement per record, and exactly-once by batch id.
//
// A batch is first recorded in applied_batches; if its id is already there (a replay from
// the journal after a crash between commit and ack), nothing else is written. Records that
// PostgreSQL cannot take (an unknown user or torrent, a value out of range) never block the
// rest: they are moved to dead_letters with the reason, in the same transaction.

/** One accounting delta, as the shards produce it (deltas, never absolute totals). */
export interface AccountingRecord {
  user: number;
  torrent: number;
  uploaded: number; // bytes since the previous announce of this peer
  downloaded: number;
  uploadedCredited: number; // after multipliers
  downloadedCredited: number; // after freeleech
  seedTime: number; // seconds seeding since the previous announce
  leechTime: number;
  completed: boolean; // this announce was event=completed (counted once per peer)
  at: number; // unix seconds of the announce
}

export interface FlushResult {
  applied: boolean; // false when the batch id was already applied (a replay)
  rows: number; // (user, torrent) rows written
  deadLetters: number;
}

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

/** Sum records per (user, torrent): a flush writes each pair once. */
export function aggregate(records: readonly AccountingRecord[]): Row[] {
  const rows = new Map<string, Row>();
  for (const r of records) {
    const k = `${r.user}:${r.torrent}`;
    let row = rows.get(k);
    if (row === undefined) {
      row = { user: r.user, torrent: r.torrent, uploaded: 0, downloaded: 0, uploadedCredited: 0, downloadedCredited: 0, seedTime: 0, leechTime: 0, first: r.at, last: r.at, completedAt: null };
      rows.set(k, row);
    }
    row.uploaded += r.uploaded;
    row.downloaded += r.downloaded;
    row.uploadedCredited += r.uploadedCredited;
    row.downloadedCredited += r.downloadedCredited;
    row.seedTime += r.seedTime;
    row.leechTime += r.leechTime;
    if (r.at < row.first) row.first = r.at;
    if (r.at > row.last) row.last = r.at;
    if (r.completed && (row.completedAt === null || r.at < row.completedAt)) row.completedAt = r.at;
  }
  return [...rows.values()];
}

type Tx = postgres.TransactionSql;

/** Write one batch. Throws only when the database itself is unavailable (the caller retries). */
export async function flushBatch(sql: postgres.Sql, batchId: number, records: readonly AccountingRecord[]): Promise<FlushResult> {
  return sql.begin(async (tx) => {
    const fresh = await tx`INSERT INTO applied_batches (batch_id, records) VALUES (${batchId}, ${records.length})
      ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id`;
    if (fresh.length === 0) return { applied: false, rows: 0, deadLetters: 0 };
    let rows = aggregate(records);
    let dead = 0;
    // Unknown users and torrents are the refusals to expect (deleted meanwhile): set them
    // aside up front rather than failing the statement.
    const users = (await tx<{ id: string }[]>`SELECT id FROM users WHERE id = ANY(${uniq(rows.map((r) => r.user))}::bigint[])`).map((r) => Number(r.id));
    const torrents = (await tx<{ id: string }[]>`SELECT id FROM torrents WHERE id = ANY(${uniq(rows.map((r) => r.torrent))}::bigint[])`).map((r) => Number(r.id));
    const knownUsers = new Set(users);
    const knownTorrents = new Set(torrents);
    const orphans = rows.filter((r) => !knownUsers.has(r.user) || !knownTorrents.has(r.torrent));
    if (orphans.length > 0) {
      dead += await deadLetter(tx, batchId, orphans, (r) => (!knownUsers.has(r.user) ? `unknown user ${r.user}` : `unknown torrent ${r.torrent}`));
      rows = rows.filter((r) => knownUsers.has(r.user) && knownTorrents.has(r.torrent));
    }
    // Anything else PostgreSQL refuses (a value out of range, a constraint) is found by
    // trying the rows on their own under savepoints.
    try {
      await tx.savepoint((sp) => write(sp, rows));
    } catch {
      const good: Row[] = [];
      for (const r of rows) {
        try {
          await tx.savepoint((sp) => write(sp, [r]));
          good.push(r);
        } catch (e) {
          dead += await deadLetter(tx, batchId, [r], () => (e as Error).message);
        }
      }
      rows = good;
    }
    return { applied: true, rows: rows.length, deadLetters: dead };
  });
}

function uniq(xs: number[]): number[] {
  return [...new Set(xs)];
}

async function write(tx: Tx, rows: Row[]): Promise<void> {
  if (rows.length === 0) return;
  const col = <K extends keyof Row>(k: K) => rows.map((r) => r[k]);
  // times travel as unix seconds (0 = none): arrays of numbers serialise plainly
  const completed = rows.map((r) => r.completedAt ?? 0);
  await tx`
    INSERT INTO history AS h (user_id, torrent_id, uploaded, downloaded, uploaded_credited, downloaded_credited,
                              seed_time, leech_time, first_announce, last_announce, completed_at, active)
    SELECT u, t, up, down, upc, downc, seed, leech, to_timestamp(f), to_timestamp(l), CASE WHEN c > 0 THEN to_timestamp(c) END, true
    FROM unnest(${col('user')}::bigint[], ${col('torrent')}::bigint[], ${col('uploaded')}::bigint[], ${col('downloaded')}::bigint[],
                ${col('uploadedCredited')}::bigint[], ${col('downloadedCredited')}::bigint[], ${col('seedTime')}::bigint[],
                ${col('leechTime')}::bigint[], ${col('first')}::float8[], ${col('last')}::float8[], ${completed}::float8[])
         AS x(u, t, up, down, upc, downc, seed, leech, f, l, c)
    ON CONFLICT (user_id, torrent_id) DO UPDATE SET
      uploaded = h.uploaded + EXCLUDED.uploaded,
      downloaded = h.downloaded + EXCLUDED.downloaded,
      uploaded_credited = h.uploaded_credited + EXCLUDED.uploaded_credited,
      downloaded_credited = h.downloaded_credited + EXCLUDED.downloaded_credited,
      seed_time = h.seed_time + EXCLUDED.seed_time,
      leech_time = h.leech_time + EXCLUDED.leech_time,
      first_announce = least(h.first_announce, EXCLUDED.first_announce),
      last_announce = greatest(h.last_announce, EXCLUDED.last_announce),
      completed_at = coalesce(h.completed_at, EXCLUDED.completed_at),
      active = true`;
  await tx`
    UPDATE users AS us SET
      uploaded = us.uploaded + d.up, downloaded = us.downloaded + d.down,
      uploaded_credited = us.uploaded_credited + d.upc, downloaded_credited = us.downloaded_credited + d.downc,
      seed_time = us.seed_time + d.seed, updated_at = now()
    FROM (SELECT u, sum(up) AS up, sum(down) AS down, sum(upc) AS upc, sum(downc) AS downc, sum(seed) AS seed
          FROM unnest(${col('user')}::bigint[], ${col('uploaded')}::bigint[], ${col('downloaded')}::bigint[],
                      ${col('uploadedCredited')}::bigint[], ${col('downloadedCredited')}::bigint[], ${col('seedTime')}::bigint[])
               AS x(u, up, down, upc, downc, seed)
          GROUP BY u) AS d
    WHERE us.id = d.u`;
  const done = rows.filter((r) => r.completedAt !== null);
  if (done.length > 0) {
    // a snatch is counted once per (user, torrent), whichever batch brings it first
    await tx`
      WITH s AS (
        INSERT INTO snatches (user_id, torrent_id, completed_at)
        SELECT u, t, to_timestamp(c)
        FROM unnest(${done.map((r) => r.user)}::bigint[], ${done.map((r) => r.torrent)}::bigint[],
                    ${done.map((r) => r.completedAt!)}::float8[]) AS x(u, t, c)
        ON CONFLICT DO NOTHING
        RETURNING torrent_id)
      UPDATE torrents AS t SET snatches = t.snatches + c.n
      FROM (SELECT torrent_id, count(*) AS n FROM s GROUP BY torrent_id) AS c
      WHERE t.id = c.torrent_id`;
  }
}

async function deadLetter(tx: Tx, batchId: number, rows: Row[], reason: (r: Row) => string): Promise<number> {
  for (const r of rows) {
    await tx`INSERT INTO dead_letters (batch_id, record, reason) VALUES (${batchId}, ${tx.json(r as unknown as postgres.JSONValue)}, ${reason(r)})`;
  }
  return rows.length;
}

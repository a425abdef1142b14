import type postgres from 'postgres';
import { CHEAT_KINDS, KIND_DOWNLOAD_OVER_TWICE_SIZE } from '../contract/accounting.js';

const KIND_TOO_MANY_PEERS = 'too_many_peers';
import type { LedgerRecord } from './ledger.js';
import { isV4Mapped } from './peers.js';
import { bytes, nums } from './pg.js';

// The cheat_flags rows (0008): evidence of claims the tracker did not believe, written in
// the ledger's transaction. A record with several CHEAT_* bits leaves a row per kind.

/** A 16-byte address as text: dotted for IPv4-mapped, else eight hex groups. */
export function ipText(ip: Uint8Array): string {
  if (isV4Mapped(ip)) return `${ip[12]}.${ip[13]}.${ip[14]}.${ip[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip[i] << 8) | ip[i + 1]).toString(16));
  return groups.join(':');
}

/** The kinds (cheat_flags.kind) of a record's CHEAT_* bits. */
export function flagsOf(bits: number): string[] {
  const kinds: string[] = [];
  for (let k = 0; k < CHEAT_KINDS.length; k++) if (bits & (1 << k)) kinds.push(CHEAT_KINDS[k]);
  return kinds;
}

/**
 * One row per kind per flagged record, with its numbers: what the client claimed since its
 * previous announce (raw), what was credited (after the bounds and the multipliers), the
 * seconds that bounded it, and the totals it reported.
 */
export async function writeFlags(tx: postgres.TransactionSql, flagged: readonly LedgerRecord[]): Promise<void> {
  const rows: { r: LedgerRecord; kind: string }[] = [];
  const once = new Set<string>();
  for (const r of flagged) {
    for (const kind of flagsOf(r.cheats ?? 0)) {
      // a client retrying while the user is at its cap would leave a row per retry: one a batch
      if (kind === KIND_TOO_MANY_PEERS) {
        const k = `${r.user}:${r.torrent}`;
        if (once.has(k)) continue;
        once.add(k);
      }
      rows.push({ r, kind });
    }
  }
  if (rows.length === 0) return;
  const col = (f: (r: LedgerRecord) => number, type: 'bigint' | 'float8' = 'float8') => nums(tx, rows.map((x) => f(x.r)), type);
  await tx`
    INSERT INTO cheat_flags (user_id, torrent_id, peer_id, kind, evidence, flagged_at)
    SELECT u, t, substring(b.k FROM (i::int - 1) * 40 + 1 FOR 20), kind,
           jsonb_build_object('uploaded', up, 'downloaded', down, 'uploaded_credited', upc, 'downloaded_credited', downc,
                              'seconds', secs, 'total_uploaded', tu, 'total_downloaded', td, 'left', lft,
                              'ip', ip),
           to_timestamp(at)
    FROM (SELECT ${bytes(rows.map((x) => x.r.peer!.identity))}::bytea AS k) AS b,
         unnest(${col((r) => r.user, 'bigint')}, ${col((r) => r.torrent, 'bigint')}, string_to_array(${rows.map((x) => x.kind).join(',')}, ','),
                ${col((r) => r.uploaded)}, ${col((r) => r.downloaded)}, ${col((r) => r.uploadedCredited)}, ${col((r) => r.downloadedCredited)},
                ${col((r) => r.seedTime + r.leechTime)}, ${col((r) => r.totalUp ?? 0)}, ${col((r) => r.totalDown ?? 0)},
                ${col((r) => r.peer!.left)}, ${col((r) => r.at)}, string_to_array(${rows.map((x) => ipText(x.r.peer!.ip)).join(',')}, ','))
           WITH ORDINALITY AS x(u, t, kind, up, down, upc, downc, secs, tu, td, lft, at, ip, i)
    -- ... and none while one of the pair is open from the last day
    WHERE kind <> ${KIND_TOO_MANY_PEERS} OR NOT EXISTS (
      SELECT 1 FROM cheat_flags f WHERE f.user_id = u AND f.torrent_id = t AND f.kind = ${KIND_TOO_MANY_PEERS}
        AND f.resolved_at IS NULL AND f.flagged_at > to_timestamp(at) - interval '1 day')`;
}

/**
 * Flag the (user, torrent) pairs whose lifetime raw download now passes twice the torrent's
 * size. Once per pair while a flag of it is open; after a moderator resolves it, again only
 * when another whole size has been downloaded since. Returns the flags written.
 */
export async function flagTwiceSize(tx: postgres.TransactionSql, pairs: readonly { user: number; torrent: number }[]): Promise<number> {
  if (pairs.length === 0) return 0;
  const r = await tx`
    INSERT INTO cheat_flags (user_id, torrent_id, kind, evidence, flagged_at)
    SELECT h.user_id, h.torrent_id, ${KIND_DOWNLOAD_OVER_TWICE_SIZE}, jsonb_build_object('downloaded', h.downloaded, 'size', t.size), now()
    FROM unnest(${nums(tx, pairs.map((p) => p.user), 'bigint')}, ${nums(tx, pairs.map((p) => p.torrent), 'bigint')}) AS x(u, tid)
    JOIN history h ON h.user_id = x.u AND h.torrent_id = x.tid
    JOIN torrents t ON t.id = x.tid
    WHERE t.size > 0 AND h.downloaded::numeric > 2 * t.size::numeric
      AND NOT EXISTS (SELECT 1 FROM cheat_flags f
                      WHERE f.user_id = x.u AND f.torrent_id = x.tid AND f.kind = ${KIND_DOWNLOAD_OVER_TWICE_SIZE}
                        AND (f.resolved_at IS NULL OR (f.evidence->>'downloaded')::numeric + t.size > h.downloaded))`;
  return r.count;
}

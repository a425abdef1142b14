import type postgres from 'postgres';
import type { LedgerRecord } from './ledger.js';
import { bytes, nums } from './pg.js';
import { AF_COMPACT, AF_HAS_KEY, AF_RESTORE, AF_V6, AnnounceRequest, EVENT_NONE, EVENT_PAUSED, KIND_ANNOUNCE } from '../contract/requests.js';

// Swarms across restarts: the peers table (written with each ledger batch) is read back at start
// and turned into announce records flagged AF_RESTORE, which the shards take like an
// announce but answer to nobody and do not account. Each restored peer keeps the totals
// the ledger counted, so its next announce credits exactly what is new.

const CHUNK = 8192;

export function isV4Mapped(ip: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (ip[i] !== 0) return false;
  return ip[10] === 0xff && ip[11] === 0xff;
}

/**
 * Read the peers seen within `timeout` seconds (dropping older rows) and hand them to
 * `emit` as buffers of AnnounceRequest records, CHUNK at a time. Returns how many.
 */
export async function restorePeers(sql: postgres.Sql, timeout: number, emit: (records: Uint8Array) => void): Promise<number> {
  await prunePeers(sql, timeout);
  let total = 0;
  const cursor = sql`
    SELECT info_hash, peer_id, coalesce(user_id, 0) AS user_id, coalesce(torrent_id, 0) AS torrent_id, ip, port, peer_key,
           has_key, uploaded, downloaded, left_bytes, paused, greatest(0, extract(epoch FROM now() - last_announce))::int AS age
    FROM peers`.cursor(CHUNK);
  for await (const rows of cursor) {
    const buf = new Uint8Array(rows.length * AnnounceRequest.SIZE);
    const dv = new DataView(buf.buffer);
    rows.forEach((p, i) => {
      const r = i * AnnounceRequest.SIZE;
      const ip = p.ip as Uint8Array;
      buf[r + AnnounceRequest.KIND] = KIND_ANNOUNCE;
      buf[r + AnnounceRequest.EVENT] = p.paused ? EVENT_PAUSED : EVENT_NONE;
      buf[r + AnnounceRequest.FLAGS] = AF_RESTORE | AF_COMPACT | (isV4Mapped(ip) ? 0 : AF_V6) | (p.has_key ? AF_HAS_KEY : 0);
      dv.setUint32(r + AnnounceRequest.REQ_ID, 0, true); // no pending request: the answer is dropped
      dv.setUint32(r + AnnounceRequest.USER, Number(p.user_id), true);
      dv.setUint32(r + AnnounceRequest.TORRENT, Number(p.torrent_id), true);
      buf.set(p.info_hash as Uint8Array, r + AnnounceRequest.INFO_HASH);
      buf.set(p.peer_id as Uint8Array, r + AnnounceRequest.PEER_ID);
      buf.set(ip, r + AnnounceRequest.IP);
      dv.setUint16(r + AnnounceRequest.PORT, p.port, true);
      dv.setUint16(r + AnnounceRequest.NUMWANT, 0, true);
      dv.setUint32(r + AnnounceRequest.KEY, Number(p.peer_key), true);
      dv.setFloat64(r + AnnounceRequest.UPLOADED, Number(p.uploaded), true);
      dv.setFloat64(r + AnnounceRequest.DOWNLOADED, Number(p.downloaded), true);
      dv.setFloat64(r + AnnounceRequest.LEFT, Number(p.left_bytes), true);
      dv.setUint32(r + AnnounceRequest.RESTORE_AGE, Number(p.age), true);
    });
    emit(buf);
    total += rows.length;
  }
  return total;
}

/** Rows of peers gone quiet for longer than the timeout (they expired from the swarms too). */
export async function prunePeers(sql: postgres.Sql, timeout: number): Promise<number> {
  const r = await sql`DELETE FROM peers WHERE last_announce < now() - make_interval(secs => ${timeout})`;
  return r.count;
}

/**
 * The peers table follows each peer's last announce in the batch; a stop deletes the row.
 * (A peer of a user or torrent deleted meanwhile may keep a row until it expires: its next
 * announce is refused, and it is not restored after peer_timeout.)
 */
export async function writePeers(tx: postgres.TransactionSql, last: LedgerRecord[]): Promise<void> {
  const gone = last.filter((r) => r.peer!.stopped);
  const live = last.filter((r) => !r.peer!.stopped);
  if (gone.length > 0) {
    await tx`DELETE FROM peers AS p
             USING (SELECT ${bytes(gone.map((r) => r.peer!.identity))}::bytea AS k) AS b, generate_series(0, ${gone.length - 1}) AS i
             WHERE p.peer_id = substring(b.k FROM i * 40 + 1 FOR 20) AND p.info_hash = substring(b.k FROM i * 40 + 21 FOR 20)`;
  }
  if (live.length === 0) return;
  const col = (f: (r: LedgerRecord) => number, type: 'bigint' | 'int' | 'float8' = 'bigint') => nums(tx, live.map(f), type);
  await tx`
    INSERT INTO peers AS p (info_hash, peer_id, torrent_id, user_id, ip, port, peer_key, has_key, uploaded, downloaded, left_bytes, paused, last_announce)
    SELECT substring(b.k FROM (i::int - 1) * 40 + 21 FOR 20), substring(b.k FROM (i::int - 1) * 40 + 1 FOR 20), nullif(t, 0), nullif(u, 0),
           substring(b.ip FROM (i::int - 1) * 16 + 1 FOR 16), port, pk, hk <> 0, up, down, lft, pz <> 0, to_timestamp(at)
    FROM (SELECT ${bytes(live.map((r) => r.peer!.identity))}::bytea AS k, ${bytes(live.map((r) => r.peer!.ip))}::bytea AS ip) AS b,
         unnest(${col((r) => r.torrent)}, ${col((r) => r.user)}, ${col((r) => r.peer!.port, 'int')}, ${col((r) => r.peer!.key)},
                ${col((r) => (r.peer!.hasKey ? 1 : 0), 'int')}, ${col((r) => r.peer!.uploaded)}, ${col((r) => r.peer!.downloaded)},
                ${col((r) => r.peer!.left)}, ${col((r) => (r.peer!.paused ? 1 : 0), 'int')}, ${col((r) => r.at, 'float8')})
           WITH ORDINALITY AS x(t, u, port, pk, hk, up, down, lft, pz, at, i)
    ON CONFLICT (info_hash, peer_id) DO UPDATE SET
      torrent_id = EXCLUDED.torrent_id, user_id = EXCLUDED.user_id, ip = EXCLUDED.ip, port = EXCLUDED.port,
      peer_key = EXCLUDED.peer_key, has_key = EXCLUDED.has_key, uploaded = EXCLUDED.uploaded, downloaded = EXCLUDED.downloaded,
      left_bytes = EXCLUDED.left_bytes, paused = EXCLUDED.paused, last_announce = greatest(p.last_announce, EXCLUDED.last_announce)`;
}

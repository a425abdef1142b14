import type postgres from 'postgres';
import { AF_COMPACT, AF_HAS_KEY, AF_RESTORE, AF_V6, AQ, EVENT_NONE, EVENT_PAUSED, KIND_ANNOUNCE } from '../shards/layout.js';

// Swarms across restarts: the peers table (written with the ledger) is read back at start
// and turned into announce records flagged AF_RESTORE, which the shards take like an
// announce but answer to nobody and do not account. Each restored peer keeps the totals
// the ledger counted, so its next announce credits exactly what is new.

const CHUNK = 8192;

function isV4Mapped(ip: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (ip[i] !== 0) return false;
  return ip[10] === 0xff && ip[11] === 0xff;
}

/**
 * Read the peers seen within `timeout` seconds (dropping older rows) and hand them to
 * `emit` as buffers of AQ records, CHUNK at a time. Returns how many.
 */
export async function restorePeers(sql: postgres.Sql, timeout: number, emit: (records: Uint8Array) => void): Promise<number> {
  await prunePeers(sql, timeout);
  let total = 0;
  const cursor = sql`
    SELECT info_hash, peer_id, coalesce(user_id, 0) AS user_id, coalesce(torrent_id, 0) AS torrent_id, ip, port, peer_key,
           has_key, uploaded, downloaded, left_bytes, paused
    FROM peers`.cursor(CHUNK);
  for await (const rows of cursor) {
    const buf = new Uint8Array(rows.length * AQ.SIZE);
    const dv = new DataView(buf.buffer);
    rows.forEach((p, i) => {
      const r = i * AQ.SIZE;
      const ip = p.ip as Uint8Array;
      buf[r + AQ.KIND] = KIND_ANNOUNCE;
      buf[r + AQ.EVENT] = p.paused ? EVENT_PAUSED : EVENT_NONE;
      buf[r + AQ.FLAGS] = AF_RESTORE | AF_COMPACT | (isV4Mapped(ip) ? 0 : AF_V6) | (p.has_key ? AF_HAS_KEY : 0);
      dv.setUint32(r + AQ.REQ_ID, 0, true); // no pending request: the answer is dropped
      dv.setUint32(r + AQ.USER, Number(p.user_id), true);
      dv.setUint32(r + AQ.TORRENT, Number(p.torrent_id), true);
      buf.set(p.info_hash as Uint8Array, r + AQ.INFO_HASH);
      buf.set(p.peer_id as Uint8Array, r + AQ.PEER_ID);
      buf.set(ip, r + AQ.IP);
      dv.setUint16(r + AQ.PORT, p.port, true);
      dv.setUint16(r + AQ.NUMWANT, 0, true);
      dv.setUint32(r + AQ.KEY, Number(p.peer_key), true);
      dv.setFloat64(r + AQ.UPLOADED, Number(p.uploaded), true);
      dv.setFloat64(r + AQ.DOWNLOADED, Number(p.downloaded), true);
      dv.setFloat64(r + AQ.LEFT, Number(p.left_bytes), true);
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

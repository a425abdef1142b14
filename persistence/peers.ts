import type postgres from 'postgres';
import { AF_COMPACT, AF_HAS_KEY, AF_RESTORE, AF_V6, AnnounceRequest, EVENT_NONE, EVENT_PAUSED, KIND_ANNOUNCE } from '../contract/requests.js';

// The peers table of releases before checkpoints: written with each ledger batch, in step
// with the ledger as committed. At the first start of this release (no checkpoint yet) its
// rows are the swarms' base, read back once as announce records flagged AF_RESTORE (the
// shards take them like an announce, answer nobody and account nothing), then deleted:
// checkpoints and the journal carry the swarms from then on (persistence/restore.ts). The
// table itself stays until a later release drops it.

const CHUNK = 8192;

export function isV4Mapped(ip: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (ip[i] !== 0) return false;
  return ip[10] === 0xff && ip[11] === 0xff;
}

/**
 * Read the rows of peers seen within `timeout` seconds and hand them to `emit` as buffers
 * of AnnounceRequest records, CHUNK at a time. Returns how many.
 */
export async function restoreLegacyPeers(sql: postgres.Sql, timeout: number, emit: (records: Uint8Array) => void | Promise<void>): Promise<number> {
  let total = 0;
  const cursor = sql`
    SELECT info_hash, peer_id, coalesce(user_id, 0) AS user_id, coalesce(torrent_id, 0) AS torrent_id, ip, port, peer_key,
           has_key, uploaded, downloaded, left_bytes, paused, greatest(0, extract(epoch FROM now() - last_announce))::int AS age
    FROM peers WHERE last_announce >= now() - make_interval(secs => ${timeout})`.cursor(CHUNK);
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
    await emit(buf);
    total += rows.length;
  }
  return total;
}

/** Delete the old release's rows (once read, or once a checkpoint holds the swarms). */
export async function clearLegacyPeers(sql: postgres.Sql): Promise<void> {
  const [{ any }] = await sql<{ any: boolean }[]>`SELECT EXISTS (SELECT 1 FROM peers) AS any`;
  if (!any) return;
  // a reader of the old table (a site) must not hold the ledger up for long: retried later
  await sql.begin(async (tx) => {
    await tx`SET LOCAL lock_timeout = '5s'`;
    await tx`TRUNCATE peers`;
  });
}

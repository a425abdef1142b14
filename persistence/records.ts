import { AC, ACF_COMPLETED, ACF_HAS_KEY, ACF_PAUSED, ACF_STOPPED } from '../shards/layout.js';
import type { AccountingRecord } from './ledger.js';

// Accounting records as the shards write them (AC layout, binary) and as the ledger takes
// them. Batches travel and are journalled in the binary form (144 bytes a record, no
// object per record); they are decoded only when a batch is written to the database.

/** Multipliers of a torrent: credited = raw × multiplier, until `expires` (unix s, 0 = never). */
export interface Multipliers {
  up: number;
  down: number;
  expires: number;
}

/**
 * Fill in the credited amounts of `count` records in `buf` (at `AC.SIZE` strides) from the
 * torrents' multipliers as they stand at each record's time. Done before the batch is
 * journalled, so a replay after an outage credits what the announce earned when it was made.
 */
export function credit(buf: Uint8Array, count: number, epoch: number, multipliers: (torrent: number) => Multipliers | undefined): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < count; i++) {
    const r = i * AC.SIZE;
    const m = multipliers(dv.getUint32(r + AC.TORRENT, true));
    let upM = 1;
    let downM = 1;
    if (m !== undefined && (m.expires === 0 || epoch + dv.getUint32(r + AC.AT, true) < m.expires)) {
      upM = m.up;
      downM = m.down;
    }
    dv.setFloat64(r + AC.UP_CREDITED, Math.round(dv.getFloat64(r + AC.UPLOADED, true) * upM), true);
    dv.setFloat64(r + AC.DOWN_CREDITED, Math.round(dv.getFloat64(r + AC.DOWNLOADED, true) * downM), true);
  }
}

/** Decode a binary batch for the ledger. `epoch` turns the tracker clock into unix seconds. */
export function decode(buf: Uint8Array, epoch: number): AccountingRecord[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = Math.floor(buf.byteLength / AC.SIZE);
  const out: AccountingRecord[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const r = i * AC.SIZE;
    const flags = buf[r + AC.FLAGS];
    out[i] = {
      user: dv.getUint32(r + AC.USER, true),
      torrent: dv.getUint32(r + AC.TORRENT, true),
      uploaded: dv.getFloat64(r + AC.UPLOADED, true),
      downloaded: dv.getFloat64(r + AC.DOWNLOADED, true),
      uploadedCredited: dv.getFloat64(r + AC.UP_CREDITED, true),
      downloadedCredited: dv.getFloat64(r + AC.DOWN_CREDITED, true),
      seedTime: dv.getUint32(r + AC.SEED_TIME, true),
      leechTime: dv.getUint32(r + AC.LEECH_TIME, true),
      completed: (flags & ACF_COMPLETED) !== 0,
      at: epoch + dv.getUint32(r + AC.AT, true),
      peer: {
        // views into the batch, not copies: `identity` is peer_id + info_hash (40 bytes)
        identity: Buffer.from(buf.buffer, buf.byteOffset + r + AC.PEER_ID, 40),
        ip: Buffer.from(buf.buffer, buf.byteOffset + r + AC.IP, 16),
        port: dv.getUint16(r + AC.PORT, true),
        key: dv.getUint32(r + AC.KEY, true),
        hasKey: (flags & ACF_HAS_KEY) !== 0,
        uploaded: dv.getFloat64(r + AC.TOTAL_UP, true),
        downloaded: dv.getFloat64(r + AC.TOTAL_DOWN, true),
        left: dv.getFloat64(r + AC.LEFT, true),
        paused: (flags & ACF_PAUSED) !== 0,
        stopped: (flags & ACF_STOPPED) !== 0,
      },
    };
  }
  return out;
}

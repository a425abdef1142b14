import { AccountingRecord, ACF_COMPLETED, ACF_HAS_KEY, ACF_PAUSED, ACF_STOPPED } from '../contract/accounting.js';
import type { Multipliers } from '../contract/registry.js';
import type { LedgerRecord } from './ledger.js';

// Accounting records as the shards write them (AccountingRecord layout, binary) and as the ledger takes
// them. Batches travel and are journalled in the binary form (144 bytes a record, no
// object per record); they are decoded only when a batch is written to the database.


/**
 * Fill in the credited amounts of `count` records in `buf` (at `AccountingRecord.SIZE` strides) from the
 * torrents' multipliers as they stand at each record's time. Done before the batch is
 * journalled, so a replay after an outage credits what the announce earned when it was made.
 */
export function credit(buf: Uint8Array, count: number, epoch: number, multipliers: (torrent: number) => Multipliers | undefined): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < count; i++) {
    const r = i * AccountingRecord.SIZE;
    const m = multipliers(dv.getUint32(r + AccountingRecord.TORRENT, true));
    let upM = 1;
    let downM = 1;
    if (m !== undefined && (m.expires === 0 || epoch + dv.getUint32(r + AccountingRecord.AT, true) < m.expires)) {
      upM = m.up;
      downM = m.down;
    }
    dv.setFloat64(r + AccountingRecord.UP_CREDITED, Math.round(dv.getFloat64(r + AccountingRecord.UPLOADED, true) * upM), true);
    dv.setFloat64(r + AccountingRecord.DOWN_CREDITED, Math.round(dv.getFloat64(r + AccountingRecord.DOWNLOADED, true) * downM), true);
  }
}

/** Decode a binary batch for the ledger. `epoch` turns the tracker clock into unix seconds. */
export function decode(buf: Uint8Array, epoch: number): LedgerRecord[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = Math.floor(buf.byteLength / AccountingRecord.SIZE);
  const out: LedgerRecord[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const r = i * AccountingRecord.SIZE;
    const flags = buf[r + AccountingRecord.FLAGS];
    out[i] = {
      user: dv.getUint32(r + AccountingRecord.USER, true),
      torrent: dv.getUint32(r + AccountingRecord.TORRENT, true),
      uploaded: dv.getFloat64(r + AccountingRecord.UPLOADED, true),
      downloaded: dv.getFloat64(r + AccountingRecord.DOWNLOADED, true),
      uploadedCredited: dv.getFloat64(r + AccountingRecord.UP_CREDITED, true),
      downloadedCredited: dv.getFloat64(r + AccountingRecord.DOWN_CREDITED, true),
      seedTime: dv.getUint32(r + AccountingRecord.SEED_TIME, true),
      leechTime: dv.getUint32(r + AccountingRecord.LEECH_TIME, true),
      completed: (flags & ACF_COMPLETED) !== 0,
      at: epoch + dv.getUint32(r + AccountingRecord.AT, true),
      peer: {
        // views into the batch, not copies: `identity` is peer_id + info_hash (40 bytes)
        identity: Buffer.from(buf.buffer, buf.byteOffset + r + AccountingRecord.PEER_ID, 40),
        ip: Buffer.from(buf.buffer, buf.byteOffset + r + AccountingRecord.IP, 16),
        port: dv.getUint16(r + AccountingRecord.PORT, true),
        key: dv.getUint32(r + AccountingRecord.KEY, true),
        hasKey: (flags & ACF_HAS_KEY) !== 0,
        uploaded: dv.getFloat64(r + AccountingRecord.TOTAL_UP, true),
        downloaded: dv.getFloat64(r + AccountingRecord.TOTAL_DOWN, true),
        left: dv.getFloat64(r + AccountingRecord.LEFT, true),
        paused: (flags & ACF_PAUSED) !== 0,
        stopped: (flags & ACF_STOPPED) !== 0,
      },
    };
  }
  return out;
}

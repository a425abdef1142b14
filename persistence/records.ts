import { AccountingRecord, ACF_COMPLETED, ACF_HAS_KEY, ACF_PAUSED, ACF_REFUSED, ACF_STATE, ACF_STOPPED, CHEAT_DOWNLOAD_OVER_SIZE, CHEAT_KINDS } from '../contract/accounting.js';
import type { Multipliers } from '../contract/registry.js';
import type { LedgerRecord } from './ledger.js';

// Accounting records as the shards write them (AccountingRecord layout, binary) and as the ledger takes
// them. Batches travel and are journalled in the binary form (144 bytes a record, no
// object per record); they are decoded only when a batch is written to the database.


/**
 * Credit `count` records in `buf` (at `AccountingRecord.SIZE` strides): bound each download
 * by what the torrent's size leaves of the peer's session (the client's reported total
 * before this announce is TOTAL_DOWN − DOWNLOADED), then multiply the bounded amounts the
 * shard wrote by the torrent's multipliers as they stood at the record's time. Done before
 * the batch is journalled, so a replay after an outage credits what the announce earned
 * when it was made. Each CHEAT_* bit set is counted into `cheats` (by CHEAT_KINDS index).
 */
export function credit(buf: Uint8Array, count: number, epoch: number, terms: (torrent: number) => Multipliers | undefined, cheats?: Float64Array): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < count; i++) {
    const r = i * AccountingRecord.SIZE;
    if (buf[r + AccountingRecord.FLAGS] & ACF_STATE) continue; // a peer's state: nothing to credit
    const m = terms(dv.getUint32(r + AccountingRecord.TORRENT, true));
    let upM = 1;
    let downM = 1;
    if (m !== undefined && (m.expires === 0 || epoch + dv.getUint32(r + AccountingRecord.AT, true) < m.expires)) {
      upM = m.up;
      downM = m.down;
    }
    let down = dv.getFloat64(r + AccountingRecord.DOWN_CREDITED, true);
    if (m !== undefined && m.size > 0 && down > 0) {
      const before = dv.getFloat64(r + AccountingRecord.TOTAL_DOWN, true) - dv.getFloat64(r + AccountingRecord.DOWNLOADED, true);
      const room = Math.max(0, m.size - before);
      if (down > room) {
        down = room;
        buf[r + AccountingRecord.CHEATS] |= CHEAT_DOWNLOAD_OVER_SIZE;
      }
    }
    dv.setFloat64(r + AccountingRecord.UP_CREDITED, Math.round(dv.getFloat64(r + AccountingRecord.UP_CREDITED, true) * upM), true);
    dv.setFloat64(r + AccountingRecord.DOWN_CREDITED, Math.round(down * downM), true);
    const bits = buf[r + AccountingRecord.CHEATS];
    if (bits !== 0 && cheats !== undefined) for (let k = 0; k < CHEAT_KINDS.length; k++) if (bits & (1 << k)) cheats[k]++;
  }
}

/** Does the chunk hold a record the ledger is owed (not a peer's state alone, ACF_STATE)? */
export function owesLedger(buf: Uint8Array): boolean {
  for (let r = 0; r + AccountingRecord.SIZE <= buf.byteLength; r += AccountingRecord.SIZE) if (!(buf[r + AccountingRecord.FLAGS] & ACF_STATE)) return true;
  return false;
}

/**
 * Decode a binary batch for the ledger (state-only records, ACF_STATE, are not the ledger's:
 * left out). `epoch` turns the tracker clock into unix seconds; `withCheats`: the records
 * carry the CHEATS byte (format 2; journals of older releases do not).
 */
export function decode(buf: Uint8Array, epoch: number, withCheats = true): LedgerRecord[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = Math.floor(buf.byteLength / AccountingRecord.SIZE);
  const out: LedgerRecord[] = [];
  for (let i = 0; i < n; i++) {
    const r = i * AccountingRecord.SIZE;
    const flags = buf[r + AccountingRecord.FLAGS];
    if (flags & ACF_STATE) continue;
    out.push({
      user: dv.getUint32(r + AccountingRecord.USER, true),
      torrent: dv.getUint32(r + AccountingRecord.TORRENT, true),
      uploaded: dv.getFloat64(r + AccountingRecord.UPLOADED, true),
      downloaded: dv.getFloat64(r + AccountingRecord.DOWNLOADED, true),
      uploadedCredited: dv.getFloat64(r + AccountingRecord.UP_CREDITED, true),
      downloadedCredited: dv.getFloat64(r + AccountingRecord.DOWN_CREDITED, true),
      seedTime: dv.getUint32(r + AccountingRecord.SEED_TIME, true),
      leechTime: dv.getUint32(r + AccountingRecord.LEECH_TIME, true),
      completed: (flags & ACF_COMPLETED) !== 0,
      refused: (flags & ACF_REFUSED) !== 0,
      cheats: withCheats ? buf[r + AccountingRecord.CHEATS] : 0,
      totalUp: dv.getFloat64(r + AccountingRecord.TOTAL_UP, true),
      totalDown: dv.getFloat64(r + AccountingRecord.TOTAL_DOWN, true),
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
    });
  }
  return out;
}

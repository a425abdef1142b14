import { describe, expect, it } from 'vitest';
import { AccountingRecord, ACF2_WS, ACF_HAS_KEY, ACF_PAUSED, ACF_REFUSED, ACF_STOPPED, ACF_V6 } from '../contract/accounting.js';
import { AF_COMPACT, AF_HAS_KEY, AF_RESTORE, AF_V6, AnnounceRequest, EVENT_NONE, EVENT_PAUSED, EVENT_STOPPED, KIND_ANNOUNCE } from '../contract/requests.js';
import { RestoreBatches } from './restore.js';

const EPOCH = 1_790_000_000;

/** An accounting record as a shard writes it: flags, the peer's state, its time. */
function record(buf: Uint8Array, i: number, o: { flags: number; peer: number; at: number; up: number; left: number }): void {
  const r = i * AccountingRecord.SIZE;
  const dv = new DataView(buf.buffer);
  buf[r + AccountingRecord.FLAGS] = o.flags;
  dv.setUint16(r + AccountingRecord.PORT, 6000 + o.peer, true);
  dv.setUint32(r + AccountingRecord.USER, 10 + o.peer, true);
  dv.setUint32(r + AccountingRecord.TORRENT, 20 + o.peer, true);
  dv.setUint32(r + AccountingRecord.AT, o.at, true);
  dv.setFloat64(r + AccountingRecord.UPLOADED, 123, true); // a delta: not what is restored
  dv.setFloat64(r + AccountingRecord.TOTAL_UP, o.up, true);
  dv.setFloat64(r + AccountingRecord.TOTAL_DOWN, o.up / 2, true);
  dv.setFloat64(r + AccountingRecord.LEFT, o.left, true);
  dv.setUint32(r + AccountingRecord.KEY, 0xabc0 + o.peer, true);
  buf.fill(o.peer, r + AccountingRecord.PEER_ID, r + AccountingRecord.PEER_ID + 20);
  buf.fill(0x40 + o.peer, r + AccountingRecord.INFO_HASH, r + AccountingRecord.INFO_HASH + 20);
  buf.fill(0x80 + o.peer, r + AccountingRecord.IP, r + AccountingRecord.IP + 16);
}

describe('restore records', () => {
  it('turns journalled accounting records into AF_RESTORE announces of the peers\' states, leaving out refusals and the expired', async () => {
    const data = new Uint8Array(6 * AccountingRecord.SIZE);
    record(data, 0, { flags: ACF_HAS_KEY | ACF_V6, peer: 1, at: 1000, up: 500, left: 0 });
    record(data, 1, { flags: ACF_REFUSED, peer: 2, at: 1000, up: 9, left: 9 }); // changed nothing
    record(data, 2, { flags: 0, peer: 3, at: 100, up: 7, left: 7 }); // 900 s old: past the timeout
    record(data, 3, { flags: ACF_STOPPED, peer: 4, at: 100, up: 1, left: 1 }); // a stop, however old
    record(data, 4, { flags: ACF_PAUSED, peer: 5, at: 990, up: 64, left: 32 });
    record(data, 5, { flags: 0, peer: 6, at: 999, up: 8, left: 8 });
    data[5 * AccountingRecord.SIZE + AccountingRecord.FLAGS2] = ACF2_WS; // a browser: its socket is gone
    const out: Uint8Array[] = [];
    const b = new RestoreBatches((records) => void out.push(records));
    await b.journal(data, EPOCH, EPOCH + 1000, 600);
    await b.flush();
    expect(b.count).toBe(4);
    const recs = Buffer.concat(out);
    const dv = new DataView(recs.buffer, recs.byteOffset, recs.byteLength);
    const at = (i: number) => i * AnnounceRequest.SIZE;
    const read = (i: number) => ({
      kind: recs[at(i) + AnnounceRequest.KIND],
      event: recs[at(i) + AnnounceRequest.EVENT],
      flags: recs[at(i) + AnnounceRequest.FLAGS],
      reqId: dv.getUint32(at(i) + AnnounceRequest.REQ_ID, true),
      user: dv.getUint32(at(i) + AnnounceRequest.USER, true),
      torrent: dv.getUint32(at(i) + AnnounceRequest.TORRENT, true),
      peerId: recs[at(i) + AnnounceRequest.PEER_ID],
      infoHash: recs[at(i) + AnnounceRequest.INFO_HASH + 19],
      ip: recs[at(i) + AnnounceRequest.IP + 15],
      port: dv.getUint16(at(i) + AnnounceRequest.PORT, true),
      key: dv.getUint32(at(i) + AnnounceRequest.KEY, true),
      up: dv.getFloat64(at(i) + AnnounceRequest.UPLOADED, true),
      down: dv.getFloat64(at(i) + AnnounceRequest.DOWNLOADED, true),
      left: dv.getFloat64(at(i) + AnnounceRequest.LEFT, true),
      age: dv.getUint32(at(i) + AnnounceRequest.RESTORE_AGE, true),
    });
    const base = { kind: KIND_ANNOUNCE, reqId: 0 };
    expect(read(0)).toEqual({ ...base, event: EVENT_NONE, flags: AF_RESTORE | AF_COMPACT | AF_V6 | AF_HAS_KEY, user: 11, torrent: 21, peerId: 1, infoHash: 0x41, ip: 0x81, port: 6001, key: 0xabc1, up: 500, down: 250, left: 0, age: 0 });
    expect(read(1)).toMatchObject({ ...base, event: EVENT_STOPPED, flags: AF_RESTORE | AF_COMPACT, user: 14, peerId: 4 });
    expect(read(2)).toMatchObject({ ...base, event: EVENT_PAUSED, user: 15, up: 64, down: 32, left: 32, age: 10 });
    expect(read(3)).toMatchObject({ ...base, event: EVENT_STOPPED, user: 16, peerId: 6 }); // its departure
  });

  it('hands full buffers over as they fill, and whole ones are never reused under the receiver', async () => {
    const n = 8192 + 10;
    const data = new Uint8Array(n * AccountingRecord.SIZE);
    for (let i = 0; i < n; i++) record(data, i, { flags: 0, peer: i % 200, at: 1000, up: i, left: 1 });
    const out: Uint8Array[] = [];
    const b = new RestoreBatches((records) => void out.push(records));
    await b.journal(data, EPOCH, EPOCH + 1000, 600);
    await b.flush();
    expect(out.map((o) => o.length / AnnounceRequest.SIZE)).toEqual([8192, 10]);
    expect(new DataView(out[0].buffer).getFloat64(AnnounceRequest.UPLOADED, true)).toBe(0); // the first record still its own
    expect(new DataView(out[1].buffer, out[1].byteOffset).getFloat64(AnnounceRequest.UPLOADED, true)).toBe(8192);
  });
});

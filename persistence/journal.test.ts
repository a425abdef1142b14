import { appendFileSync, mkdtempSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prng } from '../test/support/prng.js';
import { Journal } from './journal.js';

const dir = () => mkdtempSync(join(tmpdir(), 'shardtrack-journal-'));
const file = (d: string) => join(d, 'accounting.journal');
type Rec = { user: number; torrent: number; up: number };

describe('accounting journal', () => {
  it('hands back every batch not acknowledged, after a restart, in order', () => {
    const d = dir();
    const j = Journal.open<Rec>(d);
    j.append(1, [{ user: 1, torrent: 2, up: 10 }]);
    j.append(2, [{ user: 3, torrent: 4, up: 20 }]);
    j.append(3, []);
    j.ack(2);
    j.close();
    const again = Journal.open<Rec>(d);
    expect(again.unacked()).toEqual([
      { id: 1, records: [{ user: 1, torrent: 2, up: 10 }] },
      { id: 3, records: [] },
    ]);
    expect(again.lastBatchId).toBe(3);
    expect(() => again.append(3, [])).toThrow(/must increase/);
    again.close();
  });

  it('empties the file when everything is acknowledged, keeping the id sequence', () => {
    const d = dir();
    const j = Journal.open<Rec>(d);
    for (let id = 1; id <= 50; id++) j.append(id, [{ user: id, torrent: id, up: id }]);
    expect(j.size).toBeGreaterThan(50 * 12);
    for (let id = 1; id <= 50; id++) j.ack(id);
    expect(j.unacked()).toEqual([]);
    expect(statSync(file(d)).size).toBe(j.size);
    expect(j.size).toBeLessThan(40); // one small frame remembering the last id
    j.close();
    const again = Journal.open<Rec>(d);
    expect(again.lastBatchId).toBe(50);
    expect(again.unacked()).toEqual([]);
    again.append(51, []);
    again.close();
  });

  it('cuts a torn tail (a crash mid-write) and keeps every whole frame before it', () => {
    const d = dir();
    const j = Journal.open<Rec>(d);
    j.append(1, [{ user: 1, torrent: 1, up: 1 }]);
    j.append(2, [{ user: 2, torrent: 2, up: 2 }]);
    j.close();
    const whole = statSync(file(d)).size;
    for (let cut = whole - 1; cut > whole - 20; cut--) {
      truncateSync(file(d), cut);
      const r = Journal.open<Rec>(d);
      expect(r.unacked().map((b) => b.id)).toEqual([1]);
      expect(statSync(file(d)).size).toBe(r.size); // the torn bytes are gone from disk
      r.append(2, [{ user: 2, torrent: 2, up: 2 }]); // and appending continues cleanly
      r.close();
      expect(Journal.open<Rec>(d).unacked().map((b) => b.id)).toEqual([1, 2]);
    }
  });

  it('stops at a corrupt frame instead of replaying garbage', () => {
    const d = dir();
    const j = Journal.open<Rec>(d);
    j.append(1, [{ user: 1, torrent: 1, up: 1 }]);
    const afterFirst = j.size;
    j.append(2, [{ user: 2, torrent: 2, up: 2 }]);
    j.close();
    const buf = readFileSync(file(d));
    buf[afterFirst + 14] ^= 0xff; // a payload byte of the second frame
    writeFileSync(file(d), buf);
    const opened = Journal.open<Rec>(d);
    expect(opened.unacked().map((b) => b.id)).toEqual([1]);
    // what was cut is kept aside for an operator, byte for byte
    expect(opened.recovered.cutBytes).toBe(buf.length - afterFirst);
    expect(readFileSync(opened.recovered.savedTo!)).toEqual(buf.subarray(afterFirst));
    // batch 2 may have reached the database: ids past whatever the cut bytes held, for good
    const raised = opened.lastBatchId;
    expect(raised).toBeGreaterThanOrEqual(2);
    opened.close();
    const again = Journal.open<Rec>(d);
    expect(again.lastBatchId).toBe(raised);
    expect(again.recovered).toEqual({ cutBytes: 0 });
    expect(() => again.append(raised, [])).toThrow(/must increase/);
    again.close();
    // garbage appended after valid frames is cut too
    appendFileSync(file(d), Buffer.from('not a frame at all'));
    expect(Journal.open<Rec>(d).unacked().map((b) => b.id)).toEqual([1]);
    // a tail of zeros (a crash after the file grew, before its data landed) is a torn write
    appendFileSync(file(d), Buffer.alloc(64));
    const zeros = Journal.open<Rec>(d);
    expect(zeros.recovered).toEqual({ cutBytes: 64 });
    expect(zeros.lastBatchId).toBe(raised);
  });

  it.each([['without', 64 << 20], ['with', 1024]])('agrees with a model over random appends, acks and restarts, %s compaction', (_, compactAt) => {
    const d = dir();
    const rnd = prng(7);
    let j = Journal.open<Rec>(d, { compactAt });
    const model = new Map<number, Rec[]>();
    let next = 1;
    for (let step = 0; step < 600; step++) {
      const r = rnd();
      if (r < 0.5) {
        const recs = Array.from({ length: Math.floor(rnd() * 5) }, () => ({ user: Math.floor(rnd() * 1e6), torrent: Math.floor(rnd() * 1e6), up: Math.floor(rnd() * 2 ** 40) }));
        j.append(next, recs);
        model.set(next++, recs);
      } else if (r < 0.9 && model.size > 0) {
        const ids = [...model.keys()];
        const id = ids[Math.floor(rnd() * ids.length)];
        j.ack(id);
        model.delete(id);
      } else {
        j.close();
        j = Journal.open<Rec>(d, { compactAt });
      }
      if (step % 50 === 0) expect(j.unacked()).toEqual([...model].map(([id, records]) => ({ id, records })));
    }
    j.close();
    expect(Journal.open<Rec>(d, { compactAt }).unacked()).toEqual([...model].map(([id, records]) => ({ id, records })));
  });

  it('compacts a journal that is never fully acknowledged, and recovers exactly what is pending', () => {
    const d = dir();
    const j = Journal.open<Rec>(d, { compactAt: 4096 });
    const big = Array.from({ length: 20 }, (_, i) => ({ user: i, torrent: i, up: i }));
    let maxSize = 0;
    // always two batches in flight: the file would never be emptied
    for (let id = 1; id <= 300; id++) {
      j.append(id, big.map((r) => ({ ...r, up: id })));
      if (id > 2) j.ack(id - 2);
      maxSize = Math.max(maxSize, j.size);
    }
    expect(maxSize).toBeLessThan(4096 + 2000); // bounded by the threshold plus what is pending
    expect(j.unacked().map((b) => b.id)).toEqual([299, 300]);
    expect(j.read(300)[0].up).toBe(300);
    j.close();
    const again = Journal.open<Rec>(d, { compactAt: 4096 });
    expect(again.unacked()).toEqual([299, 300].map((id) => ({ id, records: big.map((r) => ({ ...r, up: id })) })));
    expect(again.lastBatchId).toBe(300);
    expect(() => again.append(300, [])).toThrow(/must increase/);
    again.ack(299);
    again.ack(300);
    expect(again.size).toBeLessThan(64);
    again.close();
  });

  it('keeps acknowledged batches from keepFrom on (a checkpoint\'s tail), across restarts and compactions', () => {
    const d = dir();
    const j = Journal.open<Rec>(d, { keep: true, compactAt: 1 });
    for (let id = 1; id <= 6; id++) j.append(id, [{ user: id, torrent: 0, up: id }]);
    j.keepFrom(3);
    for (let id = 1; id <= 5; id++) j.ack(id); // compactAt 1: each ack past the first may rewrite the file
    expect(j.pendingIds()).toEqual([6]);
    expect(j.tail()).toEqual([3, 4, 5, 6]);
    expect(j.read(4)).toEqual([{ user: 4, torrent: 0, up: 4 }]);
    expect(() => j.read(2)).toThrow(/no batch 2/);
    expect(j.keptSize).toBeGreaterThan(0);
    j.close();
    // reopened: the kept batches are still acknowledged (not replayed to the database) and
    // still there, with any the file still held, until keepFrom says again
    const again = Journal.open<Rec>(d, { keep: true });
    expect(again.pendingIds()).toEqual([6]);
    expect(again.tail().slice(-4)).toEqual([3, 4, 5, 6]);
    again.keepFrom(5);
    expect(again.tail()).toEqual([5, 6]);
    again.ack(6);
    again.compact();
    again.close();
    const third = Journal.open<Rec>(d, { keep: true });
    expect(third.tail()).toEqual([5, 6]);
    expect(third.pendingIds()).toEqual([]);
    expect([4, 5, 6, 7, 8].map((id) => third.holdsFrom(id))).toEqual([false, true, true, true, false]); // 7: one past the last
    third.append(7, []);
    third.keepFrom(8); // a checkpoint after everything: nothing kept, and the file empties at the next ack
    third.ack(7);
    expect(third.tail()).toEqual([]);
    expect(third.size).toBeLessThan(40);
    third.close();
  });

  it('without keep, an acknowledged batch is gone and the tail is only what is pending', () => {
    const d = dir();
    const j = Journal.open<Rec>(d);
    for (let id = 1; id <= 3; id++) j.append(id, []);
    j.ack(1);
    expect(j.tail()).toEqual([2, 3]);
    j.ack(3);
    expect(j.tail()).toEqual([]); // 3 is acked, 2 is pending: the run up to the last id is broken
    expect(j.pendingIds()).toEqual([2]);
    j.close();
  });

  it('compacts what checkpoints no longer need, though the file is never all acknowledged', () => {
    const d = dir();
    const j = Journal.open<Rec>(d, { keep: true, compactAt: 4096 });
    const big = Array.from({ length: 20 }, (_, i) => ({ user: i, torrent: i, up: i }));
    let max = 0;
    for (let id = 1; id <= 400; id++) {
      j.append(id, big);
      j.ack(id);
      if (id % 20 === 0) j.keepFrom(id - 19); // a checkpoint every 20 batches: the last 20 kept
      max = Math.max(max, j.size);
    }
    expect(j.tail().length).toBeGreaterThanOrEqual(20);
    expect(j.size).toBe(statSync(file(d)).size);
    // bounded by the kept batches and the compaction threshold, not by the 400 written
    const frame = j.size / j.tail().length;
    expect(max).toBeLessThan(frame * 60 + 3 * 4096);
    j.close();
  });
});

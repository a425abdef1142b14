// Batches from the accounting rings into the journal: a cut past the journal's disk budget
// leaves every record in its ring (the shards wait) and counts a stall; a cut at shutdown
// takes them anyway; within the budget they are journalled and the ring space given back.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AccountingRecord, ACF_STATE } from '../contract/accounting.js';
import { PersistenceStats } from '../contract/persistence-stats.js';
import { ByteRing, ringBytes } from '../contract/ring.js';
import { Batches, type Chunk } from './batches.js';
import { Database } from './database.js';
import { Journal } from './journal.js';

function setUp(journalMaxBytes: number) {
  const dataDir = mkdtempSync(join(tmpdir(), 'shardtrack-batches-'));
  const rings = [new ByteRing(new SharedArrayBuffer(ringBytes(1 << 16))), new ByteRing(new SharedArrayBuffer(ringBytes(1 << 16)))];
  const stats = new Float64Array(PersistenceStats.SIZE);
  const logs: string[] = [];
  const log = (m: string) => logs.push(m);
  // a database that is never connected: batches wait in the journal
  const db = new Database({ url: 'postgres://nobody@127.0.0.1:1/none', schema: 'public', dataDir, flushConnections: 1 }, stats, log);
  const journal = Journal.open<Chunk>(join(dataDir, 'journal'));
  const batches = new Batches(rings, journal, db, { epoch: 1_800_000_000, journalMaxBytes, parts: 1 }, () => undefined, stats, log);
  /** `n` accounting records (or `flags`: peers' states) into ring `r`, published. */
  const produce = (r: number, n: number, flags = 0): void => {
    for (let i = 0; i < n; i++) {
      const at = rings[r].reserve(AccountingRecord.SIZE);
      rings[r].u8[at + AccountingRecord.FLAGS] = flags;
      rings[r].dv.setUint32(at + AccountingRecord.USER, 1 + i, true);
      rings[r].dv.setFloat64(at + AccountingRecord.UPLOADED, 1000 * (i + 1), true);
      rings[r].dv.setFloat64(at + AccountingRecord.UP_CREDITED, 1000 * (i + 1), true); // the shard's bound let it all through
    }
    rings[r].commit();
  };
  return { rings, stats, logs, journal, batches, produce };
}

describe('Batches.cut', () => {
  it('journals every published record of every ring as one batch and releases the rings', () => {
    const b = setUp(1 << 30);
    b.produce(0, 5);
    b.produce(1, 3);
    b.batches.cut();
    expect(b.rings.map((r) => r.depth())).toEqual([0, 0]);
    expect(b.journal.pendingIds()).toEqual([b.journal.lastBatchId]);
    const chunks = b.journal.read(b.journal.lastBatchId);
    expect(chunks.map((c) => c.data.length / AccountingRecord.SIZE)).toEqual([5, 3]);
    // credited with the (absent, so 1×) multipliers before it was journalled
    expect(new DataView(chunks[0].data.buffer, chunks[0].data.byteOffset).getFloat64(AccountingRecord.UP_CREDITED, true)).toBe(1000);
    expect(b.stats[PersistenceStats.RECORDS_JOURNALLED]).toBe(8);
    expect(b.stats[PersistenceStats.PENDING_BATCHES]).toBe(1);
  });

  it('past the disk budget leaves the records in the rings, counts a stall and says so; at shutdown takes them', () => {
    const b = setUp(2 * AccountingRecord.SIZE); // room for less than the batch
    b.produce(0, 4);
    const depth = b.rings[0].depth();
    b.batches.cut();
    b.batches.cut();
    expect(b.rings[0].depth()).toBe(depth); // nothing taken, nothing lost
    expect(b.journal.pendingCount).toBe(0);
    expect(b.stats[PersistenceStats.BUDGET_STALLS]).toBe(2);
    expect(b.logs.filter((l) => /journal at its disk budget/.test(l))).toHaveLength(1); // said once per 10 s
    b.batches.cut(true); // shutdown: the rings die with the process, the journal takes it
    expect(b.rings[0].depth()).toBe(0);
    expect(b.journal.pendingCount).toBe(1);
    expect(b.stats[PersistenceStats.RECORDS_JOURNALLED]).toBe(4);
  });

  it('acknowledges a batch of peers\' states at once (nothing owed), database away or not, and keeps it only for a checkpoint', () => {
    const b = setUp(1 << 30);
    b.produce(0, 3, ACF_STATE);
    b.batches.cut();
    expect(b.rings[0].depth()).toBe(0);
    expect(b.journal.pendingCount).toBe(0);
    b.produce(0, 2, ACF_STATE);
    b.produce(1, 1); // one owed record: the batch waits for the database
    b.batches.cut();
    expect(b.journal.pendingCount).toBe(1);
  });

  it('past the disk budget drops peers\' states (never waited for) and asks for a checkpoint, but keeps what the ledger is owed', () => {
    const b = setUp(2 * AccountingRecord.SIZE);
    b.produce(0, 4, ACF_STATE);
    expect(b.batches.cut()).toBe(true);
    expect(b.rings[0].depth()).toBe(0);
    expect(b.stats[PersistenceStats.STATES_DROPPED]).toBe(4);
    expect(b.batches.tailDropped).toBe(true);
    b.produce(0, 2, ACF_STATE);
    b.produce(1, 2);
    const depths = b.rings.map((r) => r.depth());
    expect(b.batches.cut()).toBe(false);
    expect(b.batches.cut()).toBe(false); // (the owed records at the rings' heads are not read again while stalled)
    expect(b.rings.map((r) => r.depth())).toEqual(depths);
    expect(b.stats[PersistenceStats.STATES_DROPPED]).toBe(4);
    expect(b.stats[PersistenceStats.BUDGET_STALLS]).toBe(2);
    b.batches.cut(true);
    expect(b.journal.pendingCount).toBe(1);
    expect(b.stats[PersistenceStats.RECORDS_JOURNALLED]).toBe(4); // the 2 states and the 2 owed
  });

  it('acknowledges, at a start without a database, a batch of states a crash left pending', () => {
    const b = setUp(1 << 30);
    const state = new Uint8Array(AccountingRecord.SIZE);
    state[AccountingRecord.FLAGS] = ACF_STATE;
    b.journal.append(b.journal.lastBatchId + 1, [{ epoch: 1_800_000_000, data: state, v: 2 }]); // fsynced, never acknowledged
    b.produce(0, 1);
    b.batches.cut(); // owed: pending
    expect(b.journal.pendingCount).toBe(2);
    b.batches.settleStates();
    expect(b.journal.pendingIds()).toEqual([b.journal.lastBatchId]);
  });
});

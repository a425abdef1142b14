// Shard thread entry: attach the shared memory, then loop forever draining the request
// ring in batches, answering into the answer ring, and expiring peers once a second.
// The loop blocks in Atomics.wait with a timeout when idle, so expiry still runs.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { AccountingRecord } from '../contract/accounting.js';
import { ShardControl, GlobalBlock } from './memory-layout.js';
import type { ShardMemory } from './memory.js';
import { ByteRing } from '../contract/ring.js';
import { ShardLogic, maxAnswerBytes, type ShardRules } from './shard.js';
import { Snapshotter } from './snapshot.js';
import { ChangeWriter } from './changes.js';
import { Replica } from './replica.js';
import type { SnapshotMessage } from './pool.js';
import { SwarmStore } from './swarm-store.js';

export interface ShardWorkerData {
  index: number;
  memory: ShardMemory;
  recover: boolean; // respawned on memory a previous thread was using
  rules: ShardRules;
  accounting: boolean; // write accounting records (the persistence thread drains them)
  replication: boolean; // exchange peers with other nodes through the changes and remote rings
  numwantMax: number;
  scrapeMaxHashes: number;
}

const BATCH = 256; // requests per published batch
const REMOTE_BATCH = 1024; // other nodes' records applied per turn, at most
const IDLE_WAIT_MS = 250;
const FULL_SWEEP_SECONDS = 60; // every slot is visited by expiry at least this often

function run(data: ShardWorkerData): void {
  const mem = data.memory;
  const store = new SwarmStore(mem);
  if (data.recover) store.recover();
  const requests = new ByteRing(mem.requests);
  const answers = new ByteRing(mem.answers);
  const accounting = data.accounting ? new ByteRing(mem.accounting) : null;
  const logic = new ShardLogic(store, accounting, data.rules);
  let replica: Replica | null = null;
  let changes: ChangeWriter | null = null;
  if (data.replication) {
    changes = new ChangeWriter(store, new ByteRing(mem.changes));
    logic.replicate(changes);
    replica = new Replica(store, logic, changes, new ByteRing(mem.remote), ByteRing.create(1 << 20));
  }
  const snapshots = new Snapshotter(store, (seq, chunk, peers, last) => {
    const m: SnapshotMessage = { type: 'snapshot', seq, chunk, peers, last };
    parentPort!.postMessage(m, [chunk]);
  });
  // Room for one more accounting record per request (always true when accounting is off).
  const acctRoom = (): boolean => accounting === null || accounting.hasRoom(AccountingRecord.SIZE);
  const ctl = store.ctl;
  const global = store.global;
  const maxAnswer = maxAnswerBytes(data.numwantMax, data.scrapeMaxHashes);
  const q = requests.u8;
  const qdv = requests.dv;
  let lastTick = -1;
  let cutOffSince = 0; // when replication was found cut off (0: it is not)
  Atomics.store(ctl, ShardControl.RUNNING, 1);

  for (;;) {
    const now = Atomics.load(global, GlobalBlock.NOW);
    if (now !== lastTick) {
      lastTick = now;
      const budget = Math.max(1024, Math.ceil(Math.max(ctl[ShardControl.PEER_HIGH], ctl[ShardControl.SWARM_HIGH]) / FULL_SWEEP_SECONDS));
      if (changes !== null) cutOffSince = changes.on ? 0 : cutOffSince || now;
      store.expire(now, data.rules.peerTimeout, budget, cutOffSince);
    }
    // Liveness for the pool's watchdog and /ready: a turn at least every IDLE_WAIT_MS.
    ctl[ShardControl.HEARTBEAT] = (ctl[ShardControl.HEARTBEAT] + 1) | 0;
    snapshots.turn(); // a checkpoint's next few swarms, when one was asked for
    // other nodes' peers, and announces forwarded to us (they write accounting records too)
    if (replica !== null) {
      if (replica.turn(now, REMOTE_BATCH, acctRoom) > 0) accounting?.commit();
      changes!.commit(); // (a dump writes without records to apply)
    }

    const t0 = performance.now();
    let handled = 0;
    let accounted = accounting?.mark() ?? 0;
    try {
      while (handled < BATCH && answers.hasRoom(maxAnswer) && acctRoom()) {
        const off = requests.next();
        if (off < 0) break;
        logic.handle(q, qdv, off, answers, now);
        handled++;
        if (accounting) accounted = accounting.mark();
      }
    } catch (e) {
      // A bug ends this thread (the pool respawns it over the same tables). The requests
      // handled before the failing one have changed their peers' totals already: publish
      // their accounting records, or their deltas would be lost (the next announces count
      // from the new totals). The failing one's, perhaps half written, goes.
      if (accounting) {
        accounting.rewind(accounted);
        accounting.commit();
      }
      throw e;
    }
    if (handled > 0) {
      // Accounting first: once a client has its answer, its record is already on its way.
      accounting?.commit();
      changes?.commit();
      answers.commit();
      requests.release();
      Atomics.add(global, GlobalBlock.MAIN_BELL, 1);
      Atomics.notify(global, GlobalBlock.MAIN_BELL);
      ctl[ShardControl.HANDLED] = (ctl[ShardControl.HANDLED] + handled) | 0;
      ctl[ShardControl.BUSY_MS] = (ctl[ShardControl.BUSY_MS] + Math.round(performance.now() - t0)) | 0;
      continue;
    }
    if (!answers.hasRoom(maxAnswer) || !acctRoom()) {
      // The acceptor is behind on answers, or the persistence thread on accounting (it
      // never drops records): give them a moment rather than spin.
      Atomics.wait(ctl, ShardControl.DOORBELL, Atomics.load(ctl, ShardControl.DOORBELL), 1);
      continue;
    }
    // Announce we are going to sleep, then look once more. The acceptor publishes a record
    // (tail), bumps the doorbell, then reads SLEEPING; we store SLEEPING, then read the tail.
    // With sequentially consistent atomics one of us sees the other: either we find the
    // record, or it sees SLEEPING and notifies (and the changed doorbell value makes a late
    // wait return at once).
    const bell = Atomics.load(ctl, ShardControl.DOORBELL);
    Atomics.store(ctl, ShardControl.SLEEPING, 1);
    if (requests.isEmpty() && !snapshots.writing && (replica === null || replica.idle)) Atomics.wait(ctl, ShardControl.DOORBELL, bell, IDLE_WAIT_MS);
    Atomics.store(ctl, ShardControl.SLEEPING, 0);
  }
}

run(workerData as ShardWorkerData);

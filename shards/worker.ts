// Shard thread entry: attach the shared memory, then loop forever draining the request
// ring in batches, answering into the answer ring, and expiring peers once a second.
// The loop blocks in Atomics.wait with a timeout when idle, so expiry still runs.
import { workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { AC, CTL, GLOBAL } from './layout.js';
import type { ShardMemory } from './memory.js';
import { ByteRing } from './ring.js';
import { ShardLogic, maxAnswerBytes } from './shard.js';
import { SwarmStore } from './swarm-store.js';

export interface ShardWorkerData {
  index: number;
  memory: ShardMemory;
  recover: boolean; // respawned on memory a previous thread was using
  peerTimeout: number; // seconds
  accounting: boolean; // write accounting records (the persistence thread drains them)
  numwantMax: number;
  scrapeMaxHashes: number;
}

const BATCH = 256; // requests per published batch
const IDLE_WAIT_MS = 250;
const FULL_SWEEP_SECONDS = 60; // every slot is visited by expiry at least this often

function run(data: ShardWorkerData): void {
  const mem = data.memory;
  const store = new SwarmStore(mem);
  if (data.recover) store.recover();
  const requests = new ByteRing(mem.requests);
  const answers = new ByteRing(mem.answers);
  const accounting = data.accounting ? new ByteRing(mem.accounting) : null;
  const logic = new ShardLogic(store, accounting, data.peerTimeout);
  // Room for one more accounting record per request (always true when accounting is off).
  const acctRoom = (): boolean => accounting === null || accounting.hasRoom(AC.SIZE);
  const ctl = store.ctl;
  const global = store.global;
  const maxAnswer = maxAnswerBytes(data.numwantMax, data.scrapeMaxHashes);
  const q = requests.u8;
  const qdv = requests.dv;
  let lastTick = -1;
  Atomics.store(ctl, CTL.RUNNING, 1);

  for (;;) {
    const now = Atomics.load(global, GLOBAL.NOW);
    if (now !== lastTick) {
      lastTick = now;
      const budget = Math.max(1024, Math.ceil(Math.max(ctl[CTL.PEER_HIGH], ctl[CTL.SWARM_HIGH]) / FULL_SWEEP_SECONDS));
      store.expire(now, data.peerTimeout, budget);
    }
    // Liveness for the pool's watchdog and /ready: a turn at least every IDLE_WAIT_MS.
    ctl[CTL.HEARTBEAT] = (ctl[CTL.HEARTBEAT] + 1) | 0;

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
      answers.commit();
      requests.release();
      Atomics.add(global, GLOBAL.MAIN_BELL, 1);
      Atomics.notify(global, GLOBAL.MAIN_BELL);
      ctl[CTL.HANDLED] = (ctl[CTL.HANDLED] + handled) | 0;
      ctl[CTL.BUSY_MS] = (ctl[CTL.BUSY_MS] + Math.round(performance.now() - t0)) | 0;
      continue;
    }
    if (!answers.hasRoom(maxAnswer) || !acctRoom()) {
      // The acceptor is behind on answers, or the persistence thread on accounting (it
      // never drops records): give them a moment rather than spin.
      Atomics.wait(ctl, CTL.DOORBELL, Atomics.load(ctl, CTL.DOORBELL), 1);
      continue;
    }
    // Announce we are going to sleep, then look once more. The acceptor publishes a record
    // (tail), bumps the doorbell, then reads SLEEPING; we store SLEEPING, then read the tail.
    // With sequentially consistent atomics one of us sees the other: either we find the
    // record, or it sees SLEEPING and notifies (and the changed doorbell value makes a late
    // wait return at once).
    const bell = Atomics.load(ctl, CTL.DOORBELL);
    Atomics.store(ctl, CTL.SLEEPING, 1);
    if (requests.isEmpty()) Atomics.wait(ctl, CTL.DOORBELL, bell, IDLE_WAIT_MS);
    Atomics.store(ctl, CTL.SLEEPING, 0);
  }
}

run(workerData as ShardWorkerData);

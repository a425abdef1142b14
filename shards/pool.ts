import { Worker } from 'node:worker_threads';
import { ShardControl, GlobalBlock } from './memory-layout.js';
import { KIND_ANNOUNCE, KIND_SCRAPE, shardIndex } from '../contract/requests.js';
import { allocateGlobal, allocateShardMemory, type ShardLimits, type ShardMemory } from './memory.js';
import { ByteRing } from '../contract/ring.js';
import type { ShardWorkerData } from './shard-thread.js';
import type { ShardRules } from './shard.js';
import { readSwarm, type SwarmSnapshot } from './swarm-view.js';
import type { Logger } from '../contract/log.js';

// The acceptor's side of the shards: it owns every shard's memory, starts and supervises
// the threads, queues request records into their rings, rings each doorbell once per
// event-loop turn, and hands answer records to the sink as the shards publish them.

export interface AnswerSink {
  /** An announce answer record at `off` of `ring.u8`. */
  announce(ring: ByteRing, off: number): void;
  /** A scrape answer record at `off` of `ring.u8`. */
  scrape(ring: ByteRing, off: number): void;
  /** A shard died: every request queued to it is lost and must be failed. */
  shardLost(shard: number): void;
}

/** A shard's figures at one instant (ShardPool.stats). */
export interface ShardStats {
  /** a thread runs (false between a crash and its respawn) */
  up: boolean;
  /** the thread has not entered its loop yet (recovering its tables) */
  starting: boolean;
  /** seconds since its loop last turned; -1 without a thread */
  heartbeatAge: number;
  restarts: number;
  swarms: number;
  peers: number;
  seeders: number;
  leechers: number;
  peersV6: number;
  peersWs: number;
  remotePeers: number;
  /** other nodes' peers not taken (max_peers/max_swarms); an int32 that wraps */
  remoteFull: number;
  queuedRequestBytes: number;
  queuedAnswerBytes: number;
  /** int32 words that wrap: readers total the differences */
  busyMs: number;
  handled: number;
  tableFull: number;
}

/** What a shard thread posts: a piece of its peers for a checkpoint (shards/snapshot.ts). */
export interface SnapshotMessage {
  type: 'snapshot';
  seq: number;
  chunk: ArrayBuffer;
  peers: number;
  last: boolean;
}

export interface PoolOptions extends ShardLimits {
  count: number;
  /** What the shards enforce (timeouts, credit bounds). */
  rules: ShardRules;
  numwantMax: number;
  scrapeMaxHashes: number;
  /** Shards write accounting records for the persistence thread. */
  accounting: boolean;
  /** Shards exchange peers with other nodes through the replication thread (replication/). */
  replication?: boolean;
  /** A shard whose drain loop has not turned for this long is terminated and respawned (0: never). */
  watchdogSeconds: number;
  log: Logger;
  /** A shard cannot be kept alive: stop serving (the process exits in production). */
  onFatal: (msg: string) => void;
}

interface Shard {
  index: number;
  memory: ShardMemory;
  requests: ByteRing; // we produce
  answers: ByteRing; // we consume
  ctl: Int32Array;
  worker: Worker | undefined;
  dirty: boolean;
  restarts: number;
  /** The watchdog terminated this thread; it is on its way out. */
  stalled: boolean;
  /** ShardControl.HEARTBEAT when last read, and when (performance.now(), ms) it was seen to change. */
  lastBeat: number;
  beatAt: number;
  recentExits: number[]; // exit times within the restart window
}

const RESTART_BUDGET = 5;
const RESTART_WINDOW_MS = 60_000;

/** Tracker clock at start (seconds): above the longest tracker.peer_timeout (172,800). */
export const CLOCK_BASE = 200_000;
const WORKER_URL = new URL('./shard-thread.js', import.meta.url);

export class ShardPool {
  readonly global: SharedArrayBuffer;
  readonly shards: Shard[] = [];
  private readonly g: Int32Array;
  private sink: AnswerSink | undefined;
  private flushScheduled = false;
  private closed = false;
  private clock: NodeJS.Timeout | undefined;
  /**
   * The clock starts at CLOCK_BASE, not 0: a peer put back after a restart keeps the time
   * it last announced (now − its age), which may be up to peer_timeout before this start.
   */
  private readonly startedAt = Date.now() - CLOCK_BASE * 1000;

  constructor(private readonly opts: PoolOptions) {
    this.global = allocateGlobal();
    this.g = new Int32Array(this.global);
    for (let i = 0; i < opts.count; i++) {
      const memory = allocateShardMemory(this.global, opts);
      this.shards.push({
        index: i,
        memory,
        requests: new ByteRing(memory.requests),
        answers: new ByteRing(memory.answers),
        ctl: new Int32Array(memory.ctl),
        worker: undefined,
        dirty: false,
        restarts: 0,
        stalled: false,
        lastBeat: 0,
        beatAt: 0,
        recentExits: [],
      });
    }
  }

  private snapshotSeq = 0;
  private snapshot: { seq: number; chunk: (shard: number, m: SnapshotMessage) => void; fail: (e: Error) => void } | undefined;

  get count(): number {
    return this.shards.length;
  }

  /** Seconds since start: the one clock shards stamp peers with. */
  now(): number {
    return Atomics.load(this.g, GlobalBlock.NOW);
  }

  async start(sink: AnswerSink): Promise<void> {
    this.sink = sink;
    this.tick();
    this.clock = setInterval(() => this.tick(), 1000);
    this.clock.unref();
    await Promise.all(this.shards.map((s) => this.spawn(s, false)));
    this.waitForAnswers();
    for (const s of this.shards) await this.shardUp(s.index);
  }

  private tick(): void {
    Atomics.store(this.g, GlobalBlock.NOW, Math.floor((Date.now() - this.startedAt) / 1000));
    const limit = this.opts.watchdogSeconds;
    if (limit === 0 || this.closed) return;
    for (const s of this.shards) {
      const age = this.heartbeatAge(s.index);
      if (s.worker === undefined || s.stalled || age <= limit) continue;
      // A thread stuck in a loop answers nobody and never exits: end it, and let it be
      // respawned on its memory like a crashed one (recover() rebuilds the indexes).
      s.stalled = true;
      this.opts.log(`shard ${s.index} has not turned its loop for ${age} s (shards.watchdog_seconds = ${limit}): terminating it`, 'error');
      void s.worker.terminate();
    }
  }

  /**
   * Seconds since the shard's drain loop was last seen to turn (it turns at least every 250
   * ms when idle), counted from its spawn until its first turn; -1 while it has no thread.
   * Measured on this thread's monotonic clock between two reads of the shard's counter, so
   * neither a stall of this thread nor a step of the wall clock looks like a stuck shard.
   */
  heartbeatAge(shard: number): number {
    const s = this.shards[shard];
    if (s.worker === undefined) return -1;
    const beat = Atomics.load(s.ctl, ShardControl.HEARTBEAT);
    const t = performance.now();
    if (beat !== s.lastBeat) {
      s.lastBeat = beat;
      s.beatAt = t;
    }
    return Math.floor((t - s.beatAt) / 1000);
  }

  /** The shard's thread has not entered its loop yet (it is starting, or recovering its tables). */
  isStarting(shard: number): boolean {
    return this.shards[shard].worker !== undefined && Atomics.load(this.shards[shard].ctl, ShardControl.RUNNING) === 0;
  }

  private spawn(shard: Shard, recover: boolean): Promise<void> {
    const data: ShardWorkerData = {
      index: shard.index,
      memory: shard.memory,
      recover,
      rules: this.opts.rules,
      numwantMax: this.opts.numwantMax,
      scrapeMaxHashes: this.opts.scrapeMaxHashes,
      accounting: this.opts.accounting,
      replication: this.opts.replication === true,
    };
    // its start-up counts against the watchdog
    Atomics.store(shard.ctl, ShardControl.RUNNING, 0);
    shard.lastBeat = Atomics.load(shard.ctl, ShardControl.HEARTBEAT);
    shard.beatAt = performance.now();
    const worker = new Worker(WORKER_URL, { workerData: data, name: `shard-${shard.index}` });
    shard.worker = worker;
    shard.stalled = false;
    worker.on('error', (err) => this.opts.log(`shard ${shard.index} crashed: ${err.stack ?? err}`, 'error'));
    worker.on('exit', (code) => this.onExit(shard, worker, code));
    worker.on('message', (m: SnapshotMessage) => this.snapshotChunk(shard.index, m));
    return new Promise((resolve, reject) => {
      worker.once('online', () => resolve());
      worker.once('error', reject);
    });
  }

  /**
   * A shard thread ended. Answers it published are still delivered; requests it had not
   * answered are failed by the sink; both rings restart empty; a new thread attaches to
   * the same tables and re-derives their indexes (SwarmStore.recover), so swarms survive.
   */
  private onExit(shard: Shard, worker: Worker, code: number): void {
    if (shard.worker !== worker) return;
    shard.worker = undefined;
    if (this.closed) return;
    this.drain(shard);
    shard.requests.reset();
    shard.answers.reset();
    this.sink?.shardLost(shard.index);
    // its part of a checkpoint being written went with it: that checkpoint is void
    this.snapshot?.fail(new Error(`shard ${shard.index} exited while writing out its peers`));
    shard.restarts++;
    // A shard that keeps dying (memory it cannot recover from, a bug on a request it meets
    // again) must not spin: past the budget the process gives up and its supervisor
    // (systemd, Docker) restarts it, rather than carrying on half-alive.
    const now = Date.now();
    shard.recentExits = shard.recentExits.filter((t) => now - t < RESTART_WINDOW_MS);
    shard.recentExits.push(now);
    if (shard.recentExits.length > RESTART_BUDGET) {
      this.opts.onFatal(`shard ${shard.index} died ${shard.recentExits.length} times within ${RESTART_WINDOW_MS / 1000} s; giving up`);
      return;
    }
    this.opts.log(`shard ${shard.index} exited (code ${code}); respawning on the same memory (restart ${shard.restarts})`, 'warn');
    this.spawn(shard, true).catch((e) => this.opts.onFatal(`shard ${shard.index} failed to respawn: ${e}`));
  }

  /**
   * Every shard writes out its peers (shards/snapshot.ts), a few swarms per turn of its
   * loop: `chunk` gets each piece (CheckpointRecords) as it comes. Resolves with the number
   * of peers once every shard has written all of its; rejects if a shard exits meanwhile.
   * One at a time.
   */
  snapshotPeers(chunk: (records: Uint8Array) => void): Promise<number> {
    if (this.snapshot !== undefined) return Promise.reject(new Error('a checkpoint is being written already'));
    const seq = ++this.snapshotSeq;
    return new Promise<number>((resolve, reject) => {
      const pending = new Set(this.shards.map((s) => s.index));
      let peers = 0;
      const done = (e?: Error) => {
        this.snapshot = undefined;
        if (e) reject(e);
        else resolve(peers);
      };
      this.snapshot = {
        seq,
        chunk: (shard, m) => {
          chunk(new Uint8Array(m.chunk));
          peers += m.peers;
          if (m.last) pending.delete(shard);
          if (pending.size === 0) done();
        },
        fail: (e) => done(e),
      };
      for (const s of this.shards) {
        Atomics.store(s.ctl, ShardControl.CHECKPOINT, seq);
        Atomics.add(s.ctl, ShardControl.DOORBELL, 1);
        Atomics.notify(s.ctl, ShardControl.DOORBELL);
      }
    });
  }

  private snapshotChunk(shard: number, m: SnapshotMessage): void {
    if (m.type === 'snapshot' && this.snapshot?.seq === m.seq) this.snapshot.chunk(shard, m);
  }

  /** Shard owning an info_hash: its first 4 bytes (uniform SHA-1 output) modulo N. */
  shardOf(u8: Uint8Array, off: number): number {
    return shardIndex(u8, off, this.shards.length);
  }

  /**
   * Append a request record of `len` bytes to a shard's ring; returns its offset in
   * `requestRing(shard).u8` for the caller to fill, or -1 when the ring is full (or the
   * shard is down). Call queued() once the record is written.
   */
  reserve(shard: number, len: number): number {
    const s = this.shards[shard];
    if (s.worker === undefined) return -1;
    return s.requests.reserve(len);
  }

  /** Each shard's control block and replication rings, for the replication thread. */
  replicationBuffers(): Array<{ ctl: SharedArrayBuffer; changes: SharedArrayBuffer; remote: SharedArrayBuffer }> {
    return this.shards.map((s) => ({ ctl: s.memory.ctl, changes: s.memory.changes, remote: s.memory.remote }));
  }

  /** The accounting rings (one per shard), for the persistence thread. */
  accountingBuffers(): SharedArrayBuffer[] {
    return this.shards.map((s) => s.memory.accounting);
  }

  /** Unix time (seconds) at which the tracker clock (now()) was 0. */
  get epoch(): number {
    return this.startedAt / 1000;
  }

  requestRing(shard: number): ByteRing {
    return this.shards[shard].requests;
  }

  /** Publish the records written into a shard's ring; the doorbell rings at the end of this turn. */
  queued(shard: number): void {
    const s = this.shards[shard];
    s.requests.commit();
    s.dirty = true;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    for (const s of this.shards) {
      if (!s.dirty) continue;
      s.dirty = false;
      Atomics.add(s.ctl, ShardControl.DOORBELL, 1);
      // A busy shard finds the records by itself; waking costs a syscall, so only a
      // sleeping shard is notified (see the handshake in shard-thread.ts).
      if (Atomics.load(s.ctl, ShardControl.SLEEPING) === 1) Atomics.notify(s.ctl, ShardControl.DOORBELL);
    }
  };

  /** Await the shards' common doorbell; drain every answer ring each time it rings. */
  private waitForAnswers(): void {
    if (this.closed) return;
    const seen = Atomics.load(this.g, GlobalBlock.MAIN_BELL);
    for (const s of this.shards) this.drain(s);
    const w = Atomics.waitAsync(this.g, GlobalBlock.MAIN_BELL, seen);
    if (w.async) w.value.then(this.onBell);
    else setImmediate(this.onBell); // rang while draining: go again, but let I/O run first
  }

  private readonly onBell = (): void => this.waitForAnswers();

  private drain(s: Shard): void {
    const sink = this.sink!;
    const ring = s.answers;
    let any = false;
    for (let off = ring.next(); off >= 0; off = ring.next()) {
      any = true;
      const kind = ring.u8[off];
      if (kind === KIND_ANNOUNCE) sink.announce(ring, off);
      else if (kind === KIND_SCRAPE) sink.scrape(ring, off);
    }
    if (any) ring.release();
  }

  /**
   * Shard `i`'s figures, read now from its control words and ring positions (for /metrics,
   * /stats and /ready: nothing is asked of the thread).
   */
  stats(i: number): ShardStats {
    const s = this.shards[i];
    const c = s.ctl;
    return {
      up: s.worker !== undefined,
      starting: this.isStarting(i),
      heartbeatAge: this.heartbeatAge(i),
      restarts: s.restarts,
      swarms: Math.max(0, Atomics.load(c, ShardControl.SWARM_LIVE)),
      peers: Math.max(0, Atomics.load(c, ShardControl.PEER_LIVE)),
      seeders: Math.max(0, Atomics.load(c, ShardControl.SEEDERS)),
      leechers: Math.max(0, Atomics.load(c, ShardControl.LEECHERS)),
      peersV6: Math.max(0, Atomics.load(c, ShardControl.PEERS_V6)),
      peersWs: Math.max(0, Atomics.load(c, ShardControl.PEERS_WS)),
      remotePeers: Math.max(0, Atomics.load(c, ShardControl.REMOTE_PEERS)),
      remoteFull: Atomics.load(c, ShardControl.REMOTE_FULL),
      queuedRequestBytes: s.requests.depth(),
      queuedAnswerBytes: s.answers.depth(),
      busyMs: Atomics.load(c, ShardControl.BUSY_MS),
      handled: Atomics.load(c, ShardControl.HANDLED),
      tableFull: Atomics.load(c, ShardControl.TABLE_FULL),
    };
  }

  /** The live swarm of a 20-byte info_hash as its shard holds it now, or undefined. */
  swarm(infoHash: Uint8Array, limit: number): (SwarmSnapshot & { shard: number }) | undefined {
    const shard = this.shardOf(infoHash, 0);
    const snap = readSwarm(this.shards[shard].memory, infoHash, limit, this.now());
    return snap && { shard, ...snap };
  }

  /** Stop a shard thread as if it had crashed (tests and operators' drills). */
  killShard(shard: number): Promise<number> {
    const w = this.shards[shard].worker;
    return w ? w.terminate() : Promise.resolve(0);
  }

  /** Resolves once the shard has a running thread again that has turned its loop. */
  async shardUp(shard: number): Promise<void> {
    while (this.shards[shard].worker === undefined || this.isStarting(shard)) await new Promise((r) => setTimeout(r, 5));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.clock) clearInterval(this.clock);
    Atomics.add(this.g, GlobalBlock.MAIN_BELL, 1);
    Atomics.notify(this.g, GlobalBlock.MAIN_BELL);
    await Promise.all(this.shards.map((s) => s.worker?.terminate()));
  }
}

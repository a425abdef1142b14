// Replication thread entry: exchanges this node's peers with the other nodes' through Redis
// (the README's scale-out section has the model; keys.ts the layout; codec.ts the formats).
//
// One loop, one step at a time, so Redis sees each slice's changes in order:
//   - drain the shards' changes rings into per-slice pending maps (the last state of each
//     peer wins: a peer that changes twice between publishes is sent once);
//   - publish every redis.publish_interval_ms: per slice, one transaction writes the node's
//     hash of current peers and appends the batch to the slice's log stream;
//   - poll the logs of every slice and this node's inbox, and hand other nodes' changes and
//     forwarded announces to the shards' remote rings;
//   - renew the node's lease, and remove the peers of nodes whose lease lapsed.
// Anything failing (Redis away, a gap in a log, changes lost to a full ring) leads to a
// reset once Redis answers: a new incarnation of this node publishes every local peer again
// (a dump), the old one is retired, and the other nodes' peers are loaded again (a snapshot
// of their hashes and the log position, read in one transaction per slice), then whatever
// the last sync did not confirm is swept.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { Cluster, Redis } from 'ioredis';
import { ALL_NODES, CH_DUMP_END, CH_FORWARD, CH_REMOVE, CH_UPSERT, ChangeRecord, FORWARD_ANNOUNCE, LAG_BOUNDS, REMOTE_ANNOUNCE, RemoteRecord, ReplicationStats, RM_ANNOUNCE, RM_DUMP, RM_REMOVE, RM_SWEEP, RM_UPSERT, RF_WINS_TIE, ShardWords, addrBytes } from '../contract/replication.js';
import { AnnounceRequest, shardIndex } from '../contract/requests.js';
import { ByteRing } from '../contract/ring.js';
import { ENTRY_HEAD, KEY_BYTES, entryBytes, packBatch, packForwards, unpack, type Batch, type Forwards } from './codec.js';
import { Keys, SLICES, sliceOf } from './keys.js';

export interface ReplicationSettings {
  url: string;
  /** Redis Cluster seed URLs (instead of url). */
  cluster: readonly string[];
  prefix: string;
  /** This node's name in its ids (hostname by default). */
  nodeName: string;
  publishIntervalMs: number;
  leaseSeconds: number;
}

export interface ReplicationWorkerData extends ReplicationSettings {
  shards: Array<{ ctl: SharedArrayBuffer; changes: SharedArrayBuffer; remote: SharedArrayBuffer }>;
  stats: SharedArrayBuffer;
  /** Unix seconds at which the shards' clock was 0. */
  clockEpoch: number;
}

export type FromReplication = { type: 'log'; msg: string; level: 'error' | 'warn' | 'info' } | { type: 'closed' };
export type ToReplication = { type: 'close' };


/** Changes in one log entry, at most (a dump goes as several). */
const BATCH_OPS = 2048;
/** Log entries read per slice and poll. */
const READ_COUNT = 256;
/** Seconds a log keeps its entries: a node further behind than this loads everything again. */
const LOG_RETENTION_SECONDS = 60;
/** How long the shards may take to write every local peer out for a reset. */
const DUMP_TIMEOUT_MS = 30_000; // (without progress: a dump of millions of peers takes as long as it takes)
/** A Redis command not answered within this fails (a stalled server, a half-open connection). */
const COMMAND_TIMEOUT_MS = 5_000;
/** The loop made no progress for this long: a shard not taking records, Redis not answering. */
const STALL_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface ShardRings {
  ctl: Int32Array;
  changes: ByteRing;
  remote: ByteRing;
  dirty: boolean;
}

class Replicator {
  private readonly redis: Redis | Cluster;
  private readonly keys: Keys;
  private readonly stats: Float64Array;
  private readonly shards: ShardRings[];
  private readonly epochBase: number;
  private nodeId = '';
  /** This node's incarnations, the current one and those it retired: never another node's. */
  private readonly mine = new Set<string>();
  private readonly nodeIndex = new Map<string, number>();
  private readonly nodeNames: string[] = [''];
  /** Node indexes whose peers were swept (lapsed or retired). */
  private readonly gone = new Set<number>();
  private syncEpoch = 0;
  private readonly cursors: string[] = new Array(SLICES).fill('0-0');
  private inboxCursor = '0-0';
  /** Last sequence number seen per (node, slice): a jump is a gap. */
  private readonly lastSeq = new Map<string, number>();
  private readonly seqOut: number[] = new Array(SLICES).fill(0);
  private readonly pending: Array<Map<string, Buffer | null>> = Array.from({ length: SLICES }, () => new Map());
  private readonly pendingSince: number[] = new Array(SLICES).fill(0);
  private readonly forwards = new Map<string, Buffer[]>();
  private dumpSeq = 0;
  private dumpRecords = 0;
  private readonly dumped = new Set<number>();
  private changesLost: number[];
  private needReset = true;
  /** Times Redis was lost (a reset that saw one meanwhile starts again). */
  private downs = 0;
  /** Earlier incarnations whose keys and peers are gone. */
  private readonly retired = new Set<string>();
  /** The loop (close() waits for it). */
  running: Promise<void> = Promise.resolve();
  /** Local changes are kept for publishing: from a reset's dump on, until a failure. */
  private accepting = false;
  private closing = false;
  private lastPublish = 0;
  private lastCheck = 0;
  /** When the loop last got something done (renew() stops renewing a lease for a stuck loop). */
  private progress = Date.now();
  private renewing = false;
  private readonly renewal: NodeJS.Timeout;
  private lastPoll = Date.now();
  /** Redis time − local time, ms (lease scores and log trimming are on Redis's clock). */
  private clockSkew = 0;

  constructor(private readonly data: ReplicationWorkerData) {
    this.keys = new Keys(data.prefix);
    this.stats = new Float64Array(data.stats);
    this.epochBase = data.clockEpoch;
    this.shards = data.shards.map((s) => ({ ctl: new Int32Array(s.ctl), changes: new ByteRing(s.changes), remote: new ByteRing(s.remote), dirty: false }));
    this.changesLost = this.shards.map((s) => Atomics.load(s.ctl, ShardWords.CHANGES_LOST));
    // Commands fail at once while disconnected (no offline queue): announces never wait on
    // Redis, and a failure is a reset once it is back.
    // Nor resent after a reconnect (a batch applied twice would look like a gap to the
    // others; the reset after a reconnect publishes everything anyway), nor waited on forever.
    const options = {
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 5000,
      commandTimeout: COMMAND_TIMEOUT_MS,
      keepAlive: 10_000,
      retryStrategy: (n: number) => Math.min(200 * n, 2000),
    };
    this.redis =
      data.cluster.length > 0
        ? new Cluster(
            data.cluster.map((u) => new URL(u)).map((u) => ({ host: u.hostname, port: Number(u.port || 6379) })),
            { enableOfflineQueue: false, clusterRetryStrategy: options.retryStrategy, redisOptions: { ...options, password: passwordOf(data.cluster[0]) } },
          )
        : new Redis(data.url, options);
    this.redis.on('error', () => {}); // (failures surface as failed commands: counted, logged once per reset)
    this.redis.on('close', () => this.closing || this.down());
    this.renewal = setInterval(() => void this.renew(), (data.leaseSeconds * 1000) / 3);
  }

  private log(msg: string, level: 'error' | 'warn' | 'info' = 'info'): void {
    const m: FromReplication = { type: 'log', msg: `replication: ${msg}`, level };
    parentPort!.postMessage(m);
  }

  private down(): void {
    if (this.stats[ReplicationStats.REDIS_UP] === 1) this.log('Redis connection lost: serving local peers; resynchronising when it is back', 'warn');
    this.stats[ReplicationStats.REDIS_UP] = 0;
    this.stats[ReplicationStats.SYNCED] = 0;
    this.needReset = true;
    this.accepting = false;
    this.downs++;
    // the shards stop writing changes (and forwarding announces: they take such peers over)
    for (const sh of this.shards) Atomics.store(sh.ctl, ShardWords.REPL_ON, 0);
  }

  async run(): Promise<void> {
    const tick = Math.max(10, Math.min(50, this.data.publishIntervalMs >> 1));
    let failing = false;
    while (!this.closing) {
      try {
        if (this.needReset) await this.reset();
        this.drainChanges();
        this.checkLost();
        const now = Date.now();
        if (now - this.lastPublish >= this.data.publishIntervalMs) await this.publish();
        await this.poll();
        if (now - this.lastCheck >= (this.data.leaseSeconds * 1000) / 3) await this.checkNodes();
        this.progress = Date.now(); // (a whole turn: the lease is renewed for a node that works)
        if (failing) this.log('Redis answers again: in sync');
        failing = false;
      } catch (e) {
        if (this.closing) break;
        if (e instanceof ShardStalled && !this.needReset) {
          // not Redis: keep the node's place (nothing is lost: what was not applied is read again)
          this.log(`${e.message}: retrying`, 'warn');
          this.flushRemote();
          await sleep(500);
          continue;
        }
        this.stats[ReplicationStats.ERRORS]++;
        if (!failing) this.log(`${(e as Error).message}: serving local peers, retrying`, 'warn');
        failing = true;
        this.down();
        await sleep(500);
      }
      this.flushRemote();
      await sleep(tick);
    }
  }

  // ---------------------------------------------------------------- reset and sync

  /** A new incarnation: publish every local peer, retire the old one, load the others'. */
  private async reset(): Promise<void> {
    this.stats[ReplicationStats.SYNCED] = 0;
    await this.connected();
    await this.redis.ping();
    const downs = this.downs;
    this.stats[ReplicationStats.REDIS_UP] = 1;
    if (this.closing) throw new Error('closing');
    const id = `${this.data.nodeName}-${randomBytes(4).toString('hex')}`;
    this.mine.add(id);
    await this.register(id);
    this.nodeId = id;
    for (const p of this.pending) p.clear();
    this.forwards.clear();
    this.lastSeq.clear();
    this.seqOut.fill(0);
    this.inboxCursor = '0-0';
    this.accepting = true;
    await this.dump(downs);
    await this.publish();
    // every earlier incarnation (a failed reset's too): the other nodes drop what it had
    for (const old of this.mine) {
      if (old === id || this.retired.has(old)) continue;
      await this.retire(old);
      this.retired.add(old);
    }
    await this.resync();
    // (a connection lost meanwhile, even if every command was resent and answered, may
    // have dropped changes: start again)
    if (this.downs !== downs) throw new Error('Redis connection lost during the resynchronisation');
    this.lastPoll = Date.now();
    this.needReset = false;
    this.stats[ReplicationStats.RESYNCS]++;
    this.stats[ReplicationStats.SYNCED] = 1;
    this.stats[ReplicationStats.JOINED] = 1;
  }

  /** Until the connection is up (ioredis reconnects by itself), at most a few seconds. */
  private async connected(): Promise<void> {
    const until = Date.now() + 5000;
    while (this.redis.status !== 'ready') {
      if (Date.now() > until) throw new Error(`Redis not reachable (${this.redis.status})`);
      await sleep(20);
    }
  }

  /** Every local peer into the pending maps, from a dump each shard writes into its changes ring. */
  private async dump(downs: number): Promise<void> {
    const seq = ++this.dumpSeq;
    this.dumped.clear();
    for (let i = 0; i < this.shards.length; i++) {
      const s = this.shards[i];
      if (this.downs !== downs || this.closing) throw new Error('Redis connection lost during the resynchronisation');
      Atomics.store(s.ctl, ShardWords.REPL_ON, 1);
      this.changesLost[i] = Atomics.load(s.ctl, ShardWords.CHANGES_LOST);
      const at = await this.reserveRemote(i, RemoteRecord.SIZE);
      s.remote.u8[at + RemoteRecord.OP] = RM_DUMP;
      s.remote.dv.setUint32(at + RemoteRecord.SEEN, seq, true);
    }
    this.flushRemote();
    let until = Date.now() + DUMP_TIMEOUT_MS;
    const latest = Date.now() + 20 * DUMP_TIMEOUT_MS; // (whatever the traffic of the other shards)
    while (this.dumped.size < this.shards.length) {
      // (a shard respawned meanwhile forgot the dump it was asked for; Redis lost: start again)
      if (this.closing || this.downs !== downs || Date.now() > Math.min(until, latest)) throw new Error('the shards did not finish writing their peers out');
      await sleep(2);
      const before = this.dumpRecords;
      this.drainChanges();
      if (this.dumpRecords !== before) {
        until = Date.now() + DUMP_TIMEOUT_MS;
        this.progress = Date.now();
      }
    }
  }

  /**
   * Other nodes' peers: per slice, their hashes and the log position in one transaction.
   * Nodes register before they write a hash, so the live nodes read after the transaction
   * include every writer it saw: those not live (lapsed, retired) are left out.
   */
  private async resync(): Promise<void> {
    const epoch = ++this.syncEpoch;
    for (let s = 0; s < SLICES; s++) {
      for (let attempt = 0; ; attempt++) {
        const members = (await this.redis.smembers(this.keys.sliceNodes[s])).filter((n) => !this.mine.has(n)).sort();
        const tx = this.redis.multi().xrevrange(this.keys.logs[s], '+', '-', 'COUNT', 1).smembers(this.keys.sliceNodes[s]);
        for (const n of members) tx.hvalsBuffer(this.keys.peers(s, n));
        const res = (await tx.exec()) ?? [];
        for (const [err] of res) if (err) throw err;
        // a node that wrote to this slice between the two reads: read again (its log entries
        // would be before the position taken, its hash not read)
        const now = (res[1][1] as string[]).filter((n) => !this.mine.has(n)).sort();
        if (now.join() !== members.join() && attempt < 5) continue;
        const last = res[0][1] as Array<[string, string[]]>;
        this.cursors[s] = last.length > 0 ? last[0][0] : '0-0';
        const live = new Set(await this.liveNodes());
        for (let i = 0; i < members.length; i++) {
          if (!live.has(members[i])) continue;
          const node = this.indexOf(members[i]);
          for (const v of res[2 + i][1] as Buffer[]) await this.upsert(node, members[i], v, epoch);
        }
        break;
      }
      this.drainChanges(); // (announces go on meanwhile)
      this.progress = Date.now();
    }
    for (let i = 0; i < this.shards.length; i++) await this.sweep(i, ALL_NODES, epoch);
    this.flushRemote();
  }

  // ---------------------------------------------------------------- nodes and leases

  private async redisNow(): Promise<number> {
    const [sec, usec] = await this.redis.time();
    const t = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    this.clockSkew = t - Date.now();
    return t;
  }

  private async register(id: string): Promise<void> {
    await this.redis.zadd(this.keys.nodes, (await this.redisNow()) + this.data.leaseSeconds * 1000, id);
  }

  private async liveNodes(): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.nodes, await this.redisNow(), '+inf');
  }

  /**
   * Renew this node's lease and its keys' expiry. On a timer of its own, not in the loop: a
   * long dump or resync (millions of peers) must not let the lease lapse.
   */
  private async renew(): Promise<void> {
    const id = this.nodeId;
    // (a loop stuck for a lease must let it lapse: the other nodes then drop what it holds)
    if (id === '' || this.renewing || Date.now() - this.progress > this.data.leaseSeconds * 1000) return;
    this.renewing = true;
    try {
      const leaseMs = this.data.leaseSeconds * 1000;
      const now = await this.redisNow();
      // (one command per key: keys of different slots cannot share a pipeline on a Cluster)
      const expire: Array<Promise<unknown>> = [this.redis.pexpire(this.keys.inbox(id), 3 * leaseMs)];
      for (let s = 0; s < SLICES; s++) {
        expire.push(this.redis.pexpire(this.keys.peers(s, id), 3 * leaseMs));
        // a slice nobody changes keeps its list of writers as long as one lives
        expire.push(this.redis.pexpire(this.keys.sliceNodes[s], this.logTtl()));
      }
      // XX CH: 0 means another node found our lease lapsed and removed it (and our peers)
      const [renewed] = await Promise.all([this.redis.zadd(this.keys.nodes, 'XX', 'CH', now + leaseMs, id), ...expire]);
      if (Number(renewed) === 0 && id === this.nodeId && !this.needReset) {
        this.log('this node lease had lapsed (the other nodes dropped its peers): publishing them again', 'warn');
        this.needReset = true;
      }
    } catch {
      this.stats[ReplicationStats.ERRORS]++; // (the loop's next command fails too, and resets once Redis answers)
    } finally {
      this.renewing = false;
    }
  }

  /** Remove the peers of nodes whose lease lapsed, or that retired. */
  private async checkNodes(): Promise<void> {
    this.lastCheck = Date.now();
    const now = await this.redisNow();
    const expired = (await this.redis.zrangebyscore(this.keys.nodes, '-inf', `(${now}`)).filter((n) => !this.mine.has(n));
    const live = new Set(await this.redis.zrangebyscore(this.keys.nodes, now, '+inf'));
    for (const n of this.mine) live.delete(n);
    this.stats[ReplicationStats.NODES] = live.size;
    for (const n of expired) {
      this.log(`node ${n} lease lapsed: its peers are removed`, 'warn');
      this.stats[ReplicationStats.NODES_LAPSED]++;
      await this.forget(n);
    }
    // nodes retired, or removed by another node, whose peers we still hold
    for (const [n, i] of this.nodeIndex) if (!live.has(n) && !this.gone.has(i)) await this.forget(n);
  }

  /** A node is gone: its peers leave every shard, its keys go. */
  private async forget(node: string): Promise<void> {
    const i = this.nodeIndex.get(node);
    if (i !== undefined && !this.gone.has(i)) {
      this.gone.add(i);
      for (let s = 0; s < SLICES; s++) this.lastSeq.delete(`${node}/${s}`);
      for (let s = 0; s < this.shards.length; s++) await this.sweep(s, i, 0xffffffff);
      this.flushRemote();
    }
    await this.retire(node);
  }

  private async retire(node: string): Promise<void> {
    const jobs: Array<Promise<unknown>> = [this.redis.zrem(this.keys.nodes, node), this.redis.del(this.keys.inbox(node))];
    for (let s = 0; s < SLICES; s++) jobs.push(this.redis.srem(this.keys.sliceNodes[s], node), this.redis.del(this.keys.peers(s, node)));
    await Promise.all(jobs);
  }

  private indexOf(node: string): number {
    let i = this.nodeIndex.get(node);
    if (i === undefined) {
      i = this.nodeNames.length;
      this.nodeNames.push(node);
      this.nodeIndex.set(node, i);
    }
    return i;
  }

  // ---------------------------------------------------------------- local changes → Redis

  /** The shards' clock (seconds) as unix seconds, and back (each node's clock starts at its own time). */
  private toUnix(clock: number): number {
    return Math.floor(this.epochBase + clock);
  }

  private toClock(unix: number): number {
    return Math.max(0, Math.floor(unix - this.epochBase));
  }

  /** Take every change the shards wrote; returns how many. */
  private drainChanges(): number {
    let all = 0;
    for (let i = 0; i < this.shards.length; i++) {
      const ring = this.shards[i].changes;
      let n = 0;
      for (let off = ring.next(); off >= 0; off = ring.next(), n++) this.change(i, ring.u8, ring.dv, off);
      if (n > 0) ring.release();
      all += n;
    }
    return all;
  }

  private change(shard: number, u8: Uint8Array, dv: DataView, off: number): void {
    const op = u8[off + ChangeRecord.OP];
    if (op === CH_DUMP_END) {
      if (dv.getUint32(off + ChangeRecord.SEQ, true) === this.dumpSeq) this.dumped.add(shard);
      return;
    }
    if (!this.dumped.has(shard)) this.dumpRecords++; // (a dump's progress: records of shards not done)
    if (!this.accepting) return; // the next reset's dump will say it all
    if (op === CH_FORWARD) {
      const node = this.nodeNames[dv.getUint32(off + ChangeRecord.NODE, true)];
      if (node === undefined) return;
      let list = this.forwards.get(node);
      if (list === undefined) this.forwards.set(node, (list = []));
      const a = Buffer.from(u8.subarray(off + FORWARD_ANNOUNCE, off + FORWARD_ANNOUNCE + AnnounceRequest.SIZE));
      // When it was received, to the millisecond (the shards' clock ticks whole seconds, and
      // the peer's node places it among its direct announces by it): unix seconds, and the
      // milliseconds in SOURCE (an address tag of this node, meaningless there)
      const ms = Date.now() + this.clockSkew;
      a.writeUInt32LE(Math.floor(ms / 1000), AnnounceRequest.FORWARDED_AT);
      a.writeUInt32LE(ms % 1000, AnnounceRequest.SOURCE);
      list.push(a);
      return;
    }
    const s = sliceOf(u8, off + ChangeRecord.INFO_HASH);
    const key = Buffer.from(u8.subarray(off + ChangeRecord.INFO_HASH, off + ChangeRecord.INFO_HASH + KEY_BYTES)).toString('latin1');
    const pending = this.pending[s];
    if (pending.size === 0) this.pendingSince[s] = Date.now();
    if (op === CH_REMOVE) {
      pending.set(key, null);
      return;
    }
    if (op !== CH_UPSERT) return;
    const flags = u8[off + ChangeRecord.FLAGS];
    const alen = addrBytes(flags);
    const e = Buffer.allocUnsafe(KEY_BYTES + ENTRY_HEAD + alen);
    e.set(u8.subarray(off + ChangeRecord.INFO_HASH, off + ChangeRecord.INFO_HASH + KEY_BYTES), 0);
    e[KEY_BYTES] = flags;
    e.writeUInt32LE(dv.getUint32(off + ChangeRecord.USER, true), KEY_BYTES + 1);
    e.writeUInt32LE(this.toUnix(dv.getUint32(off + ChangeRecord.SEQ, true)), KEY_BYTES + 5);
    e.set(u8.subarray(off + ChangeRecord.ADDR, off + ChangeRecord.ADDR + alen), KEY_BYTES + ENTRY_HEAD);
    pending.set(key, e);
  }

  /** Changes lost to a full ring: publish everything again. */
  private checkLost(): void {
    for (let i = 0; i < this.shards.length; i++) {
      const lost = Atomics.load(this.shards[i].ctl, ShardWords.CHANGES_LOST);
      if (lost !== this.changesLost[i] && !this.needReset) {
        this.log(`shard ${i} lost ${lost - this.changesLost[i]} changes to a full ring: publishing every peer again`, 'warn');
        this.needReset = true;
      }
      this.changesLost[i] = lost;
    }
  }

  /** Expiry of logs and slice sets: beyond their retention, and a few leases. */
  private logTtl(): number {
    return Math.max(3 * this.data.leaseSeconds * 1000, 2 * LOG_RETENTION_SECONDS * 1000);
  }

  private async publish(): Promise<void> {
    this.lastPublish = Date.now();
    const minId = `${Date.now() + this.clockSkew - LOG_RETENTION_SECONDS * 1000}`;
    const ttl = 3 * this.data.leaseSeconds * 1000;
    const logTtl = this.logTtl();
    const jobs: Promise<unknown>[] = [];
    let published = 0;
    for (let s = 0; s < SLICES; s++) {
      const pending = this.pending[s];
      if (pending.size === 0) continue;
      const since = this.pendingSince[s];
      const hash = this.keys.peers(s, this.nodeId);
      let up: Buffer[] = [];
      let rm: Buffer[] = [];
      const flush = () => {
        const tx = this.redis.multi();
        if (up.length > 0) {
          const args: Buffer[] = [];
          for (const e of up) args.push(e.subarray(0, KEY_BYTES), e);
          tx.hset(hash, ...(args as unknown as [Buffer, Buffer]));
        }
        if (rm.length > 0) tx.hdel(hash, ...rm);
        tx.pexpire(hash, ttl).sadd(this.keys.sliceNodes[s], this.nodeId).pexpire(this.keys.sliceNodes[s], logTtl);
        const m = packBatch({ n: this.nodeId, q: ++this.seqOut[s], t: since + this.clockSkew, u: Buffer.concat(up), r: Buffer.concat(rm) });
        tx.xadd(this.keys.logs[s], 'MINID', '~', minId, '*', 'm', m).pexpire(this.keys.logs[s], logTtl);
        jobs.push(tx.exec().then(throwFailed));
        published += up.length + rm.length;
        up = [];
        rm = [];
      };
      for (const [k, e] of pending) {
        if (e === null) rm.push(Buffer.from(k, 'latin1'));
        else up.push(e);
        if (up.length + rm.length >= BATCH_OPS) flush();
      }
      if (up.length + rm.length > 0) flush();
      pending.clear();
    }
    for (const [node, list] of this.forwards) {
      const key = this.keys.inbox(node);
      jobs.push(this.redis.multi().xadd(key, 'MINID', '~', minId, '*', 'm', packForwards(this.nodeId, Buffer.concat(list))).pexpire(key, ttl).exec().then(throwFailed));
      this.stats[ReplicationStats.FORWARDS_SENT] += list.length;
    }
    this.forwards.clear();
    await Promise.all(jobs);
    this.progress = Date.now();
    this.stats[ReplicationStats.PUBLISHED] += published;
  }

  // ---------------------------------------------------------------- Redis → shards

  private async poll(): Promise<void> {
    const now = Date.now();
    if (now - this.lastPoll > (LOG_RETENTION_SECONDS * 1000) / 2) {
      this.log('the logs were not read for too long: loading every peer again', 'warn');
      this.lastPoll = now;
      this.needReset = true;
      return;
    }
    this.lastPoll = now;
    const reads: Array<Promise<unknown>> = [];
    for (let s = 0; s < SLICES; s++) reads.push(this.redis.xreadBuffer('COUNT', READ_COUNT, 'STREAMS', this.keys.logs[s], this.cursors[s]));
    reads.push(this.redis.xreadBuffer('COUNT', READ_COUNT, 'STREAMS', this.keys.inbox(this.nodeId), this.inboxCursor));
    const results = (await Promise.all(reads)) as Array<Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null>;
    for (let s = 0; s <= SLICES; s++) {
      const r = results[s];
      if (r === null || r.length === 0) continue;
      for (const [id, fields] of r[0][1]) {
        const m = fieldOf(fields, 'm');
        // (the cursor moves once an entry is applied whole: one cut short by a stalled shard
        // is read again, its upserts and removes alike, its forwards dropped as stale then)
        if (s === SLICES) {
          if (m !== undefined) await this.forwarded(m);
          this.inboxCursor = id.toString();
          continue;
        }
        if (m !== undefined && !(await this.batch(s, m))) return;
        this.cursors[s] = id.toString();
      }
    }
    this.flushRemote();
  }

  /** Apply one log entry of slice `s`; false when it reveals a gap (a reset follows). */
  private async batch(s: number, buf: Buffer): Promise<boolean> {
    const b = unpack<Batch>(buf);
    if (typeof b === 'string') {
      this.log(`a log entry skipped: ${b}`, 'warn');
      return true;
    }
    if (this.mine.has(b.n)) return true;
    const node = this.indexOf(b.n);
    if (this.gone.has(node)) return true;
    const seqKey = `${b.n}/${s}`;
    const last = this.lastSeq.get(seqKey);
    if (last !== undefined && b.q <= last) return true; // (already applied)
    if (last !== undefined && b.q !== last + 1) {
      this.log(`a gap in node ${b.n} changes (batch ${last} then ${b.q}): loading every peer again`, 'warn');
      this.needReset = true;
      return false;
    }
    const u = Buffer.from(b.u.buffer, b.u.byteOffset, b.u.byteLength);
    let n = b.r.length / KEY_BYTES;
    for (let at = 0; at + KEY_BYTES < u.length; n++) {
      const len = KEY_BYTES + entryBytes(u, at + KEY_BYTES);
      if (at + len > u.length) break;
      await this.upsert(node, b.n, u.subarray(at, at + len), this.syncEpoch);
      at += len;
    }
    const r = b.r;
    for (let at = 0; at + KEY_BYTES <= r.length; at += KEY_BYTES) {
      const shard = shardIndex(r, at, this.shards.length);
      const off = await this.reserveRemote(shard, RemoteRecord.SIZE);
      const ring = this.shards[shard].remote;
      ring.u8[off + RemoteRecord.OP] = RM_REMOVE;
      ring.dv.setUint32(off + RemoteRecord.NODE, node, true);
      ring.u8.set(r.subarray(at, at + KEY_BYTES), off + RemoteRecord.INFO_HASH);
    }
    this.lastSeq.set(seqKey, b.q);
    this.stats[ReplicationStats.MERGED] += Math.floor(n);
    this.lag((Date.now() + this.clockSkew - b.t) / 1000);
    return true;
  }

  /** One peer entry (key + entry, as in a node's hash) into its shard's remote ring. */
  private async upsert(node: number, nodeId: string, e: Uint8Array, epoch: number): Promise<void> {
    const shard = shardIndex(e, 0, this.shards.length);
    const off = await this.reserveRemote(shard, RemoteRecord.SIZE);
    const ring = this.shards[shard].remote;
    const u8 = ring.u8;
    const dv = ring.dv;
    const flags = e[KEY_BYTES];
    u8[off + RemoteRecord.OP] = RM_UPSERT;
    u8[off + RemoteRecord.FLAGS] = (flags & 0x7f) | (nodeId > this.nodeId ? RF_WINS_TIE : 0);
    dv.setUint32(off + RemoteRecord.NODE, node, true);
    dv.setUint32(off + RemoteRecord.EPOCH, epoch, true);
    const edv = new DataView(e.buffer, e.byteOffset + KEY_BYTES);
    dv.setUint32(off + RemoteRecord.USER, edv.getUint32(1, true), true);
    dv.setUint32(off + RemoteRecord.SEEN, this.toClock(edv.getUint32(5, true)), true);
    u8.set(e.subarray(0, KEY_BYTES), off + RemoteRecord.INFO_HASH);
    u8.set(e.subarray(KEY_BYTES + ENTRY_HEAD, KEY_BYTES + ENTRY_HEAD + addrBytes(flags)), off + RemoteRecord.ADDR);
  }

  /** Announces other nodes received for our peers: accounted here. */
  private async forwarded(buf: Buffer): Promise<void> {
    const f = unpack<Forwards>(buf);
    if (typeof f === 'string') return this.log(`an inbox entry skipped: ${f}`, 'warn');
    const a = f.a;
    for (let at = 0; at + AnnounceRequest.SIZE <= a.length; at += AnnounceRequest.SIZE) {
      const shard = shardIndex(a, at + AnnounceRequest.INFO_HASH, this.shards.length);
      const off = await this.reserveRemote(shard, REMOTE_ANNOUNCE + AnnounceRequest.SIZE);
      const ring = this.shards[shard].remote;
      ring.u8[off + RemoteRecord.OP] = RM_ANNOUNCE;
      const q = off + REMOTE_ANNOUNCE;
      ring.u8.set(a.subarray(at, at + AnnounceRequest.SIZE), q);
      const unix = ring.dv.getUint32(q + AnnounceRequest.FORWARDED_AT, true) + ring.dv.getUint32(q + AnnounceRequest.SOURCE, true) / 1000;
      ring.dv.setUint32(q + AnnounceRequest.FORWARDED_AT, this.toClock(unix - this.clockSkew / 1000), true);
      ring.dv.setUint32(q + AnnounceRequest.SOURCE, 0, true); // (ownership here: the user, or in open mode the key)
      this.stats[ReplicationStats.FORWARDS_RECEIVED]++;
    }
  }

  private async sweep(shard: number, node: number, epoch: number): Promise<void> {
    const off = await this.reserveRemote(shard, RemoteRecord.SIZE);
    const ring = this.shards[shard].remote;
    ring.u8[off + RemoteRecord.OP] = RM_SWEEP;
    ring.dv.setUint32(off + RemoteRecord.NODE, node, true);
    ring.dv.setUint32(off + RemoteRecord.EPOCH, epoch, true);
  }

  private lag(seconds: number): void {
    const st = this.stats;
    st[ReplicationStats.LAG_SUM] += Math.max(0, seconds);
    st[ReplicationStats.LAG_COUNT]++;
    for (let i = 0; i < LAG_BOUNDS.length; i++) if (seconds <= LAG_BOUNDS[i]) st[ReplicationStats.LAG_BUCKETS + i]++;
  }

  /** Room for a record in a shard's remote ring, waiting for the shard to make some. */
  private async reserveRemote(shard: number, len: number): Promise<number> {
    const s = this.shards[shard];
    s.dirty = true;
    let at = s.remote.reserve(len);
    const until = Date.now() + STALL_MS;
    while (at < 0) {
      // the shard applies remote records only with room to write changes: keep taking them
      if (this.closing) throw new Error('closing');
      if (Date.now() > until) throw new ShardStalled(shard);
      this.flushRemote();
      this.drainChanges();
      await sleep(1);
      at = s.remote.reserve(len);
    }
    return at;
  }

  /** Publish what was written to the remote rings and wake their shards. */
  private flushRemote(): void {
    for (const s of this.shards) {
      if (!s.dirty) continue;
      s.dirty = false;
      if (s.remote.commit()) {
        Atomics.add(s.ctl, ShardWords.DOORBELL, 1);
        Atomics.notify(s.ctl, ShardWords.DOORBELL);
      }
    }
  }

  /** Leave: other nodes drop this node's peers at their next lease check. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.renewal);
    await Promise.race([this.running, sleep(2000)]); // (a publish under way must not put the keys back after)
    for (const s of this.shards) Atomics.store(s.ctl, ShardWords.REPL_ON, 0);
    try {
      if (this.nodeId !== '' && this.stats[ReplicationStats.REDIS_UP] === 1 && !this.needReset) {
        // the last announces forwarded to other nodes (the shards answered everything before)
        this.drainChanges();
        await this.publish();
      }
      if (this.nodeId !== '' && this.stats[ReplicationStats.REDIS_UP] === 1) await this.retire(this.nodeId);
    } catch {
      // (its lease lapses instead)
    }
    this.redis.disconnect();
  }
}

/** A shard took no records for STALL_MS (it is stuck, or its accounting is): not a Redis failure. */
class ShardStalled extends Error {
  constructor(shard: number) {
    super(`shard ${shard} takes no records from Redis`);
  }
}

function fieldOf(fields: Buffer[], name: string): Buffer | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i].toString() === name) return fields[i + 1];
  return undefined;
}

function throwFailed(res: Array<[Error | null, unknown]> | null): void {
  if (res === null) throw new Error('Redis transaction aborted');
  for (const [err] of res) if (err) throw err;
}

function passwordOf(url: string): string | undefined {
  const p = new URL(url).password;
  return p === '' ? undefined : decodeURIComponent(p);
}

const data = workerData as ReplicationWorkerData;
const replicator = new Replicator({ ...data, nodeName: data.nodeName || hostname() });
parentPort!.on('message', (m: ToReplication) => {
  if (m.type === 'close') {
    void replicator.close().finally(() => {
      const msg: FromReplication = { type: 'closed' };
      parentPort!.postMessage(msg);
    });
  }
});
replicator.running = replicator.run();

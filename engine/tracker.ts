import { join } from 'node:path';
import type { AdminServer } from '../admin/server.js';
import { Persistence } from '../persistence/persistence.js';
import { masked, saveCredential } from '../persistence/private-files.js';
import { ShardPool } from '../shards/pool.js';
import { AnnounceRequest } from '../contract/requests.js';
import type { Config } from './config.js';
import { TrackerCounters } from './counters.js';
import { startAdminSide, type AdminSide } from './admin-assembly.js';
import { Dispatch } from './dispatch.js';
import type { AddressTags } from './net/halfsip.js';
import { HttpFrontend } from './http/server.js';
import { HEADER_LIMIT_ENV, HEADER_ROOM, loadUws } from './http/uws.js';
import { UdpFrontend } from './udp/server.js';
import { attachRegistryFile } from './policy/registry-file.js';
import { Checkpoints } from './checkpoints.js';
import { WsFrontend } from './ws/server.js';
import { Replication } from '../replication/replication.js';
import { PersistenceStats } from '../contract/persistence-stats.js';
import { Limits } from './policy/limits.js';
import { Registry } from './policy/registry.js';
import { applyDelta, applySnapshot } from './policy/registry-db.js';
import type { Logger } from '../contract/log.js';

// Assembles a running tracker from a configuration: the registry, the shard pool (which
// owns all swarm memory) and the HTTP acceptor. Used by main.ts and by the integration
// tests, which start real trackers on free ports.

export interface Tracker {
  readonly config: Config;
  readonly registry: Registry;
  readonly pool: ShardPool;
  /** What each address and passkey may take: rate buckets, requests in flight, automatic bans. */
  readonly limits: Limits;
  /** Per-request counters of the frontends, read by /metrics (admin/metrics.ts). */
  readonly counters: TrackerCounters;
  readonly http: HttpFrontend;
  readonly httpPort: number;
  /** The UDP frontend, unless udp.port is 0. */
  readonly udp: UdpFrontend | undefined;
  /** The WebSocket tracker on the HTTP port, unless ws.enabled is false. */
  readonly ws: WsFrontend | undefined;
  readonly udpPort: number;
  /** The persistence thread, unless database.enabled is false. */
  readonly persistence: Persistence | undefined;
  /** The same thread, also without a database when checkpoints are kept (then it holds only the journal). */
  readonly journal: Persistence | undefined;
  /** Peers put back into their swarms at start, from the database or (without one) the checkpoint. */
  readonly restoredPeers: number;
  /** The replication thread (peers shared with other nodes through Redis), with redis.url or redis.cluster. */
  readonly replication: Replication | undefined;
  /** The admin listener (API, health, metrics), unless admin.enabled is false. */
  readonly admin: AdminServer | undefined;
  /** Stop listening, let the shards answer what they hold, commit the ledger, stop. */
  close(): Promise<void>;
}


const RING_REQUESTS = 8 << 20; // 8 MiB: ~80k announce records queued per shard
const RING_ANSWERS = 16 << 20;
const RING_ACCOUNTING = 16 << 20; // ~130k records per shard: seconds of full load between cuts
const RING_REPLICATION = 4 << 20; // each way: ~50k peer changes queued per shard
const DRAIN_MS = 3000; // at shutdown, how long requests already queued may take to be answered

/**
 * Start a tracker. `onFatal` is called when a shard cannot be kept alive (it died more than
 * the restart budget allows); by default the process exits with status 1 so that its
 * supervisor restarts it.
 */
export async function startTracker(config: Config, log: Logger = () => {}, onFatal: (msg: string) => void = exitOnFatal(log)): Promise<Tracker> {
  const uws = loadUws(); // native, or this throws naming why
  const headerLimit = Number(process.env[HEADER_LIMIT_ENV] ?? 4096);
  if (config.http.max_query_bytes + HEADER_ROOM > headerLimit) {
    log(`http.max_query_bytes (${config.http.max_query_bytes}) does not fit the ${headerLimit} bytes of request line and headers uWebSockets.js was loaded to accept: longer requests get 431 (set ${HEADER_LIMIT_ENV} before it loads, as main.js does)`, 'warn');
  }
  const registry = new Registry();
  const db = config.database;
  // Without a database the registry comes from the watched file; with one, from the database.
  const stopWatching =
    !db.enabled && config.registry.file !== ''
      ? attachRegistryFile(registry, config.registry.file, { createWithUser: config.tracker.private, log })
      : () => {};
  // Every change to a swarm is journalled where the swarms are kept across restarts (the
  // checkpoints' tails); with a database, the accounting too.
  const journalled = db.enabled || (config.checkpoint.enabled && Checkpoints.usable(db.data_dir, log));
  const replicated = config.redis.url !== '' || config.redis.cluster.length > 0;
  const pool = new ShardPool({
    count: config.shards.count,
    maxPeers: config.shards.max_peers,
    maxSwarms: config.shards.max_swarms,
    requestRingBytes: RING_REQUESTS,
    answerRingBytes: RING_ANSWERS,
    accountingRingBytes: journalled ? RING_ACCOUNTING : 4096,
    accounting: journalled,
    replication: replicated,
    replicationRingBytes: replicated ? RING_REPLICATION : undefined,
    rules: {
      peerTimeout: config.tracker.peer_timeout,
      maxUploadRate: config.accounting.max_upload_rate,
      minInterval: config.limits.enforce_min_interval ? config.tracker.min_interval : 0,
      maxPeersPerUser: config.tracker.private ? config.tracker.max_peers_per_user_torrent : 0,
      // each shard holds its share of an address's swarms, with room for an uneven spread of info_hashes
      maxPeersPerAddress: config.tracker.private ? 0 : swarmShare(config.limits.max_swarms_per_address, config.shards.count),
      ledger: db.enabled,
      states: config.checkpoint.enabled,
    },
    watchdogSeconds: config.shards.watchdog_seconds,
    numwantMax: config.tracker.numwant_max,
    scrapeMaxHashes: config.tracker.scrape_max_hashes,
    log,
    onFatal,
  });
  const dispatch = new Dispatch(pool, config.http.max_inflight);
  const limits = new Limits(config);
  dispatch.limits = limits;
  dispatch.pending.perClient = limits;
  const counters = new TrackerCounters();
  const http = new HttpFrontend(config, dispatch, pool, registry, counters, log);
  const udp = config.udp.port !== 0 ? new UdpFrontend(config, dispatch, pool, registry, counters) : undefined;
  const ws = config.ws.enabled ? new WsFrontend(config, dispatch, registry, counters, http.uws) : undefined;
  await pool.start(dispatch);
  let persistence: Persistence | undefined;
  let journal: Persistence | undefined; // the same thread; also without a database
  let admin: AdminServer | undefined;
  let adminSide: AdminSide | undefined;
  let restoredPeers = 0;
  let httpPort: number;
  let udpPort = 0;
  let checkpoints: Checkpoints | undefined;
  let replication: Replication | undefined;
  try {
    if (journalled) {
      const restarts = () => Array.from({ length: pool.count }, (_, i) => pool.stats(i).restarts).reduce((a, b) => a + b, 0);
      const restartsBefore = restarts();
      const { persistence: thread } = await Persistence.start(pool.accountingBuffers(), pool.epoch, {
        database: db.enabled,
        url: db.url,
        schema: db.schema,
        dataDir: db.data_dir,
        flushIntervalMs: config.persistence.flush_interval_ms,
        journalMaxBytes: config.persistence.journal_max_bytes,
        flushConnections: config.persistence.flush_connections,
        peerTimeout: config.tracker.peer_timeout,
        checkpoints: config.checkpoint.enabled,
        firstUser: db.enabled && config.tracker.private,
        log,
        onRegistry: (snap) => applySnapshot(registry, snap, log),
        onRegistryDelta: (delta) => applyDelta(registry, delta, log),
        onRestore: (records) => restore(pool, dispatch.addressTags, records),
        onFirstUser: (passkey) => {
          const file = saveCredential(db.data_dir, 'first_user_passkey', passkey);
          log(`created a first user (passkey ${masked(passkey)}, whole in ${file}) in the empty ${db.url === '' ? `embedded database under ${join(db.data_dir, 'pglite')}` : 'database'}`);
        },
        onFatal,
      });
      journal = thread;
      // (without a database the thread holds only the journal: no ledger for the admin side)
      if (db.enabled) persistence = thread;
      // the checkpoint and the journal's tail (or the journal alone) replay over one another:
      // what counts is who is in the swarms once the shards have taken all of it
      restoredPeers = await livePeers(pool);
      // a shard respawned meanwhile dropped what was queued to it: some peers could be left
      // at older totals than the ledger's. The checkpoint and journal are intact: start again.
      if (restarts() !== restartsBefore) throw new Error('a shard restarted while the swarms were being put back: not serving half of them (start again)');
      thread.stats[PersistenceStats.PEERS_RESTORED] = restoredPeers;
      if (restoredPeers > 0) log(`restored ${restoredPeers} peers`);
      if (config.checkpoint.enabled) {
        // each checkpoint is tied to the journal (README: checkpoints)
        const cps = new Checkpoints(pool, db.data_dir, log, thread);
        checkpoints = cps;
        cps.every(config.checkpoint.interval_seconds);
        const wanted = thread.checkpointNow; // restored without one (the base for the next start), or asked for meanwhile
        thread.onCheckpointWanted = () => void cps.take().catch((e: Error) => log(`checkpoint failed: ${e.message}`, 'error'));
        if (wanted) thread.onCheckpointWanted();
      }
    }
    // after the restore: its first dump publishes the peers put back
    if (replicated) {
      const r = config.redis;
      const settings = { url: r.url, cluster: r.cluster, prefix: r.prefix, nodeName: r.node_name, publishIntervalMs: r.publish_interval_ms, leaseSeconds: r.node_lease };
      replication = Replication.start(pool.replicationBuffers(), pool.epoch, settings, log);
    }
    if (config.tracker.private && registry.userCount === 0) {
      log('private mode with no users: every announce will be refused until users are added', 'warn');
    }
    if (config.admin.enabled) {
      adminSide = await startAdminSide(config, { pool, registry, counters, persistence, http, uws, limits, ws: ws?.stats, replication }, log);
      admin = adminSide.server;
      if (admin.firstToken) {
        const file = saveCredential(db.data_dir, 'first_admin_token', admin.firstToken);
        log(`created the first admin API token (${masked(admin.firstToken)}, whole in ${file})`, 'warn');
      }
    }
    httpPort = await http.listen();
    if (udp) udpPort = await udp.listen();
  } catch (e) {
    ws?.close();
    await http.close();
    udp?.close();
    await adminSide?.close();
    await checkpoints?.abandon();
    await replication?.close();
    await pool.close();
    await journal?.close();
    stopWatching();
    throw e;
  }
  return {
    config,
    registry,
    pool,
    limits,
    counters,
    http,
    httpPort,
    udp,
    udpPort,
    ws,
    persistence,
    journal,
    replication,
    restoredPeers,
    admin,
    async close() {
      ws?.close(); // (their peers' stops are answered below, before the shards stop)
      await http.close();
      udp?.close();
      await adminSide?.close();
      stopWatching();
      // Requests already in the rings are answered (and accounted) before the shards stop;
      // then the persistence thread takes the last records.
      const until = Date.now() + DRAIN_MS;
      while (dispatch.pending.inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      // this node leaves the cluster: the others drop its peers now, not at its lease's end
      await replication?.close();
      // nothing is served any more: the swarms as they are now are the last checkpoint
      await checkpoints?.close().catch((e: Error) => log(`last checkpoint not written: ${e.message}`, 'error'));
      await pool.close();
      await journal?.close();
    },
  };
}

/**
 * Put peers read back from the database into their shards, waiting for ring space as needed.
 * Each is owned by the address it was stored with (the source's tag is this process's).
 */
async function restore(pool: ShardPool, tags: AddressTags, records: Uint8Array): Promise<void> {
  const dv = new DataView(records.buffer, records.byteOffset, records.byteLength);
  for (let at = 0; at < records.length; at += AnnounceRequest.SIZE) {
    dv.setUint32(at + AnnounceRequest.SOURCE, tags.tag(records, at + AnnounceRequest.IP), true);
    const shard = pool.shardOf(records, at + AnnounceRequest.INFO_HASH);
    let off = pool.reserve(shard, AnnounceRequest.SIZE);
    while (off < 0) {
      await new Promise((r) => setTimeout(r, 1)); // the shard is working through the ring
      off = pool.reserve(shard, AnnounceRequest.SIZE);
    }
    pool.requestRing(shard).u8.set(records.subarray(at, at + AnnounceRequest.SIZE), off);
    pool.queued(shard);
  }
}

/**
 * Peers in the swarms once the shards have handled every request queued so far (before
 * listening: the restore's). Not before: a checkpoint taken earlier could catch a peer
 * half restored, older than the ledger (restore() waits on a shard respawning the same way).
 */
async function livePeers(pool: ShardPool): Promise<number> {
  const all = Array.from({ length: pool.count }, (_, i) => i);
  while (all.some((i) => pool.stats(i).queuedRequestBytes > 0)) await new Promise((r) => setTimeout(r, 2));
  return all.reduce((n, i) => n + pool.stats(i).peers, 0);
}

function exitOnFatal(log: Logger): (msg: string) => void {
  return (msg) => {
    log(msg, 'error');
    process.exit(1);
  };
}

/** One shard's share of limits.max_swarms_per_address (0: no cap). */
export function swarmShare(max: number, shards: number): number {
  return shards === 1 ? max : Math.ceil((1.5 * max) / shards);
}

import { ShardPool } from '../shards/channel.js';
import type { Config } from './config.js';
import { Dispatch } from './dispatch.js';
import { HttpFrontend } from './http/server.js';
import { UdpFrontend } from './udp/server.js';
import { attachRegistryFile } from './policy/registry-file.js';
import { Registry } from './policy/registry.js';

// Assembles a running tracker from a configuration: the registry, the shard pool (which
// owns all swarm memory) and the HTTP acceptor. Used by main.ts and by the integration
// tests, which start real trackers on free ports.

export interface Tracker {
  readonly config: Config;
  readonly registry: Registry;
  readonly pool: ShardPool;
  readonly http: HttpFrontend;
  readonly httpPort: number;
  /** The UDP frontend, unless udp.port is 0. */
  readonly udp: UdpFrontend | undefined;
  readonly udpPort: number;
  close(): Promise<void>;
}

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
/** Where the tracker reports what operators should know; level defaults to info. */
export type Logger = (msg: string, level?: LogLevel) => void;

const RING_REQUESTS = 8 << 20; // 8 MiB: ~80k announce records queued per shard
const RING_ANSWERS = 16 << 20;

/**
 * Start a tracker. `onFatal` is called when a shard cannot be kept alive (it died more than
 * the restart budget allows); by default the process exits with status 1 so that its
 * supervisor restarts it.
 */
export async function startTracker(config: Config, log: Logger = () => {}, onFatal: (msg: string) => void = exitOnFatal(log)): Promise<Tracker> {
  const registry = new Registry();
  const stopWatching =
    config.registry.file !== ''
      ? attachRegistryFile(registry, config.registry.file, { createWithUser: config.tracker.private, log })
      : () => {};
  if (config.tracker.private && registry.userCount === 0) {
    log('private mode with no users: every announce will be refused until users are added', 'warn');
  }
  const pool = new ShardPool({
    count: config.shards.count,
    maxPeers: config.shards.max_peers,
    maxSwarms: config.shards.max_swarms,
    requestRingBytes: RING_REQUESTS,
    answerRingBytes: RING_ANSWERS,
    peerTimeout: config.tracker.peer_timeout,
    numwantMax: config.tracker.numwant_max,
    scrapeMaxHashes: config.tracker.scrape_max_hashes,
    log,
    onFatal,
  });
  const dispatch = new Dispatch(pool, config.http.max_inflight);
  const http = new HttpFrontend(config, dispatch, pool, registry);
  const udp = config.udp.port !== 0 ? new UdpFrontend(config, dispatch, pool, registry) : undefined;
  await pool.start(dispatch);
  let httpPort: number;
  let udpPort = 0;
  try {
    httpPort = await http.listen();
    if (udp) udpPort = await udp.listen();
  } catch (e) {
    http.close();
    await pool.close();
    stopWatching();
    throw e;
  }
  return {
    config,
    registry,
    pool,
    http,
    httpPort,
    udp,
    udpPort,
    async close() {
      http.close();
      udp?.close();
      stopWatching();
      await pool.close();
    },
  };
}

function exitOnFatal(log: Logger): (msg: string) => void {
  return (msg) => {
    log(msg, 'error');
    process.exit(1);
  };
}

import type postgres from 'postgres';
import type { Tokens } from './auth.js';

// What the admin side sees of the running tracker: narrow, read-only views it declares
// here and the assembly (engine/tracker.ts) passes in. admin/ imports no other part of the
// tracker but the cross-thread contract (contract/): it reads, it never drives.

/** A shard's figures at one instant (the shard pool's stats() gives them). */
export interface ShardStats {
  readonly up: boolean;
  readonly starting: boolean;
  /** seconds since its loop last turned; -1 without a thread */
  readonly heartbeatAge: number;
  readonly restarts: number;
  readonly swarms: number;
  readonly peers: number;
  readonly seeders: number;
  readonly leechers: number;
  readonly peersV6: number;
  /** WebSocket (browser) peers; absent where a test's figures have none */
  readonly peersWs?: number;
  /** other nodes' peers (replication); absent where a test's figures have none */
  readonly remotePeers?: number;
  /** other nodes' peers refused at max_peers/max_swarms (int32 that wraps); absent where a test's figures have none */
  readonly remoteFull?: number;
  readonly queuedRequestBytes: number;
  readonly queuedAnswerBytes: number;
  /** int32 words that wrap (readers total the differences) */
  readonly busyMs: number;
  readonly handled: number;
  readonly tableFull: number;
}

export interface PeerView {
  readonly peerId: Uint8Array;
  readonly ip: string;
  readonly port: number;
  readonly seeder: boolean;
  /** 0 in open mode */
  readonly user: number;
  readonly uploaded: number;
  readonly downloaded: number;
  readonly left: number;
  readonly secondsSinceAnnounce: number;
}

export interface SwarmView {
  readonly shard: number;
  readonly seeders: number;
  readonly leechers: number;
  readonly completed: number;
  readonly peers: readonly PeerView[];
}

export interface ShardsView {
  readonly count: number;
  stats(shard: number): ShardStats;
  /** The live swarm of a 20-byte info_hash, or undefined. */
  swarm(infoHash: Uint8Array, limit: number): SwarmView | undefined;
}

/** The acceptor's caches, by size. */
export interface RegistryView {
  readonly userCount: number;
  readonly registeredTorrents: number;
  readonly banCount: number;
}

/** The persistence thread: its stats block (contract/persistence-stats.ts) and a reload. */
export interface PersistenceView {
  readonly stats: Float64Array;
  /** Apply registry edits to the acceptor's caches now; resolves once they are in force. */
  reload(): Promise<void>;
}

/** The request counters of the frontends (arrays by label index, read at scrape time). */
export interface RequestCountersView {
  readonly labels: {
    readonly protocols: readonly string[];
    readonly events: readonly string[];
    readonly outcomes: readonly string[];
    readonly failureCodes: readonly string[];
    /** latency bucket bounds; one more bucket (+Inf) follows the last */
    readonly latencyBucketsMs: readonly number[];
  };
  /** by [protocol][event][outcome] */
  readonly announces: Float64Array;
  /** by [protocol][outcome] */
  readonly scrapes: Float64Array;
  /** by failure code */
  readonly failures: Float64Array;
  /** by [protocol][bucket], counts per bucket (not cumulative) */
  readonly latency: Float64Array;
  readonly latencySumMs: Float64Array;
  readonly busy: number;
}

/** The running tracker as the admin side sees it. */
export interface TrackerView {
  readonly shards: ShardsView;
  readonly registry: RegistryView;
  /** absent without a database (database.enabled = false) */
  readonly persistence: PersistenceView | undefined;
  readonly limits?: LimitsView;
  /** absent without redis.url */
  readonly replication?: ReplicationView;
}

/** The replication thread: its stats block (contract/replication.ts). */
export interface ReplicationView {
  readonly stats: Float64Array;
  /** redis.unready_when_down: Redis away makes /ready fail, not just say degraded. */
  readonly unreadyWhenDown: boolean;
}

/** The acceptor's limiter tables (engine/policy/limits.ts): automatic bans and their figures. */
export interface LimitsView {
  /** Addresses banned now (IPv4, or an IPv6 /64 as `a:b:c:d::/64`), until unix seconds. */
  autoBans(nowMs: number): { address: string; until: number }[];
  /** Lift an address's automatic ban: true if it had one, false if not, null when `address` is not an address. */
  liftAddress(address: string, nowMs: number): boolean | null;
  readonly tables: readonly { name: string; entries: number; capacity: number; bytes: number; evictions: number }[];
  readonly bansTotal: number;
}

/** What route modules work with. */
export interface AdminContext {
  /** The tracker's database (its schema on the search path). */
  readonly sql: postgres.Sql;
  readonly tokens: Tokens;
  /**
   * Apply registry edits to the acceptor's caches now (resolves once they are in force),
   * rather than within the second NOTIFY takes.
   */
  reload(): Promise<void>;
}

/** Offset of a page. */
export const offset = (q: { page: number; per_page: number }): number => (q.page - 1) * q.per_page;

// What the shards and the replication thread (replication/) exchange through two byte rings
// per shard (contract/ring.ts), when redis.url is set:
//
// - changes, shard → replication: the local peers that changed in a way other nodes see
//   (added, moved, seeder/leecher or paused, gone), announces of other nodes' peers to be
//   forwarded to their node, and the end of a dump of every local peer;
// - remote, replication → shard: other nodes' peers to add or remove, sweeps of peers of
//   dead nodes or older syncs, dump requests, and announces forwarded to this node.
//
// Fixed little-endian layouts. A peer's address is its wire entry (ip4 or ip16, then the
// port big-endian), as in the swarm arrays.

/** Words of a shard's control block the replication thread uses (shards/memory-layout.ts ShardControl has them from here). */
export const ShardWords = {
  DOORBELL: 0, // bumped + notified when records were queued for the shard
  REPL_ON: 52, // 1 once the replication thread reads the changes ring: local changes are written to it
  CHANGES_LOST: 53, // changes that found the ring full (the replication thread then republishes every local peer)
} as const;

/** Change record ops (shard → replication). */
export const CH_UPSERT = 1; // a local peer was added or changed (its current state)
export const CH_REMOVE = 2; // a local peer left (stopped, expired, moved to another node)
export const CH_DUMP_END = 3; // every local peer of the dump asked for (SEQ) has been written
export const CH_FORWARD = 4; // an announce of another node's peer: ChangeRecord.NODE, then the AnnounceRequest

/** Peer flags in change and remote records, and in Redis. */
export const RF_SEEDER = 1;
export const RF_V6 = 2;
export const RF_PAUSED = 4;
export const RF_WINS_TIE = 0x80; // RM_UPSERT only: at equal announce times, the other node's copy wins (the larger node id)

export const ChangeRecord = {
  OP: 0, // u8 (CH_*)
  FLAGS: 1, // u8 (RF_*)
  USER: 4, // u32 user id (0 in open mode)
  INFO_HASH: 8, // 20 bytes
  PEER_ID: 28, // 20 bytes
  ADDR: 48, // 18 bytes: 6 used for IPv4
  SEQ: 68, // u32: CH_DUMP_END's dump; CH_UPSERT: the peer's last announce (shard clock)
  NODE: 72, // u32: CH_FORWARD: the node index (RemoteRecord.NODE) the peer belongs to
  SIZE: 80,
} as const;
/** A CH_FORWARD record: a ChangeRecord header, then the announce request (AnnounceRequest.SIZE). */
export const FORWARD_ANNOUNCE = ChangeRecord.SIZE;

/** Remote record ops (replication → shard). */
export const RM_UPSERT = 1; // another node's peer, as it is now
export const RM_REMOVE = 2; // another node's peer left (only when the record still says that node)
export const RM_SWEEP = 3; // remove remote peers of NODE (ALL_NODES: of every node) synced before EPOCH
export const RM_DUMP = 4; // write every local peer as CH_UPSERT, then CH_DUMP_END with SEQ
export const RM_ANNOUNCE = 5; // an announce another node received for a peer of ours: RemoteRecord header, then the AnnounceRequest

export const ALL_NODES = 0xffffffff;

export const RemoteRecord = {
  OP: 0, // u8 (RM_*)
  FLAGS: 1, // u8 (RF_*)
  NODE: 4, // u32 this process's index of the node (replication/nodes.ts), never 0
  EPOCH: 8, // u32 the sync it came with (RM_SWEEP: remove what is older)
  USER: 12, // u32
  INFO_HASH: 16, // 20 bytes
  PEER_ID: 36, // 20 bytes
  ADDR: 56, // 18 bytes
  SEEN: 76, // u32 its last announce, on this process's shard clock (RM_DUMP: the dump's SEQ)
  SIZE: 80,
} as const;
export const REMOTE_ANNOUNCE = RemoteRecord.SIZE;

/** Address bytes of an entry with these flags. */
export function addrBytes(flags: number): number {
  return flags & RF_V6 ? 18 : 6;
}

// What the replication thread reports, in a small shared Float64Array it alone writes (read
// by /ready, /metrics and tests without messaging it).
export const ReplicationStats = {
  REDIS_UP: 0, // 1 while the last Redis command succeeded
  SYNCED: 1, // 1 once the other nodes' peers are loaded (snapshot and stream, no gap); 0 again while resynchronising
  NODES: 2, // other live nodes
  PUBLISHED: 3, // peer changes published (total)
  MERGED: 4, // other nodes' peer changes applied (total)
  FORWARDS_SENT: 5, // announces of other nodes' peers sent to their node
  FORWARDS_RECEIVED: 6, // announces other nodes received for our peers, applied here
  RESYNCS: 7, // full resynchronisations (start, Redis back, gap, lost changes)
  ERRORS: 8, // failed Redis operations
  NODES_LAPSED: 9, // nodes whose lease lapsed (their peers removed)
  LAG_SUM: 10, // seconds: visibility lag of applied batches (sum, count and buckets: a histogram)
  LAG_COUNT: 11,
  LAG_BUCKETS: 12, // LAG_BOUNDS.length words, cumulative counts ≤ each bound
  JOINED: 21, // 1 once the first sync is done (a later resync, while it runs, is a degraded state, not a join)
  SIZE: 22,
} as const;
export const LAG_BOUNDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

export function allocateReplicationStats(): SharedArrayBuffer {
  return new SharedArrayBuffer(ReplicationStats.SIZE * 8);
}

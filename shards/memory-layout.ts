import { ShardWords } from '../contract/replication.js';

// The shard's own memory: its control block, the block every shard shares with the acceptor,
// and its swarm and peer tables (SharedArrayBuffers the acceptor allocates and keeps, so a
// respawned shard thread resumes on them). All multi-byte fields little-endian.

// ---------------------------------------------------------------------------------
export const SHARD_CONTROL_WORDS = 256;
export const ShardControl = {
  // line 0: written by the acceptor
  DOORBELL: ShardWords.DOORBELL, // bumped + notified when requests (or replication records) were queued
  CHECKPOINT: 1, // sequence number of the checkpoint asked for (shards/snapshot.ts)
  // line 1: written by the shard
  HEARTBEAT: 16, // bumped by every turn of the drain loop, at least 4 times a second (wraps): liveness
  BUSY_MS: 17, // milliseconds spent handling requests (metrics)
  HANDLED: 18, // requests handled (wraps)
  SLEEPING: 19, // 1 while the shard blocks in Atomics.wait: only then does the doorbell notify
  RUNNING: 20, // 1 once the thread has recovered its tables and entered its loop; the pool zeroes it at spawn
  CHECKPOINT_DONE: 21, // sequence number of the last checkpoint this shard finished writing out
  // line 2..: table headers, written only by the shard, survive a respawn
  SWARM_CAP: 32, // swarm slab capacity (records)
  SWARM_HIGH: 33, // swarm slots ever used (slab high-water mark)
  SWARM_FREE: 34, // head of the swarm free list (NIL = -1)
  SWARM_LIVE: 35, // live swarms
  SWARM_INDEX_CAP: 36, // swarm index capacity (entries, power of two)
  PEER_CAP: 37,
  PEER_HIGH: 38,
  PEER_FREE: 39,
  PEER_LIVE: 40,
  PEER_INDEX_CAP: 41,
  SEEDERS: 42, // totals across the shard, for stats without walking tables
  LEECHERS: 43,
  PEERS_V6: 44,
  SWEEP_PEER: 45, // expiry cursor into the peer slab
  SWEEP_SWARM: 46, // expiry cursor into the swarm slab
  TABLE_FULL: 47, // announces refused because max_peers/max_swarms was reached
  ARENA4_TOP: 48, // entries of arena 4 ever handed out (bump pointer)
  ARENA6_TOP: 49,
  ARENAW_TOP: 50, // arena W: WebSocket peers (their entry is the acceptor's socket id)
  PEERS_WS: 51,
  // replication (redis.url): written by the replication thread, then by the shard
  REPL_ON: ShardWords.REPL_ON,
  CHANGES_LOST: ShardWords.CHANGES_LOST,
  REMOTE_PEERS: 54, // peers of other nodes in this shard's swarms
  REMOTE_FULL: 56, // other nodes' peers not taken: max_peers/max_swarms reached
  FREE4: 64, // MAX_CLASS words: heads of arena 4's free lists by class (NIL = -1)
  FREE6: 96, // MAX_CLASS words: same for arena 6
  FREEW: 128, // MAX_CLASS words: same for arena W
} as const;

// Global block shared by the acceptor and every shard.
export const GLOBAL_BLOCK_WORDS = 64;
export const GlobalBlock = {
  NOW: 0, // seconds since tracker start, ticked by the acceptor once a second
  HASH_SEED: 16, // seed of the table hashes (random per process, kept across respawns)
  MAIN_BELL: 32, // bumped + notified by shards when answers were queued
} as const;

export const NIL = -1;

// ---------------------------------------------------------------------------------
// Swarm table (shard-owned, growable SharedArrayBuffers).
//
// A swarm keeps its peers' addresses in two contiguous arrays, one per address family,
// in the peer arenas below: [ seeders | leechers ], wire-ready (compact bytes, port
// big-endian), so an answer is a copy of a run of consecutive entries, not a walk through
// scattered records. Each array is a block of 2^(class-1) entries; class 0 = no block.
// ---------------------------------------------------------------------------------
export const SwarmRecord = {
  INFO_HASH: 0, // 20 bytes
  FLAGS: 20, // u8 (SWF_*)
  CLASS4: 21, // u8: block class of the IPv4 array
  CLASS6: 22, // u8: block class of the IPv6 array
  CLASSW: 23, // u8: block class of the WebSocket peers' array
  SEED4: 24, // u32 seeders in the IPv4 array (entries [0, SEED4))
  LEECH4: 28, // u32 leechers in the IPv4 array (entries [SEED4, SEED4 + LEECH4))
  SEED6: 32, // u32
  LEECH6: 36, // u32
  BLOCK4: 40, // u32 first entry of the IPv4 block in arena 4
  BLOCK6: 44, // u32 first entry of the IPv6 block in arena 6
  COMPLETED: 48, // u32 times completed (counted once per peer)
  LAST_ACTIVE: 52, // u32 clock; doubles as the free-list link while free
  ROT_SEED: 56, // u32 rotation counter of the seeder segments: where the next answer starts
  ROT_LEECH: 60, // u32 rotation counter of the leecher segments
  // The no-leechers rule: the two latest departures of leechers (stopped, completed,
  // expired) of two different users, latest first (a user's own leecher does not justify
  // its upload, and must not hide another user's that left just before it)
  LEECHER_AT: 64, // u32 clock
  LEECHER_USER: 68, // u32
  LEECHER_AT2: 72, // u32
  LEECHER_USER2: 76, // u32
  // WebSocket peers (browsers): answered only to one another, counted with the rest
  SEEDW: 80, // u32
  LEECHW: 84, // u32
  BLOCKW: 88, // u32 first entry of the block in arena W
  SIZE: 96,
} as const;
export const SWF_LIVE = 1;

// Peer records: identity and accounting state; the address lives in the swarm's array
// entry at POS (one source of truth for it).
export const PeerRecord = {
  SWARM: 0, // u32 swarm slot
  USER: 4, // u32
  PEER_ID: 8, // 20 bytes
  FLAGS: 28, // u8 (PF_*)
  FLAGS2: 29, // u8 (PF2_*)
  POS: 32, // u32 index in the swarm's array of the peer's family; free-list link while free
  LAST_SEEN: 36, // u32 clock
  KEY: 40, // u32
  UPLOADED: 44, // f64 last reported totals, for accounting deltas (DataView: no alignment needed)
  DOWNLOADED: 52, // f64
  LEFT: 60, // f64
  SOURCE: 68, // u32 tag of the address the peer last announced from (AnnounceRequest.SOURCE)
  SIZE: 72,
} as const;
export const PF_LIVE = 1;
export const PF_SEEDER = 2; // in the seeder segment (left == 0)
export const PF_COMPLETED = 4; // `completed` already counted for this peer
export const PF_V6 = 8; // native IPv6 address: lives in the IPv6 array
export const PF_PAUSED = 16; // BEP 21 partial seed: wants no peers to download from
export const PF_HAS_KEY = 32;
export const PF_RESTORED = 64; // reloaded at start: its next announce's interval is not known (shard.ts account)
export const PF_FRESH = 128; // every announce of this peer so far came within FRESH_SECONDS of the one before (a stop then earns no upload)
export const PF2_REPEATED = 1; // a repeat of its previous announce passed min interval since the last announce that passed it by time
export const PF2_WS = 2; // a WebSocket peer: lives in the W array (its entry: the socket id), never in a checkpoint
// Another node's peer (replication/): listed and counted, never accounted, expired or
// checkpointed; KEY holds its node (REMOTE_NODE), UPLOADED's first word the sync that last
// confirmed it (REMOTE_EPOCH), DOWNLOADED's first word when this node last forwarded an
// announce of it (REMOTE_FORWARDED), LAST_SEEN its last announce (on this process's clock).
export const PF2_REMOTE = 4;
export const REMOTE_NODE = PeerRecord.KEY;
export const REMOTE_EPOCH = PeerRecord.UPLOADED;
export const REMOTE_FORWARDED = PeerRecord.DOWNLOADED; // u32: when this node last forwarded an announce of it (min interval here too)

// Peer arenas: per family, the address entries (compact wire form) and, in a parallel
// region with the same entry index, the peer slot of each entry (u32).
export const ADDR4 = 6; // ip4 + port BE
export const ADDR6 = 18; // ip16 + port BE
export const ADDRW = 6; // the acceptor's socket id (u32 BE) + 2 zero bytes: the compact IPv4 entry's size
export const MAX_CLASS = 28; // blocks of up to 2^27 entries

// Open-addressing indexes: pairs of Int32 [hash, slot + 1]; 0 in the slot word = empty.
export const INDEX_ENTRY_WORDS = 2;

// Initial capacities (grown by doubling).
export const INITIAL_SWARMS = 1024;
export const INITIAL_PEERS = 4096;
export const INITIAL_ARENA_ENTRIES = 8192;

// Record sizes and field offsets for every SharedArrayBuffer that crosses threads.
// One place, so the acceptor (writer of requests), the shards (writers of answers and
// swarm state) and the persistence thread (reader of accounting) agree on every byte. All multi-byte
// fields are little-endian and read/written through DataView.

// ---------------------------------------------------------------------------------
// Control block: one small fixed SharedArrayBuffer per shard, Int32 words.
// Words written by different threads sit on different 64-byte lines.
// ---------------------------------------------------------------------------------
export const CTL_WORDS = 256;
export const CTL = {
  // line 0: written by the acceptor
  DOORBELL: 0, // bumped + notified when requests were queued
  // line 1: written by the shard
  HEARTBEAT: 16, // bumped by every turn of the drain loop, at least 4 times a second (wraps): liveness
  BUSY_MS: 17, // milliseconds spent handling requests (metrics)
  HANDLED: 18, // requests handled (wraps)
  SLEEPING: 19, // 1 while the shard blocks in Atomics.wait: only then does the doorbell notify
  RUNNING: 20, // 1 once the thread has recovered its tables and entered its loop; the pool zeroes it at spawn
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
  FREE4: 64, // MAX_CLASS words: heads of arena 4's free lists by class (NIL = -1)
  FREE6: 96, // MAX_CLASS words: same for arena 6
} as const;

// Global block shared by the acceptor and every shard.
export const GLOBAL_WORDS = 64;
export const GLOBAL = {
  NOW: 0, // seconds since tracker start, ticked by the acceptor once a second
  HASH_SEED: 16, // seed of the table hashes (random per process, kept across respawns)
  MAIN_BELL: 32, // bumped + notified by shards when answers were queued
} as const;

export const NIL = -1;

// ---------------------------------------------------------------------------------
// Byte rings (single producer, single consumer). See ring.ts for the protocol.
// ---------------------------------------------------------------------------------
export const RING_HEAD = 0; // Int32 index: consumer position (bytes, wraps at 2^32)
export const RING_TAIL = 16; // Int32 index: producer position, on its own cache line
export const RING_HEADER_BYTES = 128;

// ---------------------------------------------------------------------------------
// Requests: acceptor → shard.
// ---------------------------------------------------------------------------------
export const KIND_ANNOUNCE = 1;
export const KIND_SCRAPE = 2;

export const EVENT_NONE = 0;
export const EVENT_COMPLETED = 1;
export const EVENT_STARTED = 2;
export const EVENT_STOPPED = 3;
export const EVENT_PAUSED = 4;

export const AF_COMPACT = 1; // BEP 23 compact answer
export const AF_NO_PEER_ID = 2; // non-compact without peer ids
export const AF_V6 = 4; // the peer's address is IPv6 (answer with IPv6 peers)
export const AF_HAS_KEY = 8; // the client sent `key`
export const AF_RESTORE = 16; // a peer reloaded from the database at start: no answer, no accounting

// Announce request record.
export const AQ = {
  KIND: 0, // u8
  EVENT: 1, // u8
  FLAGS: 2, // u8 (AF_*)
  REQ_ID: 4, // u32: acceptor's pending slot + generation
  USER: 8, // u32: user slot from the registry (0 in open mode)
  TORRENT: 12, // u32: torrent id from the registry (0 when unregistered)
  INFO_HASH: 16, // 20 bytes
  PEER_ID: 36, // 20 bytes
  IP: 56, // 16 bytes, IPv4 as IPv4-mapped IPv6
  PORT: 72, // u16
  NUMWANT: 74, // u16 (already clamped to numwant_max)
  KEY: 76, // u32
  UPLOADED: 80, // f64
  DOWNLOADED: 88, // f64
  LEFT: 96, // f64
  SOURCE: 104, // u32: secret tag of the address the request came from (engine/net/halfsip.ts AddressTags)
  SIZE: 108,
} as const;

// Scrape request record: header then COUNT × 20-byte info_hashes.
export const SQ = {
  KIND: 0, // u8
  COUNT: 2, // u16
  REQ_ID: 4, // u32
  HASHES: 8,
} as const;

// ---------------------------------------------------------------------------------
// Answers: shard → acceptor.
// ---------------------------------------------------------------------------------
export const ST_OK = 0;
export const ST_TABLE_FULL = 1; // max_swarms / max_peers reached
export const ST_PEER_ID_IN_USE = 2; // another client holds this peer_id in the swarm (shard.ts ownsPeer)

// Announce answer: header then COUNT peer entries. Entry size depends on the request:
// compact IPv4 6 bytes (ip4 + port), compact IPv6 18 bytes (ip16 + port), non-compact
// 38 bytes (ip16 + port + peer_id). Ports big-endian inside entries (wire order).
export const AA = {
  KIND: 0, // u8
  STATUS: 1, // u8 (ST_*)
  COUNT: 2, // u16
  REQ_ID: 4, // u32
  SEEDERS: 8, // u32
  LEECHERS: 12, // u32
  COMPLETED: 16, // u32
  PEERS: 20,
} as const;
export const ENTRY_V4 = 6;
export const ENTRY_V6 = 18;
export const ENTRY_FULL = 38;

// Scrape answer: header then COUNT × (seeders, completed, leechers) u32 triples, in request order.
export const SA = {
  KIND: 0,
  COUNT: 2,
  REQ_ID: 4,
  FILES: 8,
} as const;
export const SCRAPE_ENTRY = 12;

// ---------------------------------------------------------------------------------
// Accounting: shard → persistence thread, one ring per shard.
//
// Every announce leaves one record: the deltas since the peer's previous announce (what
// the ledger adds, for a user's peer on a registered torrent) and the peer's new totals
// and address (what the peers table keeps, so that after a restart swarms come back and
// the next delta is counted from exactly what the ledger has). The persistence thread
// fills in the credited amounts (it knows the multipliers) before the record is journalled.
// ---------------------------------------------------------------------------------
export const ACF_COMPLETED = 1; // event=completed, first time for this peer
export const ACF_STOPPED = 2; // event=stopped: the peer left
export const ACF_SEEDER = 4; // left == 0 after this announce
export const ACF_V6 = 8; // native IPv6 address
export const ACF_HAS_KEY = 16;
export const ACF_PAUSED = 32;

export const AC = {
  FLAGS: 0, // u8 (ACF_*)
  PORT: 2, // u16
  USER: 4, // u32
  TORRENT: 8, // u32
  AT: 12, // u32 tracker clock (GLOBAL.NOW); the persistence thread adds the epoch
  UPLOADED: 16, // f64 delta
  DOWNLOADED: 24, // f64 delta
  UP_CREDITED: 32, // f64, filled by the persistence thread
  DOWN_CREDITED: 40, // f64, filled by the persistence thread
  SEED_TIME: 48, // u32 seconds seeding since the previous announce
  LEECH_TIME: 52, // u32
  TOTAL_UP: 56, // f64 the peer's reported totals after this announce
  TOTAL_DOWN: 64, // f64
  LEFT: 72, // f64
  KEY: 80, // u32
  PEER_ID: 84, // 20 bytes, then
  INFO_HASH: 104, // 20 bytes: together the peer's 40-byte identity, one contiguous key
  IP: 124, // 16 bytes, IPv4 as IPv4-mapped IPv6
  SIZE: 144, // 140 used, padded to 8
} as const;

// ---------------------------------------------------------------------------------
// Swarm table (shard-owned, growable SharedArrayBuffers).
//
// A swarm keeps its peers' addresses in two contiguous arrays, one per address family,
// in the peer arenas below: [ seeders | leechers ], wire-ready (compact bytes, port
// big-endian), so an answer is a copy of a run of consecutive entries, not a walk through
// scattered records. Each array is a block of 2^(class-1) entries; class 0 = no block.
// ---------------------------------------------------------------------------------
export const SW = {
  INFO_HASH: 0, // 20 bytes
  FLAGS: 20, // u8 (SWF_*)
  CLASS4: 21, // u8: block class of the IPv4 array
  CLASS6: 22, // u8: block class of the IPv6 array
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
  SIZE: 64,
} as const;
export const SWF_LIVE = 1;

// Peer records: identity and accounting state; the address lives in the swarm's array
// entry at POS (one source of truth for it).
export const PR = {
  SWARM: 0, // u32 swarm slot
  USER: 4, // u32
  PEER_ID: 8, // 20 bytes
  FLAGS: 28, // u8 (PF_*)
  POS: 32, // u32 index in the swarm's array of the peer's family; free-list link while free
  LAST_SEEN: 36, // u32 clock
  KEY: 40, // u32
  UPLOADED: 44, // f64 last reported totals, for accounting deltas (DataView: no alignment needed)
  DOWNLOADED: 52, // f64
  LEFT: 60, // f64
  SOURCE: 68, // u32 tag of the address the peer last announced from (AQ.SOURCE)
  SIZE: 72,
} as const;
export const PF_LIVE = 1;
export const PF_SEEDER = 2; // in the seeder segment (left == 0)
export const PF_COMPLETED = 4; // `completed` already counted for this peer
export const PF_V6 = 8; // native IPv6 address: lives in the IPv6 array
export const PF_PAUSED = 16; // BEP 21 partial seed: wants no peers to download from
export const PF_HAS_KEY = 32;

// Peer arenas: per family, the address entries (compact wire form) and, in a parallel
// region with the same entry index, the peer slot of each entry (u32).
export const ADDR4 = 6; // ip4 + port BE
export const ADDR6 = 18; // ip16 + port BE
export const MAX_CLASS = 28; // blocks of up to 2^27 entries

// Open-addressing indexes: pairs of Int32 [hash, slot + 1]; 0 in the slot word = empty.
export const INDEX_ENTRY_WORDS = 2;

// Initial capacities (grown by doubling).
export const INITIAL_SWARMS = 1024;
export const INITIAL_PEERS = 4096;
export const INITIAL_ARENA_ENTRIES = 8192;

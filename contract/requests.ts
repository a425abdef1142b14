// The records the acceptor and the shards exchange through their rings (contract/ring.ts):
// announce and scrape requests, acceptor → shard, and their answers, shard → acceptor.
// Fixed-size binary records, every multi-byte field little-endian and read through DataView.

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
export const AF_RESTORE = 16; // a peer put back at start (checkpoint, journal): no answer, no accounting
export const AF_WS = 32; // a WebSocket peer (engine/ws): its entry is SOCKET; answered WebSocket peers only
export const AF_GONE = 64; // with EVENT_STOPPED: its socket closed, the client said nothing (its totals stay as last reported)
export const AF_FORWARDED = 128; // received by another node for a peer of ours (shards/replica.ts): accounted here, answered there

/** The shard of `n` owning the info_hash at `off`: its first 4 bytes (uniform SHA-1 output) modulo n. */
export function shardIndex(u8: Uint8Array, off: number, n: number): number {
  if (n === 1) return 0;
  return (((u8[off] << 24) | (u8[off + 1] << 16) | (u8[off + 2] << 8) | u8[off + 3]) >>> 0) % n;
}

// Announce request record.
export const AnnounceRequest = {
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
  RESTORE_AGE: 108, // u32: AF_RESTORE only: seconds since the peer's last announce before the restart
  SOCKET: 108, // u32: AF_WS only (never restored): the acceptor's id of the peer's WebSocket
  FORWARDED_AT: 108, // u32: AF_FORWARDED only (never WebSocket or restored): when the other node received it (this process's clock; in Redis unix seconds, the milliseconds in SOURCE)
  SIZE: 112,
} as const;

// Scrape request record: header then COUNT × 20-byte info_hashes.
export const ScrapeRequest = {
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
export const ST_TOO_SOON = 3; // announced within min interval: AnnounceAnswer.WAIT says how long is left
export const ST_TOO_MANY_PEERS = 4; // the user has tracker.max_peers_per_user_torrent peers in the swarm already
export const ST_BUSY = 6; // an announce of another node's peer found no room to be forwarded (the replication thread is behind)
export const ST_TOO_MANY_SWARMS = 5; // open mode: the address is in limits.max_swarms_per_address swarms (this shard's share)

// Announce answer: header then COUNT peer entries. Entry size depends on the request:
// compact IPv4 6 bytes (ip4 + port), compact IPv6 18 bytes (ip16 + port), non-compact
// 38 bytes (ip16 + port + peer_id). Ports big-endian inside entries (wire order).
export const AnnounceAnswer = {
  KIND: 0, // u8
  STATUS: 1, // u8 (ST_*)
  COUNT: 2, // u16
  REQ_ID: 4, // u32
  SEEDERS: 8, // u32
  LEECHERS: 12, // u32
  COMPLETED: 16, // u32
  WAIT: 20, // u32 seconds to wait (ST_TOO_SOON)
  PEERS: 24,
} as const;
export const ENTRY_V4 = 6;

// A WebSocket peer's entry (AF_WS), in the swarm's W array and in answers to WebSocket
// announces: the acceptor's socket id, big-endian, then two zero bytes (ENTRY_V4 long).
export function writeSocketEntry(id: number, out: Uint8Array, at: number): void {
  out[at] = id >>> 24;
  out[at + 1] = (id >>> 16) & 0xff;
  out[at + 2] = (id >>> 8) & 0xff;
  out[at + 3] = id & 0xff;
  out[at + 4] = 0;
  out[at + 5] = 0;
}

export function readSocketEntry(u8: Uint8Array, at: number): number {
  return ((u8[at] << 24) | (u8[at + 1] << 16) | (u8[at + 2] << 8) | u8[at + 3]) >>> 0;
}
export const ENTRY_V6 = 18;
export const ENTRY_FULL = 38;

// Scrape answer: header then COUNT × (seeders, completed, leechers) u32 triples, in request order.
export const ScrapeAnswer = {
  KIND: 0,
  COUNT: 2,
  REQ_ID: 4,
  FILES: 8,
} as const;
export const SCRAPE_ENTRY = 12;


// The accounting record: shard → persistence thread, one ring per shard (contract/ring.ts).

// Every announce that changes a swarm leaves one record: the peer's new totals and address
// (its state: replayed from the journal over the last checkpoint at a restart,
// persistence/restore.ts, so swarms come back and the next delta is counted from exactly
// what the ledger has), and for a user's peer on a registered torrent with a database, the
// deltas since the peer's previous announce (what the ledger adds). Others are ACF_STATE.
//
// UPLOADED/DOWNLOADED are what the client claims (raw); the shard writes into UP_CREDITED/
// DOWN_CREDITED what of it is physically possible (the bounds of shards/shard.ts), and the
// persistence thread, which knows each torrent's size and multipliers, bounds the download
// by the size and multiplies both before the record is journalled. Whatever a bound cut
// off is evidence: its CHEAT_* bit is set and the ledger writes a cheat_flags row.
// ---------------------------------------------------------------------------------
export const ACF_COMPLETED = 1; // event=completed, first time for this peer
export const ACF_STOPPED = 2; // event=stopped: the peer left
export const ACF_SEEDER = 4; // left == 0 after this announce
export const ACF_V6 = 8; // native IPv6 address
export const ACF_HAS_KEY = 16;
export const ACF_PAUSED = 32;
export const ACF_REFUSED = 64; // the announce was refused: evidence only (no ledger, no state change)
// The peer's state only, for the swarms' restore: no ledger (open mode, an unregistered
// torrent, or no database). Deltas are 0; the ledger skips it.
export const ACF_STATE = 128;
export const ACF2_WS = 1; // a WebSocket peer: accounted, never put back at a restart (its socket is gone)

// Why a record's claim was not (wholly) believed: CHEATS bits, one cheat_flags row each.
export const CHEAT_OVER_RATE = 1; // upload beyond accounting.max_upload_rate × seconds since the previous announce
export const CHEAT_NO_LEECHERS = 2; // upload claimed in a swarm that had no other leecher meanwhile
export const CHEAT_BACKWARDS = 4; // counters went down without event=started (a client restart sends started)
export const CHEAT_DOWNLOAD_OVER_SIZE = 8; // download beyond what the torrent's size leaves in this session
export const CHEAT_TOO_MANY_PEERS = 16; // a further peer of a user at tracker.max_peers_per_user_torrent (ACF_REFUSED)
/** Kinds in bit order: the cheat_flags.kind names (0008) and the cheats_total{kind} labels. */
export const CHEAT_KINDS = ['upload_over_rate', 'upload_no_leechers', 'counters_backwards', 'download_over_size', 'too_many_peers'] as const;
/** Kind written by the ledger itself: a user's lifetime download of a torrent passed twice its size. */
export const KIND_DOWNLOAD_OVER_TWICE_SIZE = 'download_over_twice_size';
/** Every cheat_flags.kind. */
export const FLAG_KINDS = [...CHEAT_KINDS, KIND_DOWNLOAD_OVER_TWICE_SIZE] as const;

export const AccountingRecord = {
  FLAGS: 0, // u8 (ACF_*)
  CHEATS: 1, // u8 (CHEAT_*)
  PORT: 2, // u16
  USER: 4, // u32
  TORRENT: 8, // u32
  AT: 12, // u32 tracker clock (GlobalBlock.NOW); the persistence thread adds the epoch
  UPLOADED: 16, // f64 delta
  DOWNLOADED: 24, // f64 delta
  UP_CREDITED: 32, // f64 the bounded upload; × multiplier by the persistence thread
  DOWN_CREDITED: 40, // f64 the download; bounded by size and × multiplier by the persistence thread
  SEED_TIME: 48, // u32 seconds seeding since the previous announce
  LEECH_TIME: 52, // u32
  TOTAL_UP: 56, // f64 the peer's reported totals after this announce
  TOTAL_DOWN: 64, // f64
  LEFT: 72, // f64
  KEY: 80, // u32
  PEER_ID: 84, // 20 bytes, then
  INFO_HASH: 104, // 20 bytes: together the peer's 40-byte identity, one contiguous key
  IP: 124, // 16 bytes, IPv4 as IPv4-mapped IPv6
  FLAGS2: 140, // u8 (ACF2_*; record format 3 on: before it, whatever the ring held)
  SIZE: 144, // 141 used, padded to 8
} as const;


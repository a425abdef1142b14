// The accounting record: shard → persistence thread, one ring per shard (contract/ring.ts).

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

export const AccountingRecord = {
  FLAGS: 0, // u8 (ACF_*)
  PORT: 2, // u16
  USER: 4, // u32
  TORRENT: 8, // u32
  AT: 12, // u32 tracker clock (GlobalBlock.NOW); the persistence thread adds the epoch
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


// What the persistence thread reports, in a small shared Float64Array it alone writes:
// the acceptor (health checks, metrics, tests) reads it without messaging the thread.
export const PersistenceStats = {
  DB_UP: 0, // 1 while the last database operation succeeded
  JOURNAL_BYTES: 1, // bytes in the journal file
  JOURNAL_BUDGET: 2, // persistence.journal_max_bytes
  PENDING_BATCHES: 3, // journalled, not yet committed to the database
  PENDING_RECORDS: 4,
  OLDEST_PENDING: 5, // unix seconds the oldest pending batch was journalled (0 = none)
  RECORDS_JOURNALLED: 6, // total since start
  RECORDS_COMMITTED: 7,
  BATCHES_COMMITTED: 8,
  BATCHES_REPLAYED: 9, // batches found already applied (exactly-once skips)
  FLUSH_FAILURES: 10, // failed attempts to commit a batch (the batch is retried)
  DEAD_LETTERS: 11, // records the database refused, moved to dead_letters
  LAST_FLUSH_MS: 12, // duration of the last commit
  BUDGET_STALLS: 13, // times the journal was full and accounting waited
  REGISTRY_LOADS: 14, // registry reads applied to the acceptor (a whole load or the changes since the last)
  PEERS_RESTORED: 15, // peers reloaded into the swarms at start
  CHEATS: 16, // 6 words: claims cut by a bound, by CHEAT_KINDS index (contract/accounting.ts)
  FLAGS_TWICE_SIZE: 22, // download_over_twice_size flags the ledger wrote
  STATES_DROPPED: 23, // peers' state records not journalled at the disk budget (announces never wait for those)
  SIZE: 24,
} as const;

export function allocateStats(): SharedArrayBuffer {
  return new SharedArrayBuffer(PersistenceStats.SIZE * 8);
}

import { AnnounceRequest } from './requests.js';

// Checkpoints: the shards' peers on disk, so a restart finds its swarms as they were. A
// file is a header, then one record per peer: the tracker-clock second it last announced
// and the announce record that puts it back (AF_RESTORE).
//
//   header (CHECKPOINT_HEADER bytes, little-endian):
//     magic "STCKPT01" | u32 format | u32 record size | u32 layout hash | u32 peers
//     | f64 epoch (unix seconds at tracker clock 0) | f64 written at (unix s)
//     | 24 bytes journal id (latin1; zeros without a database) | f64 first journal batch after it
//     | 8 bytes reserved | 32 bytes sha256(body, then the header's bytes before it)
//   body: peers × CHECKPOINT_RECORD
//
// With a database the checkpoint is one half of the swarms' state, the accounting journal
// the other: every peer's announce since the checkpoint began is in the journal from batch
// `from` on, and the file is put in place only once everything before its last swarm was
// written is journalled too (persistence/restore.ts puts the two together).

export const CHECKPOINT_MAGIC = 'STCKPT01';
export const CHECKPOINT_FORMAT = 2;
export const CHECKPOINT_HEADER = 112;
/** Where the checksum is (it covers the body and the header's bytes before it). */
export const CHECKSUM_AT = 80;
export const HeaderField = { JOURNAL: 40, FROM: 64 } as const;
export const JOURNAL_ID_BYTES = 24;
/** Format 1 (the release before journal tails): 72 bytes, the checksum at 40, no journal fields. */
export const V1 = { HEADER: 72, CHECKSUM_AT: 40 } as const;

export const CheckpointRecord = {
  LAST_SEEN: 0, // u32 tracker clock of the peer's last announce
  ANNOUNCE: 4, // AnnounceRequest.SIZE bytes
} as const;
export const CHECKPOINT_RECORD = CheckpointRecord.ANNOUNCE + AnnounceRequest.SIZE;

/**
 * A hash of the record layouts a checkpoint is written in: a release that moves a field
 * refuses the files of another instead of misreading them.
 */
export function layoutHash(): number {
  const text = JSON.stringify([CheckpointRecord, AnnounceRequest]);
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The accounting journal, as the persistence thread keeps it. */
export interface JournalSide {
  /** The journal's id and the last batch written to it. */
  mark(): Promise<{ journal: string; batch: number }>;
  /**
   * Journal every record the shards have published; rejects when it cannot (the disk
   * budget) or when the journal no longer holds the tail from batch `from`. `last`: at
   * shutdown, with the shards stopped (past the budget if need be).
   */
  flush(from: number, last: boolean): Promise<void>;
  /** A checkpoint was put in place: batches before what it and the previous one need may go. */
  written(): void;
}

import { AnnounceRequest } from './requests.js';

// Checkpoints: the shards' peers on disk, so a restart without a database finds its swarms
// as they were. A file is a header, then one record per peer: the tracker-clock second it
// last announced and the announce record that puts it back (AF_RESTORE).
//
//   header (CHECKPOINT_HEADER bytes, little-endian):
//     magic "STCKPT01" | u32 format | u32 record size | u32 layout hash | u32 peers
//     | f64 epoch (unix seconds at tracker clock 0) | f64 written at (unix s) | 32 bytes sha256(body)
//   body: peers × CHECKPOINT_RECORD

export const CHECKPOINT_MAGIC = 'STCKPT01';
export const CHECKPOINT_FORMAT = 1;
export const CHECKPOINT_HEADER = 72;

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

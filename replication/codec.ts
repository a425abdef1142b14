import { Packr } from 'msgpackr';
import { addrBytes } from '../contract/replication.js';
import { FORMAT } from './keys.js';

// The binary forms of peers in Redis. A peer's key (hash field, and in batches) is its
// info_hash then its peer_id (40 bytes); its entry is flags (RF_*), user (u32), last
// announce (u32 unix seconds), then its address entry (6 or 18 bytes). A batch of one
// node's changes to one slice is one msgpack map (its stream entry's field `m`):
//   { v: format, n: node id, q: sequence in (node, slice), t: ms the oldest change waited since,
//     u: upserts (key + entry, concatenated), r: removals (keys, concatenated) }
// An inbox entry: { v, n: sender, a: AnnounceRequest records, concatenated }.

export const KEY_BYTES = 40;
export const ENTRY_HEAD = 9;

export interface Batch {
  v: number;
  n: string;
  q: number;
  t: number;
  u: Uint8Array;
  r: Uint8Array;
}

export interface Forwards {
  v: number;
  n: string;
  a: Uint8Array;
}

const packr = new Packr({ useRecords: false });

export function packBatch(b: Omit<Batch, 'v'>): Buffer {
  return packr.pack({ v: FORMAT, ...b });
}

export function packForwards(n: string, a: Uint8Array): Buffer {
  return packr.pack({ v: FORMAT, n, a });
}

/** A decoded batch or inbox entry, or a reason it is not one this release reads. */
export function unpack<T extends { v: number; n: string }>(buf: Buffer): T | string {
  let m: unknown;
  try {
    m = packr.unpack(buf);
  } catch (e) {
    return `undecodable: ${(e as Error).message}`;
  }
  if (typeof m !== 'object' || m === null || typeof (m as T).n !== 'string' || typeof (m as T).v !== 'number') return 'not a batch';
  if ((m as T).v !== FORMAT) return `format ${(m as T).v} (this release reads ${FORMAT})`;
  return m as T;
}

/** Bytes of the entry at `at` of `u8` (its flags say its address length). */
export function entryBytes(u8: Uint8Array, at: number): number {
  return ENTRY_HEAD + addrBytes(u8[at]);
}

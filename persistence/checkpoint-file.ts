import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, renameSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { CHECKPOINT_FORMAT, CHECKPOINT_HEADER, CHECKPOINT_MAGIC, CHECKPOINT_RECORD, CHECKSUM_AT, HeaderField, JOURNAL_ID_BYTES, layoutHash, V1 } from '../contract/checkpoint.js';
import { syncDir } from './private-files.js';

// Checkpoint files (contract/checkpoint.ts) on disk: written beside the journal as
// `checkpoint.tmp`, fsynced, then renamed over `checkpoint` (the one before kept as
// `checkpoint.prev`), so a crash at any moment leaves a whole file or the previous one.
// Reading checks everything before anything is used: a truncated, corrupt or foreign file
// is refused whole, with the reason.

export const CHECKPOINT_FILE = 'checkpoint';
export const PREVIOUS_FILE = 'checkpoint.prev';

export interface Checkpoint {
  /** peers × CHECKPOINT_RECORD */
  body: Uint8Array;
  peers: number;
  /** unix seconds at the tracker clock 0 of the run that wrote it */
  epoch: number;
  writtenAt: number;
  /** The accounting journal it goes with ('' without a database, or a format-1 file). */
  journal: string;
  /** That journal's first batch not (wholly) in the checkpoint: the tail to replay starts there. */
  from: number;
}

/** What ties a checkpoint to the accounting journal (absent: a tracker without a database). */
export interface JournalTie {
  journal: string;
  from: number;
  /**
   * Called once the file is whole and fsynced, before it replaces the current one: the
   * records of every announce the checkpoint holds must be journalled first.
   */
  beforeCommit: () => Promise<void>;
}

/**
 * Write a checkpoint into `dir`: `fill` appends pieces of CheckpointRecords (written to the
 * file in order, off the caller's loop) and resolves when there are no more.
 */
export async function writeCheckpoint(dir: string, epoch: number, fill: (append: (records: Uint8Array) => void) => Promise<unknown>, tie?: JournalTie): Promise<number> {
  const tmp = join(dir, `${CHECKPOINT_FILE}.tmp`);
  const fh = await open(tmp, 'w', 0o600);
  let at = CHECKPOINT_HEADER;
  try {
    await fh.chmod(0o600);
    const hash = createHash('sha256');
    let bytes = 0;
    // writes queue in order; the first failure (a full disk) is kept and ends the checkpoint
    let failed: Error | undefined;
    let writing: Promise<unknown> = Promise.resolve();
    const filled = fill((records) => {
      if (failed) return;
      hash.update(records);
      const pos = at;
      at += records.length;
      bytes += records.length;
      writing = writing.then(() => (failed ? undefined : fh.write(records, 0, records.length, pos))).catch((e: Error) => void (failed ??= e));
    });
    try {
      await filled;
    } finally {
      await writing; // never close the file under a queued write
    }
    if (failed) throw failed;
    if (bytes % CHECKPOINT_RECORD !== 0) throw new Error(`checkpoint body of ${bytes} bytes is not whole records`);
    const peers = bytes / CHECKPOINT_RECORD;
    const header = Buffer.alloc(CHECKPOINT_HEADER);
    header.write(CHECKPOINT_MAGIC, 0, 'latin1');
    header.writeUInt32LE(CHECKPOINT_FORMAT, 8);
    header.writeUInt32LE(CHECKPOINT_RECORD, 12);
    header.writeUInt32LE(layoutHash(), 16);
    header.writeUInt32LE(peers, 20);
    header.writeDoubleLE(epoch, 24);
    header.writeDoubleLE(Math.floor(Date.now() / 1000), 32);
    if (tie) {
      header.write(tie.journal.slice(0, JOURNAL_ID_BYTES), HeaderField.JOURNAL, 'latin1');
      header.writeDoubleLE(tie.from, HeaderField.FROM);
    }
    // the checksum covers the header's fields too (an epoch flipped would keep or drop every peer)
    hash.update(header.subarray(0, CHECKSUM_AT));
    hash.digest().copy(header, CHECKSUM_AT);
    await fh.write(header, 0, CHECKPOINT_HEADER, 0);
    await fh.sync();
    await fh.close();
    await tie?.beforeCommit();
  } catch (e) {
    await fh.close().catch(() => {});
    try {
      rmSync(tmp, { force: true });
    } catch {
      // (a read-only disk: the write's own error is the one to tell)
    }
    throw e;
  }
  const path = join(dir, CHECKPOINT_FILE);
  if (existsSync(path)) renameSync(path, join(dir, PREVIOUS_FILE));
  renameSync(tmp, path);
  syncDir(dir);
  return (at - CHECKPOINT_HEADER) / CHECKPOINT_RECORD;
}

/** SHA-256 of the body, then the header's fields (the bytes before the checksum). */
export function checksum(body: Uint8Array, header: Uint8Array, at = CHECKSUM_AT): Buffer {
  return createHash('sha256').update(body).update(header.subarray(0, at)).digest();
}

/** Read and check a checkpoint file whole; throws with the reason it cannot be used. */
export function readCheckpoint(path: string): Checkpoint {
  const buf = readFileSync(path);
  if (buf.length < V1.HEADER) throw new Error(`truncated: ${buf.length} bytes, shorter than its header`);
  if (buf.toString('latin1', 0, 8) !== CHECKPOINT_MAGIC) throw new Error('not a checkpoint (bad magic)');
  const format = buf.readUInt32LE(8);
  if (format !== CHECKPOINT_FORMAT && format !== 1) throw new Error(`format ${format}, this release reads 1 and ${CHECKPOINT_FORMAT}`);
  const [headerBytes, sumAt] = format === 1 ? [V1.HEADER, V1.CHECKSUM_AT] : [CHECKPOINT_HEADER, CHECKSUM_AT];
  if (buf.length < headerBytes) throw new Error(`truncated: ${buf.length} bytes, shorter than its header`);
  const size = buf.readUInt32LE(12);
  const layout = buf.readUInt32LE(16);
  if (size !== CHECKPOINT_RECORD || layout !== layoutHash()) {
    throw new Error(`written with another record layout (size ${size}, layout ${layout.toString(16)}; this release: ${CHECKPOINT_RECORD}, ${layoutHash().toString(16)})`);
  }
  const peers = buf.readUInt32LE(20);
  const want = headerBytes + peers * CHECKPOINT_RECORD;
  if (buf.length !== want) throw new Error(`truncated or padded: ${buf.length} bytes, its header says ${want}`);
  const body = new Uint8Array(buf.buffer, buf.byteOffset + headerBytes, peers * CHECKPOINT_RECORD);
  if (!checksum(body, buf, sumAt).equals(buf.subarray(sumAt, sumAt + 32))) throw new Error('corrupt: its checksum does not match');
  const tie = format === 1 ? { journal: '', from: 0 } : { journal: journalId(buf), from: buf.readDoubleLE(HeaderField.FROM) };
  return { body, peers, epoch: buf.readDoubleLE(24), writtenAt: buf.readDoubleLE(32), ...tie };
}

function journalId(header: Buffer): string {
  return header.toString('latin1', HeaderField.JOURNAL, HeaderField.JOURNAL + JOURNAL_ID_BYTES).replace(/\0+$/, '');
}

/**
 * The journal and batch the checkpoint in `path` needs its tail from, read from its header
 * alone (not checked: for keeping batches, not for loading); undefined without one.
 */
export function checkpointFrom(path: string): { journal: string; from: number } | undefined {
  try {
    const fd = openSync(path, 'r');
    try {
      const h = Buffer.alloc(CHECKPOINT_HEADER);
      if (readSync(fd, h, 0, CHECKPOINT_HEADER, 0) < CHECKPOINT_HEADER || h.readUInt32LE(8) !== CHECKPOINT_FORMAT) return undefined;
      const from = h.readDoubleLE(HeaderField.FROM);
      return Number.isSafeInteger(from) && from >= 1 ? { journal: journalId(h), from } : undefined; // (unchecked: a damaged header keeps nothing)
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/**
 * The newest usable checkpoint in `dir` (the current one, else the previous), saying why
 * any was skipped; `usable` may refuse one that reads whole (returning the reason).
 */
export function newestCheckpoint(dir: string, skipped: (file: string, why: string) => void, usable: (cp: Checkpoint) => string | undefined = () => undefined): Checkpoint | undefined {
  for (const name of [CHECKPOINT_FILE, PREVIOUS_FILE]) {
    const path = join(dir, name);
    if (!existsSync(path)) continue;
    try {
      const cp = readCheckpoint(path);
      const why = usable(cp);
      if (why === undefined) return cp;
      skipped(path, why);
    } catch (e) {
      skipped(path, (e as Error).message);
    }
  }
  return undefined;
}

// Checkpoints without a database: a restart finds every swarm as it was (100,000 peers
// through real announces), peers that timed out meanwhile stay out, a truncated, corrupt or
// foreign checkpoint is refused whole with the reason in the log, and the journal of peers'
// states completes a checkpoint after SIGKILL.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Tracker } from '../dist/engine/tracker.js';
import { CHECKPOINT_HEADER, CHECKPOINT_RECORD, CHECKSUM_AT } from '../dist/contract/checkpoint.js';
import { checksum } from '../dist/persistence/checkpoint-file.js';
import { AccountingRecord } from '../dist/contract/accounting.js';
import { PersistenceStats } from '../dist/contract/persistence-stats.js';
import { announcePath, decode, decodeRawKeys, hexKey, pct, spawnTracker, startTestTracker, until } from './helpers.js';

const running: Tracker[] = [];
afterEach(async () => {
  for (const t of running.splice(0)) await t.close();
});

async function start(dir: string, logs: string[] = [], tracker: { peer_timeout?: number } = {}): Promise<Tracker> {
  const t = await startTestTracker(
    { shards: { count: 2 }, tracker, database: { enabled: false, data_dir: dir }, checkpoint: { enabled: true, interval_seconds: 0 }, persistence: { flush_interval_ms: 20 } },
    undefined,
    (m) => void logs.push(m),
  );
  running.push(t);
  return t;
}

/** Until `n` announces are journalled: a checkpoint then holds them all, its tail none. */
const settle = (t: Tracker, n: number) => until(`${n} records journalled`, () => t.journal!.stats[PersistenceStats.RECORDS_JOURNALLED] >= n, 10_000);

/** Until the journal file of a tracker process holds `n` records (no checkpoint: it only grows). */
const journalHolds = (dir: string, n: number) =>
  until(`${n} records in the journal file`, () => {
    try {
      return statSync(join(dir, 'journal', 'accounting.journal')).size >= n * AccountingRecord.SIZE;
    } catch {
      return false;
    }
  }, 10_000);

async function stop(t: Tracker): Promise<void> {
  running.splice(running.indexOf(t), 1);
  await t.close(); // the last checkpoint is written here
}

/** `n` announces (keep-alive, 64 at a time) of new peers over `hashes`. */
async function load(port: number, hashes: Uint8Array[], n: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let next = 0;
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const path = announcePath({ infoHash: hashes[i % hashes.length], peerId: randomBytes(20), port: 1 + (i % 60000), left: i % 3 === 0 ? 0 : 1000 });
      http.get({ host: '127.0.0.1', port, path, agent }, (res) => res.resume().on('end', () => resolve())).on('error', reject);
    });
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < n) await one(next++);
  }));
  agent.destroy();
}

async function scrape(port: number, hashes: Uint8Array[]): Promise<unknown[]> {
  const body = await new Promise<Buffer>((resolve) =>
    http.get({ host: '127.0.0.1', port, path: `/scrape?${hashes.map((h) => `info_hash=${pct(h)}`).join('&')}` }, (res) => {
      const c: Buffer[] = [];
      res.on('data', (d) => c.push(d)).on('end', () => resolve(Buffer.concat(c)));
    }),
  );
  const files = (decodeRawKeys(body) as Map<string, unknown>).get(hexKey('files')) as Map<string, Map<string, number>>;
  return hashes.map((h) => {
    const f = files.get(Buffer.from(h).toString('hex'))!;
    return { complete: f.get(hexKey('complete')), downloaded: f.get(hexKey('downloaded')), incomplete: f.get(hexKey('incomplete')) };
  });
}

describe('checkpoints without a database', () => {
  it('restart with 100,000 peers restores every one of them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrack-ckpt-'));
    const hashes = Array.from({ length: 500 }, () => randomBytes(20));
    let t = await start(dir);
    await load(t.httpPort, hashes, 100_000);
    const before = await scrape(t.httpPort, hashes.slice(0, 60));
    expect(before.reduce((n, f) => n + f.complete! + f.incomplete!, 0)).toBe(60 * 200); // 100,000 over 500 swarms
    await stop(t);
    expect(statSync(join(dir, 'checkpoint')).mode & 0o777).toBe(0o600);
    const logs: string[] = [];
    t = await start(dir, logs);
    expect(t.restoredPeers).toBe(100_000);
    expect(logs.join('\n')).toMatch(/restoring the swarms: the checkpoint written \d+ s ago \(100000 peers; 0 had timed out meanwhile\)/);
    expect(await scrape(t.httpPort, hashes.slice(0, 60))).toEqual(before);
    // the restored peers are in the answers
    const d = decode(await new Promise<Buffer>((resolve) =>
      http.get({ host: '127.0.0.1', port: t.httpPort, path: announcePath({ infoHash: hashes[0], peerId: randomBytes(20), port: 9, left: 5, numwant: 50 }) }, (res) => {
        const c: Buffer[] = [];
        res.on('data', (x) => c.push(x)).on('end', () => resolve(Buffer.concat(c)));
      }),
    ));
    expect(Buffer.from(d.peers).length).toBe(50 * 6);
  }, 120_000);

  it('refuses a truncated, corrupt or foreign checkpoint whole, saying why, and falls back to the previous one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrack-ckpt-'));
    const hashes = Array.from({ length: 20 }, () => randomBytes(20));
    let t = await start(dir);
    await load(t.httpPort, hashes, 300);
    await stop(t); // checkpoint: 300 peers
    t = await start(dir);
    await load(t.httpPort, hashes, 200);
    await stop(t); // checkpoint: 500 peers; checkpoint.prev: 300, and the journal the 200 after it
    const path = join(dir, 'checkpoint');
    const good = readFileSync(path);
    const previous = readFileSync(join(dir, 'checkpoint.prev'));

    const cases: [string, (b: Buffer) => void, RegExp][] = [
      ['truncated', () => truncateSync(path, good.length - 50), /checkpoint .*checkpoint ignored: truncated or padded: \d+ bytes, its header says \d+/],
      ['corrupt', (b) => { b[200] ^= 0xff; writeFileSync(path, b); }, /checkpoint ignored: corrupt: its checksum does not match/],
      ['corrupt header', (b) => { b[30] ^= 0x01; writeFileSync(path, b); }, /checkpoint ignored: corrupt: its checksum does not match/],
      ['foreign', (b) => { b.writeUInt32LE((b.readUInt32LE(16) ^ 1) >>> 0, 16); writeFileSync(path, b); }, /checkpoint ignored: written with another record layout/],
      ['not one', (b) => { b.write('NOTACKPT', 0, 'latin1'); writeFileSync(path, b); }, /checkpoint ignored: not a checkpoint/],
    ];
    for (const [what, damage, said] of cases) {
      damage(Buffer.from(good));
      const logs: string[] = [];
      t = await start(dir, logs);
      expect(logs.join('\n'), what).toMatch(said);
      expect(logs.join('\n'), what).toMatch(/restoring the swarms: the checkpoint written \d+ s ago \(300 peers; 0 had timed out meanwhile\), then the journal's [1-9]\d* batches after it/);
      expect(t.restoredPeers, what).toBe(500); // the previous one, completed by the journal
      running.splice(running.indexOf(t), 1);
      await t.close(); // writes a new checkpoint: both files as they were for the next case
      writeFileSync(path, good);
      writeFileSync(join(dir, 'checkpoint.prev'), previous);
    }
  }, 120_000);

  it('loses no journalled peer to SIGKILL: the journal alone, then a checkpoint and the journal after it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrack-ckpt-'));
    const env = {
      SHARDTRACK_DATABASE__ENABLED: 'false', SHARDTRACK_REGISTRY__FILE: '', SHARDTRACK_TRACKER__PRIVATE: 'false',
      SHARDTRACK_DATABASE__DATA_DIR: dir, SHARDTRACK_CHECKPOINT__ENABLED: 'true', SHARDTRACK_CHECKPOINT__INTERVAL_SECONDS: '0',
      SHARDTRACK_PERSISTENCE__FLUSH_INTERVAL_MS: '50',
      SHARDTRACK_LIMITS__ADDRESS_RATE: '0', SHARDTRACK_LIMITS__MAX_SWARMS_PER_ADDRESS: '0', // one address stands for 2,000 clients
    };
    const hashes = Array.from({ length: 3 }, () => randomBytes(20));
    let proc = await spawnTracker(env);
    try {
      await load(proc.port, hashes.slice(0, 2), 2000);
      await journalHolds(dir, 2000);
    } finally {
      await proc.kill(); // no shutdown path at all, and no checkpoint was ever written
    }
    expect(() => statSync(join(dir, 'checkpoint'))).toThrow();
    proc = await spawnTracker(env);
    try {
      expect(proc.log()).toMatch(/no usable checkpoint; the journal's \d+ batches held[\s\S]*restored 2000 peers/);
      // restored from the journal alone: a checkpoint is taken at once, the base of the next start
      await until('the start checkpoint', () => {
        try {
          return statSync(join(dir, 'checkpoint')).size === CHECKPOINT_HEADER + 2000 * CHECKPOINT_RECORD;
        } catch {
          return false;
        }
      }, 10_000);
      const before = statSync(join(dir, 'journal', 'accounting.journal')).size;
      await load(proc.port, hashes.slice(2), 300);
      await until('300 more records in the journal file', () => statSync(join(dir, 'journal', 'accounting.journal')).size >= before + 300 * AccountingRecord.SIZE, 10_000);
    } finally {
      await proc.kill();
    }
    proc = await spawnTracker(env);
    try {
      expect(proc.log()).toMatch(/the checkpoint written \d+ s ago \(2000 peers; 0 had timed out meanwhile\), then the journal's [1-9]\d* batches after it[\s\S]*restored 2300 peers/);
      const [c] = await scrape(proc.port, hashes.slice(2));
      expect(c).toMatchObject({ complete: 100, incomplete: 200 }); // (load: every third a seeder)
    } finally {
      await proc.stop();
    }
  }, 60_000);

  it('keeps a restored peer\'s time of last announce: it expires on time, not a timeout after the restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrack-ckpt-'));
    const ih = randomBytes(20);
    let t = await start(dir, [], { peer_timeout: 30 });
    await load(t.httpPort, [ih], 10);
    await settle(t, 10);
    await stop(t);
    // written 25 s later than the announces (the run's clock began 25 s earlier): 5 s left to live
    const path = join(dir, 'checkpoint');
    const b = readFileSync(path);
    b.writeDoubleLE(b.readDoubleLE(24) - 25, 24);
    checksum(b.subarray(CHECKPOINT_HEADER), b).copy(b, CHECKSUM_AT);
    writeFileSync(path, b);
    t = await start(dir, [], { peer_timeout: 30 });
    expect(t.restoredPeers).toBe(10);
    expect(await scrape(t.httpPort, [ih])).toEqual([{ complete: 4, downloaded: 0, incomplete: 6 }]); // (load: every third a seeder, from the first)
    await until('the restored peers to expire', async () => JSON.stringify(await scrape(t.httpPort, [ih])) === JSON.stringify([{ complete: 0, downloaded: 0, incomplete: 0 }]), 15_000);
  }, 30_000);

  it('survives a checkpoint it cannot write, saying so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrack-ckpt-'));
    const logs: string[] = [];
    const t = await start(dir, logs);
    await load(t.httpPort, [randomBytes(20)], 10);
    mkdirSync(join(dir, 'checkpoint.tmp')); // open() of the file fails
    await stop(t);
    expect(logs.join('\n')).toMatch(/last checkpoint not written: EISDIR/);
  });

  it('leaves out peers whose timeout passed while the tracker was down', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrack-ckpt-'));
    let t = await start(dir);
    await load(t.httpPort, [randomBytes(20)], 50);
    await settle(t, 50);
    await stop(t);
    // the run that wrote it started two hours earlier than it says: every peer is 2 h old
    const path = join(dir, 'checkpoint');
    const b = readFileSync(path);
    b.writeDoubleLE(b.readDoubleLE(24) - 7200, 24);
    checksum(b.subarray(CHECKPOINT_HEADER), b).copy(b, CHECKSUM_AT); // (the checksum covers the header)
    writeFileSync(path, b);
    const logs: string[] = [];
    t = await start(dir, logs);
    expect(t.restoredPeers).toBe(0);
    expect(logs.join('\n')).toMatch(/restoring the swarms: the checkpoint written \d+ s ago \(0 peers; 50 had timed out meanwhile\), then the journal's 0 batches after it/);
  });
});

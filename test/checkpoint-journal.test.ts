// Swarms across restarts with a database: a checkpoint plus the accounting journal after it.
// Peers that announced after the checkpoint come back from the journal with the totals the
// ledger counted (their next delta is exact), peers that stopped stay gone, a SIGKILL loses
// no journalled announce, a corrupt checkpoint falls back to the previous one (whose tail
// the journal kept), and the peers table of an older release is read once and emptied.
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { announcePath, decodeRawKeys, failure, get, hexKey, peerId, pct, spawnTracker, until, type TrackerProcess } from './helpers.js';
import { seedRegistry } from './support/ledger-sim.js';
import { PG_URL, testSchema, type TestSchema } from './support/pg.js';

let db: TestSchema;
const procs: TrackerProcess[] = [];
beforeEach(async () => {
  db = await testSchema();
});
afterEach(async () => {
  for (const p of procs.splice(0)) await p.kill(); // none left running if an expectation failed
  await db?.drop();
});

const env = (dataDir: string) => ({
  SHARDTRACK_DATABASE__URL: PG_URL,
  SHARDTRACK_DATABASE__SCHEMA: db.name,
  SHARDTRACK_DATABASE__DATA_DIR: dataDir,
  SHARDTRACK_PERSISTENCE__FLUSH_INTERVAL_MS: '40',
  SHARDTRACK_SHARDS__COUNT: '2',
  SHARDTRACK_CHECKPOINT__ENABLED: 'true',
  SHARDTRACK_CHECKPOINT__INTERVAL_SECONDS: '0', // only at shutdown: what comes after is the journal's
  SHARDTRACK_LIMITS__ADDRESS_RATE: '0',
  SHARDTRACK_LIMITS__PASSKEY_RATE: '0',
  SHARDTRACK_LIMITS__ENFORCE_MIN_INTERVAL: 'false',
  SHARDTRACK_LIMITS__MAX_INFLIGHT_PER_ADDRESS: '0',
});

async function spawn(dataDir: string): Promise<TrackerProcess> {
  const p = await spawnTracker(env(dataDir));
  procs.push(p);
  return p;
}

async function stop(p: TrackerProcess, kill = false): Promise<void> {
  procs.splice(procs.indexOf(p), 1);
  if (kill) await p.kill();
  else expect(await p.stop()).toBe(0);
}

/** A user and a registered torrent (the schema exists once a tracker has started on it). */
async function oneUserOneTorrent() {
  const { users, torrents } = await seedRegistry(db.sql, 1, 1);
  return { u: users[0], t: torrents[0] };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Records the database has committed (each journalled first). */
const committed = async () => (await db.sql`SELECT coalesce(sum(records), 0)::int AS n FROM applied_batches`)[0].n as number;

describe('checkpoints with a database: the checkpoint and the journal after it', () => {
  it('brings back every journalled peer with the ledger\'s totals, through SIGTERM, SIGKILL and a corrupt checkpoint', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'shardtrack-cpj-'));
    let p = await spawn(dataDir);
    const { users, torrents } = await seedRegistry(db.sql, 3, 2);
    const [u0, u1, u2] = users;
    const [t0, t1] = torrents;
    const ann = (user: typeof u0, t: typeof t0, id: Uint8Array, o: { up?: number; down?: number; left: number; event?: string }) =>
      get(p.port, announcePath({ infoHash: t.infoHash, peerId: id, port: 7000, uploaded: o.up ?? 0, downloaded: o.down ?? 0, left: o.left, event: o.event }, `/${user.passkey}`));
    const ok = async (r: Promise<{ body: Buffer }>) => expect(failure((await r).body)).toBeUndefined();
    await until('the registry to load', async () => failure((await ann(u0, t0, peerId(), { left: 0, event: 'stopped' })).body) === undefined, 15_000);
    const scrape = async () => {
      const body = (await get(p.port, `/${u0.passkey}/scrape?info_hash=${pct(t0.infoHash)}&info_hash=${pct(t1.infoHash)}`)).body;
      const files = (decodeRawKeys(body) as Map<string, unknown>).get(hexKey('files')) as Map<string, Map<string, number>>;
      return [t0, t1].map((t) => {
        const f = files.get(Buffer.from(t.infoHash).toString('hex'))!;
        return [f.get(hexKey('complete')), f.get(hexKey('incomplete'))];
      });
    };
    const S = peerId(); // u0 seeds t0
    const L = peerId(); // u1 leeches t0
    const C = peerId(); // u2 on t1, stops in the second run
    const B = peerId(); // u1 on t1, joins in the second run

    // run 1: three peers, then SIGTERM (the checkpoint is written at shutdown)
    await ok(ann(u0, t0, S, { left: 0, event: 'started' }));
    await ok(ann(u1, t0, L, { left: 1000, event: 'started' }));
    await ok(ann(u2, t1, C, { left: 0, event: 'started' }));
    await sleep(1100); // a second later: not a same-second announce
    await ok(ann(u0, t0, S, { up: 1000, left: 0 }));
    await stop(p);
    expect(existsSync(join(dataDir, 'checkpoint'))).toBe(true);

    // run 2: back from the checkpoint; changes after it live only in the journal; SIGKILL
    p = await spawn(dataDir);
    expect(p.log()).toMatch(/restored 3 peers/);
    expect(await scrape()).toEqual([[1, 1], [1, 0]]);
    const before = await committed();
    await sleep(1100);
    await ok(ann(u0, t0, S, { up: 3000, left: 0 }));
    await ok(ann(u1, t0, L, { down: 500, left: 500 }));
    await ok(ann(u2, t1, C, { left: 0, event: 'stopped' }));
    await ok(ann(u1, t1, B, { left: 700, event: 'started' }));
    await until('the four announces to be journalled and committed', async () => (await committed()) >= before + 4, 15_000);
    await stop(p, true);

    // run 3: the checkpoint of run 1, then the journal of run 2 on top
    p = await spawn(dataDir);
    expect(p.log()).toMatch(/the checkpoint written \d+ s ago \(3 peers; 0 had timed out meanwhile\), then the journal's \d+ batches after it/);
    expect(p.log()).toMatch(/restored 3 peers/); // S, L and B; C stopped
    expect(await scrape()).toEqual([[1, 1], [0, 1]]);
    await sleep(1100);
    await ok(ann(u0, t0, S, { up: 6000, left: 0 })); // +3000 since run 2's announce, which the ledger has
    await ok(ann(u1, t0, L, { down: 800, left: 200 })); // +300
    await stop(p);
    const raw = async () =>
      (await db.sql`SELECT user_id, torrent_id, uploaded, downloaded FROM history WHERE uploaded > 0 OR downloaded > 0 ORDER BY user_id`).map((h) => [
        Number(h.user_id), Number(h.torrent_id), Number(h.uploaded), Number(h.downloaded),
      ]);
    expect(await raw()).toEqual([[u0.id, t0.id, 6000, 0], [u1.id, t0.id, 0, 800]]);

    // run 4: the newest checkpoint (run 3's) is corrupt: the previous one (run 1's) and the
    // journal kept since it give the same swarms
    const path = join(dataDir, 'checkpoint');
    const b = readFileSync(path);
    b[b.length - 1] ^= 0xff;
    writeFileSync(path, b);
    p = await spawn(dataDir);
    expect(p.log()).toMatch(/checkpoint \S+checkpoint ignored: corrupt/);
    expect(p.log()).toMatch(/restored 3 peers/);
    expect(await scrape()).toEqual([[1, 1], [0, 1]]);
    await sleep(1100);
    await ok(ann(u0, t0, S, { up: 7000, left: 0 }));
    await stop(p);
    expect(await raw()).toEqual([[u0.id, t0.id, 7000, 0], [u1.id, t0.id, 0, 800]]);
  }, 120_000);

  it('reads the peers table an older release left once, as the base under its journal, and empties it', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'shardtrack-cpj-'));
    let p = await spawn(dataDir);
    const { u, t } = await oneUserOneTorrent();
    await stop(p);
    const id = peerId();
    // the row an older release wrote with the batch of the peer's last announce: 4000 up
    await db.sql`INSERT INTO peers (info_hash, peer_id, torrent_id, user_id, ip, port, peer_key, has_key, uploaded, downloaded, left_bytes, paused, last_announce)
                 VALUES (${t.infoHash}, ${id}, ${t.id}, ${u.id}, ${Buffer.from('00000000000000000000ffff7f000001', 'hex')}, 7000, 0, false, 4000, 0, 0, false, now() - interval '10 seconds')`;
    const fresh = mkdtempSync(join(tmpdir(), 'shardtrack-cpj-')); // (no checkpoint: as after the upgrade)
    p = await spawn(fresh);
    expect(p.log()).toMatch(/1 peers from the peers table of an older release/);
    expect(p.log()).toMatch(/restored 1 peers/);
    expect((await db.sql`SELECT count(*)::int AS n FROM peers`)[0].n).toBe(0);
    const r = await get(p.port, announcePath({ infoHash: t.infoHash, peerId: id, port: 7000, uploaded: 4500, left: 0 }, `/${u.passkey}`));
    expect(failure(r.body)).toBeUndefined();
    await until('a checkpoint taken right after the restore', () => existsSync(join(fresh, 'checkpoint')), 10_000);
    await stop(p);
    const [h] = await db.sql`SELECT uploaded FROM history WHERE user_id = ${u.id} AND torrent_id = ${t.id}`;
    expect(Number(h.uploaded)).toBe(500); // from the row's 4000, not from nothing
  }, 60_000);

  it('journals the peers it does not account (open mode): back after SIGKILL, nothing in the ledger', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'shardtrack-cpj-'));
    const open = { ...env(dataDir), SHARDTRACK_TRACKER__PRIVATE: 'false' };
    let p = await spawnTracker(open);
    procs.push(p);
    const ih = peerId(); // (any 20 bytes: a torrent nobody registered)
    const ids = Array.from({ length: 6 }, () => peerId());
    for (const [i, id] of ids.entries()) {
      const r = await get(p.port, announcePath({ infoHash: ih, peerId: id, port: 7000 + i, uploaded: 100, left: i < 2 ? 0 : 50 }));
      expect(failure(r.body)).toBeUndefined();
    }
    expect(failure((await get(p.port, announcePath({ infoHash: ih, peerId: ids[5], port: 7005, left: 50, event: 'stopped' }))).body)).toBeUndefined();
    await sleep(300); // journalled (every 40 ms)
    await stop(p, true);
    p = await spawnTracker(open);
    procs.push(p);
    expect(p.log()).toMatch(/no usable checkpoint; the journal's \d+ batches held[\s\S]*restored 5 peers/);
    const body = (await get(p.port, `/scrape?info_hash=${pct(ih)}`)).body;
    const f = ((decodeRawKeys(body) as Map<string, unknown>).get(hexKey('files')) as Map<string, Map<string, number>>).get(Buffer.from(ih).toString('hex'))!;
    expect([f.get(hexKey('complete')), f.get(hexKey('incomplete'))]).toEqual([2, 3]);
    await stop(p);
    expect(await committed()).toBe(0); // peers' states only: not the ledger's
  }, 60_000);

  it('starts the swarms of a copy empty once its original has gone on (its totals are behind the ledger)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'shardtrack-cpj-'));
    let p = await spawn(dataDir);
    const { u, t } = await oneUserOneTorrent();
    const S = peerId();
    const ann = (up: number, event?: string) => get(p.port, announcePath({ infoHash: t.infoHash, peerId: S, port: 7000, uploaded: up, left: 0, event }, `/${u.passkey}`));
    await until('the registry to load', async () => failure((await ann(0, 'started')).body) === undefined, 15_000);
    await stop(p);
    const copy = mkdtempSync(join(tmpdir(), 'shardtrack-cpj-copy-'));
    cpSync(dataDir, copy, { recursive: true });
    // the original goes on: 1000 more are counted
    p = await spawn(dataDir);
    expect(p.log()).toMatch(/restored 1 peers/);
    await sleep(1100);
    expect(failure((await ann(1000)).body)).toBeUndefined();
    await stop(p);
    // the copy's checkpoint still says 0: restoring it would count those 1000 again
    p = await spawn(copy);
    expect(p.log()).toMatch(/is a copy or an older backup.*Its swarms start empty/);
    expect(p.log()).not.toMatch(/restored \d+ peers/);
    await sleep(1100);
    expect(failure((await ann(1500)).body)).toBeUndefined(); // a baseline on the copy
    await sleep(1100);
    expect(failure((await ann(1700)).body)).toBeUndefined();
    await stop(p);
    const [h] = await db.sql`SELECT uploaded FROM history WHERE user_id = ${u.id} AND torrent_id = ${t.id}`;
    expect(Number(h.uploaded)).toBe(1000 + 200); // the 500 between the original's last announce and the copy's first are lost, never doubled
  }, 60_000);
});

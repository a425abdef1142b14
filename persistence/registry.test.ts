// The registry as the tracker follows it: a whole load, then the change log read from where
// the last read stopped, applied to the acceptor's caches (engine/policy/registry-db.ts).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyDelta, applySnapshot } from '../engine/policy/registry-db.js';
import { Registry } from '../engine/policy/registry.js';
import { testSchema, type TestSchema } from '../test/support/pg.js';
import { until } from '../test/support/until.js';
import { migrate } from './migrate.js';
import { loadChanges, loadRegistry, pruneChanges } from './registry.js';

let db: TestSchema;
beforeEach(async () => {
  db = await testSchema();
  await migrate(db.sql);
});
afterEach(async () => {
  await db?.drop();
});

const key = (c: string) => c.repeat(32);
const h = (n: number) => Buffer.alloc(20, n);
const noLog = () => {};

async function changes(since: string) {
  const r = await loadChanges(db.sql, since);
  if (r === null) throw new Error('expected a delta, got a whole reload');
  return r;
}

describe('registry changes', () => {
  it('carry every kind of edit into caches built from a whole load', async () => {
    await db.sql`INSERT INTO users (id, passkey) VALUES (1, ${key('a')}), (2, ${key('b')}), (3, ${key('x')})`;
    await db.sql`INSERT INTO torrents (id, info_hash, info_hash_v2) VALUES (1, ${h(1)}, ${h(11)}), (2, ${h(2)}, NULL)`;
    const full = await loadRegistry(db.sql);
    const reg = new Registry();
    applySnapshot(reg, full.snapshot, noLog);
    expect(reg.userCount).toBe(3);

    // a passkey reset with a grace window, a disabled user, a deleted user, a new user
    await db.sql`UPDATE users SET old_passkey = passkey, old_passkey_expires = now() + interval '1 hour', passkey = ${key('A')} WHERE id = 1`;
    await db.sql`UPDATE users SET enabled = false WHERE id = 2`;
    await db.sql`DELETE FROM users WHERE id = 3`;
    await db.sql`INSERT INTO users (id, passkey) VALUES (4, ${key('c')})`;
    // a torrent deleted with a reason, a freeleech, a new torrent, an allowed client
    await db.sql`UPDATE torrents SET deleted_at = now(), deleted_reason = 'dupe' WHERE id = 1`;
    await db.sql`UPDATE torrents SET download_multiplier = 0 WHERE id = 2`;
    await db.sql`INSERT INTO torrents (id, info_hash) VALUES (3, ${h(3)})`;
    await db.sql`INSERT INTO client_allowlist (peer_id_prefix, name) VALUES (${Buffer.from('-qB')}, 'qBittorrent')`;
    // a ledger flush's counter update is no registry change
    await db.sql`UPDATE users SET uploaded = uploaded + 5 WHERE id = 4`;

    const { delta, since } = await changes(full.since);
    expect(delta.users.map((u) => [u.id, u.passkey, u.expiresAt > 0]).sort()).toEqual([[1, key('A'), false], [1, key('a'), true], [4, key('c'), false]]);
    expect(delta.dropKeys.sort()).toEqual([[1, key('a')], [2, key('b')], [3, key('x')]]);
    expect(delta.multipliers.sort()).toEqual([[1, null], [2, { up: 1, down: 0, expires: 0, size: 0 }], [3, null]]);
    expect(delta.bans).toBeUndefined();
    expect(delta.clients?.map((c) => Buffer.from(c).toString())).toEqual(['-qB']);

    applyDelta(reg, delta, noLog);
    expect([reg.user(key('A'))?.id, reg.user(key('a'))?.id, reg.user(key('b')), reg.user(key('x')), reg.user(key('c'))?.id]).toEqual([1, 1, undefined, undefined, 4]);
    expect([reg.torrentId(h(1), 0), reg.deletedReason(h(1), 0), reg.deletedReason(h(11), 0)]).toEqual([0, 'dupe', 'dupe']);
    expect([reg.torrentId(h(2), 0), reg.torrentId(h(3), 0)]).toEqual([2, 3]);
    expect(reg.clients.size).toBe(1);

    // the caches now equal a whole load's, and nothing is new after this read
    const again = new Registry();
    applySnapshot(again, (await loadRegistry(db.sql)).snapshot, noLog);
    expect([reg.userCount, reg.registeredTorrents]).toEqual([again.userCount, again.registeredTorrents]);
    const next = await changes(since);
    expect([next.delta.users, next.delta.dropKeys, next.delta.torrents]).toEqual([[], [], []]);
    // a row that changes id is two changes: its keys leave the old id and reach the new one
    await db.sql`UPDATE users SET id = 10 WHERE id = 4`;
    applyDelta(reg, (await changes(next.since)).delta, noLog);
    expect(reg.user(key('c'))?.id).toBe(10);
  });

  it('never skip a change whose transaction commits after a later one was read', async () => {
    const { since } = await loadRegistry(db.sql);
    const late = db.connect();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let inserted!: () => void;
    const started = new Promise<void>((r) => (inserted = r));
    const tx = late.begin(async (t) => {
      await t`INSERT INTO users (id, passkey) VALUES (1, ${key('l')})`;
      inserted();
      await held;
    });
    await started;
    await db.sql`INSERT INTO users (id, passkey) VALUES (2, ${key('e')})`; // committed first
    const first = await changes(since);
    expect(first.delta.users.map((u) => u.id)).toEqual([2]);
    // while that transaction stays open, what was read is not read again
    const idle = await changes(first.since);
    expect(idle.delta.users).toEqual([]);
    release();
    await tx;
    const second = await changes(idle.since);
    expect(second.delta.users.map((u) => u.id)).toEqual([1]);
  });

  it('log a torrent\'s old hashes whatever bytea format the writing session uses', async () => {
    await db.sql`INSERT INTO torrents (id, info_hash) VALUES (1, ${h(1)})`;
    const { since } = await loadRegistry(db.sql);
    await db.sql.begin(async (tx) => {
      await tx`SET LOCAL bytea_output = 'escape'`;
      await tx`UPDATE torrents SET info_hash = ${h(2)} WHERE id = 1`;
    });
    const { delta } = await changes(since);
    expect(delta.dropHashes.map(([id, x]) => [id, Buffer.from(x).toString('hex')])).toEqual([[1, h(1).toString('hex')]]);
    expect(delta.torrents.map((t) => Buffer.from(t.infoHash).toString('hex'))).toEqual([h(2).toString('hex')]);
  });

  it('leave a key to whoever holds it now', () => {
    const reg = new Registry();
    reg.upsertUser({ id: 2, passkey: key('k'), canLeech: true });
    reg.upsertTorrent({ id: 9, infoHash: h(5) });
    // user 1 had the key and torrent 8 the hash before: a re-read of those old changes
    applyDelta(reg, { users: [], dropKeys: [[1, key('k')]], torrents: [], deleted: [], dropHashes: [[8, h(5)]], multipliers: [] }, noLog);
    expect([reg.user(key('k'))?.id, reg.torrentId(h(5), 0)]).toEqual([2, 9]);
  });

  it('ask for a whole reload after a TRUNCATE or a bulk change', async () => {
    let { since } = await loadRegistry(db.sql);
    await db.sql`INSERT INTO bans (network, reason) VALUES ('10.0.0.0/8', 'abuse')`;
    const bans = await changes(since);
    expect(bans.delta.bans?.map((b) => b.cidr)).toEqual(['10.0.0.0/8']);
    await db.sql`TRUNCATE client_allowlist`;
    expect((await changes(bans.since)).delta.clients).toEqual([]);
    ({ since } = await loadRegistry(db.sql));
    await db.sql`TRUNCATE users CASCADE`;
    expect(await loadChanges(db.sql, since)).toBeNull();
    ({ since } = await loadRegistry(db.sql));
    await db.sql`INSERT INTO users (passkey) SELECT md5(g::text) FROM generate_series(1, 50001) g`;
    expect(await loadChanges(db.sql, since)).toBeNull();
  });

  it('forget changes after a day', async () => {
    await db.sql`INSERT INTO users (id, passkey) VALUES (1, ${key('a')}), (2, ${key('b')})`;
    await db.sql`UPDATE registry_changes SET changed_at = now() - interval '25 hours' WHERE id = 1`;
    // (a row is kept while a transaction older than it runs anywhere on the cluster: another
    // test's, a benchmark's; it goes once they end)
    const left = async () => (await db.sql`SELECT id::int FROM registry_changes ORDER BY seq`).map((r) => r.id);
    await until('the day-old change to be pruned', async () => {
      await pruneChanges(db.sql);
      return JSON.stringify(await left()) === '[2]';
    }, 20_000);
    expect(await left()).toEqual([2]);
  });
});

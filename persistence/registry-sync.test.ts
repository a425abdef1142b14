// RegistrySync on the real PostgreSQL (a schema of its own): polling picks up edits with no
// NOTIFY, a failing poll says so once a minute and says when reads work again, and a start
// with the database away serves the registry saved by the last whole read.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PersistenceStats } from '../contract/persistence-stats.js';
import type { RegistryDelta, RegistrySnapshot } from '../contract/registry.js';
import { PG_URL, testSchema, type TestSchema } from '../test/support/pg.js';
import { Database } from './database.js';
import { RegistrySync } from './registry-sync.js';

let schema: TestSchema;
let dataDir: string;
const open: Database[] = [];

beforeEach(async () => {
  schema = await testSchema();
  dataDir = mkdtempSync(join(tmpdir(), 'shardtrack-registry-sync-'));
});
afterEach(async () => {
  for (const d of open.splice(0)) await d.close();
  await schema?.drop();
});

/** A RegistrySync on its own database client, with what it posts and logs collected. */
function setUp(now: () => number = Date.now) {
  const stats = new Float64Array(PersistenceStats.SIZE);
  const logs: string[] = [];
  const log = (m: string) => logs.push(m);
  const db = new Database({ url: PG_URL, schema: schema.name, dataDir, flushConnections: 1 }, stats, log);
  open.push(db);
  const snapshots: RegistrySnapshot[] = [];
  const deltas: RegistryDelta[] = [];
  const sync = new RegistrySync(db, { snapshot: (s) => snapshots.push(s), delta: (d) => deltas.push(d), failed: () => {} }, stats, log, dataDir, now);
  return { db, sync, stats, logs, snapshots, deltas };
}

const passkey = (c: string) => c.repeat(32);

describe('RegistrySync', () => {
  it('reads whole at first, then polls the change log (no NOTIFY needed)', async () => {
    const s = setUp();
    expect(await s.db.connect()).toBe(true);
    await schema.sql`INSERT INTO users (passkey) VALUES (${passkey('a')})`;
    await s.sync.reload();
    expect(s.snapshots.map((x) => x.users.map((u) => u.passkey))).toEqual([[passkey('a')]]);
    expect(s.sync.following).toBe(true);
    await schema.sql`INSERT INTO users (passkey) VALUES (${passkey('b')})`;
    await s.sync.tick(); // the first poll is due at once
    expect(s.deltas).toHaveLength(1);
    expect(s.deltas[0].users.map((u) => u.passkey)).toEqual([passkey('b')]);
    // nothing changed (and the next poll not due yet): nothing posted
    expect(s.sync.tick()).toBeUndefined();
    expect(s.stats[PersistenceStats.REGISTRY_LOADS]).toBe(2);
  });

  it('says a failing poll once a minute, and when reads work again', async () => {
    let clock = 1_000_000;
    const s = setUp(() => clock);
    await s.db.connect();
    await s.sync.reload();
    s.db.drop('test: the database went away'); // polls now fail
    const failures = () => s.logs.filter((l) => l.startsWith('registry read failed')).length;
    await s.sync.tick();
    expect(failures()).toBe(1);
    clock += 10_000; // the next poll, within the minute: fails quietly
    await s.sync.tick();
    expect(failures()).toBe(1);
    clock += 60_000; // a minute later: said again
    await s.sync.tick();
    expect(failures()).toBe(2);
    await s.db.connect();
    clock += 10_000;
    await s.sync.tick();
    expect(s.logs).toContain('registry reads work again');
  });

  it('serves the registry saved by the last whole read when the database is away at start', async () => {
    const first = setUp();
    await first.db.connect();
    await schema.sql`INSERT INTO users (passkey) VALUES (${passkey('c')}), (${passkey('d')})`;
    await first.sync.reload();
    // a new start, the database unreachable
    const second = setUp();
    expect(second.db.sql).toBeUndefined();
    expect(second.sync.loadSaved()).toBe(true);
    expect(second.snapshots[0].users.map((u) => u.passkey).sort()).toEqual([passkey('c'), passkey('d')]);
    expect(second.logs.some((l) => /serving with the registry saved at the last load \(2 users\)/.test(l))).toBe(true);
    // and with nothing saved, there is nothing to serve
    dataDir = mkdtempSync(join(tmpdir(), 'shardtrack-registry-sync-'));
    expect(setUp().sync.loadSaved()).toBe(false);
  });
});

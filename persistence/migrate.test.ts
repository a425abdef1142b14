import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testSchema, type TestSchema } from '../test/support/pg.js';
import { until } from '../test/support/until.js';
import { loadMigrations, migrate, MigrationError } from './migrate.js';

let db: TestSchema;
beforeEach(async () => {
  db = await testSchema();
});
afterEach(async () => {
  await db?.drop();
});

const tables = async (): Promise<string[]> =>
  (await db.sql<{ table_name: string }[]>`SELECT table_name FROM information_schema.tables WHERE table_schema = ${db.name} ORDER BY table_name`).map(
    (r) => r.table_name,
  );

describe('migrations', () => {
  it('apply from zero into an empty schema and are then idempotent', async () => {
    const all = loadMigrations();
    expect(all.map((m) => m.version)).toEqual(all.map((_, i) => i + 1));
    expect(await migrate(db.sql)).toEqual(all.map((m) => m.version));
    expect(await tables()).toEqual(
      ['admin_tokens', 'applied_batches', 'applied_floors', 'bans', 'cheat_flags', 'client_allowlist', 'dead_letters', 'history', 'peers', 'registry_changes', 'schema_migrations', 'snatches', 'torrents', 'users'].sort(),
    );
    expect(await migrate(db.sql)).toEqual([]);
    const [{ n }] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM schema_migrations`;
    expect(n).toBe(all.length);
  });

  it('serialise concurrent starters: each migration applied exactly once', async () => {
    const results = await Promise.all([migrate(db.sql), migrate(db.connect()), migrate(db.connect())]);
    expect(results.flat().sort()).toEqual(loadMigrations().map((m) => m.version));
  });

  it('refuse a migration edited after it was applied, and a database newer than the code', async () => {
    await migrate(db.sql);
    const edited = loadMigrations().map((m, i) => (i === 0 ? { ...m, checksum: 'f'.repeat(64) } : m));
    await expect(migrate(db.sql, edited)).rejects.toThrow(MigrationError);
    await expect(migrate(db.sql, edited)).rejects.toThrow(/migration 1 \(initial\) was changed/);
    await expect(migrate(db.sql, [])).rejects.toThrow(/newer than this tracker knows/);
  });

  it('leave the database untouched when a migration fails', async () => {
    const broken = [...loadMigrations(), { version: loadMigrations().length + 1, name: 'broken', sql: 'CREATE TABLE x (a int); SELECT nope;', checksum: 'x' }];
    await expect(migrate(db.sql, broken)).rejects.toThrow();
    expect(await tables()).toEqual([]);
  });

  it('enforce the registry invariants in the schema', async () => {
    await migrate(db.sql);
    await expect(db.sql`INSERT INTO users (passkey) VALUES ('short')`).rejects.toThrow(/check/i);
    await expect(db.sql`INSERT INTO torrents (info_hash) VALUES (${Buffer.alloc(19)})`).rejects.toThrow(/check/i);
    await expect(db.sql`INSERT INTO torrents (info_hash, deleted_at) VALUES (${Buffer.alloc(20)}, now())`).rejects.toThrow(/check/i);
    await db.sql`INSERT INTO torrents (info_hash, deleted_at, deleted_reason) VALUES (${Buffer.alloc(20)}, now(), 'dupe')`;
    await expect(db.sql`INSERT INTO torrents (info_hash) VALUES (${Buffer.alloc(20)})`).rejects.toThrow(/unique/i);
  });

  it('keep a passkey to one user and an info_hash to one torrent across both columns', async () => {
    await migrate(db.sql);
    const a = 'a'.repeat(32), b = 'b'.repeat(32), c = 'c'.repeat(32);
    await db.sql`INSERT INTO users (passkey, old_passkey) VALUES (${a}, ${b})`;
    await expect(db.sql`INSERT INTO users (passkey) VALUES (${b})`).rejects.toMatchObject({ code: '23505' });
    await expect(db.sql`INSERT INTO users (passkey, old_passkey) VALUES (${c}, ${a})`).rejects.toMatchObject({ code: '23505' });
    await db.sql`INSERT INTO users (passkey) VALUES (${c})`; // no old passkey: nothing to collide with
    await db.sql`UPDATE users SET passkey = ${'d'.repeat(32)}, old_passkey = ${a} WHERE passkey = ${a}`; // its own old key
    const h = (n: number) => Buffer.alloc(20, n);
    await db.sql`INSERT INTO torrents (info_hash, info_hash_v2) VALUES (${h(1)}, ${h(2)})`;
    await expect(db.sql`INSERT INTO torrents (info_hash) VALUES (${h(2)})`).rejects.toMatchObject({ code: '23505' });
    await expect(db.sql`INSERT INTO torrents (info_hash, info_hash_v2) VALUES (${h(3)}, ${h(1)})`).rejects.toMatchObject({ code: '23505' });
    // a bulk registration checks each row on the indexes (0004's check scanned the table: quadratic)
    await db.sql`INSERT INTO users (passkey) SELECT md5(g::text) FROM generate_series(1, 20000) g`;
    const [{ n }] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM users`;
    expect(n).toBe(20002);
  });

  it('delete a user\'s or torrent\'s ledger and peer rows with it', async () => {
    await migrate(db.sql);
    const [u1, u2] = await db.sql`INSERT INTO users (passkey) VALUES ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'), ('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb') RETURNING id`;
    const [t1, t2] = await db.sql`INSERT INTO torrents (info_hash) VALUES (${Buffer.alloc(20, 1)}), (${Buffer.alloc(20, 2)}) RETURNING id`;
    for (const u of [u1, u2]) {
      for (const t of [t1, t2]) {
        await db.sql`INSERT INTO history (user_id, torrent_id) VALUES (${u.id}, ${t.id})`;
        await db.sql`INSERT INTO snatches (user_id, torrent_id) VALUES (${u.id}, ${t.id})`;
        await db.sql`INSERT INTO peers (info_hash, peer_id, torrent_id, user_id, ip, port, last_announce)
                     VALUES (${Buffer.alloc(20, Number(t.id))}, ${Buffer.alloc(20, Number(u.id))}, ${t.id}, ${u.id}, ${Buffer.alloc(16)}, 1, now())`;
      }
    }
    const left = async () =>
      Promise.all(['history', 'snatches', 'peers'].map(async (t) => (await db.sql`SELECT user_id || ':' || torrent_id AS k FROM ${db.sql(t)} ORDER BY 1`).map((r) => r.k)));
    await db.sql`DELETE FROM users WHERE id = ${u1.id}`;
    await db.sql`DELETE FROM torrents WHERE id = ${t2.id}`;
    const only = [`${u2.id}:${t1.id}`];
    expect(await left()).toEqual([only, only, only]);
  });

  it('notify registry_changed on registry edits, not on ledger counter updates', async () => {
    await migrate(db.sql);
    const seen: string[] = [];
    const listener = db.connect();
    // the payload names the schema: trackers of several schemas may share a database
    await listener.listen('registry_changed', (table) => seen.push(table.replace(`${db.name}.`, '')));
    // NOTIFYs arrive in commit order: each step ends with an edit that notifies, and once
    // that one is in, any notification the quiet statements before it sent would be too
    const [u] = await db.sql<{ id: number }[]>`INSERT INTO users (passkey) VALUES ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') RETURNING id`;
    await db.sql`UPDATE users SET uploaded = uploaded + 100, seed_time = seed_time + 60 WHERE id = ${u.id}`;
    await db.sql`INSERT INTO bans (network, reason) VALUES ('10.1.0.0/16', 'marker')`;
    await until('the marker', () => seen.includes('bans'));
    expect(seen).toEqual(['users', 'bans']); // a ledger flush stays quiet
    await db.sql`UPDATE users SET can_leech = false WHERE id = ${u.id}`;
    await db.sql`INSERT INTO torrents (info_hash) VALUES (${Buffer.alloc(20, 1)})`;
    await db.sql`UPDATE torrents SET snatches = snatches + 1`;
    await db.sql`UPDATE torrents SET download_multiplier = 0`;
    await db.sql`INSERT INTO bans (network, reason) VALUES ('10.0.0.0/8', 'test')`;
    await until('the last edit', () => seen.length >= 6 && seen.at(-1) === 'bans');
    expect(seen).toEqual(['users', 'bans', 'users', 'torrents', 'torrents', 'bans']);
  });
});

describe('the embedded default (PGlite behind its Unix socket)', () => {
  it('runs the same migrations and keeps them across a restart', async () => {
    const { embeddedClient, startEmbedded } = await import('./embedded.js');
    const postgres = (await import('postgres')).default;
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = join(mkdtempSync(join(tmpdir(), 'shardtrack-pglite-')), 'pglite');
    const open = async () => {
      const db = await startEmbedded(dir);
      const sql = postgres({ ...embeddedClient(db.address), onnotice: () => {} });
      return { sql, close: async () => { await sql.end({ timeout: 1 }); await db.close(); } };
    };
    let db1 = await open();
    try {
      expect(await migrate(db1.sql)).toEqual(loadMigrations().map((m) => m.version));
      await db1.sql`INSERT INTO users (passkey) VALUES ('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb')`;
    } finally {
      await db1.close();
    }
    db1 = await open();
    try {
      expect(await migrate(db1.sql)).toEqual([]);
      const [{ n }] = await db1.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM users`;
      expect(n).toBe(1);
    } finally {
      await db1.close();
    }
  }, 60_000);
});

import { mkdtempSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../test/support/until.js';
import { embeddedClient, startEmbedded, type Embedded } from './embedded.js';

// Several clients on the one PGlite backend, as the persistence thread, the admin API and
// the CLI use it: every statement of every client must land, whatever the interleaving.

let db: Embedded;
const clients: postgres.Sql[] = [];
const client = (): postgres.Sql => {
  const sql = postgres({ ...embeddedClient(db.address), onnotice: () => {} });
  clients.push(sql);
  return sql;
};

beforeAll(async () => {
  db = await startEmbedded(join(mkdtempSync(join(tmpdir(), 'shardtrack-pglite-')), 'pglite'));
  await client()`CREATE TABLE t (id serial PRIMARY KEY, who int NOT NULL, v bytea NOT NULL)`;
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.end({ timeout: 1 });
  await db.close();
});

describe('the embedded database behind its wire server', () => {
  it('listens on a Unix socket only its user can open, in a directory only its user can enter', () => {
    expect(statSync(db.address.path).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(db.address.path)).mode & 0o777).toBe(0o700);
  });

  it('lands every statement of three clients writing at once, in and out of transactions', async () => {
    const [a, b, c] = [client(), client(), client()];
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      const v = Buffer.alloc(20, i);
      // parameters make the extended protocol (Parse/Bind/Execute/Sync) that interleaving broke
      writes.push(a`INSERT INTO t (who, v) VALUES (1, ${v})`);
      writes.push(b.begin(async (tx) => {
        await tx`INSERT INTO t (who, v) VALUES (2, ${v})`;
        await tx`INSERT INTO t (who, v) VALUES (2, ${v})`;
      }));
      writes.push(c`SELECT count(*) FROM t WHERE who = ${i % 3}`);
    }
    await Promise.all(writes);
    const rows = await a<{ who: number; n: number }[]>`SELECT who, count(*)::int AS n FROM t GROUP BY who ORDER BY who`;
    expect(rows).toEqual([{ who: 1, n: 200 }, { who: 2, n: 400 }]);
  }, 60_000);

  it('rolls back a client that disconnects inside a transaction, and serves the others meanwhile', async () => {
    const a = postgres({ ...embeddedClient(db.address), onnotice: () => {} });
    const b = client();
    const held = a.begin(async (tx) => {
      await tx`INSERT INTO t (who, v) VALUES (9, ${Buffer.alloc(1)})`;
      await new Promise((r) => setTimeout(r, 200));
      await a.end({ timeout: 0 }); // gone mid-transaction
      await tx`SELECT 1`;
    });
    await expect(held).rejects.toThrow();
    // b waited for the transaction, then ran: and the abandoned insert is gone
    const [{ n }] = await b<{ n: number }[]>`SELECT count(*)::int AS n FROM t WHERE who = 9`;
    expect(n).toBe(0);
  }, 30_000);

  it('ends a connection that speaks garbage without disturbing the others', async () => {
    const s = net.connect(db.address.path);
    await new Promise((r) => s.once('connect', r));
    s.write(Buffer.from([0, 0, 0, 3, 1, 2, 3, 4])); // a startup length below its minimum
    await new Promise((r) => s.once('close', r));
    const [{ one }] = await client()<{ one: number }[]>`SELECT 1 AS one`;
    expect(one).toBe(1);
  });

  it('ends a connection that sends a message type PGlite does not know (it would block its thread)', async () => {
    const s = net.connect(db.address.path);
    await new Promise((r) => s.once('connect', r));
    const params = Buffer.from('user\0postgres\0database\0postgres\0\0');
    const startup = Buffer.alloc(8 + params.length);
    startup.writeInt32BE(startup.length, 0);
    startup.writeInt32BE(196608, 4);
    params.copy(startup, 8);
    let got = Buffer.alloc(0);
    s.on('data', (d) => (got = Buffer.concat([got, d])));
    s.write(startup);
    await until('ReadyForQuery after start-up', () => got.includes(Buffer.from([0x5a, 0, 0, 0, 5, 0x49])));
    s.write(Buffer.from([0x71, 0, 0, 0, 4])); // 'q': no such frontend message
    await new Promise((r) => s.once('close', r));
    const [{ one }] = await client()<{ one: number }[]>`SELECT 1 AS one`;
    expect(one).toBe(1);
  });
});

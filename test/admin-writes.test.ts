// Admin writes at once, on both databases a tracker runs on: every one lands (the embedded
// database has one backend, so they take turns; none may fail). And an internal error is
// logged with its cause, route and a request id the client also gets.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Tracker } from '../dist/engine/tracker.js';
import { startTestTracker } from './helpers.js';
import { PG_URL, testSchema, type TestSchema } from './support/pg.js';

const WRITES = 32;
const cleanup: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
});

async function start(database: 'embedded' | 'postgres', log?: (msg: string, level?: string) => void): Promise<{ t: Tracker; db?: TestSchema }> {
  const data_dir = mkdtempSync(join(tmpdir(), 'shardtrack-admin-writes-'));
  const db = database === 'postgres' ? await testSchema() : undefined;
  const t = await startTestTracker(
    { tracker: { private: true }, database: { enabled: true, url: db ? PG_URL : '', schema: db?.name ?? 'public', data_dir } },
    undefined,
    log,
  );
  cleanup.push(async () => {
    await t.close();
    await db?.drop();
  });
  return { t, db };
}

function call(t: Tracker, method: string, path: string, body?: unknown) {
  return fetch(`http://127.0.0.1:${t.admin!.port}${path}`, {
    method,
    headers: { authorization: `Bearer ${t.admin!.firstToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

describe.each(['embedded', 'postgres'] as const)('admin writes at once on the %s database', (database) => {
  it(`lands all ${WRITES} torrent and ${WRITES} user registrations sent together`, async () => {
    const { t } = await start(database);
    const hashes = Array.from({ length: WRITES }, () => randomBytes(20).toString('hex'));
    const passkeys = Array.from({ length: WRITES }, () => randomBytes(16).toString('hex'));
    const answers = await Promise.all([
      ...hashes.map((h) => call(t, 'POST', '/api/v1/torrents', { info_hash: h })),
      ...passkeys.map((p) => call(t, 'POST', '/api/v1/users', { passkey: p })),
    ]);
    const failed = await Promise.all(answers.filter((a) => a.status !== 201).map(async (a) => `${a.status} ${await a.text()}`));
    expect(failed).toEqual([]);
    const torrents = (await (await call(t, 'GET', '/api/v1/torrents?per_page=1000')).json()) as { items: { info_hash: string }[] };
    expect(torrents.items.map((x) => x.info_hash).sort()).toEqual([...hashes].sort());
    const users = (await (await call(t, 'GET', '/api/v1/users?per_page=1000')).json()) as { items: { passkey: string }[] };
    for (const p of passkeys) expect(users.items.map((u) => u.passkey)).toContain(p);
  }, 60_000);
});

describe('an internal error of the admin API', () => {
  it('is logged whole with the route and a request id, which the answer carries too', async () => {
    const lines: string[] = [];
    const { t, db } = await start('postgres', (msg) => lines.push(msg));
    await db!.sql`ALTER TABLE history RENAME TO history_away`;
    try {
      const res = await call(t, 'GET', '/api/v1/users/1/history');
      expect(res.status).toBe(500);
      const body = (await res.json()) as { error: string; message: string; request_id: string };
      expect(body).toMatchObject({ error: 'internal', request_id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-z]+$/) });
      expect(body.message).not.toMatch(/history/); // no internals to the client
      expect(res.headers.get('x-request-id')).toBe(body.request_id);
      const logged = lines.find((l) => l.includes(body.request_id));
      expect(logged).toContain('GET /api/v1/users/:id/history');
      expect(logged).toMatch(/relation "history" does not exist/);
    } finally {
      await db!.sql`ALTER TABLE history_away RENAME TO history`;
    }
  }, 30_000);
});

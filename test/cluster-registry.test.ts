// Several tracker nodes on one database (issue 16, "registry changes reach every node"): an
// edit made in the database (by the site, or through one node's admin API) reaches the
// caches of every node, not only the one that made it, through LISTEN/NOTIFY.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Tracker } from '../dist/engine/tracker.js';
import { announcePath, failure, get, peerId, until } from './helpers.js';
import { seedRegistry } from './support/ledger-sim.js';
import { perTestLedger } from './support/ledger-trackers.js';

const ledger = perTestLedger();
const trackers = ledger.trackers;

const node = (): Promise<Tracker> => trackers.start(ledger.db.name, mkdtempSync(join(tmpdir(), 'shardtrack-node-')));

describe('registry changes across nodes sharing one database', () => {
  it('reach every node: a new user, a ban and its lifting, a disabled user', async () => {
    const a = await node();
    const b = await node(); // each with its own data directory and journal
    const { users, torrents } = await seedRegistry(ledger.db.sql, 1, 1);
    const path = () => announcePath({ infoHash: torrents[0].infoHash, peerId: peerId(), port: 7000, left: 10 }, `/${users[0].passkey}`);
    const answer = async (t: Tracker) => failure((await get(t.httpPort, path())).body) ?? 'ok';
    const everywhere = (what: string, want: string) => until(`${what} on both nodes`, async () => (await answer(a)) === want && (await answer(b)) === want, 5_000);
    await everywhere('the new user', 'ok');
    await ledger.db.sql`INSERT INTO bans (network, reason) VALUES ('127.0.0.0/8', 'test')`;
    await everywhere('the ban', 'your IP address is banned from this tracker');
    await ledger.db.sql`DELETE FROM bans`;
    await everywhere('the lifted ban', 'ok');
    await ledger.db.sql`UPDATE users SET enabled = false WHERE id = ${users[0].id}`;
    await everywhere('the disabled user', 'unknown passkey');
    expect(a.registry.userCount).toBe(b.registry.userCount);
  }, 60_000);
});

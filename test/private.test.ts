// Private mode: passkeys, registered torrents, leeching rights, live registry changes,
// the watched registry file, and trusted-proxy client addresses.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tracker } from '../dist/engine/tracker.js';
import { announcePath, compactPeers, decode, failure, get, hash, peerId, pct, startTestTracker, until } from './helpers.js';

const PK1 = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1';
const PK2 = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2';

describe('private mode', () => {
  let t: Tracker;
  let port: number;
  const registered = hash();

  beforeAll(async () => {
    t = await startTestTracker({ tracker: { private: true, require_registered_torrents: true } });
    port = t.httpPort;
    t.registry.upsertUser({ id: 1, passkey: PK1, canLeech: true });
    t.registry.upsertUser({ id: 2, passkey: PK2, canLeech: false });
    t.registry.upsertTorrent({ id: 10, infoHash: registered });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('requires a passkey', async () => {
    const r = await get(port, announcePath({ infoHash: registered, peerId: peerId(), port: 1 }));
    expect(failure(r.body)).toMatch(/private tracker/);
    expect(failure((await get(port, `/scrape?info_hash=${pct(registered)}`)).body)).toMatch(/private tracker/);
  });

  it('refuses unknown passkeys', async () => {
    const r = await get(port, announcePath({ infoHash: registered, peerId: peerId(), port: 1 }, '/cccccccccccccccccccccccccccccccc'));
    expect(failure(r.body)).toBe('unknown passkey');
  });

  it('serves known passkeys on registered torrents only', async () => {
    const ok = decode((await get(port, announcePath({ infoHash: registered, peerId: peerId(), port: 2001 }, `/${PK1}`))).body);
    expect(ok['failure reason']).toBeUndefined();
    expect(ok.incomplete).toBe(1);
    const r = await get(port, announcePath({ infoHash: hash(), peerId: peerId(), port: 2002 }, `/${PK1}`));
    expect(failure(r.body)).toBe('torrent not registered with this tracker');
    const s = decode((await get(port, `/${PK1}/scrape?info_hash=${pct(registered)}`)).body);
    expect(s.files).toBeDefined();
  });

  it('lets users without leeching rights seed but not leech', async () => {
    expect(failure((await get(port, announcePath({ infoHash: registered, peerId: peerId(), port: 2003, left: 5 }, `/${PK2}`))).body)).toBe(
      'your leeching privileges are disabled',
    );
    const d = decode((await get(port, announcePath({ infoHash: registered, peerId: peerId(), port: 2004, left: 0 }, `/${PK2}`))).body);
    expect(d.complete).toBe(1);
  });

  it('applies registry changes to the next announce without restart', async () => {
    const pk = 'dddddddddddddddddddddddddddddddd';
    const path = announcePath({ infoHash: registered, peerId: peerId(), port: 2005 }, `/${pk}`);
    expect(failure((await get(port, path)).body)).toBe('unknown passkey');
    t.registry.upsertUser({ id: 3, passkey: pk, canLeech: true });
    expect(failure((await get(port, path)).body)).toBeUndefined();
    t.registry.removeUser(pk);
    expect(failure((await get(port, path)).body)).toBe('unknown passkey');
    const ih = hash();
    const p2 = announcePath({ infoHash: ih, peerId: peerId(), port: 2006 }, `/${PK1}`);
    expect(failure((await get(port, p2)).body)).toMatch(/not registered/);
    t.registry.upsertTorrent({ id: 11, infoHash: ih });
    expect(failure((await get(port, p2)).body)).toBeUndefined();
    t.registry.removeTorrent(ih);
    expect(failure((await get(port, p2)).body)).toMatch(/not registered/);
  });

  it('checks bans and the client allow-list before the passkey', async () => {
    const unknown = announcePath({ infoHash: registered, peerId: peerId(), port: 2009 }, '/cccccccccccccccccccccccccccccccc');
    const known = announcePath({ infoHash: registered, peerId: peerId(), port: 2010 }, `/${PK1}`);
    const local = new Uint8Array(16);
    local.set([0xff, 0xff, 127, 0, 0, 1], 10); // ::ffff:127.0.0.1
    try {
      t.registry.bans.replace([{ network: local, prefix: 128, expiresAt: 0 }]);
      expect(failure((await get(port, unknown)).body)).toBe('your IP address is banned from this tracker');
      expect(failure((await get(port, `/${PK1}/scrape?info_hash=${pct(registered)}`)).body)).toBe('your IP address is banned from this tracker');
      t.registry.bans.replace([]);
      t.registry.clients.replace([Buffer.from('-TR')]);
      expect(failure((await get(port, unknown)).body)).toMatch(/client is not allowed/);
      expect(failure((await get(port, known)).body)).toMatch(/client is not allowed/);
      t.registry.clients.replace([Buffer.from('-qB4')]);
      expect(failure((await get(port, unknown)).body)).toBe('unknown passkey');
      expect(failure((await get(port, known)).body)).toBeUndefined();
    } finally {
      t.registry.bans.replace([]);
      t.registry.clients.replace([]);
    }
  });

  it('keeps users from taking over each other\'s peer_id', async () => {
    const id = peerId();
    await get(port, announcePath({ infoHash: registered, peerId: id, port: 2007, left: 0 }, `/${PK2}`));
    const r = await get(port, announcePath({ infoHash: registered, peerId: id, port: 2008, event: 'stopped' }, `/${PK1}`));
    expect(failure(r.body)).toMatch(/peer_id is in use/);
  });
});

describe('registry file', () => {
  it('loads users and torrents and applies edits without restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrack-reg-'));
    const file = join(dir, 'registry.toml');
    const ih = hash();
    const hex = Buffer.from(ih).toString('hex');
    writeFileSync(file, `[[users]]\nid = 1\npasskey = "${PK1}"\n\n[[torrents]]\nid = 1\ninfo_hash = "${hex}"\n`);
    const logs: string[] = [];
    const t = await startTestTracker({ tracker: { private: true, require_registered_torrents: true }, registry: { file } }, undefined, (m) => logs.push(m));
    try {
      const p1 = announcePath({ infoHash: ih, peerId: peerId(), port: 3001 }, `/${PK1}`);
      const p2 = announcePath({ infoHash: ih, peerId: peerId(), port: 3002 }, `/${PK2}`);
      expect(failure((await get(t.httpPort, p1)).body)).toBeUndefined();
      expect(failure((await get(t.httpPort, p2)).body)).toBe('unknown passkey');
      writeFileSync(file, `[[users]]\nid = 2\npasskey = "${PK2}"\n\n[[torrents]]\nid = 1\ninfo_hash = "${hex}"\n`);
      await until('the edited file to apply', async () => failure((await get(t.httpPort, p2)).body) === undefined, 5000);
      expect(failure((await get(t.httpPort, p1)).body)).toBe('unknown passkey');
      // an invalid edit keeps the previous registry
      writeFileSync(file, `[[users]]\nid = "x"\n`);
      await until('the invalid edit to be refused', () => logs.some((l) => l.startsWith('registry not reloaded, keeping the previous one')), 5000);
      expect(failure((await get(t.httpPort, p2)).body)).toBeUndefined();
    } finally {
      await t.close();
    }
  });

  it('creates a first user when private mode starts without a file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrack-reg-'));
    const file = join(dir, 'sub', 'registry.toml');
    const t = await startTestTracker({ tracker: { private: true }, registry: { file } });
    try {
      expect(t.registry.userCount).toBe(1);
    } finally {
      await t.close();
    }
  });
});

describe('client address', () => {
  it('believes X-Forwarded-For only from a trusted proxy', async () => {
    const trusting = await startTestTracker({ net: { trusted_proxies: ['127.0.0.1/32'] } });
    const plain = await startTestTracker({});
    try {
      for (const [tr, expected] of [
        [trusting, '203.0.113.7:4001'],
        [plain, '127.0.0.1:4001'],
      ] as const) {
        const ih = hash();
        await get(tr.httpPort, announcePath({ infoHash: ih, peerId: peerId(), port: 4001, left: 0 }), {
          headers: { 'X-Forwarded-For': '198.51.100.1, 203.0.113.7' },
        });
        const d = decode((await get(tr.httpPort, announcePath({ infoHash: ih, peerId: peerId(), port: 4002 }))).body);
        expect(compactPeers(d.peers)).toEqual([expected]);
      }
    } finally {
      await trusting.close();
      await plain.close();
    }
  });
});

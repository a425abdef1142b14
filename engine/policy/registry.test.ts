import { describe, expect, it } from 'vitest';
import { prng } from '../../test/support/prng.js';
import { Registry } from './registry.js';

describe('Registry.userCount', () => {
  it('follows upserts, grace passkeys, removals and whole reloads without walking the users', () => {
    const rnd = prng(7);
    const r = new Registry();
    const model = new Map<string, { id: number; expiresAt: number }>();
    const keys = Array.from({ length: 40 }, (_, i) => `passkey${String(i).padStart(12, '0')}`);
    const counted = () => [...model.values()].filter((u) => !u.expiresAt).length;
    for (let step = 0; step < 5000; step++) {
      const k = keys[Math.floor(rnd() * keys.length)];
      const op = rnd();
      if (op < 0.5) {
        const u = { id: 1 + Math.floor(rnd() * 10), passkey: k, canLeech: true, expiresAt: rnd() < 0.3 ? 2e9 : 0 };
        r.upsertUser(u);
        model.set(k, u);
      } else if (op < 0.75) {
        expect(r.removeUser(k)).toBe(model.delete(k));
      } else if (op < 0.98) {
        const id = 1 + Math.floor(rnd() * 10);
        const mine = model.get(k)?.id === id;
        expect(r.removeUserKey(k, id)).toBe(mine);
        if (mine) model.delete(k);
      } else {
        const users = keys.filter(() => rnd() < 0.5).map((passkey, i) => ({ id: i + 1, passkey, canLeech: true, expiresAt: i % 4 === 0 ? 2e9 : 0 }));
        r.replaceAll(users, []);
        model.clear();
        for (const u of users) model.set(u.passkey, u);
      }
      expect(r.userCount).toBe(counted());
    }
  });
});

describe('ids the records cannot hold', () => {
  it('are refused at load with a clear log line, never truncated', async () => {
    const { applySnapshot, applyDelta } = await import('./registry-db.js');
    const logs: [string, string | undefined][] = [];
    const log = (m: string, l?: string) => void logs.push([m, l]);
    const r = new Registry();
    const big = 2 ** 32; // would be user 0 in a u32 field
    const hash = (n: number) => new Uint8Array(20).fill(n);
    applySnapshot(r, {
      users: [{ id: 1, passkey: 'a'.repeat(32), canLeech: true, expiresAt: 0 }, { id: big, passkey: 'b'.repeat(32), canLeech: true, expiresAt: 0 }],
      torrents: [{ id: 5, infoHash: hash(1) }, { id: big + 5, infoHash: hash(2) }],
      deleted: [], multipliers: [], bans: [], clients: [],
    }, log);
    expect(r.userCount).toBe(1);
    expect(r.user('b'.repeat(32))).toBeUndefined();
    expect(r.torrentId(hash(2), 0)).toBe(0);
    expect(r.torrentId(hash(1), 0)).toBe(5);
    expect(logs).toEqual([
      [`registry: user id ${big} is outside 1..4294967295, what the tracker's records hold: ignored`, 'error'],
      [`registry: torrent id ${big + 5} is outside 1..4294967295, what the tracker's records hold: ignored`, 'error'],
    ]);
    logs.length = 0;
    applyDelta(r, { users: [{ id: big, passkey: 'c'.repeat(32), canLeech: true, expiresAt: 0 }], dropKeys: [], torrents: [{ id: big, infoHash: hash(3) }], deleted: [], dropHashes: [], multipliers: [] }, log);
    expect(r.user('c'.repeat(32))).toBeUndefined();
    expect(logs.map(([m]) => m)).toEqual([expect.stringMatching(/user id 4294967296 is outside.*user ignored/), expect.stringMatching(/torrent id 4294967296 is outside.*torrent ignored/)]);
  });
});

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

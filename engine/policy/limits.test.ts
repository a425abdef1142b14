import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { PendingTable } from '../pending.js';
import { ClientTable } from './client-table.js';
import { addressKey, Limits } from './limits.js';

const v4 = (a: number, b: number, c: number, d: number) => new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d]);
const limits = (l: Record<string, unknown> = {}) => new Limits(loadConfig({ argv: [], env: {}, overrides: { limits: l } }));

describe('ClientTable', () => {
  it('never holds more than its capacity, evicting the least recently touched of a set', () => {
    const t = new ClientTable(64);
    expect(t.capacity).toBe(64);
    for (let i = 0; i < 10_000; i++) t.get(i, 7, 1 + i, 10);
    expect(t.used).toBe(64);
    expect(t.evictions).toBe(10_000 - 64);
    // the most recent clients are the ones kept
    let kept = 0;
    for (let i = 10_000 - 64; i < 10_000; i++) if (t.find(i, 7) >= 0) kept++;
    expect(kept).toBeGreaterThan(40);
  });

  it('refills a token bucket at its rate up to its burst', () => {
    const t = new ClientTable(16);
    const i = t.get(1, 1, 1000, 3);
    expect([t.take(i, 1000, 1, 3), t.take(i, 1000, 1, 3), t.take(i, 1000, 1, 3), t.take(i, 1000, 1, 3)]).toEqual([true, true, true, false]);
    expect(t.wait(i, 1)).toBe(1);
    expect(t.take(i, 2000, 1, 3)).toBe(true);
    expect(t.take(i, 60_000, 1, 3) && t.take(i, 60_000, 1, 3) && t.take(i, 60_000, 1, 3)).toBe(true);
    expect(t.take(i, 60_000, 1, 3)).toBe(false); // never more than the burst
  });
});

describe('Limits', () => {
  it('keys IPv4 addresses whole and IPv6 by /64', () => {
    expect(addressKey(v4(10, 0, 0, 1), 0)).not.toEqual(addressKey(v4(10, 0, 0, 2), 0));
    const a = new Uint8Array(16).fill(0x20);
    const b = Uint8Array.from(a);
    b[15] = 1;
    b[9] = 7;
    expect(addressKey(a, 0)).toEqual(addressKey(b, 0));
    b[7] = 1;
    expect(addressKey(a, 0)).not.toEqual(addressKey(b, 0));
  });

  it('bans an address at autoban_failures strikes within the window, until the ban expires or is lifted', () => {
    const l = limits({ autoban_failures: 3, autoban_window_seconds: 10, autoban_seconds: 100 });
    const ip = v4(1, 2, 3, 4);
    const t0 = 1_000_000_000;
    for (let i = 0; i < 3; i++) {
      expect(l.admitAddress(ip, 0, t0)).toBeNull();
      l.strike('unknown_passkey', t0);
    }
    expect(l.admitAddress(ip, 0, t0)).toBe('auto_banned');
    expect(l.retryIn).toBe(100);
    expect(l.autoBans(t0)).toEqual([{ address: '1.2.3.4', until: t0 / 1000 + 100 }]);
    expect(l.admitAddress(ip, 0, t0 + 100_000)).toBeNull(); // expired
    for (let i = 0; i < 3; i++) l.strike('malformed_query', t0 + 100_000);
    expect(l.liftAddress('1.2.3.4', t0 + 100_000)).toBe(true);
    expect(l.liftAddress('1.2.3.4', t0 + 100_000)).toBe(false);
    expect(l.liftAddress('no', t0)).toBeNull();
    expect(l.bansTotal).toBe(2);
    // strikes outside the window start over; refusals that are not failures do not count
    const other = v4(5, 6, 7, 8);
    l.admitAddress(other, 0, t0);
    l.strike('unknown_passkey', t0);
    l.strike('unknown_passkey', t0);
    l.strike('tracker_busy', t0);
    l.strike('unknown_passkey', t0 + 20_000);
    expect(l.admitAddress(other, 0, t0 + 20_000)).toBeNull();
  });

  it('counts an address\'s requests in flight through the pending table and refuses past its share', () => {
    const l = limits({ max_inflight_per_address: 2 });
    const pending = new PendingTable<string>(16);
    pending.perClient = l;
    const ip = v4(9, 9, 9, 9);
    const slots: number[] = [];
    for (let i = 0; i < 2; i++) {
      l.admitAddress(ip, 0, 1000);
      expect(l.busy()).toBe(false);
      slots.push(pending.acquire('r', 0, 0, 0, l.entry));
    }
    l.admitAddress(ip, 0, 1000);
    expect(l.busy()).toBe(true);
    l.admitAddress(v4(9, 9, 9, 8), 0, 1000);
    expect(l.busy()).toBe(false); // another address has its own share
    pending.release(slots[0]);
    pending.release(slots[0]); // twice: counted once
    l.admitAddress(ip, 0, 1000);
    expect(l.busy()).toBe(false);
  });
});

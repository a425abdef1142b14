import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseIp } from '../net/ip.js';
import { ConnectionIds } from './connection-id.js';
import { prng } from '../../test/support/prng.js';

// Stateless BEP 15 connection ids. The key source (node:crypto randomInt) can be pinned
// by a test; left alone, it is the real CSPRNG.
const forced = vi.hoisted(() => ({ next: null as null | (() => number) }));
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return {
    ...real,
    randomInt: (min: number, max: number): number => (forced.next !== null ? forced.next() : real.randomInt(min, max)),
  };
});

afterEach(() => {
  forced.next = null;
});

function ip16(text: string): Uint8Array {
  const out = new Uint8Array(16);
  if (!parseIp(text, out, 0)) throw new Error(`bad ip ${text}`);
  return out;
}

function issue(ids: ConnectionIds, now: number, addr: Uint8Array): Uint8Array {
  const id = new Uint8Array(8);
  ids.issue(now, addr, 0, new DataView(id.buffer), 0);
  return id;
}

function check(ids: ConnectionIds, now: number, addr: Uint8Array, id: Uint8Array): boolean {
  return ids.check(now, addr, 0, new DataView(id.buffer, id.byteOffset, 8), 0);
}

const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');

const V4 = ip16('198.51.100.7');
const V6 = ip16('2001:db8::1');

describe('ConnectionIds: binding to the address', () => {
  it('accepts its own id for the same address at the same time', () => {
    const ids = new ConnectionIds();
    for (const addr of [V4, V6, ip16('0.0.0.0'), ip16('::')]) {
      const id = issue(ids, 1000, addr);
      expect(check(ids, 1000, addr, id)).toBe(true);
    }
  });

  it('the same address gets the same id within a window (stateless)', () => {
    const ids = new ConnectionIds();
    expect(hex(issue(ids, 1000, V4))).toBe(hex(issue(ids, 1079, V4)));
    expect(hex(issue(ids, 1000, V6))).toBe(hex(issue(ids, 1050, V6)));
  });

  it('rejects the id from another address (IPv4 and IPv6)', () => {
    const ids = new ConnectionIds();
    const others = ['198.51.100.8', '198.51.100.6', '7.100.51.198', '10.0.0.1', '2001:db8::1', '::198.51.100.7', '64:ff9b::198.51.100.7'];
    const id4 = issue(ids, 1000, V4);
    for (const o of others) expect(check(ids, 1000, ip16(o), id4), o).toBe(false);
    const id6 = issue(ids, 1000, V6);
    for (const o of ['2001:db8::2', '2001:db8::', '2001:db8:0:0:0:0:0:100', '::ffff:0.0.0.1', '198.51.100.7', '1::2001:db8']) {
      expect(check(ids, 1000, ip16(o), id6), o).toBe(false);
    }
  });

  it('rejects the id from an address differing in a single bit (all 128 bits)', () => {
    const ids = new ConnectionIds();
    for (const addr of [V4, V6]) {
      const id = issue(ids, 1000, addr);
      for (let bit = 0; bit < 128; bit++) {
        const other = addr.slice();
        other[bit >> 3] ^= 1 << (bit & 7);
        expect(check(ids, 1000, other, id), `bit ${bit}`).toBe(false);
      }
      expect(check(ids, 1000, addr, id)).toBe(true);
    }
  });

  it('honours the address and id offsets, and writes exactly 8 bytes', () => {
    const ids = new ConnectionIds();
    const buf = new Uint8Array(40).fill(0x5a);
    buf.set(V6, 3);
    const out = new Uint8Array(24).fill(0xa5);
    ids.issue(1000, buf, 3, new DataView(out.buffer), 7);
    expect(out.subarray(0, 7).every((b) => b === 0xa5)).toBe(true);
    expect(out.subarray(15).every((b) => b === 0xa5)).toBe(true);
    expect(hex(out.subarray(7, 15))).toBe(hex(issue(ids, 1000, V6)));
    expect(ids.check(1000, buf, 3, new DataView(out.buffer), 7)).toBe(true);
    expect(ids.check(1000, buf, 2, new DataView(out.buffer), 7)).toBe(false);
    expect(ids.check(1000, buf, 3, new DataView(out.buffer), 6)).toBe(false);
  });

  it('ids are 8 bytes, distinct across 50,000 distinct random addresses', () => {
    const ids = new ConnectionIds();
    const r = prng(42);
    const seenAddr = new Set<string>();
    const seenId = new Set<string>();
    const addr = new Uint8Array(16);
    const id = new Uint8Array(8);
    const dv = new DataView(id.buffer);
    while (seenAddr.size < 50_000) {
      if (seenAddr.size % 2 === 0) {
        addr.fill(0, 0, 10);
        addr[10] = 0xff;
        addr[11] = 0xff;
        for (let i = 12; i < 16; i++) addr[i] = Math.floor(r() * 256);
      } else {
        for (let i = 0; i < 16; i++) addr[i] = Math.floor(r() * 256);
      }
      const a = hex(addr);
      if (seenAddr.has(a)) continue;
      seenAddr.add(a);
      ids.issue(1000, addr, 0, dv, 0);
      seenId.add(hex(id));
    }
    expect(seenId.size).toBe(50_000);
  });

  it('flipping any single bit of a valid id makes it invalid (current and previous key)', () => {
    const ids = new ConnectionIds();
    for (const addr of [V4, V6]) {
      const id = issue(ids, 1000, addr);
      for (const now of [1000, 1100]) {
        for (let bit = 0; bit < 64; bit++) {
          const bad = id.slice();
          bad[bit >> 3] ^= 1 << (bit & 7);
          expect(check(ids, now, addr, bad), `bit ${bit} at ${now}`).toBe(false);
        }
        expect(check(ids, now, addr, id)).toBe(true);
      }
    }
  });

  it('an all-zero or all-one id is not valid', () => {
    const ids = new ConnectionIds();
    for (const addr of [V4, V6]) {
      issue(ids, 1000, addr);
      expect(check(ids, 1000, addr, new Uint8Array(8))).toBe(false);
      expect(check(ids, 1000, addr, new Uint8Array(8).fill(0xff))).toBe(false);
    }
  });

  it('two instances (different random keys) do not accept each other\'s ids', () => {
    const a = new ConnectionIds();
    const b = new ConnectionIds();
    for (const addr of [V4, V6]) {
      for (const now of [0, 60, 1000, 1100]) {
        const ia = issue(a, now, addr);
        const ib = issue(b, now, addr);
        expect(hex(ia)).not.toBe(hex(ib));
        expect(check(b, now, addr, ia), `b accepts a at ${now}`).toBe(false);
        expect(check(a, now, addr, ib), `a accepts b at ${now}`).toBe(false);
        expect(check(a, now, addr, ia)).toBe(true);
        expect(check(b, now, addr, ib)).toBe(true);
      }
    }
  });
});

describe('ConnectionIds: windows', () => {
  // default window 120 s: [960, 1080) is window 8, [1080, 1200) window 9, 1200 starts window 10
  for (const issuedAt of [960, 1000, 1079]) {
    it(`issued at ${issuedAt}: valid to the end of the next window, invalid two windows later`, () => {
      const ids = new ConnectionIds();
      const id = issue(ids, issuedAt, V4);
      for (const now of [issuedAt, 1079, 1080, 1150, 1199]) {
        expect(check(ids, now, V4, id), `at ${now}`).toBe(true);
      }
      expect(check(ids, 1200, V4, id), 'at 1200').toBe(false);
      expect(check(ids, 1300, V4, id), 'at 1300').toBe(false);
    });
  }

  it('invalid two windows later even when nothing was checked in between', () => {
    const ids = new ConnectionIds();
    const id = issue(ids, 1000, V6);
    expect(check(ids, 1200, V6, id)).toBe(false);
  });

  it('invalid after several skipped windows', () => {
    for (const skip of [2, 3, 5, 100]) {
      const ids = new ConnectionIds();
      const id = issue(ids, 1000, V4);
      expect(check(ids, 1000 + skip * 120, V4, id), `skip ${skip}`).toBe(false);
      // nor does it come back later
      expect(check(ids, 1000 + skip * 120 + 120, V4, id), `skip ${skip} + 1`).toBe(false);
    }
  });

  it('a new id is issued in the next window and both are valid there', () => {
    const ids = new ConnectionIds();
    const old = issue(ids, 1000, V4);
    const fresh = issue(ids, 1100, V4);
    expect(hex(fresh)).not.toBe(hex(old));
    expect(check(ids, 1100, V4, old)).toBe(true);
    expect(check(ids, 1100, V4, fresh)).toBe(true);
    expect(check(ids, 1200, V4, old)).toBe(false);
    expect(check(ids, 1200, V4, fresh)).toBe(true);
    expect(check(ids, 1319, V4, fresh)).toBe(true);
    expect(check(ids, 1320, V4, fresh)).toBe(false);
  });

  it('a custom window length', () => {
    const ids = new ConnectionIds(30);
    // window 1 = [30, 60), window 2 = [60, 90), window 3 starts at 90
    const id = issue(ids, 45, V6);
    for (const now of [45, 59, 60, 89]) expect(check(ids, now, V6, id), `at ${now}`).toBe(true);
    expect(check(ids, 90, V6, id)).toBe(false);

    const ids10 = new ConnectionIds(10);
    const id10 = issue(ids10, 1000, V4);
    expect(check(ids10, 1019, V4, id10)).toBe(true);
    expect(check(ids10, 1020, V4, id10)).toBe(false);
  });

  it('the first window after start (now counted from 0)', () => {
    const ids = new ConnectionIds();
    const id = issue(ids, 0, V4);
    expect(check(ids, 0, V4, id)).toBe(true);
    expect(check(ids, 119, V4, id)).toBe(true);
    expect(check(ids, 239, V4, id)).toBe(true);
    expect(check(ids, 240, V4, id)).toBe(false);
  });
});

describe('ConnectionIds: keys', () => {
  it('is HalfSipHash-2-4 (64-bit output) of the 16 address bytes: reference vector', () => {
    // veorq/SipHash vectors.h, vectors_hsip64[16]: key 00..07, message 00..0f
    // → 73 36 aa d2 5f 7b f3 b5 (two little-endian words; the id writes them big-endian)
    const words = [0x03020100, 0x07060504];
    let n = 0;
    forced.next = () => words[n++ & 1];
    const ids = new ConnectionIds();
    const msg = Uint8Array.from({ length: 16 }, (_, i) => i);
    const id = issue(ids, 1000, msg);
    forced.next = null;
    expect(hex(id)).toBe('d2aa3673b5f37b5f');
    expect(check(ids, 1000, msg, id)).toBe(true);
  });

  it('keys come from the random source, not constants: an id forged under an all-zero key is refused', () => {
    // ids made under the key (0, 0): what anyone could compute if a key were left at zero
    forced.next = () => 0;
    const zero = new ConnectionIds();
    const forged = [V4, V6].map((a) => issue(zero, 1000, a));
    forced.next = null;

    for (const start of [0, 1, 59, 119, 120, 1000]) {
      const ids = new ConnectionIds();
      // first use, whichever window the clock is in (the server's clock starts at 0)
      expect(check(ids, start, V4, forged[0]), `first use at ${start}, IPv4`).toBe(false);
      expect(check(ids, start, V6, forged[1]), `first use at ${start}, IPv6`).toBe(false);
      // and in the window after it
      expect(check(ids, start + 120, V4, forged[0]), `next window after ${start}`).toBe(false);
    }
  });

  it('ids look random: each of the 64 bits is set in 40-60% of 10,000 ids', () => {
    const ids = new ConnectionIds();
    const counts = new Array<number>(64).fill(0);
    const addr = ip16('10.0.0.0');
    const id = new Uint8Array(8);
    const dv = new DataView(id.buffer);
    const tally = (): void => {
      for (let bit = 0; bit < 64; bit++) if (id[bit >> 3] & (1 << (bit & 7))) counts[bit]++;
    };
    // consecutive IPv4 addresses: inputs differing in a few low bits
    for (let i = 0; i < 5000; i++) {
      addr[14] = i >> 8;
      addr[15] = i & 0xff;
      ids.issue(1000, addr, 0, dv, 0);
      tally();
    }
    // IPv6 addresses differing in one counter in the middle
    const a6 = ip16('2001:db8::');
    for (let i = 0; i < 5000; i++) {
      a6[6] = i >> 8;
      a6[7] = i & 0xff;
      ids.issue(1000, a6, 0, dv, 0);
      tally();
    }
    for (let bit = 0; bit < 64; bit++) {
      expect(counts[bit], `bit ${bit}`).toBeGreaterThanOrEqual(4000);
      expect(counts[bit], `bit ${bit}`).toBeLessThanOrEqual(6000);
    }
  });
});

describe('ConnectionIds with a shared secret (nodes behind one UDP address)', () => {
  const SECRET = 'x'.repeat(16) + 'shared-by-every-node';
  const T = 1_800_000_000; // unix seconds: windows on the wall clock

  it('accepts on one node the ids another issued, in its window, the previous one and the next (clock skew)', () => {
    forced.next = () => 7; // the random source plays no part
    const a = new ConnectionIds(120, SECRET);
    const b = new ConnectionIds(120, SECRET);
    const id = issue(a, T, V4);
    expect(check(b, T, V4, id)).toBe(true);
    expect(check(new ConnectionIds(120, SECRET), T + 120, V4, id)).toBe(true); // the window after: still valid
    expect(check(new ConnectionIds(120, SECRET), T - 120, V4, id)).toBe(true); // a node whose clock is a window behind
    expect(check(new ConnectionIds(120, SECRET), T + 240, V4, id)).toBe(false); // two windows on: expired
    expect(check(b, T, V6, id)).toBe(false); // bound to the address, as ever
    expect(check(new ConnectionIds(120, `${SECRET}!`), T, V4, id)).toBe(false); // another secret
    expect(check(new ConnectionIds(120), T, V4, id)).toBe(false); // a node with keys of its own
  });
});

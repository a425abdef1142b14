import { describe, expect, it } from 'vitest';
import { prng } from '../../test/support/prng.js';
import { parseIp } from '../net/ip.js';
import { BanList, mix, parseCidr, type BanEntry } from './bans.js';

const NOW = 1_800_000_000;

function ip(text: string): Uint8Array {
  const out = new Uint8Array(16);
  if (!parseIp(text, out)) throw new Error(`bad test address ${text}`);
  return out;
}

function ban(cidr: string, expiresAt = 0): BanEntry {
  return { ...parseCidr(cidr), expiresAt };
}

/** Reference: byte-wise prefix compare against every entry. */
function naiveBanned(entries: readonly BanEntry[], addr: Uint8Array, now: number): boolean {
  return entries.some((e) => {
    if (e.expiresAt !== 0 && e.expiresAt <= now) return false;
    const whole = e.prefix >>> 3;
    for (let i = 0; i < whole; i++) if (addr[i] !== e.network[i]) return false;
    const mask = (0xff00 >>> (e.prefix & 7)) & 0xff;
    return mask === 0 || (addr[whole] & mask) === (e.network[whole] & mask);
  });
}

describe('parseCidr', () => {
  it('reads addresses and networks into the 16-byte space', () => {
    expect(parseCidr('1.2.3.4')).toEqual({ network: ip('1.2.3.4'), prefix: 128 });
    expect(parseCidr('1.2.3.0/24')).toEqual({ network: ip('1.2.3.0'), prefix: 120 });
    expect(parseCidr('0.0.0.0/0')).toEqual({ network: ip('0.0.0.0'), prefix: 96 });
    expect(parseCidr('2001:db8::/32')).toEqual({ network: ip('2001:db8::'), prefix: 32 });
    expect(parseCidr('2001:db8::1')).toEqual({ network: ip('2001:db8::1'), prefix: 128 });
    expect(parseCidr('::ffff:1.2.3.4/128')).toEqual({ network: ip('1.2.3.4'), prefix: 128 });
    expect(parseCidr('::/0')).toEqual({ network: new Uint8Array(16), prefix: 0 });
  });

  it('throws a clear error on bad input', () => {
    for (const bad of ['', 'banned', '1.2.3', '1.2.3.4.5', ' 1.2.3.4', '1.2.3.4/', '1.2.3.4/33', '1.2.3.4/-1', '1.2.3.4/08', '2001:db8::/129', '2001:db8::1/32', '1.2.3.4/24', '01.2.3.4']) {
      expect(() => parseCidr(bad), bad).toThrow(/^invalid IP or CIDR/);
    }
    expect(() => parseCidr('1.2.3.4/24')).toThrow(/did you mean 1\.2\.3\.0\/24/);
  });
});

describe('BanList', () => {
  it('bans single addresses and ranges, IPv4 and IPv6', () => {
    const b = new BanList();
    expect(b.banned(ip('1.2.3.4'), 0, NOW)).toBe(false);
    b.replace([ban('1.2.3.4'), ban('10.0.0.0/8'), ban('2001:db8::/32'), ban('2001:db8:1::1'), ban('fe80::1')]);
    expect(b.size).toBe(5);
    for (const yes of ['1.2.3.4', '10.255.0.1', '10.0.0.0', '2001:db8:ffff::', '2001:db8::1', 'fe80::1']) expect(b.banned(ip(yes), 0, NOW), yes).toBe(true);
    for (const no of ['1.2.3.5', '11.0.0.0', '9.255.255.255', '2001:db9::', 'fe80::2', '::', '::1.2.3.4']) expect(b.banned(ip(no), 0, NOW), no).toBe(false);
  });

  it('reads the address at an offset (AnnounceRequest.IP inside a request record)', () => {
    const b = new BanList();
    b.replace([ban('192.0.2.0/24')]);
    const rec = new Uint8Array(104);
    rec.set(ip('192.0.2.77'), 56);
    expect(b.banned(rec, 56, NOW)).toBe(true);
    expect(b.banned(rec, 40, NOW)).toBe(false);
  });

  it('keeps IPv4 and IPv6 apart, except for IPv6 networks that span the mapped range', () => {
    const b = new BanList();
    b.replace([ban('0.0.0.0/0')]);
    expect(b.banned(ip('203.0.113.9'), 0, NOW)).toBe(true);
    expect(b.banned(ip('2001:db8::1'), 0, NOW)).toBe(false);
    expect(b.banned(ip('::cb00:7109'), 0, NOW)).toBe(false); // the same 32 bits, not mapped
    b.replace([ban('::ffff:0:0/96')]); // IPv6 spelling of all IPv4
    expect(b.banned(ip('203.0.113.9'), 0, NOW)).toBe(true);
    expect(b.banned(ip('2001:db8::1'), 0, NOW)).toBe(false);
    b.replace([ban('::fffe:0:0/95')]); // covers ::fffe:0:0/96 and the mapped range
    expect(b.banned(ip('203.0.113.9'), 0, NOW)).toBe(true);
    expect(b.banned(ip('::fffe:1:2'), 0, NOW)).toBe(true);
    expect(b.banned(ip('::fffd:1:2'), 0, NOW)).toBe(false);
    b.replace([ban('::/0')]);
    expect(b.banned(ip('203.0.113.9'), 0, NOW)).toBe(true);
    expect(b.banned(ip('2001:db8::1'), 0, NOW)).toBe(true);
  });

  it('ignores host bits of an entry (the lookup masks the address the same way)', () => {
    const b = new BanList();
    b.replace([{ network: ip('1.2.3.4'), prefix: 120, expiresAt: 0 }, { network: ip('2001:db8::ffff'), prefix: 64, expiresAt: 0 }]);
    expect(b.banned(ip('1.2.3.200'), 0, NOW)).toBe(true);
    expect(b.banned(ip('2001:db8::1:2:3:4'), 0, NOW)).toBe(true);
    expect(b.banned(ip('2001:db8:0:1::'), 0, NOW)).toBe(false);
  });

  it('lets expired bans answer false, and the longest expiry of duplicates win', () => {
    const b = new BanList();
    b.replace([ban('1.2.3.4', NOW), ban('5.6.7.0/24', NOW + 1), ban('2001:db8::1', NOW - 1), ban('2001:db8::/48', NOW + 60)]);
    expect(b.banned(ip('1.2.3.4'), 0, NOW - 1)).toBe(true);
    expect(b.banned(ip('1.2.3.4'), 0, NOW)).toBe(false); // banned while now < expiresAt
    expect(b.banned(ip('5.6.7.8'), 0, NOW)).toBe(true);
    expect(b.banned(ip('5.6.7.8'), 0, NOW + 1)).toBe(false);
    // an expired /128 inside a live /48: the /48 still bans it
    expect(b.banned(ip('2001:db8::1'), 0, NOW)).toBe(true);
    expect(b.banned(ip('2001:db8::1'), 0, NOW + 60)).toBe(false);

    b.replace([ban('1.2.3.4', NOW + 5), ban('1.2.3.4', NOW + 50), ban('1.2.3.4', NOW + 7), ban('2001:db8::1', NOW + 5), ban('2001:db8::1', 0)]);
    expect(b.size).toBe(2);
    expect(b.banned(ip('1.2.3.4'), 0, NOW + 49)).toBe(true);
    expect(b.banned(ip('1.2.3.4'), 0, NOW + 50)).toBe(false);
    expect(b.banned(ip('2001:db8::1'), 0, 2 ** 40)).toBe(true); // 0 = never expires
  });

  it('replace() swaps the whole set, copies its input, and keeps the old set on bad input', () => {
    const b = new BanList();
    const entries = [ban('1.2.3.4'), ban('2001:db8::/32')];
    b.replace(entries);
    entries[0].network[15] = 5; // mutating the caller's entries changes nothing
    entries.push(ban('9.9.9.9'));
    expect(b.banned(ip('1.2.3.4'), 0, NOW)).toBe(true);
    expect(b.banned(ip('9.9.9.9'), 0, NOW)).toBe(false);
    b.replace([ban('9.9.9.9')]);
    expect(b.size).toBe(1);
    expect(b.banned(ip('1.2.3.4'), 0, NOW)).toBe(false);
    expect(b.banned(ip('2001:db8::1'), 0, NOW)).toBe(false);
    expect(b.banned(ip('9.9.9.9'), 0, NOW)).toBe(true);

    expect(() => b.replace([ban('1.1.1.1'), { network: new Uint8Array(4), prefix: 32, expiresAt: 0 }])).toThrow(/16 bytes/);
    expect(() => b.replace([{ network: new Uint8Array(16), prefix: 129, expiresAt: 0 }])).toThrow(/prefix/);
    expect(() => b.replace([{ network: new Uint8Array(16), prefix: 12.5, expiresAt: 0 }])).toThrow(/prefix/);
    expect(() => b.replace([{ network: new Uint8Array(16), prefix: 128, expiresAt: -1 }])).toThrow(/expiresAt/);
    expect(b.banned(ip('9.9.9.9'), 0, NOW)).toBe(true);
    expect(b.banned(ip('1.1.1.1'), 0, NOW)).toBe(false);
    b.replace([]);
    expect(b.size).toBe(0);
    expect(b.banned(ip('9.9.9.9'), 0, NOW)).toBe(false);
  });

  it('compares IPv6 networks in full when their keys collide', () => {
    // Birthday search for two /128s with the same 32-bit key.
    const rnd = prng(99);
    const seen = new Map<number, Uint8Array>();
    let pair: [Uint8Array, Uint8Array] | undefined;
    const word = (a: Uint8Array, o: number) => (a[o] << 24) | (a[o + 1] << 16) | (a[o + 2] << 8) | a[o + 3];
    while (pair === undefined) {
      const a = ip('2001:db8::');
      for (let i = 8; i < 16; i++) a[i] = (rnd() * 256) | 0;
      const k = mix(word(a, 0), word(a, 4), word(a, 8), word(a, 12));
      const other = seen.get(k);
      if (other !== undefined) pair = [other, a];
      else seen.set(k, a);
    }
    const [x, y] = pair;
    const b = new BanList();
    b.replace([{ network: x, prefix: 128, expiresAt: 0 }]);
    expect(b.banned(x, 0, NOW)).toBe(true);
    expect(b.banned(y, 0, NOW)).toBe(false);
    b.replace([{ network: x, prefix: 128, expiresAt: NOW - 1 }, { network: y, prefix: 128, expiresAt: 0 }]);
    expect(b.size).toBe(2);
    expect(b.banned(x, 0, NOW)).toBe(false);
    expect(b.banned(y, 0, NOW)).toBe(true);
  });

  it('agrees with a byte-wise reference over thousands of random networks and addresses', () => {
    const rnd = prng(2026);
    const byte = () => (rnd() * 256) | 0;
    const v4 = () => {
      const a = ip('0.0.0.0');
      for (let i = 12; i < 16; i++) a[i] = byte();
      return a;
    };
    // IPv6 clustered under a few /32s, as bans of one provider's users are.
    const bases = Array.from({ length: 4 }, () => [0x20, 0x01, byte(), byte()]);
    const v6 = () => {
      const a = new Uint8Array(16);
      a.set(bases[(rnd() * bases.length) | 0]);
      for (let i = 4; i < 16; i++) a[i] = rnd() < 0.3 ? 0 : byte();
      return a;
    };
    const expiry = () => {
      const r = rnd();
      return r < 0.6 ? 0 : r < 0.8 ? NOW - 1 - ((rnd() * 1000) | 0) : NOW + 1 + ((rnd() * 1000) | 0);
    };
    const entries: BanEntry[] = [];
    for (let i = 0; i < 3000; i++) entries.push({ network: v4(), prefix: 128, expiresAt: expiry() });
    for (let i = 0; i < 3000; i++) entries.push({ network: v6(), prefix: 128, expiresAt: expiry() });
    for (let i = 0; i < 30; i++) entries.push({ network: v4(), prefix: 96 + 8 + ((rnd() * 24) | 0), expiresAt: expiry() });
    for (let i = 0; i < 30; i++) entries.push({ network: v6(), prefix: 16 + ((rnd() * 112) | 0), expiresAt: expiry() });
    // Host bits are left in on purpose: the list must ignore them.
    const b = new BanList();
    b.replace(entries);

    const probes: Uint8Array[] = [];
    for (let i = 0; i < 10_000; i++) {
      const r = rnd();
      if (r < 0.5) {
        // inside some entry's network (random host bits), so hits and near misses are common
        const e = entries[(rnd() * entries.length) | 0];
        const a = Uint8Array.from(e.network);
        for (let bit = e.prefix; bit < 128; bit++) if (rnd() < 0.5) a[bit >>> 3] ^= 0x80 >>> (bit & 7);
        if (rnd() < 0.2) a[(rnd() * 16) | 0] ^= 1 << ((rnd() * 8) | 0); // and sometimes one bit off
        probes.push(a);
      } else {
        probes.push(r < 0.75 ? v4() : v6());
      }
    }
    const buf = new Uint8Array(16 * 3);
    let hits = 0;
    for (const a of probes) {
      const off = ((rnd() * 3) | 0) * 16;
      buf.set(a, off);
      const want = naiveBanned(entries, a, NOW);
      if (want) hits++;
      if (b.banned(buf, off, NOW) !== want) throw new Error(`disagrees on ${Buffer.from(a).toString('hex')}: expected ${want}`);
    }
    expect(hits).toBeGreaterThan(1500);
    expect(hits).toBeLessThan(probes.length - 1500);
  });
});

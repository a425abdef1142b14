import { describe, expect, it } from 'vitest';
import { prng } from '../../test/support/prng.js';
import { ClientAllowList, prefixHash } from './clients.js';

const b = (s: string) => Buffer.from(s, 'latin1');

/** A 20-byte peer_id starting with `prefix`, padded with digits. */
function id(prefix: string): Uint8Array {
  return b((prefix + '01234567890123456789').slice(0, 20));
}

describe('ClientAllowList', () => {
  it('allows every client while empty', () => {
    const l = new ClientAllowList();
    expect(l.size).toBe(0);
    expect(l.allowed(id('-XX0000-'), 0)).toBe(true);
    l.replace([b('-qB4')]);
    l.replace([]);
    expect(l.allowed(id('-XX0000-'), 0)).toBe(true);
  });

  it('allows peer_ids starting with one of the prefixes, of any lengths', () => {
    const l = new ClientAllowList();
    l.replace([b('-qB4'), b('-TR'), b('-lt0D6'), b('M'), b('-UT3550-abcdefghijkl')]);
    expect(l.size).toBe(5);
    for (const yes of ['-qB4630-', '-TR2940-', '-TR4060-', '-lt0D60-', 'M7-1-2--', '-UT3550-abcdefghijkl']) expect(l.allowed(id(yes), 0), yes).toBe(true);
    for (const no of ['-qB3', '-qb4630-', '-T', '-lt0D5', 'N', '-UT3550-abcdefghijkm', '-UT3550-']) expect(l.allowed(id(no), 0), no).toBe(false);
  });

  it('reads the peer_id at an offset (AnnounceRequest.PEER_ID inside a request record)', () => {
    const l = new ClientAllowList();
    l.replace([b('-qB')]);
    const rec = new Uint8Array(104);
    rec.set(id('-qB4630-'), 36);
    expect(l.allowed(rec, 36)).toBe(true);
    expect(l.allowed(rec, 0)).toBe(false);
  });

  it('replace() swaps the whole list, copies its input, dedupes and refuses bad prefixes', () => {
    const l = new ClientAllowList();
    const prefixes = [b('-qB'), b('-qB'), b('-TR')];
    l.replace(prefixes);
    expect(l.size).toBe(2);
    prefixes[0][1] = 0x78; // mutating the caller's bytes changes nothing
    expect(l.allowed(id('-qB4630-'), 0)).toBe(true);
    l.replace([b('-DE')]);
    expect(l.allowed(id('-qB4630-'), 0)).toBe(false);
    expect(l.allowed(id('-DE13F0-'), 0)).toBe(true);
    expect(() => l.replace([b('-qB'), new Uint8Array(0)])).toThrow(/1\.\.20 bytes/);
    expect(() => l.replace([new Uint8Array(21)])).toThrow(/1\.\.20 bytes/);
    expect(l.allowed(id('-DE13F0-'), 0)).toBe(true);
    expect(l.allowed(id('-qB4630-'), 0)).toBe(false);
  });

  it('compares prefixes in full when their hashes collide', () => {
    const rnd = prng(41);
    const seen = new Map<number, Uint8Array>();
    for (;;) {
      const p = Uint8Array.from({ length: 8 }, () => 0x21 + ((rnd() * 94) | 0));
      const other = seen.get(prefixHash(p));
      if (other === undefined) {
        seen.set(prefixHash(p), p);
        continue;
      }
      const l = new ClientAllowList();
      l.replace([other]);
      const pid = new Uint8Array(20);
      pid.set(p);
      expect(l.allowed(pid, 0)).toBe(false);
      pid.set(other);
      expect(l.allowed(pid, 0)).toBe(true);
      l.replace([other, p]);
      expect(l.size).toBe(2);
      break;
    }
  });

  it('agrees with a naive startsWith over thousands of random prefixes and peer_ids', () => {
    const rnd = prng(7);
    // A small alphabet so prefixes overlap and peer_ids often come close to one.
    const ch = () => 0x41 + ((rnd() * 16) | 0);
    const prefixes: Uint8Array[] = [b('P'), b('AB'), b('CD')];
    for (let i = 0; i < 2000; i++) {
      const len = rnd() < 0.7 ? 4 + ((rnd() * 5) | 0) : 3 + ((rnd() * 18) | 0);
      prefixes.push(Uint8Array.from({ length: len }, ch));
    }
    const l = new ClientAllowList();
    l.replace(prefixes);
    const naive = (pid: Uint8Array) =>
      prefixes.some((p) => {
        for (let i = 0; i < p.length; i++) if (pid[i] !== p[i]) return false;
        return true;
      });
    let allowed = 0;
    const rec = new Uint8Array(60);
    for (let i = 0; i < 10_000; i++) {
      const pid = Uint8Array.from({ length: 20 }, ch);
      if (rnd() < 0.5) pid.set(prefixes[(rnd() * prefixes.length) | 0]);
      if (rnd() < 0.3) pid[(rnd() * 8) | 0] = ch();
      rec.set(pid, 36);
      const want = naive(pid);
      if (want) allowed++;
      if (l.allowed(rec, 36) !== want) throw new Error(`disagrees on ${Buffer.from(pid).toString('latin1')}: expected ${want}`);
    }
    expect(allowed).toBeGreaterThan(1000);
    expect(allowed).toBeLessThan(9000);
  });
});

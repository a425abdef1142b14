import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  CidrList,
  clientAddressFromForwarded,
  formatIp,
  formatIpString,
  fromRemoteAddress,
  isV4Mapped,
  MAX_IP_TEXT,
  parseIp,
} from './ip.js';
import { prng } from '../../test/support/prng.js';

/** Parse or fail the test; returns a fresh 16-byte copy. */
function ip(text: string): Uint8Array {
  const out = new Uint8Array(16);
  expect(parseIp(text, out), text).toBe(true);
  return out;
}

function hex(buf: Uint8Array): string {
  return Buffer.from(buf).toString('hex');
}

/** Reference formatter: dotted quad for mapped IPv4, else WHATWG URL's canonical IPv6 host. */
function reference(buf: Uint8Array): string {
  if (isV4Mapped(buf)) return Array.from(buf.subarray(12)).join('.');
  const groups: string[] = [];
  for (let g = 0; g < 8; g++) groups.push(((buf[2 * g]! << 8) | buf[2 * g + 1]!).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

describe('parseIp / formatIp', () => {
  const valid: Array<[string, string]> = [
    ['0.0.0.0', '0.0.0.0'],
    ['1.2.3.4', '1.2.3.4'],
    ['255.255.255.255', '255.255.255.255'],
    ['10.0.0.1', '10.0.0.1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['[::1]', '::1'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['0000:0000:0000:0000:0000:0000:0000:0001', '::1'], // how uWS/hyper-express print it
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'], // a single zero group is not compressed
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'], // longest run wins
    ['1:0:0:2:0:0:3:4', '1::2:0:0:3:4'], // first of equal runs wins
    ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7'],
    ['fe80::', 'fe80::'],
    ['::ffff:1.2.3.4', '1.2.3.4'], // mapped IPv4 formats as a dotted quad
    ['::FFFF:102:304', '1.2.3.4'],
    ['[::ffff:1.2.3.4]', '1.2.3.4'],
    ['::1.2.3.4', '::102:304'], // deprecated v4-compatible: plain IPv6
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
  ];
  it.each(valid)('parses %s → %s', (text, canonical) => {
    const buf = ip(text);
    expect(formatIpString(buf)).toBe(canonical);
    expect(reference(buf)).toBe(canonical);
    expect(hex(ip(canonical))).toBe(hex(buf));
  });

  const invalid = [
    '', ' ', '1', '1.2.3', '1.2.3.4.5', '1.2.3.', '.1.2.3', '1..2.3', '256.1.1.1', '1.2.3.256', '01.2.3.4',
    '1.2.3.04', '00.0.0.0', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.-4', '0x7f.0.0.1', '1.2.3.4/8', '1.2.3.4:80',
    '[1.2.3.4]', '1e2.0.0.1', ':', ':::', '::::', '1:::2', '1::2::3', ':1::', '::1:', '1:', ':1', '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8:9', '1:2:3:4::5:6:7:8', '::1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8::', '12345::', '::00001', 'g::',
    '::ffff:01.2.3.4', '::ffff:1.2.3', '::1.2.3.4:5', '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3.4.5', '1.2.3.4::',
    'fe80::1%eth0', 'fe80::1%1', '[::1', '::1]', '[]', '[::1]:80', '[[::1]]', '::1 ', '1:2:3:4:5:6:7:8%', '١.٢.٣.٤',
  ];
  it.each(invalid)('rejects %j', (text) => {
    const out = new Uint8Array(20).fill(0xaa);
    expect(parseIp(text, out, 2)).toBe(false);
    expect(out[0]).toBe(0xaa); // never writes before its offset…
    expect(out[18]).toBe(0xaa); // …or past its 16 bytes
    expect(out[19]).toBe(0xaa);
  });

  it('agrees with net.isIP on random strings (zone ids and brackets aside)', () => {
    const rand = prng(1);
    const alphabet = '0123456789abcdefABCDEF::::....';
    const out = new Uint8Array(16);
    let validSeen = 0;
    for (let k = 0; k < 20000; k++) {
      let s = '';
      const len = 1 + Math.floor(rand() * 20);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
      const ok = parseIp(s, out);
      expect(ok, s).toBe(isIP(s) !== 0);
      if (ok) {
        validSeen++;
        expect(isIP(formatIpString(out)), s).not.toBe(0);
      }
    }
    expect(validSeen).toBeGreaterThan(100);
  });

  it('round-trips random addresses through format → parse, matching the reference formatter', () => {
    const rand = prng(2);
    const buf = new Uint8Array(16);
    const back = new Uint8Array(16);
    for (let k = 0; k < 5000; k++) {
      // Sparse group values so zero runs of every length and position occur.
      for (let g = 0; g < 8; g++) {
        const v = rand() < 0.5 ? 0 : Math.floor(rand() * 0x10000);
        buf[2 * g] = v >>> 8;
        buf[2 * g + 1] = v & 0xff;
      }
      if (rand() < 0.2) buf.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], 0);
      const text = formatIpString(buf);
      expect(text).toBe(reference(buf));
      expect(text.length).toBeLessThanOrEqual(MAX_IP_TEXT);
      expect(isIP(text), text).toBe(isV4Mapped(buf) ? 4 : 6);
      expect(parseIp(text, back), text).toBe(true);
      expect(hex(back)).toBe(hex(buf));
    }
  });

  it('parses every textual variant of an address to the same bytes', () => {
    const rand = prng(3);
    const buf = new Uint8Array(16);
    const back = new Uint8Array(16);
    for (let k = 0; k < 2000; k++) {
      const groups: string[] = [];
      for (let g = 0; g < 8; g++) {
        const v = rand() < 0.4 ? 0 : Math.floor(rand() * 0x10000);
        buf[2 * g] = v >>> 8;
        buf[2 * g + 1] = v & 0xff;
        let t = v.toString(16).padStart(1 + Math.floor(rand() * 4), '0');
        if (rand() < 0.5) t = t.toUpperCase();
        groups.push(t);
      }
      // Compress a random run of zero groups (any length >= 1), or none.
      let text = groups.join(':');
      const start = Math.floor(rand() * 8);
      let end = start;
      while (end < 8 && Number.parseInt(groups[end]!, 16) === 0) end++;
      if (end > start) text = `${groups.slice(0, start).join(':')}::${groups.slice(end).join(':')}`;
      if (rand() < 0.2) text = `[${text}]`;
      expect(parseIp(text, back), text).toBe(true);
      expect(hex(back), text).toBe(hex(buf));
    }
  });

  it('writes at offsets and reports the byte count', () => {
    const buf = new Uint8Array(40);
    expect(parseIp('2001:db8::ff00:42:8329', buf, 7)).toBe(true);
    expect(parseIp('192.168.1.1', buf, 23)).toBe(true);
    expect(buf[6]).toBe(0);
    expect(isV4Mapped(buf, 23)).toBe(true);
    expect(isV4Mapped(buf, 7)).toBe(false);
    const out = new Uint8Array(100).fill(0x21);
    const n = formatIp(buf, 7, out, 50);
    expect(Buffer.from(out.subarray(50, 50 + n)).toString('latin1')).toBe('2001:db8::ff00:42:8329');
    expect(out[49]).toBe(0x21);
    expect(out[50 + n]).toBe(0x21);
    expect(formatIp(buf, 23, out, 0)).toBe('192.168.1.1'.length);
    expect(formatIp(ip('1111:2222:3333:4444:5555:6666:7777:8888'), 0, out, 0)).toBe(MAX_IP_TEXT);
  });
});

describe('fromRemoteAddress', () => {
  it('maps 4-byte IPv4 and copies 16-byte IPv6', () => {
    const out = new Uint8Array(20);
    fromRemoteAddress(new Uint8Array([203, 0, 113, 7]).buffer, out, 2);
    expect(formatIpString(out, 2)).toBe('203.0.113.7');
    fromRemoteAddress(ip('2001:db8::7').slice().buffer, out, 2);
    expect(formatIpString(out, 2)).toBe('2001:db8::7');
    fromRemoteAddress(ip('::ffff:10.1.2.3').slice().buffer, out, 2);
    expect(formatIpString(out, 2)).toBe('10.1.2.3');
    fromRemoteAddress(new ArrayBuffer(0), out, 2);
    expect(formatIpString(out, 2)).toBe('::');
  });
});

describe('CidrList', () => {
  it('matches IPv4 networks against mapped addresses only', () => {
    const list = new CidrList(['10.0.0.0/8', '192.168.1.7']);
    expect(list.has(ip('10.0.0.0'))).toBe(true);
    expect(list.has(ip('10.255.255.255'))).toBe(true);
    expect(list.has(ip('::ffff:10.1.2.3'))).toBe(true);
    expect(list.has(ip('11.0.0.0'))).toBe(false);
    expect(list.has(ip('9.255.255.255'))).toBe(false);
    expect(list.has(ip('192.168.1.7'))).toBe(true);
    expect(list.has(ip('192.168.1.8'))).toBe(false);
    expect(list.has(ip('::a00:1'))).toBe(false); // v4-compatible, not mapped
    expect(list.has(ip('a00::'))).toBe(false);
  });

  it('handles /0, /32, /128, /127 and odd prefix lengths', () => {
    const anyV4 = new CidrList(['0.0.0.0/0']);
    expect(anyV4.has(ip('1.2.3.4'))).toBe(true);
    expect(anyV4.has(ip('255.255.255.255'))).toBe(true);
    expect(anyV4.has(ip('::1'))).toBe(false);
    const any = new CidrList(['::/0']);
    expect(any.has(ip('::1'))).toBe(true);
    expect(any.has(ip('1.2.3.4'))).toBe(true);
    const host4 = new CidrList(['1.2.3.4/32']);
    expect(host4.has(ip('1.2.3.4'))).toBe(true);
    expect(host4.has(ip('1.2.3.5'))).toBe(false);
    const host6 = new CidrList(['2001:db8::1/128']);
    expect(host6.has(ip('2001:db8::1'))).toBe(true);
    expect(host6.has(ip('2001:db8::'))).toBe(false);
    const pair = new CidrList(['2001:db8::/127']);
    expect(pair.has(ip('2001:db8::'))).toBe(true);
    expect(pair.has(ip('2001:db8::1'))).toBe(true);
    expect(pair.has(ip('2001:db8::2'))).toBe(false);
    const doc = new CidrList(['2001:db8::/32', '172.16.0.0/12', '100.64.0.0/10']);
    expect(doc.has(ip('2001:db8:ffff:ffff:ffff:ffff:ffff:ffff'))).toBe(true);
    expect(doc.has(ip('2001:db9::'))).toBe(false);
    expect(doc.has(ip('172.31.255.255'))).toBe(true);
    expect(doc.has(ip('172.32.0.0'))).toBe(false);
    expect(doc.has(ip('100.127.0.1'))).toBe(true);
    expect(doc.has(ip('100.128.0.1'))).toBe(false);
    const mapped = new CidrList(['::ffff:0:0/96']); // IPv6 spelling of "all IPv4"
    expect(mapped.has(ip('8.8.8.8'))).toBe(true);
    expect(mapped.has(ip('::1'))).toBe(false);
    expect(new CidrList([]).has(ip('::1'))).toBe(false);
  });

  it('agrees with a bit-by-bit reference on random prefixes', () => {
    const rand = prng(4);
    const addr = new Uint8Array(16);
    for (let k = 0; k < 500; k++) {
      const len = Math.floor(rand() * 129);
      for (let i = 0; i < 16; i++) addr[i] = Math.floor(rand() * 256);
      const net = addr.slice();
      for (let b = len; b < 128; b++) net[b >>> 3]! &= ~(0x80 >>> (b & 7));
      const list = new CidrList([`${formatIpString(net)}${isV4Mapped(net) ? '' : `/${len}`}`]);
      expect(list.has(addr)).toBe(isV4Mapped(net) ? hex(addr) === hex(net) : true);
      const flipped = addr.slice();
      if (len > 0) {
        const bit = Math.floor(rand() * len);
        flipped[bit >>> 3]! ^= 0x80 >>> (bit & 7);
        expect(list.has(flipped)).toBe(false);
      }
    }
  });

  it('refuses bad entries with the entry and a reason', () => {
    expect(CidrList.validate('10.0.0.0/8')).toBeNull();
    expect(CidrList.validate('::1')).toBeNull();
    expect(CidrList.validate('[2001:db8::]/32')).toBeNull();
    for (const bad of ['', 'localhost', '10.0.0.0/', '10.0.0.0/33', '::/129', '10.0.0.0/08', '10.0.0.0/-1',
      '10.0.0.0/8/8', '10.0.0.0 /8', '1.2.3.4/ 8', '10.0.0.0/8 ', 'fe80::1%eth0/64']) {
      expect(CidrList.validate(bad), bad).not.toBeNull();
      expect(() => new CidrList(['::1', bad]), bad).toThrow(`"${bad}"`);
    }
    expect(CidrList.validate('10.0.0.1/8')).toMatch(/host bits.*10\.0\.0\.0\/8/);
    expect(CidrList.validate('192.168.1.0/16')).toMatch(/192\.168\.0\.0\/16/);
    expect(CidrList.validate('2001:db8::1/32')).toMatch(/2001:db8::\/32/);
  });
});

describe('clientAddressFromForwarded', () => {
  const trusted = new CidrList(['10.0.0.0/8', '::1']);
  const out = new Uint8Array(16);
  const walk = (header: string): string | false =>
    clientAddressFromForwarded(header, trusted, out) ? formatIpString(out) : false;

  it('takes the rightmost untrusted address', () => {
    expect(walk('203.0.113.9')).toBe('203.0.113.9');
    expect(walk('198.51.100.1, 203.0.113.9')).toBe('203.0.113.9'); // the left one may be forged
    expect(walk('198.51.100.1, 203.0.113.9, 10.0.0.2')).toBe('203.0.113.9');
    expect(walk('198.51.100.1,203.0.113.9,10.0.0.2,::1')).toBe('203.0.113.9');
    expect(walk(' 2001:db8::5 ,\t10.9.9.9 ')).toBe('2001:db8::5');
    expect(walk('[2001:db8::5], 10.1.1.1')).toBe('2001:db8::5');
  });

  it('returns the leftmost when every hop is a trusted proxy', () => {
    expect(walk('10.0.0.3, 10.0.0.2')).toBe('10.0.0.3');
    expect(walk('::1')).toBe('::1');
  });

  it('stops at invalid or empty entries', () => {
    expect(walk('')).toBe(false);
    expect(walk(' ')).toBe(false);
    expect(walk('unknown')).toBe(false);
    expect(walk('203.0.113.9, garbage, 10.0.0.1')).toBe(false);
    expect(walk('203.0.113.9, , 10.0.0.1')).toBe(false);
    expect(walk(',10.0.0.1')).toBe(false);
    expect(walk('10.0.0.1,')).toBe(false);
    expect(walk('203.0.113.9:4711')).toBe(false);
    // An invalid entry left of the first untrusted one does not matter: the walk stopped there.
    expect(walk('garbage, 203.0.113.9, 10.0.0.1')).toBe('203.0.113.9');
  });
});

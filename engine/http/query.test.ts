import querystring from 'node:querystring';
import { describe, expect, it } from 'vitest';
import { AF_COMPACT, AF_HAS_KEY, AF_NO_PEER_ID, AF_V6, AnnounceRequest, EVENT_COMPLETED, EVENT_NONE, EVENT_PAUSED, EVENT_STARTED, EVENT_STOPPED, KIND_ANNOUNCE } from '../../contract/requests.js';
import { FAILURES, type FailureCode } from '../errors.js';
import { parseIp } from '../net/ip.js';
import { AnnounceParser, decodeBytes, parseUint, ScrapeParser, type AnnounceOptions } from './query.js';
import { prng } from '../../test/support/prng.js';

// Present in Node (the architecture notes recommend it for ids) but missing from @types/node.
const { unescapeBuffer } = querystring as unknown as { unescapeBuffer(s: string, decodeSpaces: boolean): Buffer };

/** Every byte as %XX (upper or lower case hex). */
function pct(bytes: Uint8Array, lower = false): string {
  let s = '';
  for (const b of bytes) {
    const h = b.toString(16).padStart(2, '0');
    s += '%' + (lower ? h : h.toUpperCase());
  }
  return s;
}

const IH = new Uint8Array(Array.from({ length: 20 }, (_, i) => (i * 37 + 0x80) & 0xff));
const PID = new Uint8Array(Buffer.from('-qB4630-abcdefghijkl', 'latin1'));

const BASE: [string, string][] = [
  ['info_hash', pct(IH)],
  ['peer_id', pct(PID)],
  ['port', '6881'],
  ['uploaded', '0'],
  ['downloaded', '0'],
  ['left', '100'],
];

function query(params: [string, string][]): string {
  return params.map(([k, v]) => `${k}=${v}`).join('&');
}

/** BASE with `key` replaced (or added) by `value`, or removed when value is undefined. */
function withParam(key: string, value: string | undefined): string {
  const ps = BASE.filter(([k]) => k !== key);
  if (value !== undefined) ps.push([key, value]);
  return query(ps);
}

const OPTS: AnnounceOptions = { numwantDefault: 50, numwantMax: 200, allowClientIp: false };
const V4_CLIENT = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1]);

function parser(opts: Partial<AnnounceOptions> = {}): AnnounceParser {
  const p = new AnnounceParser({ ...OPTS, ...opts });
  p.rec.set(V4_CLIENT, AnnounceRequest.IP); // the server writes the socket address first
  return p;
}

function parsed(s: string, opts: Partial<AnnounceOptions> = {}): AnnounceParser {
  const p = parser(opts);
  expect(p.parse(s), s).toBeNull();
  return p;
}

function ip16(text: string): Uint8Array {
  const out = new Uint8Array(16);
  expect(parseIp(text, out, 0)).toBe(true);
  return out;
}

/** Reference FNV-1a (32-bit) over UTF-16 code units, in BigInt arithmetic. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5n;
  for (let i = 0; i < s.length; i++) h = ((h ^ BigInt(s.charCodeAt(i))) * 0x01000193n) & 0xffffffffn;
  return Number(h);
}

describe('parseUint', () => {
  it('parses non-negative decimal integers up to 2^53 − 1', () => {
    const cases: [string, number][] = [
      ['0', 0], ['7', 7], ['10', 10], ['007', 7], ['65535', 65535], ['4294967296', 4294967296],
      ['9007199254740991', Number.MAX_SAFE_INTEGER], ['0000000000000001', 1],
    ];
    for (const [s, v] of cases) expect(parseUint(s, 0, s.length), s).toBe(v);
  });

  it('returns -1 for empty, signs, non-digits, 2^53 and more than 16 digits', () => {
    for (const s of ['', '-1', '+1', '1.0', '1e3', ' 1', '1 ', 'a', '0x10', '9007199254740992', '9999999999999999', '12345678901234567', '00000000000000001', '٣', '１']) {
      expect(parseUint(s, 0, s.length), JSON.stringify(s)).toBe(-1);
    }
  });

  it('reads only s[start, end)', () => {
    expect(parseUint('ab123cd', 2, 5)).toBe(123);
    expect(parseUint('ab123cd', 2, 6)).toBe(-1);
    expect(parseUint('ab123cd', 3, 3)).toBe(-1);
  });

  it('agrees with Number() on random digit strings', () => {
    const rnd = prng(3);
    for (let i = 0; i < 5000; i++) {
      const len = 1 + Math.floor(rnd() * 17);
      let s = '';
      for (let k = 0; k < len; k++) s += String(Math.floor(rnd() * 10));
      const n = Number(s);
      const want = len > 16 || n > Number.MAX_SAFE_INTEGER ? -1 : n;
      expect(parseUint(s, 0, s.length), s).toBe(want);
    }
  });
});

describe('decodeBytes', () => {
  it('decodes every byte value from %XX in upper and lower case', () => {
    const out = new Uint8Array(256 + 4);
    for (const lower of [false, true]) {
      const all = new Uint8Array(256).map((_, i) => i);
      const s = pct(all, lower);
      out.fill(0xaa);
      expect(decodeBytes(s, 0, s.length, out, 2, 256)).toBe(256);
      expect(out.subarray(2, 258)).toEqual(all);
      expect(out[0]).toBe(0xaa); // nothing written outside
      expect(out[258]).toBe(0xaa);
    }
  });

  it('takes printable ASCII literally and + as a space', () => {
    const out = new Uint8Array(1);
    for (let c = 0x21; c <= 0x7e; c++) {
      if (c === 0x25) continue; // '%'
      const s = String.fromCharCode(c);
      expect(decodeBytes(s, 0, 1, out, 0, 1), s).toBe(1);
      expect(out[0], s).toBe(c === 0x2b ? 0x20 : c);
    }
  });

  it('rejects malformed escapes, control, space, DEL and non-ASCII characters', () => {
    const out = new Uint8Array(32);
    for (const s of ['%', '%4', 'ab%', 'ab%4', '%G1', '%1G', '%%41', '% 1', ' ', '\t', '\x00', '\x1f', '\x7f', '\x80', 'é', 'ÿ', '€', '😀', 'a b']) {
      expect(decodeBytes(s, 0, s.length, out, 0, 20), JSON.stringify(s)).toBe(-1);
    }
  });

  it('returns the count (short input) or -1 (more than wanted)', () => {
    const out = new Uint8Array(32);
    expect(decodeBytes('abc', 0, 3, out, 0, 20)).toBe(3);
    expect(decodeBytes('', 0, 0, out, 0, 20)).toBe(0);
    expect(decodeBytes('a'.repeat(20), 0, 20, out, 0, 20)).toBe(20);
    expect(decodeBytes('a'.repeat(21), 0, 21, out, 0, 20)).toBe(-1);
    expect(decodeBytes('%41'.repeat(21), 0, 63, out, 0, 20)).toBe(-1);
    // an escape cut by the end of the range is malformed even if the string goes on
    expect(decodeBytes('x%41', 0, 3, out, 0, 20)).toBe(-1);
    expect(decodeBytes('x%41', 0, 4, out, 0, 20)).toBe(2);
    expect(out.subarray(0, 2)).toEqual(new Uint8Array([0x78, 0x41]));
  });

  it('agrees with querystring.unescapeBuffer on random well-formed input', () => {
    const rnd = prng(11);
    const out = new Uint8Array(64);
    const literal = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i)).filter((c) => c !== '%');
    for (let i = 0; i < 5000; i++) {
      const n = Math.floor(rnd() * 40);
      let s = '';
      for (let k = 0; k < n; k++) {
        if (rnd() < 0.5) s += literal[Math.floor(rnd() * literal.length)];
        else {
          const h = Math.floor(rnd() * 256).toString(16).padStart(2, '0');
          s += '%' + (rnd() < 0.5 ? h : h.toUpperCase());
        }
      }
      const want = new Uint8Array(unescapeBuffer(s, true));
      const got = decodeBytes(s, 0, s.length, out, 0, 64);
      expect(got, s).toBe(want.length);
      expect(out.subarray(0, got)).toEqual(want);
    }
  });
});

describe('AnnounceParser: valid announces', () => {
  it('fills the request record from every BEP 3 parameter', () => {
    const p = parsed(query([
      ['info_hash', pct(IH)],
      ['peer_id', pct(PID)],
      ['port', '51413'],
      ['uploaded', '123456789012345'],
      ['downloaded', '9007199254740991'],
      ['left', '0'],
      ['event', 'completed'],
    ]));
    const rec = p.rec;
    expect(rec[AnnounceRequest.KIND]).toBe(KIND_ANNOUNCE);
    expect(rec[AnnounceRequest.EVENT]).toBe(EVENT_COMPLETED);
    expect(rec.slice(AnnounceRequest.INFO_HASH, AnnounceRequest.INFO_HASH + 20)).toEqual(IH);
    expect(rec.slice(AnnounceRequest.PEER_ID, AnnounceRequest.PEER_ID + 20)).toEqual(PID);
    expect(p.dv.getUint16(AnnounceRequest.PORT, true)).toBe(51413);
    expect(p.dv.getFloat64(AnnounceRequest.UPLOADED, true)).toBe(123456789012345);
    expect(p.dv.getFloat64(AnnounceRequest.DOWNLOADED, true)).toBe(Number.MAX_SAFE_INTEGER);
    expect(p.dv.getFloat64(AnnounceRequest.LEFT, true)).toBe(0);
    expect(p.dv.getUint16(AnnounceRequest.NUMWANT, true)).toBe(50);
    expect(rec[AnnounceRequest.FLAGS]).toBe(AF_COMPACT);
    expect(p.dv.getUint32(AnnounceRequest.KEY, true)).toBe(0);
    expect(rec.slice(AnnounceRequest.IP, AnnounceRequest.IP + 16)).toEqual(V4_CLIENT); // untouched
  });

  it('takes parameters in any order, ignores unknown ones and empty pairs', () => {
    const shuffled = [...BASE].reverse();
    const s = '&&' + query([['trackerid', 'xyz'], ...shuffled, ['supportcrypto', '1'], ['corrupt', '0'], ['requirecrypto', ''], ['x', '%ZZ'], ['novalue', '']]) + '&&unkeyed&';
    const p = parsed(s);
    expect(p.rec.slice(AnnounceRequest.INFO_HASH, AnnounceRequest.INFO_HASH + 20)).toEqual(IH);
    expect(p.dv.getFloat64(AnnounceRequest.LEFT, true)).toBe(100);
  });

  it('decodes all 256 byte values into info_hash and peer_id exactly', () => {
    for (let start = 0; start < 256; start += 7) {
      const ih = new Uint8Array(20).map((_, i) => (start + i) & 0xff);
      const pid = new Uint8Array(20).map((_, i) => (255 - start - i) & 0xff);
      const p = parsed(query([['info_hash', pct(ih, start % 2 === 0)], ['peer_id', pct(pid)], ...BASE.slice(2)]));
      expect(p.rec.slice(AnnounceRequest.INFO_HASH, AnnounceRequest.INFO_HASH + 20)).toEqual(ih);
      expect(p.rec.slice(AnnounceRequest.PEER_ID, AnnounceRequest.PEER_ID + 20)).toEqual(pid);
    }
  });

  it('mixes literal characters, escapes and + (a space) in ids', () => {
    const p = parsed(withParam('peer_id', '-UT3550-+%20ab%7E~%2B=.*()'));
    expect(Buffer.from(p.rec.slice(AnnounceRequest.PEER_ID, AnnounceRequest.PEER_ID + 20)).toString('latin1')).toBe('-UT3550-  ab~~+=.*()');
    const q = parsed(withParam('info_hash', '++++++++++%2b%2B%2B%2B%2B%2B%2B%2B%2B%2B'));
    expect(q.rec.slice(AnnounceRequest.INFO_HASH, AnnounceRequest.INFO_HASH + 20)).toEqual(new Uint8Array([...Array(10).fill(0x20), ...Array(10).fill(0x2b)]));
  });

  it('maps every event value', () => {
    const events: [string, number][] = [
      ['started', EVENT_STARTED], ['stopped', EVENT_STOPPED], ['completed', EVENT_COMPLETED], ['paused', EVENT_PAUSED],
      ['empty', EVENT_NONE], ['', EVENT_NONE],
    ];
    for (const [v, e] of events) expect(parsed(withParam('event', v)).rec[AnnounceRequest.EVENT], v).toBe(e);
    expect(parsed(query(BASE) + '&event').rec[AnnounceRequest.EVENT]).toBe(EVENT_NONE);
  });

  it('compact, no_peer_id and key set their flags; the key is an FNV-1a digest of its text', () => {
    expect(parsed(withParam('compact', '1')).rec[AnnounceRequest.FLAGS]).toBe(AF_COMPACT);
    expect(parsed(withParam('compact', '0')).rec[AnnounceRequest.FLAGS]).toBe(0);
    expect(parsed(query(BASE) + '&compact=0&no_peer_id=1').rec[AnnounceRequest.FLAGS]).toBe(AF_NO_PEER_ID);
    expect(parsed(query(BASE) + '&no_peer_id=0').rec[AnnounceRequest.FLAGS]).toBe(AF_COMPACT);
    expect(parsed(query(BASE) + '&no_peer_id').rec[AnnounceRequest.FLAGS]).toBe(AF_COMPACT | AF_NO_PEER_ID);
    for (const key of ['', '1', 'abcdef12', 'A%20B', '0x1F2E3D4C', 'z'.repeat(40)]) {
      const p = parsed(query(BASE) + `&key=${key}`);
      expect(p.rec[AnnounceRequest.FLAGS], key).toBe(AF_COMPACT | AF_HAS_KEY);
      expect(p.dv.getUint32(AnnounceRequest.KEY, true), key).toBe(fnv1a(key));
    }
    expect(fnv1a('a')).toBe(0xe40c292c); // the published FNV-1a test vector
    expect(parsed(query(BASE) + '&key=a').dv.getUint32(AnnounceRequest.KEY, true)).toBe(0xe40c292c);
  });

  it('numwant: default, explicit, 0, -1 for the default, clamped to numwant_max', () => {
    const nw = (s: string, opts: Partial<AnnounceOptions> = {}): number => parsed(s, opts).dv.getUint16(AnnounceRequest.NUMWANT, true);
    expect(nw(query(BASE))).toBe(50);
    expect(nw(withParam('numwant', '0'))).toBe(0);
    expect(nw(withParam('numwant', '17'))).toBe(17);
    expect(nw(withParam('numwant', '200'))).toBe(200);
    expect(nw(withParam('numwant', '201'))).toBe(200);
    expect(nw(withParam('numwant', '70000'))).toBe(200);
    expect(nw(withParam('numwant', '9007199254740991'))).toBe(200);
    expect(nw(withParam('numwant', '-1'))).toBe(50);
    expect(nw(withParam('numwant', '-1'), { numwantDefault: 30 })).toBe(30);
    expect(nw(query(BASE), { numwantDefault: 500, numwantMax: 80 })).toBe(80);
    expect(nw(withParam('numwant', '-1'), { numwantDefault: 500, numwantMax: 80 })).toBe(80);
    expect(nw(withParam('numwant', '5000'), { numwantMax: 65535 })).toBe(5000);
  });

  it('port bounds 1 and 65535', () => {
    expect(parsed(withParam('port', '1')).dv.getUint16(AnnounceRequest.PORT, true)).toBe(1);
    expect(parsed(withParam('port', '65535')).dv.getUint16(AnnounceRequest.PORT, true)).toBe(65535);
    expect(parsed(withParam('port', '00080')).dv.getUint16(AnnounceRequest.PORT, true)).toBe(80);
  });

  it('a repeated parameter: the last one counts', () => {
    const p = parsed(query(BASE) + '&port=1&left=0&port=2');
    expect(p.dv.getUint16(AnnounceRequest.PORT, true)).toBe(2);
    expect(p.dv.getFloat64(AnnounceRequest.LEFT, true)).toBe(0);
  });

  it('starts every parse afresh (event, flags, key, numwant do not leak)', () => {
    const p = parser();
    expect(p.parse(query(BASE) + '&event=started&compact=0&no_peer_id=1&key=k&numwant=3')).toBeNull();
    expect(p.rec[AnnounceRequest.EVENT]).toBe(EVENT_STARTED);
    expect(p.parse(query(BASE))).toBeNull();
    expect(p.rec[AnnounceRequest.EVENT]).toBe(EVENT_NONE);
    expect(p.rec[AnnounceRequest.FLAGS]).toBe(AF_COMPACT);
    expect(p.dv.getUint32(AnnounceRequest.KEY, true)).toBe(0);
    expect(p.dv.getUint16(AnnounceRequest.NUMWANT, true)).toBe(50);
    // a failure in between does not spoil the next parse
    expect(p.parse(withParam('port', '0'))).toBe('invalid_port');
    expect(p.parse(query(BASE))).toBeNull();
    expect(p.dv.getUint16(AnnounceRequest.PORT, true)).toBe(6881);
  });
});

describe('AnnounceParser: client address', () => {
  it('sets AF_V6 from the address the server wrote', () => {
    const p = parser();
    p.rec.set(ip16('2001:db8::7'), AnnounceRequest.IP);
    expect(p.parse(query(BASE))).toBeNull();
    expect(p.rec[AnnounceRequest.FLAGS]).toBe(AF_COMPACT | AF_V6);
    p.rec.set(ip16('192.0.2.1'), AnnounceRequest.IP);
    expect(p.parse(query(BASE))).toBeNull();
    expect(p.rec[AnnounceRequest.FLAGS]).toBe(AF_COMPACT);
  });

  it('ignores ip, ipv4 and ipv6 unless allowClientIp', () => {
    for (const k of ['ip', 'ipv4', 'ipv6']) {
      const p = parsed(query(BASE) + `&${k}=2001:db8::1`);
      expect(p.rec.slice(AnnounceRequest.IP, AnnounceRequest.IP + 16)).toEqual(V4_CLIENT);
      expect(p.rec[AnnounceRequest.FLAGS] & AF_V6).toBe(0);
      // even a malformed one is just ignored
      expect(parser().parse(query(BASE) + `&${k}=not-an-ip`)).toBeNull();
    }
  });

  it('honours ip, ipv4 and ipv6 when allowClientIp, with AF_V6 following the address', () => {
    const allow = { allowClientIp: true };
    const cases: [string, string, string][] = [
      ['ip', '192.0.2.33', '192.0.2.33'],
      ['ip', '2001:db8::1', '2001:db8::1'],
      ['ipv4', '198.51.100.7', '198.51.100.7'],
      ['ipv6', '2001%3Adb8%3A%3Aabcd', '2001:db8::abcd'],
      ['ipv6', '%5B2001:db8::2%5D', '2001:db8::2'],
      ['ip', '::ffff:203.0.113.9', '203.0.113.9'],
    ];
    for (const [k, v, text] of cases) {
      const p = parsed(query(BASE) + `&${k}=${v}`, allow);
      const want = ip16(text);
      expect(p.rec.slice(AnnounceRequest.IP, AnnounceRequest.IP + 16), `${k}=${v}`).toEqual(want);
      const v6 = text.includes(':');
      expect(p.rec[AnnounceRequest.FLAGS] & AF_V6, `${k}=${v}`).toBe(v6 ? AF_V6 : 0);
    }
    // an empty value keeps the socket address
    const e = parsed(query(BASE) + '&ip=', allow);
    expect(e.rec.slice(AnnounceRequest.IP, AnnounceRequest.IP + 16)).toEqual(V4_CLIENT);
  });

  it('rejects a malformed ip when it would be honoured, leaving the address alone', () => {
    for (const v of ['not-an-ip', '1.2.3', '256.1.1.1', '01.2.3.4', '%ZZ', '%E0%A4%A', 'fe80::1%25eth0', '1.2.3.4:80']) {
      const p = parser({ allowClientIp: true });
      expect(p.parse(query(BASE) + `&ip=${v}`), v).toBe('invalid_ip');
      expect(p.rec.slice(AnnounceRequest.IP, AnnounceRequest.IP + 16)).toEqual(V4_CLIENT);
    }
  });
});

describe('AnnounceParser: failures', () => {
  const fails = (s: string, opts: Partial<AnnounceOptions> = {}): FailureCode | null => parser(opts).parse(s);

  it('reports each missing required parameter', () => {
    const codes: [string, FailureCode][] = [
      ['info_hash', 'missing_info_hash'], ['peer_id', 'missing_peer_id'], ['port', 'missing_port'],
      ['uploaded', 'missing_uploaded'], ['downloaded', 'missing_downloaded'], ['left', 'missing_left'],
    ];
    for (const [k, code] of codes) expect(fails(withParam(k, undefined)), k).toBe(code);
    expect(fails('')).toBe('missing_info_hash');
    expect(fails('&&&')).toBe('missing_info_hash');
    // a misspelt key is an unknown parameter, so the real one is missing
    expect(fails(query(BASE).replace('peer_id', 'peerid'))).toBe('missing_peer_id');
    expect(fails(query(BASE).replace('info_hash', 'INFO_HASH'))).toBe('missing_info_hash');
  });

  it('rejects info_hash and peer_id that are not 20 bytes or not well-formed', () => {
    const bad = [
      '', pct(IH.subarray(0, 19)), pct(IH) + '%00', pct(IH) + 'a', 'a'.repeat(19), 'a'.repeat(21),
      pct(IH).slice(0, -1), pct(IH).slice(0, -2), '%G0' + 'a'.repeat(19), 'a'.repeat(19) + '%', 'a'.repeat(19) + 'é',
      'a'.repeat(19) + '€', 'a'.repeat(19) + ' ', 'a'.repeat(19) + '\x7f', 'a'.repeat(10) + '%2g' + 'a'.repeat(9),
    ];
    for (const v of bad) {
      expect(fails(withParam('info_hash', v)), `info_hash=${v}`).toBe('invalid_info_hash');
      expect(fails(withParam('peer_id', v)), `peer_id=${v}`).toBe('invalid_peer_id');
    }
    expect(fails(query(BASE) + '&info_hash')).toBe('invalid_info_hash');
  });

  it('rejects bad, zero and huge ports', () => {
    for (const v of ['', '0', '65536', '70000', '-1', '+80', 'abc', '6881x', '68 81', '99999999999999999', '1e3', '%36%38']) {
      expect(fails(withParam('port', v)), v).toBe('invalid_port');
    }
  });

  it('rejects non-numeric, negative and ≥ 2^53 counters', () => {
    for (const [k, code] of [['uploaded', 'invalid_uploaded'], ['downloaded', 'invalid_downloaded'], ['left', 'invalid_left']] as const) {
      for (const v of ['', '-1', '-0', 'abc', '1.5', '1e3', '0x10', '9007199254740992', '18446744073709551615', '12345678901234567', ' 1', 'NaN', 'Infinity']) {
        expect(fails(withParam(k, v)), `${k}=${v}`).toBe(code);
      }
    }
  });

  it('rejects unknown events, bad compact values and bad numwant', () => {
    for (const v of ['start', 'Started', 'STOPPED', 'completed ', 'none', 'update', '1', '%73tarted']) {
      expect(fails(withParam('event', v)), v).toBe('invalid_event');
    }
    for (const v of ['', '2', '01', 'true', 'yes', '-1']) expect(fails(withParam('compact', v)), v).toBe('invalid_compact');
    for (const v of ['', 'abc', '-2', '-10', '1.5', '9007199254740992', '--1', '-1 ']) expect(fails(withParam('numwant', v)), v).toBe('invalid_numwant');
  });

  it('returns the first failure met while walking the query', () => {
    expect(fails(query(BASE) + '&port=0&event=bogus')).toBe('invalid_port');
    expect(fails(query(BASE) + '&event=bogus&port=0')).toBe('invalid_event');
    // a malformed value wins over a missing parameter
    expect(fails('left=x')).toBe('invalid_left');
  });

  it('never throws and only returns registered codes on 10,000 random query strings', () => {
    const rnd = prng(2025);
    const alphabet = ['%', '&', '=', '+', 'a', 'Z', '0', '9', '-', '.', ':', '[', ']', ' ', '\x00', '\x7f', 'é', '€', '😀', '%4', '%zz', '%41'];
    const keys = ['info_hash', 'peer_id', 'port', 'uploaded', 'downloaded', 'left', 'event', 'numwant', 'compact', 'no_peer_id', 'key', 'ip', 'ipv4', 'ipv6', 'trackerid', ''];
    const values = [
      () => pct(IH), () => pct(PID), () => String(Math.floor(rnd() * 70000)), () => '-1', () => '', () => 'started',
      () => '9007199254740992', () => '2001:db8::1', () => '1.2.3.4', () => '%E0%A4%A',
      () => Array.from({ length: Math.floor(rnd() * 30) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join(''),
    ];
    const codes = new Set(Object.keys(FAILURES));
    const seen = new Set<string | null>();
    for (let i = 0; i < 10_000; i++) {
      let s: string;
      if (rnd() < 0.3) {
        s = Array.from({ length: Math.floor(rnd() * 80) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
      } else {
        const ps: [string, string][] = rnd() < 0.5 ? [...BASE] : [];
        const extra = Math.floor(rnd() * 6);
        for (let k = 0; k < extra; k++) ps.splice(Math.floor(rnd() * (ps.length + 1)), 0, [keys[Math.floor(rnd() * keys.length)]!, values[Math.floor(rnd() * values.length)]!()]);
        s = query(ps);
      }
      const p = parser({ allowClientIp: rnd() < 0.5 });
      let r: FailureCode | null = null;
      expect(() => {
        r = p.parse(s);
      }, s).not.toThrow();
      seen.add(r);
      if (r !== null) {
        expect(codes.has(r), r).toBe(true);
      } else {
        const port = p.dv.getUint16(AnnounceRequest.PORT, true);
        expect(port).toBeGreaterThanOrEqual(1);
        expect(p.dv.getUint16(AnnounceRequest.NUMWANT, true)).toBeLessThanOrEqual(200);
        expect(p.rec[AnnounceRequest.FLAGS]! & ~(AF_COMPACT | AF_NO_PEER_ID | AF_V6 | AF_HAS_KEY)).toBe(0);
        expect(p.rec[AnnounceRequest.EVENT]).toBeLessThanOrEqual(EVENT_PAUSED);
      }
    }
    // the fuzz reached both successes and many kinds of failure
    expect(seen.has(null)).toBe(true);
    expect(seen.size).toBeGreaterThan(8);
  });

  it('round-trips random valid announces exactly', () => {
    const rnd = prng(77);
    const events = [['', EVENT_NONE], ['started', EVENT_STARTED], ['stopped', EVENT_STOPPED], ['completed', EVENT_COMPLETED], ['paused', EVENT_PAUSED]] as const;
    const enc = (b: Uint8Array): string => {
      let s = '';
      for (const x of b) {
        const c = String.fromCharCode(x);
        if (x > 0x20 && x < 0x7f && !'%&+#'.includes(c) && rnd() < 0.5) s += c;
        else if (x === 0x20 && rnd() < 0.5) s += '+';
        else {
          const h = x.toString(16).padStart(2, '0');
          s += '%' + (rnd() < 0.5 ? h.toUpperCase() : h);
        }
      }
      return s;
    };
    for (let i = 0; i < 3000; i++) {
      const ih = new Uint8Array(20).map(() => Math.floor(rnd() * 256));
      const pid = new Uint8Array(20).map(() => Math.floor(rnd() * 256));
      const port = 1 + Math.floor(rnd() * 65535);
      const up = Math.floor(rnd() * Number.MAX_SAFE_INTEGER);
      const down = Math.floor(rnd() * 2 ** 40);
      const left = rnd() < 0.3 ? 0 : Math.floor(rnd() * 2 ** 33);
      const [ev, evCode] = events[Math.floor(rnd() * events.length)]!;
      const numwant = Math.floor(rnd() * 400);
      const ps: [string, string][] = [
        ['info_hash', enc(ih)], ['peer_id', enc(pid)], ['port', String(port)], ['uploaded', String(up)],
        ['downloaded', String(down)], ['left', String(left)], ['event', ev], ['numwant', String(numwant)],
      ];
      for (let k = ps.length - 1; k > 0; k--) {
        const j = Math.floor(rnd() * (k + 1));
        [ps[k], ps[j]] = [ps[j]!, ps[k]!];
      }
      const p = parsed(query(ps));
      expect(p.rec.slice(AnnounceRequest.INFO_HASH, AnnounceRequest.INFO_HASH + 20)).toEqual(ih);
      expect(p.rec.slice(AnnounceRequest.PEER_ID, AnnounceRequest.PEER_ID + 20)).toEqual(pid);
      expect(p.dv.getUint16(AnnounceRequest.PORT, true)).toBe(port);
      expect(p.dv.getFloat64(AnnounceRequest.UPLOADED, true)).toBe(up);
      expect(p.dv.getFloat64(AnnounceRequest.DOWNLOADED, true)).toBe(down);
      expect(p.dv.getFloat64(AnnounceRequest.LEFT, true)).toBe(left);
      expect(p.rec[AnnounceRequest.EVENT]).toBe(evCode);
      expect(p.dv.getUint16(AnnounceRequest.NUMWANT, true)).toBe(Math.min(numwant, 200));
    }
  });
});

describe('ScrapeParser', () => {
  const H = [0, 1, 2, 3].map((k) => new Uint8Array(20).map((_, i) => (i * 13 + k * 71 + 0xf0) & 0xff));

  it('collects several info_hashes in request order, duplicates kept', () => {
    const sp = new ScrapeParser(5);
    expect(sp.parse(`info_hash=${pct(H[2]!)}&foo=bar&info_hash=${pct(H[0]!, true)}&info_hash=${pct(H[2]!)}&passkey=x`)).toBeNull();
    expect(sp.count).toBe(3);
    expect(sp.hashes.slice(0, 20)).toEqual(H[2]);
    expect(sp.hashes.slice(20, 40)).toEqual(H[0]);
    expect(sp.hashes.slice(40, 60)).toEqual(H[2]);
  });

  it('an empty query names no hash; a later parse starts over', () => {
    const sp = new ScrapeParser(5);
    expect(sp.parse('')).toBeNull();
    expect(sp.count).toBe(0);
    expect(sp.parse(`info_hash=${pct(H[0]!)}&info_hash=${pct(H[1]!)}`)).toBeNull();
    expect(sp.count).toBe(2);
    expect(sp.parse(`info_hash=${pct(H[3]!)}`)).toBeNull();
    expect(sp.count).toBe(1);
    expect(sp.hashes.slice(0, 20)).toEqual(H[3]);
  });

  it('accepts exactly maxHashes and refuses one more', () => {
    const sp = new ScrapeParser(3);
    expect(sp.parse(H.slice(0, 3).map((h) => `info_hash=${pct(h)}`).join('&'))).toBeNull();
    expect(sp.count).toBe(3);
    expect(sp.parse(H.map((h) => `info_hash=${pct(h)}`).join('&'))).toBe('too_many_info_hashes');
  });

  it('refuses info_hashes that are not 20 well-formed bytes', () => {
    const sp = new ScrapeParser(4);
    for (const v of ['', pct(H[0]!.subarray(0, 19)), pct(H[0]!) + '%00', 'a'.repeat(19) + '%', 'a'.repeat(19) + 'é', '%GG' + 'a'.repeat(19)]) {
      expect(sp.parse(`info_hash=${pct(H[1]!)}&info_hash=${v}`), v).toBe('invalid_info_hash');
    }
  });

  it('never throws on 10,000 random query strings', () => {
    const rnd = prng(5);
    const sp = new ScrapeParser(8);
    const parts = ['info_hash=', pct(H[0]!), '&', '=', '%', '%4', 'a', 'é', 'info_hash', '+', pct(H[1]!.subarray(0, 10))];
    for (let i = 0; i < 10_000; i++) {
      const s = Array.from({ length: Math.floor(rnd() * 20) }, () => parts[Math.floor(rnd() * parts.length)]).join('');
      let r: FailureCode | null = null;
      expect(() => {
        r = sp.parse(s);
      }).not.toThrow();
      if (r !== null) expect(['invalid_info_hash', 'too_many_info_hashes']).toContain(r);
      else expect(sp.count).toBeLessThanOrEqual(8);
    }
  });
});

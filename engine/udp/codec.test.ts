import { describe, expect, it } from 'vitest';
import { AF_COMPACT, AF_HAS_KEY, AF_V6, AnnounceRequest, EVENT_COMPLETED, EVENT_NONE, EVENT_STARTED, EVENT_STOPPED, KIND_ANNOUNCE } from '../../contract/requests.js';
import { FAILURES, type FailureCode } from '../errors.js';
import { formatIpString, parseIp } from '../net/ip.js';
import { PASSKEY_RE } from '../policy/registry.js';
import {
  ACTION_ANNOUNCE, ACTION_CONNECT, ACTION_ERROR, ACTION_SCRAPE, ANNOUNCE_BYTES, CONNECT_BYTES, Kind, SCRAPE_HEADER,
  UdpAnnounceParser, classify, writeAnnounceHeader, writeConnect, writeError,
} from './codec.js';
import { prng } from '../../test/support/prng.js';
import type { AnnounceOptions } from '../http/query.js';

// BEP 15 (UDP tracker protocol) and BEP 41 (URL data options), packets built by hand
// byte by byte from the spec's tables, independently of the codec.

const ascii = (s: string): number[] => Array.from(s, (c) => c.charCodeAt(0));
const PROTOCOL_ID = 0x41727101980n;

function bytes(n: number, seed: number): Uint8Array {
  const r = prng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * 256);
  return out;
}

function ip16(text: string): Uint8Array {
  const out = new Uint8Array(16);
  if (!parseIp(text, out, 0)) throw new Error(`bad ip ${text}`);
  return out;
}

// ----------------------------------------------------------------------------- builders

function connectPacket(opts: { protocol?: bigint; action?: number; tid?: number; len?: number } = {}): Uint8Array {
  const p = new Uint8Array(opts.len ?? 16);
  const full = new Uint8Array(Math.max(16, p.length));
  const dv = new DataView(full.buffer);
  dv.setBigUint64(0, opts.protocol ?? PROTOCOL_ID, false);
  dv.setUint32(8, opts.action ?? ACTION_CONNECT, false);
  dv.setUint32(12, opts.tid ?? 0x01020304, false);
  p.set(full.subarray(0, p.length));
  return p;
}

interface Announce {
  connectionId?: bigint;
  action?: number;
  tid?: number;
  infoHash?: Uint8Array;
  peerId?: Uint8Array;
  downloaded?: bigint;
  left?: bigint;
  uploaded?: bigint;
  event?: number;
  ip?: number;
  key?: number;
  numWant?: number;
  port?: number;
  options?: number[];
}

const INFO_HASH = bytes(20, 1);
const PEER_ID = bytes(20, 2);

/** BEP 15 announce request: offsets from the spec's table, then BEP 41 options. */
function announcePacket(a: Announce = {}): Uint8Array {
  const opts = a.options ?? [];
  const p = new Uint8Array(98 + opts.length);
  const dv = new DataView(p.buffer);
  dv.setBigUint64(0, a.connectionId ?? 0x1122334455667788n, false);
  dv.setUint32(8, a.action ?? ACTION_ANNOUNCE, false);
  dv.setUint32(12, a.tid ?? 0xcafebabe, false);
  p.set(a.infoHash ?? INFO_HASH, 16);
  p.set(a.peerId ?? PEER_ID, 36);
  dv.setBigUint64(56, a.downloaded ?? 0n, false);
  dv.setBigUint64(64, a.left ?? 0n, false);
  dv.setBigUint64(72, a.uploaded ?? 0n, false);
  dv.setUint32(80, a.event ?? 0, false);
  dv.setUint32(84, a.ip ?? 0, false);
  dv.setUint32(88, a.key ?? 0, false);
  dv.setInt32(92, a.numWant ?? -1, false);
  dv.setUint16(96, a.port ?? 6881, false);
  p.set(opts, 98);
  return p;
}

const OPTS: AnnounceOptions = { numwantDefault: 50, numwantMax: 200, allowClientIp: false };

/**
 * Parse like the server does: the packet copied into a larger reused buffer (whose tail
 * holds stale bytes), the client's address written into AnnounceRequest.IP first.
 */
function parse(
  parser: UdpAnnounceParser,
  pkt: Uint8Array,
  client = '198.51.100.7',
  stale = 0,
): FailureCode | null {
  const buf = new Uint8Array(2048).fill(stale);
  buf.set(pkt);
  parser.rec.set(ip16(client), AnnounceRequest.IP);
  return parser.parse(buf, new DataView(buf.buffer), pkt.length);
}

const recIp = (parser: UdpAnnounceParser): string => formatIpString(parser.rec, AnnounceRequest.IP);
const urlText = (parser: UdpAnnounceParser): string => Buffer.from(parser.url.subarray(0, parser.urlLength)).toString('latin1');

function announceWithUrl(parts: (string | number[])[]): Uint8Array {
  const options: number[] = [];
  for (const part of parts) {
    if (typeof part === 'string') options.push(2, part.length, ...ascii(part));
    else options.push(...part);
  }
  return announcePacket({ options });
}

// ----------------------------------------------------------------------------- classify

describe('classify', () => {
  const cls = (p: Uint8Array, len = p.length): Kind => classify(new DataView(p.buffer, p.byteOffset, p.byteLength), len);

  it('knows the BEP 15 action numbers', () => {
    expect([ACTION_CONNECT, ACTION_ANNOUNCE, ACTION_SCRAPE, ACTION_ERROR]).toEqual([0, 1, 2, 3]);
    expect([CONNECT_BYTES, ANNOUNCE_BYTES, SCRAPE_HEADER]).toEqual([16, 98, 16]);
  });

  it('connect with the magic protocol id is Connect', () => {
    expect(cls(connectPacket())).toBe(Kind.Connect);
    // extra trailing bytes do not matter
    expect(cls(connectPacket({ len: 40 }))).toBe(Kind.Connect);
  });

  it('connect with a wrong protocol id is dropped (either half, any single bit)', () => {
    expect(cls(connectPacket({ protocol: 0n }))).toBe(Kind.Drop);
    expect(cls(connectPacket({ protocol: 0x41700000000n }))).toBe(Kind.Drop); // low word wrong
    expect(cls(connectPacket({ protocol: 0x27101980n }))).toBe(Kind.Drop); // high word wrong
    expect(cls(connectPacket({ protocol: 0x2710198000000417n }))).toBe(Kind.Drop); // words swapped
    expect(cls(connectPacket({ protocol: 0x8019102717040000n }))).toBe(Kind.Drop); // little-endian
    for (let bit = 0; bit < 64; bit++) {
      expect(cls(connectPacket({ protocol: PROTOCOL_ID ^ (1n << BigInt(bit)) })), `bit ${bit}`).toBe(Kind.Drop);
    }
  });

  it('announce needs 98 bytes', () => {
    expect(cls(announcePacket())).toBe(Kind.Announce);
    expect(cls(announcePacket({ options: [2, 3, 0x2f, 0x61, 0x62] }))).toBe(Kind.Announce);
    expect(cls(announcePacket().subarray(0, 97))).toBe(Kind.Drop);
    expect(cls(announcePacket().subarray(0, 16))).toBe(Kind.Drop);
    // the length argument rules, not the buffer size
    expect(cls(announcePacket(), 97)).toBe(Kind.Drop);
    expect(cls(announcePacket(), 98)).toBe(Kind.Announce);
  });

  it('scrape needs the 16-byte header and at least one info_hash', () => {
    const p = new Uint8Array(16 + 20 * 3);
    const dv = new DataView(p.buffer);
    dv.setBigUint64(0, 0x1122334455667788n, false);
    dv.setUint32(8, ACTION_SCRAPE, false);
    expect(cls(p)).toBe(Kind.Scrape);
    expect(cls(p, 36)).toBe(Kind.Scrape);
    expect(cls(p, 35)).toBe(Kind.Drop);
    expect(cls(p, 16)).toBe(Kind.Drop);
    expect(cls(p.subarray(0, 35))).toBe(Kind.Drop);
  });

  it('an unknown action with a full header is BadAction', () => {
    for (const action of [ACTION_ERROR, 4, 5, 255, 256, 0x01000000, 0x7fffffff, 0xffffffff]) {
      const p = connectPacket({ action, protocol: 0x1122334455667788n });
      expect(cls(p), `action ${action}`).toBe(Kind.BadAction);
    }
    // little-endian "announce" (1 in the wrong byte) is not announce
    const le = announcePacket({ action: 0x01000000 });
    expect(cls(le)).toBe(Kind.BadAction);
  });

  it('anything shorter than 16 bytes is dropped, whatever it holds', () => {
    const packets = [connectPacket(), announcePacket(), connectPacket({ action: 9 })];
    for (const full of packets) {
      for (let len = 0; len < 16; len++) {
        expect(cls(full.subarray(0, len)), `len ${len}`).toBe(Kind.Drop);
        expect(cls(full, len), `len ${len} (long buffer)`).toBe(Kind.Drop);
      }
    }
  });
});

// ----------------------------------------------------------------------------- announce fields

describe('UdpAnnounceParser: fields', () => {
  it('puts every field at its AnnounceRequest offset', () => {
    const parser = new UdpAnnounceParser(OPTS);
    const pkt = announcePacket({
      downloaded: 0x0102030405n,
      left: 0x1f_0000_0001n,
      uploaded: 0x123456789abcn,
      event: 2,
      key: 0xdeadbeef,
      numWant: 77,
      port: 51413,
    });
    expect(parse(parser, pkt)).toBeNull();
    const rec = parser.rec;
    const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
    expect(rec[AnnounceRequest.KIND]).toBe(KIND_ANNOUNCE);
    expect(rec.subarray(AnnounceRequest.INFO_HASH, AnnounceRequest.INFO_HASH + 20)).toEqual(INFO_HASH);
    expect(rec.subarray(AnnounceRequest.PEER_ID, AnnounceRequest.PEER_ID + 20)).toEqual(PEER_ID);
    expect(dv.getFloat64(AnnounceRequest.DOWNLOADED, true)).toBe(0x0102030405);
    expect(dv.getFloat64(AnnounceRequest.LEFT, true)).toBe(0x1f_0000_0001);
    expect(dv.getFloat64(AnnounceRequest.UPLOADED, true)).toBe(0x123456789abc);
    expect(rec[AnnounceRequest.EVENT]).toBe(EVENT_STARTED);
    expect(dv.getUint32(AnnounceRequest.KEY, true)).toBe(0xdeadbeef);
    expect(dv.getUint16(AnnounceRequest.NUMWANT, true)).toBe(77);
    expect(dv.getUint16(AnnounceRequest.PORT, true)).toBe(51413);
    expect(recIp(parser)).toBe('198.51.100.7');
    expect(rec[AnnounceRequest.FLAGS]).toBe(AF_COMPACT | AF_HAS_KEY);
    expect(parser.urlLength).toBe(0);
  });

  it('reads info_hash and peer_id from the right 20-byte windows (no off-by-one)', () => {
    const parser = new UdpAnnounceParser(OPTS);
    const ih = Uint8Array.from({ length: 20 }, (_, i) => 0xa0 + i);
    const pid = Uint8Array.from({ length: 20 }, (_, i) => 0x10 + i);
    expect(parse(parser, announcePacket({ infoHash: ih, peerId: pid }))).toBeNull();
    expect(Array.from(parser.rec.subarray(AnnounceRequest.INFO_HASH, AnnounceRequest.INFO_HASH + 20))).toEqual(Array.from(ih));
    expect(Array.from(parser.rec.subarray(AnnounceRequest.PEER_ID, AnnounceRequest.PEER_ID + 20))).toEqual(Array.from(pid));
  });

  it('keeps each u64 field apart (distinct values in each)', () => {
    const parser = new UdpAnnounceParser(OPTS);
    expect(parse(parser, announcePacket({ downloaded: 1n, left: 2n, uploaded: 3n }))).toBeNull();
    const dv = parser.dv;
    expect([dv.getFloat64(AnnounceRequest.DOWNLOADED, true), dv.getFloat64(AnnounceRequest.LEFT, true), dv.getFloat64(AnnounceRequest.UPLOADED, true)]).toEqual([1, 2, 3]);
  });

  const u64Fields = [
    ['downloaded', AnnounceRequest.DOWNLOADED, 'invalid_downloaded'],
    ['left', AnnounceRequest.LEFT, 'invalid_left'],
    ['uploaded', AnnounceRequest.UPLOADED, 'invalid_uploaded'],
  ] as const;

  for (const [field, off, code] of u64Fields) {
    it(`${field}: u64 values up to 2^53 - 1 exactly`, () => {
      const parser = new UdpAnnounceParser(OPTS);
      const values = [0n, 1n, 0xffffffffn, 0x100000000n, 0x100000001n, 0xfffffffffn, 2n ** 52n + 12345n, 2n ** 53n - 2n, 2n ** 53n - 1n];
      for (const v of values) {
        expect(parse(parser, announcePacket({ [field]: v })), `${v}`).toBeNull();
        expect(parser.dv.getFloat64(off, true), `${v}`).toBe(Number(v));
        expect(Number.isSafeInteger(parser.dv.getFloat64(off, true))).toBe(true);
      }
    });

    it(`${field}: 2^53 and above → ${code}`, () => {
      const parser = new UdpAnnounceParser(OPTS);
      for (const v of [2n ** 53n, 2n ** 53n + 1n, 2n ** 54n, 2n ** 63n, 2n ** 64n - 1n, 0x0020_0000_0000_0000n, 0x8000_0000_0000_0000n]) {
        expect(parse(parser, announcePacket({ [field]: v })), `${v}`).toBe(code);
      }
    });
  }

  it('reports the first bad u64 in packet order (downloaded, left, uploaded)', () => {
    const parser = new UdpAnnounceParser(OPTS);
    const big = 2n ** 60n;
    expect(parse(parser, announcePacket({ downloaded: big, left: big, uploaded: big }))).toBe('invalid_downloaded');
    expect(parse(parser, announcePacket({ left: big, uploaded: big }))).toBe('invalid_left');
  });

  it('maps BEP 15 events 0..3 and rejects 4 and above', () => {
    const parser = new UdpAnnounceParser(OPTS);
    const expected = [EVENT_NONE, EVENT_COMPLETED, EVENT_STARTED, EVENT_STOPPED];
    for (let e = 0; e < 4; e++) {
      parser.rec[AnnounceRequest.EVENT] = 0xee;
      expect(parse(parser, announcePacket({ event: e }))).toBeNull();
      expect(parser.rec[AnnounceRequest.EVENT], `event ${e}`).toBe(expected[e]);
    }
    for (const e of [4, 5, 255, 256, 0x01000000, 0x7fffffff, 0xffffffff]) {
      expect(parse(parser, announcePacket({ event: e })), `event ${e}`).toBe('invalid_event');
    }
  });

  it('port 0 is invalid_port; 1..65535 land in AnnounceRequest.PORT', () => {
    const parser = new UdpAnnounceParser(OPTS);
    expect(parse(parser, announcePacket({ port: 0 }))).toBe('invalid_port');
    for (const port of [1, 80, 0x0100, 6881, 0x1234, 65535]) {
      expect(parse(parser, announcePacket({ port }))).toBeNull();
      expect(parser.dv.getUint16(AnnounceRequest.PORT, true), `port ${port}`).toBe(port);
    }
  });

  it('num_want: -1 and other negatives → default, 0 kept, above max → clamped', () => {
    const parser = new UdpAnnounceParser({ numwantDefault: 50, numwantMax: 200, allowClientIp: false });
    const cases: [number, number][] = [
      [-1, 50], [-2, 50], [-200, 50], [-0x80000000, 50],
      [0, 0], [1, 1], [199, 199], [200, 200], [201, 200], [1000, 200], [65535, 200], [65536, 200], [0x7fffffff, 200],
    ];
    for (const [numWant, want] of cases) {
      expect(parse(parser, announcePacket({ numWant }))).toBeNull();
      expect(parser.dv.getUint16(AnnounceRequest.NUMWANT, true), `num_want ${numWant}`).toBe(want);
    }
  });

  it('num_want: a default above the maximum is clamped too', () => {
    const parser = new UdpAnnounceParser({ numwantDefault: 500, numwantMax: 100, allowClientIp: false });
    expect(parse(parser, announcePacket({ numWant: -1 }))).toBeNull();
    expect(parser.dv.getUint16(AnnounceRequest.NUMWANT, true)).toBe(100);
  });

  it('copies the key (any 32-bit value) and sets AF_HAS_KEY unless it is 0 (no key: it proves nothing)', () => {
    const parser = new UdpAnnounceParser(OPTS);
    for (const key of [0, 1, 0x80000000, 0xffffffff, 0x01020304]) {
      expect(parse(parser, announcePacket({ key }))).toBeNull();
      expect(parser.dv.getUint32(AnnounceRequest.KEY, true), `key ${key}`).toBe(key);
      expect(parser.rec[AnnounceRequest.FLAGS] & (AF_HAS_KEY | AF_COMPACT)).toBe(key === 0 ? AF_COMPACT : AF_HAS_KEY | AF_COMPACT);
    }
  });

  it('AF_V6 is set iff the client address is not IPv4-mapped', () => {
    const parser = new UdpAnnounceParser(OPTS);
    const cases: [string, boolean][] = [
      ['198.51.100.7', false],
      ['0.0.0.0', false],
      ['255.255.255.255', false],
      ['::ffff:10.0.0.1', false],
      ['2001:db8::1', true],
      ['::1', true],
      ['::', true],
      ['::10.0.0.1', true], // IPv4-compatible, not mapped
      ['::fffe:a00:1', true],
      ['::1:ffff:a00:1', true],
      ['fe80::ffff:a00:1', true],
    ];
    for (const [client, v6] of cases) {
      expect(parse(parser, announcePacket(), client)).toBeNull();
      expect((parser.rec[AnnounceRequest.FLAGS] & AF_V6) !== 0, client).toBe(v6);
      expect(recIp(parser), client).toBe(formatIpString(ip16(client)));
    }
  });

  describe('the ip field', () => {
    const named = 0xcb007105; // 203.0.113.5

    it('is ignored without allowClientIp', () => {
      const parser = new UdpAnnounceParser({ ...OPTS, allowClientIp: false });
      expect(parse(parser, announcePacket({ ip: named }), '198.51.100.7')).toBeNull();
      expect(recIp(parser)).toBe('198.51.100.7');
    });

    it('replaces an IPv4 client address with allowClientIp', () => {
      const parser = new UdpAnnounceParser({ ...OPTS, allowClientIp: true });
      expect(parse(parser, announcePacket({ ip: named }), '198.51.100.7')).toBeNull();
      expect(recIp(parser)).toBe('203.0.113.5');
      expect(Array.from(parser.rec.subarray(AnnounceRequest.IP, AnnounceRequest.IP + 16))).toEqual(Array.from(ip16('203.0.113.5')));
      expect(parser.rec[AnnounceRequest.FLAGS] & AF_V6).toBe(0);
    });

    it('0 means "use the sender address"', () => {
      const parser = new UdpAnnounceParser({ ...OPTS, allowClientIp: true });
      expect(parse(parser, announcePacket({ ip: 0 }), '198.51.100.7')).toBeNull();
      expect(recIp(parser)).toBe('198.51.100.7');
    });

    it('is ignored for IPv6 clients (it cannot carry an IPv6 address)', () => {
      const parser = new UdpAnnounceParser({ ...OPTS, allowClientIp: true });
      expect(parse(parser, announcePacket({ ip: named }), '2001:db8::42')).toBeNull();
      expect(recIp(parser)).toBe('2001:db8::42');
      expect(parser.rec[AnnounceRequest.FLAGS] & AF_V6).toBe(AF_V6);
    });
  });

  it('does not depend on state left by the previous packet', () => {
    const parser = new UdpAnnounceParser({ ...OPTS, allowClientIp: true });
    expect(parse(parser, announcePacket({ event: 3, key: 7, numWant: 9, port: 99, ip: 0x01020304, downloaded: 5n, options: [2, 2, 0x2f, 0x61] }), '::1')).toBeNull();
    expect(parse(parser, announcePacket({ event: 0, key: 8, numWant: -1, port: 100, downloaded: 6n }), '10.1.2.3')).toBeNull();
    expect(parser.rec[AnnounceRequest.EVENT]).toBe(EVENT_NONE);
    expect(parser.dv.getUint32(AnnounceRequest.KEY, true)).toBe(8);
    expect(parser.dv.getUint16(AnnounceRequest.NUMWANT, true)).toBe(50);
    expect(parser.dv.getUint16(AnnounceRequest.PORT, true)).toBe(100);
    expect(parser.dv.getFloat64(AnnounceRequest.DOWNLOADED, true)).toBe(6);
    expect(parser.rec[AnnounceRequest.FLAGS] & AF_V6).toBe(0);
    expect(recIp(parser)).toBe('10.1.2.3');
    expect(parser.urlLength).toBe(0);
  });
});

// ----------------------------------------------------------------------------- BEP 41 options

describe('UdpAnnounceParser: BEP 41 options', () => {
  const PK = '0123456789abcdef0123456789ABCDEF';

  it('no options: empty URL data, and stale bytes after the packet are not read', () => {
    const parser = new UdpAnnounceParser(OPTS);
    // the reused buffer beyond len is full of 0x02 (URLData type, length 2)
    expect(parse(parser, announcePacket(), '10.0.0.1', 0x02)).toBeNull();
    expect(parser.urlLength).toBe(0);
    expect(parser.passkey()).toBeNull();
  });

  it('one URLData option', () => {
    const parser = new UdpAnnounceParser(OPTS);
    expect(parse(parser, announceWithUrl([`/${PK}/announce`]))).toBeNull();
    expect(urlText(parser)).toBe(`/${PK}/announce`);
    expect(parser.passkey()).toBe(PK);
  });

  it('several URLData options concatenate', () => {
    const parser = new UdpAnnounceParser(OPTS);
    expect(parse(parser, announceWithUrl(['/abcd', 'ef0123456789abcdef0123456789/announce']))).toBeNull();
    expect(urlText(parser)).toBe('/abcdef0123456789abcdef0123456789/announce');
    expect(parser.passkey()).toBe('abcdef0123456789abcdef0123456789');

    expect(parse(parser, announceWithUrl(['/abcd', 'ef0123456789', 'abcdef0123456789/announce?x=1']))).toBeNull();
    expect(urlText(parser)).toBe('/abcdef0123456789abcdef0123456789/announce?x=1');
    expect(parser.passkey()).toBe('abcdef0123456789abcdef0123456789');
  });

  it('EndOfOptions (0) stops the list', () => {
    const parser = new UdpAnnounceParser(OPTS);
    expect(parse(parser, announceWithUrl([[0], `/${PK}`]))).toBeNull();
    expect(parser.urlLength).toBe(0);
    expect(parse(parser, announceWithUrl(['/ab', [0], 'cd']))).toBeNull();
    expect(urlText(parser)).toBe('/ab');
  });

  it('NOPs (1) are single bytes and skipped', () => {
    const parser = new UdpAnnounceParser(OPTS);
    expect(parse(parser, announceWithUrl([[1, 1, 1], '/ab', [1], 'cd', [1, 1]]))).toBeNull();
    expect(urlText(parser)).toBe('/abcd');
  });

  it('unknown option types have a length byte and are skipped', () => {
    const parser = new UdpAnnounceParser(OPTS);
    // type 3 with 4 bytes that look like options (0 = end, 2 = URLData) and type 0xff with 0 bytes
    expect(parse(parser, announceWithUrl(['/ab', [3, 4, 0, 2, 1, 0x2f], [0xff, 0], 'cd', [0x80, 2, 2, 2], 'ef']))).toBeNull();
    expect(urlText(parser)).toBe('/abcdef');
  });

  it('a zero-length URLData option adds nothing', () => {
    const parser = new UdpAnnounceParser(OPTS);
    expect(parse(parser, announceWithUrl(['/ab', [2, 0], 'cd']))).toBeNull();
    expect(urlText(parser)).toBe('/abcd');
  });

  it('a truncated option ends the list (data already collected is kept)', () => {
    const parser = new UdpAnnounceParser(OPTS);
    // URLData claiming 10 bytes with 3 present
    expect(parse(parser, announceWithUrl(['/ab', [2, 10, 0x63, 0x64, 0x65]]), '10.0.0.1', 0x41)).toBeNull();
    expect(urlText(parser)).toBe('/ab');
    // URLData one byte short (the stale buffer behind the packet would complete it)
    expect(parse(parser, announceWithUrl(['/ab', [2, 3, 0x63, 0x64]]), '10.0.0.1', 0x65)).toBeNull();
    expect(urlText(parser)).toBe('/ab');
    // URLData type byte as the last byte (no length)
    expect(parse(parser, announceWithUrl(['/ab', [2]]), '10.0.0.1', 0x01)).toBeNull();
    expect(urlText(parser)).toBe('/ab');
    // unknown type truncated, then what would be a URL option
    expect(parse(parser, announceWithUrl(['/ab', [9, 200, 2, 2, 0x63, 0x64]]))).toBeNull();
    expect(urlText(parser)).toBe('/ab');
    // unknown type with no length byte
    expect(parse(parser, announceWithUrl(['/ab', [9]]))).toBeNull();
    expect(urlText(parser)).toBe('/ab');
    // exactly fitting option is not truncated
    expect(parse(parser, announceWithUrl(['/ab', [2, 2, 0x63, 0x64]]))).toBeNull();
    expect(urlText(parser)).toBe('/abcd');
  });

  it('URL data beyond the 1024-byte buffer is cut', () => {
    const parser = new UdpAnnounceParser(OPTS);
    expect(parser.url.length).toBe(1024);
    const parts: string[] = [];
    let all = '';
    for (let i = 0; i < 6; i++) {
      const s = String.fromCharCode(0x61 + i).repeat(255);
      parts.push(i === 0 ? '/' + s.slice(1) : s);
      all += parts[i];
    }
    expect(all.length).toBe(6 * 255);
    expect(parse(parser, announceWithUrl(parts))).toBeNull();
    expect(parser.urlLength).toBe(1024);
    expect(urlText(parser)).toBe(all.slice(0, 1024));
  });

  it('the URL buffer is reset by every announce', () => {
    const parser = new UdpAnnounceParser(OPTS);
    expect(parse(parser, announceWithUrl([`/${PK}/announce`]))).toBeNull();
    expect(parser.passkey()).toBe(PK);
    expect(parse(parser, announcePacket())).toBeNull();
    expect(parser.urlLength).toBe(0);
    expect(parser.passkey()).toBeNull();
  });
});

// ----------------------------------------------------------------------------- passkey

describe('UdpAnnounceParser.passkey', () => {
  const pkOf = (url: string): string | null => {
    const parser = new UdpAnnounceParser(OPTS);
    const u = Buffer.from(url, 'latin1');
    parser.url.set(u);
    parser.urlLength = u.length;
    return parser.passkey();
  };
  const PK = 'aB3dE5f7a9b1c3d5e7f9A1B3C5D7E9F1';

  it('finds /<passkey>/announce, /<passkey> alone and /<passkey>?query', () => {
    expect(pkOf(`/${PK}/announce`)).toBe(PK);
    expect(pkOf(`/${PK}`)).toBe(PK);
    expect(pkOf(`/${PK}?x`)).toBe(PK);
    expect(pkOf(`/${PK}?info_hash=x&y=/z`)).toBe(PK);
    expect(pkOf(`/${PK}/`)).toBe(PK);
    expect(pkOf(`/${PK}/announce?x=1`)).toBe(PK);
  });

  it('accepts passkeys of 16..64 alphanumerics only', () => {
    expect(pkOf('/' + 'a'.repeat(15))).toBeNull();
    expect(pkOf('/' + 'a'.repeat(16))).toBe('a'.repeat(16));
    expect(pkOf('/' + 'Z9'.repeat(32))).toBe('Z9'.repeat(32));
    expect(pkOf('/' + 'a'.repeat(65))).toBeNull();
    expect(pkOf(`/${PK.slice(0, 10)}-${PK.slice(11)}/announce`)).toBeNull();
    expect(pkOf(`/${PK.slice(0, 10)}_${PK.slice(11)}`)).toBeNull();
    expect(pkOf(`/${PK.slice(0, 10)}%41${PK.slice(13)}`)).toBeNull();
    expect(pkOf(`/${PK.slice(0, 31)}\u00e9`)).toBeNull();
    expect(pkOf(`/${PK.slice(0, 31)}\0`)).toBeNull();
  });

  it('needs a leading slash and a non-empty first segment', () => {
    expect(pkOf('')).toBeNull();
    expect(pkOf('/')).toBeNull();
    expect(pkOf(`${PK}/announce`)).toBeNull();
    expect(pkOf(`//${PK}/announce`)).toBeNull();
    expect(pkOf(`/?${PK}`)).toBeNull();
    expect(pkOf('/announce')).toBeNull();
    expect(pkOf(`/announce?passkey=${PK}`)).toBeNull();
    expect(pkOf(`/announce/${PK}`)).toBeNull();
  });

  it('only the first urlLength bytes count', () => {
    const parser = new UdpAnnounceParser(OPTS);
    const u = Buffer.from(`/${PK}/announce`, 'latin1');
    parser.url.set(u);
    parser.urlLength = 10; // "/" + 9 chars: too short
    expect(parser.passkey()).toBeNull();
    parser.urlLength = 17;
    expect(parser.passkey()).toBe(PK.slice(0, 16));
  });
});

// ----------------------------------------------------------------------------- answers

describe('answers', () => {
  it('writeConnect: action 0 and transaction id, leaving bytes 8..16 for the connection id', () => {
    const out = new Uint8Array(16).fill(0xaa);
    const n = writeConnect(new DataView(out.buffer), 0xdeadbeef);
    expect(n).toBe(16);
    expect(Array.from(out)).toEqual([0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa]);
  });

  it('writeAnnounceHeader: action 1, transaction id, interval, leechers, seeders', () => {
    const out = new Uint8Array(26).fill(0xaa);
    const n = writeAnnounceHeader(new DataView(out.buffer), 0x01020304, 1800, 0x0a0b0c0d, 0xffffffff);
    expect(n).toBe(20);
    expect(Array.from(out)).toEqual([
      0, 0, 0, 1,
      1, 2, 3, 4,
      0, 0, 0x07, 0x08, // 1800
      0x0a, 0x0b, 0x0c, 0x0d, // leechers
      0xff, 0xff, 0xff, 0xff, // seeders
      0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, // untouched
    ]);
  });

  it('writeError: action 3, transaction id, message', () => {
    const msg = 'unknown action';
    const out = new Uint8Array(8 + msg.length);
    const n = writeError(out, new DataView(out.buffer), 0x11223344, msg, Infinity);
    expect(n).toBe(8 + msg.length);
    expect(Array.from(out.subarray(0, 8))).toEqual([0, 0, 0, 3, 0x11, 0x22, 0x33, 0x44]);
    expect(Buffer.from(out.subarray(8, n)).toString('latin1')).toBe(msg);
  });

  it('writeError: every FailureCode message fits as is', () => {
    for (const message of Object.values(FAILURES)) {
      const out = new Uint8Array(8 + message.length);
      const n = writeError(out, new DataView(out.buffer), 1, message, Infinity);
      expect(n).toBe(8 + message.length);
      expect(Buffer.from(out.subarray(8, n)).toString('latin1')).toBe(message);
    }
  });

  it('writeError: max below 8 writes nothing and returns 0', () => {
    for (let max = 0; max < 8; max++) {
      const out = new Uint8Array(64).fill(0xaa);
      expect(writeError(out, new DataView(out.buffer), 5, 'hello', max), `max ${max}`).toBe(0);
      expect(out.every((b) => b === 0xaa), `max ${max}`).toBe(true);
    }
  });

  it('writeError: never exceeds max and cuts the message', () => {
    const msg = 'invalid or expired connection id: connect again';
    for (let max = 8; max <= msg.length + 20; max++) {
      const out = new Uint8Array(128).fill(0xaa);
      const n = writeError(out, new DataView(out.buffer), 0xfeedface, msg, max);
      expect(n, `max ${max}`).toBe(Math.min(max, 8 + msg.length));
      expect(n).toBeLessThanOrEqual(max);
      expect(Array.from(out.subarray(0, 8))).toEqual([0, 0, 0, 3, 0xfe, 0xed, 0xfa, 0xce]);
      expect(Buffer.from(out.subarray(8, n)).toString('latin1')).toBe(msg.slice(0, n - 8));
      expect(out.subarray(n).every((b) => b === 0xaa), `bytes past ${n} untouched`).toBe(true);
    }
  });

  it('writeError: cut to the output buffer too', () => {
    const out = new Uint8Array(12);
    const n = writeError(out, new DataView(out.buffer), 1, 'a long message', Infinity);
    expect(n).toBe(12);
    expect(Buffer.from(out.subarray(8)).toString('latin1')).toBe('a lo');
  });

  it('writeError: writes UTF-8 (a deletion reason may not be ASCII) and cuts only between characters', () => {
    const msg = 'caf\u00e9 \u2603 \u00ff';
    const bytes = Buffer.from(msg, 'utf8');
    const out = new Uint8Array(8 + bytes.length);
    const n = writeError(out, new DataView(out.buffer), 1, msg, Infinity);
    expect(n).toBe(8 + bytes.length);
    expect(Buffer.from(out.subarray(8, n)).toString('utf8')).toBe(msg);
    // room for "caf" and half of "é": only "caf" is written
    const cut = writeError(out, new DataView(out.buffer), 1, msg, 8 + 4);
    expect(Buffer.from(out.subarray(8, cut)).toString('utf8')).toBe('caf');
  });
});

// ----------------------------------------------------------------------------- fuzz

describe('fuzz', () => {
  it('20,000 random and mutated packets through classify + parse never throw', () => {
    const r = prng(0x5eed);
    const rb = (): number => Math.floor(r() * 256);
    const valid = announceWithUrl(['/abcd', 'ef0123456789abcdef0123456789/announce', [1, 3, 2, 9, 9], '?x=1']);
    const opts = [
      { numwantDefault: 50, numwantMax: 200, allowClientIp: false },
      { numwantDefault: 30, numwantMax: 80, allowClientIp: true },
    ];
    const parsers = opts.map((o) => new UdpAnnounceParser(o));
    const clients = ['10.0.0.1', '2001:db8::7', '::ffff:1.2.3.4', '::'].map(ip16);
    const kinds = new Map<Kind, number>();
    const results = new Map<string, number>();

    for (let iter = 0; iter < 20_000; iter++) {
      let pkt: Uint8Array;
      const mode = iter % 4;
      if (mode === 0) {
        // random bytes, random length 0..300
        pkt = new Uint8Array(Math.floor(r() * 301));
        for (let i = 0; i < pkt.length; i++) pkt[i] = rb();
      } else if (mode === 1) {
        // random bytes behind a plausible header so the announce path is reached often
        pkt = new Uint8Array(Math.floor(r() * 301));
        for (let i = 0; i < pkt.length; i++) pkt[i] = rb();
        if (pkt.length >= 12) new DataView(pkt.buffer).setUint32(8, Math.floor(r() * 4), false);
      } else {
        // mutations of a valid announce: byte flips, truncation, extension with option-ish bytes
        const extra = mode === 3 ? Math.floor(r() * 200) : 0;
        pkt = new Uint8Array(valid.length + extra);
        pkt.set(valid);
        for (let i = valid.length; i < pkt.length; i++) pkt[i] = r() < 0.5 ? Math.floor(r() * 4) : rb();
        const flips = 1 + Math.floor(r() * 8);
        for (let f = 0; f < flips; f++) {
          const at = r() < 0.5 ? 56 + Math.floor(r() * 42) : Math.floor(r() * pkt.length);
          pkt[at] = r() < 0.5 ? pkt[at] ^ (1 << Math.floor(r() * 8)) : rb();
        }
        if (r() < 0.3) pkt = pkt.subarray(0, Math.floor(r() * pkt.length));
        pkt = pkt.slice();
      }
      // exact-size buffer: any read past the packet would throw (DataView) or show up
      const dv = new DataView(pkt.buffer, pkt.byteOffset, pkt.byteLength);
      const kind = classify(dv, pkt.length);
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      expect([Kind.Drop, Kind.Connect, Kind.Announce, Kind.Scrape, Kind.BadAction]).toContain(kind);
      if (pkt.length < 16) expect(kind).toBe(Kind.Drop);
      if (kind !== Kind.Announce) continue;
      expect(pkt.length).toBeGreaterThanOrEqual(98);
      const parser = parsers[iter & 1];
      parser.rec.set(clients[iter % clients.length], AnnounceRequest.IP);
      const err = parser.parse(pkt, dv, pkt.length);
      results.set(err ?? 'ok', (results.get(err ?? 'ok') ?? 0) + 1);
      if (err !== null) {
        expect(Object.keys(FAILURES)).toContain(err);
        continue;
      }
      const o = opts[iter & 1];
      expect(parser.urlLength).toBeGreaterThanOrEqual(0);
      expect(parser.urlLength).toBeLessThanOrEqual(Math.min(1024, pkt.length - 98));
      expect(parser.dv.getUint16(AnnounceRequest.NUMWANT, true)).toBeLessThanOrEqual(o.numwantMax);
      expect(parser.dv.getUint16(AnnounceRequest.PORT, true)).not.toBe(0);
      for (const f of [AnnounceRequest.DOWNLOADED, AnnounceRequest.LEFT, AnnounceRequest.UPLOADED]) expect(Number.isSafeInteger(parser.dv.getFloat64(f, true))).toBe(true);
      const pk = parser.passkey();
      if (pk !== null) expect(PASSKEY_RE.test(pk)).toBe(true);
    }
    // the fuzz reached every path
    expect(kinds.get(Kind.Drop)).toBeGreaterThan(100);
    expect(kinds.get(Kind.Announce)).toBeGreaterThan(5000);
    expect(kinds.get(Kind.Scrape)).toBeGreaterThan(100);
    expect(kinds.get(Kind.BadAction)).toBeGreaterThan(100);
    expect(results.get('ok')).toBeGreaterThan(1000);
    expect(results.get('invalid_event')).toBeGreaterThan(100);
  });
});

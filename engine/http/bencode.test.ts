import bencode from 'bencode';
import { describe, expect, it } from 'vitest';
import { AnnounceAnswer, ENTRY_FULL, ENTRY_V4, ENTRY_V6, KIND_ANNOUNCE, ST_OK } from '../../contract/requests.js';
import { FAILURE_BODIES, FAILURES, type FailureCode } from '../errors.js';
import { BencodeWriter, lit } from './bencode.js';
import {
  encodeAnnounce, encodeScrape, maxAnnounceBytes, maxScrapeBytes, sortedOrder, TAG_COMPACT, TAG_NO_PEER_ID, TAG_V6, type Intervals,
} from './encode.js';
import { prng } from '../../test/support/prng.js';

type Decoded = Record<string, unknown>;

function decode(buf: Uint8Array): Decoded {
  return bencode.decode(buf) as Decoded;
}

/** The oracle's canonical encoding (sorted keys, canonical integers) of what it decoded. */
function canonical(buf: Uint8Array): Buffer {
  return Buffer.from(bencode.encode(bencode.decode(buf)));
}

function bytes(b: unknown): Uint8Array {
  expect(b).toBeInstanceOf(Uint8Array);
  return new Uint8Array(b as Uint8Array);
}

/** Text of a 16-byte address: dotted quad for IPv4-mapped, WHATWG URL's canonical IPv6 otherwise. */
function ipText(ip: Uint8Array): string {
  if (ip.subarray(0, 12).every((b, i) => b === (i >= 10 ? 0xff : 0))) return Array.from(ip.subarray(12)).join('.');
  const groups: string[] = [];
  for (let g = 0; g < 8; g++) groups.push(((ip[2 * g]! << 8) | ip[2 * g + 1]!).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

describe('BencodeWriter', () => {
  function intBytes(n: number): Buffer {
    return Buffer.from(new BencodeWriter(64).int(n).view());
  }

  it('writes integers exactly as the bencode package does', () => {
    const fixed = [
      0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 65535, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 10 ** 15, 10 ** 15 - 1,
      2 ** 53 - 1, 2 ** 53 - 2, -1, -9, -10, -11, -100, -12345, -(2 ** 31), -(2 ** 53 - 1),
    ];
    for (const n of fixed) {
      expect(intBytes(n).toString('latin1'), String(n)).toBe(Buffer.from(bencode.encode(n)).toString('latin1'));
      expect(intBytes(n).toString('latin1')).toBe(`i${n}e`);
      expect(bencode.decode(intBytes(n))).toBe(n);
    }
  });

  it('writes random integers of every magnitude up to 2^53 − 1', () => {
    const rnd = prng(1);
    const w = new BencodeWriter(64);
    for (let i = 0; i < 20_000; i++) {
      const digits = 1 + Math.floor(rnd() * 16);
      let n = Math.floor(rnd() * 10 ** digits);
      if (n > Number.MAX_SAFE_INTEGER) n = Number.MAX_SAFE_INTEGER - Math.floor(rnd() * 1000);
      if (rnd() < 0.2) n = -n;
      const got = w.reset().int(n).view();
      expect(got.toString('latin1'), String(n)).toBe(`i${n === 0 ? 0 : n}e`);
      if (i % 10 === 0) expect(Buffer.compare(got, Buffer.from(bencode.encode(n))), String(n)).toBe(0);
      // digits alone, appended after other output
      w.reset().byte(0x78).digits(n);
      expect(w.view().toString('latin1')).toBe(`x${n}`);
    }
  });

  it('writes byte strings, headers, raw bytes and chains from any position', () => {
    const w = new BencodeWriter(256);
    const src = new Uint8Array(40).map((_, i) => 255 - i);
    w.byte(0x6c).bytes(src, 5, 20).bytes(src, 0, 0).strHeader(3).raw(new Uint8Array([0, 1, 2])).raw(lit('i-5e')).byte(0x65);
    const out = w.view();
    expect(bencode.decode(out)).toEqual([src.slice(5, 25), new Uint8Array(0), new Uint8Array([0, 1, 2]), -5]);
    expect(Buffer.compare(out, Buffer.from(bencode.encode([src.slice(5, 25), new Uint8Array(0), new Uint8Array([0, 1, 2]), -5])))).toBe(0);
    expect(w.pos).toBe(out.length);
    // reset starts over in the same buffer
    expect(w.reset().int(7).view().toString('latin1')).toBe('i7e');
    expect(lit('8:complete')).toEqual(Buffer.from('8:complete'));
  });
});

/** An announce answer record (AnnounceAnswer) built by hand at `off` of a fresh buffer. */
function answer(
  off: number,
  counts: { seeders: number; leechers: number; completed: number },
  entries: Uint8Array[],
): { u8: Uint8Array; dv: DataView } {
  const size = off + AnnounceAnswer.PEERS + entries.reduce((s, e) => s + e.length, 0) + 16;
  const u8 = new Uint8Array(size).fill(0xcc);
  const dv = new DataView(u8.buffer);
  u8[off + AnnounceAnswer.KIND] = KIND_ANNOUNCE;
  u8[off + AnnounceAnswer.STATUS] = ST_OK;
  dv.setUint16(off + AnnounceAnswer.COUNT, entries.length, true);
  dv.setUint32(off + AnnounceAnswer.REQ_ID, 0xabcdef, true);
  dv.setUint32(off + AnnounceAnswer.SEEDERS, counts.seeders, true);
  dv.setUint32(off + AnnounceAnswer.LEECHERS, counts.leechers, true);
  dv.setUint32(off + AnnounceAnswer.COMPLETED, counts.completed, true);
  let at = off + AnnounceAnswer.PEERS;
  for (const e of entries) {
    u8.set(e, at);
    at += e.length;
  }
  return { u8, dv };
}

function v4Entry(a: number, b: number, c: number, d: number, port: number): Uint8Array {
  return new Uint8Array([a, b, c, d, port >> 8, port & 0xff]);
}

function v6Entry(ip: Uint8Array, port: number): Uint8Array {
  const e = new Uint8Array(ENTRY_V6);
  e.set(ip);
  e[16] = port >> 8;
  e[17] = port & 0xff;
  return e;
}

function fullEntry(ip: Uint8Array, port: number, pid: Uint8Array): Uint8Array {
  const e = new Uint8Array(ENTRY_FULL);
  e.set(ip);
  e[16] = port >> 8;
  e[17] = port & 0xff;
  e.set(pid, 18);
  return e;
}

function mapped(a: number, b: number, c: number, d: number): Uint8Array {
  return new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d]);
}

const IV: Intervals = { interval: 1800, minInterval: 900, jitter: 0 };
const COUNTS = { seeders: 12, leechers: 345, completed: 6789 };

describe('encodeAnnounce', () => {
  it('compact IPv4: the six-byte entries as one string, keys sorted', () => {
    const entries = [v4Entry(10, 0, 0, 1, 6881), v4Entry(192, 168, 255, 254, 65535), v4Entry(1, 2, 3, 4, 1)];
    const { u8, dv } = answer(24, COUNTS, entries);
    const body = encodeAnnounce(new BencodeWriter(maxAnnounceBytes(50)), u8, dv, 24, TAG_COMPACT, IV);
    const d = decode(body);
    expect(Object.keys(d)).toEqual(['complete', 'downloaded', 'incomplete', 'interval', 'min interval', 'peers']);
    expect(d.complete).toBe(12);
    expect(d.incomplete).toBe(345);
    expect(d.downloaded).toBe(6789);
    expect(d.interval).toBe(1800);
    expect(d['min interval']).toBe(900);
    expect(bytes(d.peers)).toEqual(new Uint8Array(entries.flatMap((e) => [...e])));
    expect(Buffer.compare(canonical(body), body)).toBe(0);
  });

  it('compact IPv4 with no peers and zero counts', () => {
    const { u8, dv } = answer(0, { seeders: 0, leechers: 0, completed: 0 }, []);
    const body = encodeAnnounce(new BencodeWriter(512), u8, dv, 0, TAG_COMPACT, IV);
    expect(body.toString('latin1')).toBe('d8:completei0e10:downloadedi0e10:incompletei0e8:intervali1800e12:min intervali900e5:peers0:e');
    expect(Buffer.compare(canonical(body), body)).toBe(0);
  });

  it('compact IPv6: empty `peers` and the 18-byte entries in `peers6`', () => {
    const ips = [new Uint8Array(16).fill(0x20), new Uint8Array([0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 1])];
    const entries = [v6Entry(ips[0]!, 443), v6Entry(ips[1]!, 51413)];
    const { u8, dv } = answer(7, COUNTS, entries);
    const body = encodeAnnounce(new BencodeWriter(1024), u8, dv, 7, TAG_COMPACT | TAG_V6, IV);
    const d = decode(body);
    expect(Object.keys(d)).toEqual(['complete', 'downloaded', 'incomplete', 'interval', 'min interval', 'peers', 'peers6']);
    expect(bytes(d.peers)).toEqual(new Uint8Array(0));
    expect(bytes(d.peers6)).toEqual(new Uint8Array([...entries[0]!, ...entries[1]!]));
    expect(d.complete).toBe(12);
    expect(Buffer.compare(canonical(body), body)).toBe(0);
  });

  it('non-compact with peer ids: a list of {ip, peer id, port} dictionaries', () => {
    const peers = [
      { ip: mapped(10, 0, 0, 1), port: 6881, pid: new Uint8Array(Buffer.from('-qB4630-000000000001')) },
      { ip: mapped(255, 255, 255, 255), port: 65535, pid: new Uint8Array(20).map((_, i) => 0xff - i) },
      { ip: new Uint8Array([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), port: 1, pid: new Uint8Array(20) },
      { ip: new Uint8Array(16).fill(0xff), port: 80, pid: new Uint8Array(20).fill(0x65) }, // 'e' bytes inside a string
    ];
    const { u8, dv } = answer(3, COUNTS, peers.map((p) => fullEntry(p.ip, p.port, p.pid)));
    const body = encodeAnnounce(new BencodeWriter(maxAnnounceBytes(4)), u8, dv, 3, 0, IV);
    const d = decode(body);
    expect(Object.keys(d)).toEqual(['complete', 'downloaded', 'incomplete', 'interval', 'min interval', 'peers']);
    const list = d.peers as Decoded[];
    expect(list).toHaveLength(4);
    list.forEach((e, i) => {
      expect(Object.keys(e)).toEqual(['ip', 'peer id', 'port']);
      expect(Buffer.from(bytes(e.ip)).toString('latin1')).toBe(ipText(peers[i]!.ip));
      expect(bytes(e['peer id'])).toEqual(peers[i]!.pid);
      expect(e.port).toBe(peers[i]!.port);
    });
    expect(Buffer.from(bytes(list[0]!.ip)).toString()).toBe('10.0.0.1');
    expect(Buffer.from(bytes(list[2]!.ip)).toString()).toBe('2001:db8::1');
    expect(Buffer.from(bytes(list[3]!.ip)).toString()).toBe('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
    expect(Buffer.compare(canonical(body), body)).toBe(0);
  });

  it('non-compact without peer ids: {ip, port} only', () => {
    const peers = [
      { ip: mapped(8, 8, 4, 4), port: 53 },
      { ip: new Uint8Array([0xfe, 0x80, ...Array(13).fill(0), 0x42]), port: 8080 },
    ];
    const { u8, dv } = answer(0, COUNTS, peers.map((p) => fullEntry(p.ip, p.port, new Uint8Array(20).fill(0x41))));
    const body = encodeAnnounce(new BencodeWriter(1024), u8, dv, 0, TAG_NO_PEER_ID, IV);
    const d = decode(body);
    const list = d.peers as Decoded[];
    expect(list.map((e) => Object.keys(e))).toEqual([['ip', 'port'], ['ip', 'port']]);
    expect(list.map((e) => [Buffer.from(bytes(e.ip)).toString(), e.port])).toEqual([['8.8.4.4', 53], ['fe80::42', 8080]]);
    expect(Buffer.compare(canonical(body), body)).toBe(0);
    // TAG_V6 changes nothing for non-compact answers (the address text carries the family)
    const v6 = encodeAnnounce(new BencodeWriter(1024), u8, dv, 0, TAG_NO_PEER_ID | TAG_V6, IV);
    expect(Buffer.compare(v6, body)).toBe(0);
  });

  it('random answers of every kind decode to exactly what was put in', () => {
    const rnd = prng(9);
    const w = new BencodeWriter(maxAnnounceBytes(200));
    for (let i = 0; i < 1500; i++) {
      const n = Math.floor(rnd() * 60);
      const kind = Math.floor(rnd() * 4); // 0 v4 compact, 1 v6 compact, 2 full, 3 full without ids
      const counts = { seeders: Math.floor(rnd() * 2 ** 32), leechers: Math.floor(rnd() * 1000), completed: Math.floor(rnd() * 2 ** 20) };
      const ports = Array.from({ length: n }, () => Math.floor(rnd() * 65536));
      const ips = Array.from({ length: n }, () => {
        if (kind === 0 || (kind >= 2 && rnd() < 0.5)) return mapped(...(Array.from({ length: 4 }, () => Math.floor(rnd() * 256)) as [number, number, number, number]));
        const ip = new Uint8Array(16).map(() => (rnd() < 0.4 ? 0 : Math.floor(rnd() * 256)));
        ip[0] = 0x20 + Math.floor(rnd() * 16); // never ::ffff:0:0/96
        return ip;
      });
      const pids = Array.from({ length: n }, () => new Uint8Array(20).map(() => Math.floor(rnd() * 256)));
      const entries = ips.map((ip, k) =>
        kind === 0 ? v4Entry(ip[12]!, ip[13]!, ip[14]!, ip[15]!, ports[k]!) : kind === 1 ? v6Entry(ip, ports[k]!) : fullEntry(ip, ports[k]!, pids[k]!),
      );
      const off = Math.floor(rnd() * 100);
      const { u8, dv } = answer(off, counts, entries);
      const tag = kind === 0 ? TAG_COMPACT : kind === 1 ? TAG_COMPACT | TAG_V6 : kind === 2 ? 0 : TAG_NO_PEER_ID;
      const iv = { interval: 60 + Math.floor(rnd() * 10_000), minInterval: Math.floor(rnd() * 100), jitter: 0 };
      const body = encodeAnnounce(w, u8, dv, off, tag, iv);
      const d = decode(body);
      expect([d.complete, d.incomplete, d.downloaded, d.interval, d['min interval']]).toEqual([
        counts.seeders, counts.leechers, counts.completed, iv.interval, iv.minInterval,
      ]);
      if (kind === 0) expect(bytes(d.peers)).toEqual(new Uint8Array(entries.flatMap((e) => [...e])));
      else if (kind === 1) {
        expect(bytes(d.peers)).toEqual(new Uint8Array(0));
        expect(bytes(d.peers6)).toEqual(new Uint8Array(entries.flatMap((e) => [...e])));
      } else {
        const list = d.peers as Decoded[];
        expect(list).toHaveLength(n);
        list.forEach((e, k) => {
          expect(Buffer.from(bytes(e.ip)).toString('latin1')).toBe(ipText(ips[k]!));
          expect(e.port).toBe(ports[k]);
          if (kind === 2) expect(bytes(e['peer id'])).toEqual(pids[k]);
          else expect('peer id' in e).toBe(false);
        });
      }
      expect(Buffer.compare(canonical(body), body)).toBe(0);
    }
  });

  it('adds a random jitter in [0, jitter] to the interval', () => {
    const { u8, dv } = answer(0, COUNTS, []);
    const w = new BencodeWriter(512);
    const seen = new Set<number>();
    for (let i = 0; i < 3000; i++) {
      const d = decode(encodeAnnounce(w, u8, dv, 0, TAG_COMPACT, { interval: 1800, minInterval: 900, jitter: 30 }));
      const v = d.interval as number;
      expect(v).toBeGreaterThanOrEqual(1800);
      expect(v).toBeLessThanOrEqual(1830);
      expect(Number.isInteger(v)).toBe(true);
      seen.add(v);
    }
    expect(seen.has(1800)).toBe(true);
    expect(seen.has(1830)).toBe(true);
    expect(seen.size).toBe(31);
  });

  it('the widest possible answer fits maxAnnounceBytes', () => {
    for (const numwant of [1, 50, 200, 1000]) {
      const widest = Array.from({ length: numwant }, (_, i) =>
        fullEntry(new Uint8Array(16).fill(0xff).map((b, k) => (k === 15 ? i & 0xff : b) | 0x10), 65535, new Uint8Array(20).fill(0xff)),
      );
      const max = 2 ** 32 - 1;
      const { u8, dv } = answer(0, { seeders: max, leechers: max, completed: max }, widest);
      const w = new BencodeWriter(maxAnnounceBytes(numwant));
      const body = encodeAnnounce(w, u8, dv, 0, 0, { interval: 2 ** 31 - 1, minInterval: 2 ** 31 - 1, jitter: 0 });
      expect(body.length).toBeLessThanOrEqual(maxAnnounceBytes(numwant));
      expect((decode(body).peers as unknown[]).length).toBe(numwant);
      // the compact forms are smaller still
      const c6 = answer(0, { seeders: max, leechers: max, completed: max }, widest.map((e) => e.subarray(0, ENTRY_V6)));
      expect(encodeAnnounce(new BencodeWriter(maxAnnounceBytes(numwant)), c6.u8, c6.dv, 0, TAG_COMPACT | TAG_V6, IV).length).toBeLessThanOrEqual(
        maxAnnounceBytes(numwant),
      );
      const c4 = answer(0, { seeders: max, leechers: max, completed: max }, widest.map((e) => e.subarray(0, ENTRY_V4)));
      expect(encodeAnnounce(new BencodeWriter(maxAnnounceBytes(numwant)), c4.u8, c4.dv, 0, TAG_COMPACT, IV).length).toBeLessThanOrEqual(
        maxAnnounceBytes(numwant),
      );
    }
  });
});

describe('encodeScrape and sortedOrder', () => {
  /** The oracle's name for a dictionary key: text if it is valid UTF-8, else hex. */
  function keyOf(h: Uint8Array): string {
    const k = new TextDecoder().decode(h);
    return k.includes('\uFFFD') ? Buffer.from(h).toString('hex') : k;
  }

  /** The expected body, built independently: entries sorted by Buffer.compare. */
  function reference(hashes: Uint8Array[], counts: number[][], minInterval: number): Buffer {
    const idx = hashes.map((_, i) => i).sort((a, b) => Buffer.compare(Buffer.from(hashes[a]!), Buffer.from(hashes[b]!)));
    const parts: Buffer[] = [Buffer.from('d5:filesd')];
    for (const i of idx) {
      const [s, c, l] = counts[i]!;
      parts.push(Buffer.from('20:'), Buffer.from(hashes[i]!), Buffer.from(`d8:completei${s}e10:downloadedi${c}e10:incompletei${l}ee`));
    }
    parts.push(Buffer.from(`e5:flagsd20:min_request_intervali${minInterval}eee`));
    return Buffer.concat(parts);
  }

  function pack(hashes: Uint8Array[]): Uint8Array {
    const out = new Uint8Array(hashes.length * 20);
    hashes.forEach((h, i) => out.set(h, i * 20));
    return out;
  }

  it('sortedOrder sorts indexes by the bytes of the hashes', () => {
    const rnd = prng(4);
    for (let t = 0; t < 500; t++) {
      const n = Math.floor(rnd() * 40);
      const prefix = Math.floor(rnd() * 20); // share the first `prefix` bytes
      const base = new Uint8Array(20).map(() => Math.floor(rnd() * 256));
      const hashes = Array.from({ length: n }, () => {
        const h = new Uint8Array(20).map(() => Math.floor(rnd() * 4) * 85);
        h.set(base.subarray(0, prefix));
        return h;
      });
      const order = sortedOrder(pack(hashes), n);
      const want = hashes.map((_, i) => i).sort((a, b) => Buffer.compare(Buffer.from(hashes[a]!), Buffer.from(hashes[b]!)) || a - b);
      expect(order).toEqual(want);
    }
    expect(sortedOrder(new Uint8Array(0), 0)).toEqual([]);
  });

  it('encodes random scrapes byte for byte, with files keyed by info_hash in sorted order', () => {
    const rnd = prng(8);
    for (let t = 0; t < 800; t++) {
      const n = 1 + Math.floor(rnd() * 30);
      const seen = new Set<string>();
      const hashes: Uint8Array[] = [];
      while (hashes.length < n) {
        const h = new Uint8Array(20).map(() => (rnd() < 0.3 ? Math.floor(rnd() * 0x80) : Math.floor(rnd() * 256)));
        if (rnd() < 0.2) h.fill(0x61); // a valid UTF-8 key
        const k = Buffer.from(h).toString('hex');
        if (seen.has(k)) continue;
        seen.add(k);
        hashes.push(h);
      }
      const counts = hashes.map(() => [Math.floor(rnd() * 2 ** 32), Math.floor(rnd() * 2 ** 32), Math.floor(rnd() * 1000)]);
      const packed = pack(hashes);
      const c32 = new Uint32Array(counts.flat());
      const minInterval = Math.floor(rnd() * 3600);
      const w = new BencodeWriter(maxScrapeBytes(n));
      const body = encodeScrape(w, packed, c32, sortedOrder(packed, n), minInterval);
      expect(body.length).toBeLessThanOrEqual(maxScrapeBytes(n));
      expect(Buffer.compare(body, reference(hashes, counts, minInterval))).toBe(0);
      const d = decode(body);
      expect(Object.keys(d)).toEqual(['files', 'flags']);
      expect(d.flags).toEqual({ min_request_interval: minInterval });
      const files = d.files as Record<string, Decoded>;
      expect(Object.keys(files).length).toBe(n);
      hashes.forEach((h, i) => {
        expect(files[keyOf(h)]).toEqual({ complete: counts[i]![0], downloaded: counts[i]![1], incomplete: counts[i]![2] });
      });
    }
  });

  it('an empty scrape and the largest scrape fit their buffers', () => {
    const empty = encodeScrape(new BencodeWriter(maxScrapeBytes(0)), new Uint8Array(0), new Uint32Array(0), [], 900);
    expect(empty.toString('latin1')).toBe('d5:filesde5:flagsd20:min_request_intervali900eee');
    expect(decode(empty)).toEqual({ files: {}, flags: { min_request_interval: 900 } });
    const n = 1000;
    const hashes = Array.from({ length: n }, (_, i) => new Uint8Array(20).fill(0xff).map((b, k) => (k < 2 ? (i >> (8 * k)) & 0xff : b)));
    const counts = new Uint32Array(n * 3).fill(0xffffffff);
    const packed = pack(hashes);
    const body = encodeScrape(new BencodeWriter(maxScrapeBytes(n)), packed, counts, sortedOrder(packed, n), 2 ** 31 - 1);
    expect(body.length).toBeLessThanOrEqual(maxScrapeBytes(n));
    expect(Object.keys(decode(body).files as object).length).toBe(n);
  });
});

describe('failure bodies', () => {
  it('every code decodes to { "failure reason": message }, byte-identical to the oracle', () => {
    const codes = Object.keys(FAILURES) as FailureCode[];
    expect(Object.keys(FAILURE_BODIES).sort()).toEqual([...codes].sort());
    expect(Object.isFrozen(FAILURE_BODIES)).toBe(true);
    for (const code of codes) {
      const body = FAILURE_BODIES[code];
      const d = decode(body);
      expect(Object.keys(d)).toEqual(['failure reason']);
      expect(Buffer.from(bytes(d['failure reason'])).toString('utf8')).toBe(FAILURES[code]);
      expect(Buffer.compare(body, Buffer.from(bencode.encode({ 'failure reason': FAILURES[code] }))), code).toBe(0);
    }
  });
});

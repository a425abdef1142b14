import { existsSync, statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';
import { ByteRing, RING_HEAD, RING_HEADER_BYTES, RING_TAIL, ringBytes } from './ring.js';
import { prng } from '../test/support/prng.js';

/** Bytes a record of `len` payload bytes takes in the ring (8-byte header, 8-aligned payload). */
function need(len: number): number {
  return 8 + Math.ceil(len / 8) * 8;
}

/** Deterministic content of record `seq`: byte i = f(seq, i). */
function fill(u8: Uint8Array, at: number, len: number, seq: number): void {
  let x = (Math.imul(seq, 0x9e3779b1) ^ 0x5bd1e995) >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    u8[at + i] = x & 0xff;
  }
}

function expected(len: number, seq: number): Uint8Array {
  const b = new Uint8Array(len);
  fill(b, 0, len, seq);
  return b;
}

/** Two views of one ring, as the two threads would hold them. */
function pair(capacity: number): { producer: ByteRing; consumer: ByteRing; sab: SharedArrayBuffer } {
  const sab = new SharedArrayBuffer(ringBytes(capacity));
  return { producer: new ByteRing(sab), consumer: new ByteRing(sab), sab };
}

function header(sab: SharedArrayBuffer): { head: number; tail: number } {
  const i32 = new Int32Array(sab, 0, RING_HEADER_BYTES >> 2);
  return { head: Atomics.load(i32, RING_HEAD) >>> 0, tail: Atomics.load(i32, RING_TAIL) >>> 0 };
}

describe('ByteRing basics', () => {
  it('sizes the buffer as header + capacity and rejects capacities that are not powers of two', () => {
    expect(ringBytes(1024)).toBe(RING_HEADER_BYTES + 1024);
    expect(() => new ByteRing(new SharedArrayBuffer(RING_HEADER_BYTES + 1000))).toThrow(/power of two/);
    expect(() => new ByteRing(new SharedArrayBuffer(RING_HEADER_BYTES))).toThrow(/power of two/);
    expect(() => new ByteRing(new SharedArrayBuffer(RING_HEADER_BYTES + 4096))).not.toThrow();
    expect(ByteRing.create(4096).maxPayload).toBe(2048 - 8);
  });

  it('lays records out back to back with an 8-byte header and 8-aligned payloads', () => {
    const { producer, consumer, sab } = pair(1024);
    const lens = [0, 1, 7, 8, 9, 15, 16, 17, 100];
    const offs: number[] = [];
    let expectOff = RING_HEADER_BYTES;
    for (const len of lens) {
      const at = producer.reserve(len);
      expect(at).toBe(expectOff + 8);
      expect(at % 8).toBe(0);
      expect(new DataView(sab).getUint32(at - 8, true)).toBe(len);
      offs.push(at);
      producer.u8.fill(len & 0xff, at, at + len);
      expectOff += need(len);
    }
    expect(producer.commit()).toBe(true);
    expect(producer.commit()).toBe(false); // nothing new
    const total = lens.reduce((s, l) => s + need(l), 0);
    expect(header(sab)).toEqual({ head: 0, tail: total });
    expect(consumer.depth()).toBe(total);
    for (let i = 0; i < lens.length; i++) {
      const at = consumer.next();
      expect(at).toBe(offs[i]);
      expect(consumer.len).toBe(lens[i]);
      for (let k = 0; k < lens[i]!; k++) expect(consumer.u8[at + k]).toBe(lens[i]! & 0xff);
    }
    expect(consumer.next()).toBe(-1);
    expect(consumer.depth()).toBe(total); // read but not released
    consumer.release();
    expect(consumer.depth()).toBe(0);
    expect(header(sab)).toEqual({ head: total, tail: total });
  });

  it('publishes several reserves with one commit and nothing before it', () => {
    const { producer, consumer } = pair(4096);
    for (let i = 0; i < 10; i++) {
      const at = producer.reserve(20);
      fill(producer.u8, at, 20, i);
    }
    expect(consumer.isEmpty()).toBe(true);
    expect(consumer.next()).toBe(-1);
    expect(consumer.depth()).toBe(0);
    expect(producer.commit()).toBe(true);
    expect(consumer.isEmpty()).toBe(false);
    expect(consumer.depth()).toBe(10 * need(20));
    for (let i = 0; i < 10; i++) {
      const at = consumer.next();
      expect(at).toBeGreaterThan(0);
      expect(consumer.len).toBe(20);
      expect(consumer.u8.slice(at, at + 20)).toEqual(expected(20, i));
    }
    expect(consumer.next()).toBe(-1);
    expect(consumer.isEmpty()).toBe(true);
    // a second batch committed after the consumer caught up
    producer.reserve(3);
    producer.reserve(5);
    expect(consumer.next()).toBe(-1);
    producer.commit();
    expect(consumer.next()).toBeGreaterThan(0);
    expect(consumer.len).toBe(3);
    expect(consumer.next()).toBeGreaterThan(0);
    expect(consumer.len).toBe(5);
    expect(consumer.next()).toBe(-1);
  });

  it('rewind drops the records reserved after a mark and publishes those before it', () => {
    const { producer, consumer } = pair(256);
    fill(producer.u8, producer.reserve(20), 20, 1);
    const m = producer.mark();
    fill(producer.u8, producer.reserve(40), 40, 2); // half written when its writer failed
    producer.rewind(m);
    producer.commit();
    let at = consumer.next();
    expect(consumer.len).toBe(20);
    expect(consumer.u8.slice(at, at + 20)).toEqual(expected(20, 1));
    expect(consumer.next()).toBe(-1);
    // the space is reserved again from the mark, across the end of the ring too
    for (let i = 0; i < 12; i++) {
      const before = producer.mark();
      fill(producer.u8, producer.reserve(24), 24, 10 + i);
      producer.rewind(before);
      fill(producer.u8, producer.reserve(16), 16, 30 + i);
      producer.commit();
      consumer.release();
      at = consumer.next();
      expect(consumer.len).toBe(16);
      expect(consumer.u8.slice(at, at + 16)).toEqual(expected(16, 30 + i));
      expect(consumer.next()).toBe(-1);
    }
  });

  it('reserve returns -1 when full and works again after release', () => {
    const { producer, consumer } = pair(256);
    for (let i = 0; i < 4; i++) expect(producer.reserve(56)).toBe(RING_HEADER_BYTES + i * 64 + 8);
    expect(producer.reserve(0)).toBe(-1); // even an empty record needs 8 bytes
    expect(producer.reserve(56)).toBe(-1);
    producer.commit();
    expect(consumer.depth()).toBe(256);
    // reading without release frees nothing
    expect(consumer.next()).toBe(RING_HEADER_BYTES + 8);
    expect(producer.reserve(56)).toBe(-1);
    consumer.release();
    expect(consumer.depth()).toBe(192);
    // exactly one 64-byte record fits again, at the start of the data area
    expect(producer.reserve(56)).toBe(RING_HEADER_BYTES + 8);
    expect(producer.reserve(0)).toBe(-1);
    producer.commit();
    expect(consumer.depth()).toBe(256);
    // drain everything
    let n = 0;
    while (consumer.next() >= 0) n++;
    expect(n).toBe(4);
    consumer.release();
    expect(consumer.depth()).toBe(0);
  });

  it('wraps with a marker when a record would straddle the end, and counts the skipped bytes as used', () => {
    const { producer, consumer } = pair(256);
    // six 32-byte records: positions 0..192
    for (let i = 0; i < 6; i++) fill(producer.u8, producer.reserve(24), 24, i);
    producer.commit();
    for (let i = 0; i < 2; i++) {
      const at = consumer.next();
      expect(consumer.u8.slice(at, at + 24)).toEqual(expected(24, i));
    }
    consumer.release(); // head = 64, tail = 192
    // 112 bytes do not fit in the 64 left before the end, and 64 skipped + 112 > 128 free
    expect(producer.reserve(100)).toBe(-1);
    // 56 payload bytes (64 total) fit exactly at the end, no wrap
    const endAt = producer.reserve(56);
    expect(endAt).toBe(RING_HEADER_BYTES + 192 + 8);
    fill(producer.u8, endAt, 56, 100);
    producer.commit();
    for (let i = 2; i < 6; i++) {
      const at = consumer.next();
      expect(consumer.len).toBe(24);
      expect(consumer.u8.slice(at, at + 24)).toEqual(expected(24, i));
    }
    let at = consumer.next();
    expect(at).toBe(endAt);
    expect(consumer.u8.slice(at, at + 56)).toEqual(expected(56, 100));
    consumer.release(); // head = tail = 256 (offset 0)
    // now a record at offset 0
    at = producer.reserve(100);
    expect(at).toBe(RING_HEADER_BYTES + 8);
    producer.commit();
    consumer.next();
    consumer.release(); // head = tail = 256 + 112 = 368 (offset 112)
    // 160 bytes would straddle (144 left): wrap to 0, skipping 144; 144 + 160 > 256
    at = producer.reserve(150);
    expect(at).toBe(-1);
    at = producer.reserve(100); // 112 fits before the end (144 left)
    expect(at).toBe(RING_HEADER_BYTES + 112 + 8);
    producer.commit();
    consumer.next();
    consumer.release(); // offset 224, 32 left before the end
    at = producer.reserve(40); // 48 > 32: wrap marker at 224, record at 0
    expect(at).toBe(RING_HEADER_BYTES + 8);
    fill(producer.u8, at, 40, 7);
    producer.commit();
    expect(consumer.depth()).toBe(32 + 48);
    const got = consumer.next();
    expect(got).toBe(RING_HEADER_BYTES + 8);
    expect(consumer.len).toBe(40);
    expect(consumer.u8.slice(got, got + 40)).toEqual(expected(40, 7));
    expect(consumer.next()).toBe(-1);
    consumer.release();
    expect(consumer.depth()).toBe(0);
  });

  it('always fits a record of maxPayload into an empty ring, wherever the positions are', () => {
    const { producer, consumer } = pair(512);
    const max = producer.maxPayload;
    expect(max).toBe(248);
    for (let step = 0; step < 64; step++) {
      // move the positions by a varying amount
      const small = (step * 8) % 200;
      fill(producer.u8, producer.reserve(small), small, step);
      producer.commit();
      consumer.next();
      consumer.release();
      const at = producer.reserve(max);
      expect(at, `step ${step}`).toBeGreaterThan(0);
      fill(producer.u8, at, max, 1000 + step);
      producer.commit();
      const got = consumer.next();
      expect(got).toBe(at);
      expect(consumer.len).toBe(max);
      expect(consumer.u8.slice(got, got + max)).toEqual(expected(max, 1000 + step));
      consumer.release();
      expect(consumer.depth()).toBe(0);
    }
  });

  it('shrinkLast cuts the last reserved record and the next one follows it directly', () => {
    const { producer, consumer } = pair(1024);
    const a = producer.reserve(100);
    fill(producer.u8, a, 10, 1);
    producer.shrinkLast(10);
    const b = producer.reserve(30);
    expect(b).toBe(a + 16 + 8); // 10 bytes pad to 16
    fill(producer.u8, b, 30, 2);
    const c = producer.reserve(200);
    producer.shrinkLast(0);
    const d = producer.reserve(8);
    expect(d).toBe(c + 8);
    fill(producer.u8, d, 8, 4);
    producer.commit();
    expect(consumer.depth()).toBe(need(10) + need(30) + need(0) + need(8));
    const want: [number, number][] = [[10, 1], [30, 2], [0, 3], [8, 4]];
    for (const [len, seq] of want) {
      const at = consumer.next();
      expect(consumer.len).toBe(len);
      expect(consumer.u8.slice(at, at + len)).toEqual(expected(len, seq));
    }
    expect(consumer.next()).toBe(-1);
  });

  it('shrinkLast after a wrapping reserve keeps the record at the start of the data area', () => {
    const { producer, consumer } = pair(256);
    producer.reserve(200); // 208 bytes
    producer.commit();
    consumer.next();
    consumer.release(); // positions at 208, 48 bytes to the end
    const at = producer.reserve(100); // 112: wraps, skipping 48
    expect(at).toBe(RING_HEADER_BYTES + 8);
    producer.shrinkLast(4);
    fill(producer.u8, at, 4, 9);
    const next = producer.reserve(16);
    expect(next).toBe(RING_HEADER_BYTES + 16 + 8);
    fill(producer.u8, next, 16, 10);
    producer.commit();
    expect(consumer.depth()).toBe(48 + 16 + 24);
    let got = consumer.next();
    expect(got).toBe(at);
    expect(consumer.len).toBe(4);
    expect(consumer.u8.slice(got, got + 4)).toEqual(expected(4, 9));
    got = consumer.next();
    expect(got).toBe(next);
    expect(consumer.u8.slice(got, got + 16)).toEqual(expected(16, 10));
    expect(consumer.next()).toBe(-1);
  });

  it('hasRoom leaves room for a worst-case wrap and counts uncommitted reserves', () => {
    const { producer, consumer } = pair(256);
    expect(producer.hasRoom(120)).toBe(true); // 2 × 128 = 256
    expect(producer.hasRoom(121)).toBe(false); // 2 × 136 > 256
    producer.reserve(24); // 32 used, not committed yet
    expect(producer.hasRoom(104)).toBe(true); // 32 + 2 × 112 = 256
    expect(producer.hasRoom(105)).toBe(false);
    producer.commit();
    expect(producer.hasRoom(104)).toBe(true);
    consumer.next();
    consumer.release();
    expect(producer.hasRoom(120)).toBe(true);
  });

  it('hasRoom true always means reserve succeeds (random positions and sizes)', () => {
    const rnd = prng(42);
    const { producer, consumer } = pair(1024);
    let pending = 0;
    for (let i = 0; i < 20_000; i++) {
      const len = Math.floor(rnd() * 500);
      const room = producer.hasRoom(len);
      const at = producer.reserve(len);
      if (room) expect(at, `record ${i} len ${len}`).toBeGreaterThan(0);
      if (at > 0) pending++;
      if (rnd() < 0.5) producer.commit();
      if (rnd() < 0.5) {
        let k = Math.floor(rnd() * 4);
        while (k-- > 0 && consumer.next() >= 0) pending--;
        consumer.release();
      }
    }
    producer.commit();
    while (consumer.next() >= 0) pending--;
    expect(pending).toBe(0);
  });

  it('reset drops everything queued and both ends go on from the producer position', () => {
    const { producer, consumer, sab } = pair(512);
    for (let i = 0; i < 5; i++) fill(producer.u8, producer.reserve(40), 40, i);
    producer.commit();
    consumer.next(); // read one, never released
    expect(consumer.depth()).toBe(5 * 48);
    consumer.reset();
    expect(consumer.depth()).toBe(0);
    expect(consumer.isEmpty()).toBe(true);
    expect(consumer.next()).toBe(-1);
    expect(header(sab)).toEqual({ head: 240, tail: 240 });
    // the producer goes on; the consumer sees only new records
    for (let i = 10; i < 13; i++) fill(producer.u8, producer.reserve(40), 40, i);
    producer.commit();
    for (let i = 10; i < 13; i++) {
      const at = consumer.next();
      expect(consumer.u8.slice(at, at + 40)).toEqual(expected(40, i));
    }
    expect(consumer.next()).toBe(-1);
    consumer.release();

    // reset on the producer side (the supervisor's view of a dead shard's request ring),
    // with uncommitted reserves pending: a new consumer attached afterwards starts clean.
    for (let i = 20; i < 24; i++) fill(producer.u8, producer.reserve(40), 40, i);
    producer.commit();
    producer.reserve(40); // never committed
    producer.reset();
    expect(producer.depth()).toBe(0);
    const fresh = new ByteRing(sab);
    expect(fresh.next()).toBe(-1);
    fill(producer.u8, producer.reserve(12), 12, 30);
    producer.commit();
    const at = fresh.next();
    expect(fresh.len).toBe(12);
    expect(fresh.u8.slice(at, at + 12)).toEqual(expected(12, 30));
    expect(fresh.next()).toBe(-1);
  });

  it('reset also forgets a tail the consumer had already loaded', () => {
    const { producer, consumer } = pair(1024);
    for (let i = 0; i < 3; i++) fill(producer.u8, producer.reserve(16), 16, i);
    producer.commit();
    consumer.next(); // loads the tail of the first batch
    for (let i = 3; i < 6; i++) fill(producer.u8, producer.reserve(16), 16, i);
    producer.commit();
    consumer.reset(); // drops both batches
    expect(consumer.next()).toBe(-1);
    expect(consumer.isEmpty()).toBe(true);
    fill(producer.u8, producer.reserve(16), 16, 42);
    producer.commit();
    const at = consumer.next();
    expect(consumer.u8.slice(at, at + 16)).toEqual(expected(16, 42));
    expect(consumer.next()).toBe(-1);
  });

  it('a ring attached later (respawned thread) resumes from the positions in the header', () => {
    const { producer, consumer, sab } = pair(1024);
    for (let i = 0; i < 7; i++) fill(producer.u8, producer.reserve(33), 33, i);
    producer.commit();
    for (let i = 0; i < 3; i++) consumer.next();
    consumer.release();
    const c2 = new ByteRing(sab);
    for (let i = 3; i < 7; i++) {
      const at = c2.next();
      expect(c2.len).toBe(33);
      expect(c2.u8.slice(at, at + 33)).toEqual(expected(33, i));
    }
    const p2 = new ByteRing(sab);
    fill(p2.u8, p2.reserve(5), 5, 99);
    p2.commit();
    const at = c2.next();
    expect(c2.u8.slice(at, at + 5)).toEqual(expected(5, 99));
  });
});

/**
 * Random traffic: random sizes, random batch sizes, random consumer pace. Every record is
 * checked byte for byte, in order, against what was written.
 */
function traffic(capacity: number, records: number, seed: number, startPos = 0): { wraps: number; bytes: number } {
  const sab = new SharedArrayBuffer(ringBytes(capacity));
  const i32 = new Int32Array(sab);
  i32[RING_HEAD] = startPos | 0;
  i32[RING_TAIL] = startPos | 0;
  const producer = new ByteRing(sab);
  const consumer = new ByteRing(sab);
  const rnd = prng(seed);
  const maxLen = producer.maxPayload;
  const lens: number[] = [];
  let written = 0;
  let read = 0;
  let bytes = 0;
  let lastOff = -1;
  let wraps = 0;
  let guard = 0;
  while (read < records) {
    if (++guard > records * 50) throw new Error('no progress');
    // produce a batch
    const batch = 1 + Math.floor(rnd() * 8);
    for (let b = 0; b < batch && written < records; b++) {
      const r = rnd();
      const len = r < 0.1 ? 0 : r < 0.2 ? maxLen - Math.floor(rnd() * 16) : Math.floor(rnd() * rnd() * maxLen);
      const at = producer.reserve(len);
      if (at < 0) {
        expect(producer.hasRoom(len)).toBe(false);
        break;
      }
      fill(producer.u8, at, len, written);
      lens.push(len);
      written++;
    }
    if (rnd() < 0.8) producer.commit();
    // consume some
    const take = Math.floor(rnd() * 10);
    for (let t = 0; t < take; t++) {
      const at = consumer.next();
      if (at < 0) break;
      const len = lens[read]!;
      if (consumer.len !== len) throw new Error(`record ${read}: len ${consumer.len} != ${len}`);
      const want = expected(len, read);
      for (let k = 0; k < len; k++) {
        if (consumer.u8[at + k] !== want[k]) throw new Error(`record ${read}: byte ${k} differs`);
      }
      if (at < lastOff) wraps++;
      lastOff = at;
      bytes += len;
      read++;
    }
    if (rnd() < 0.7) consumer.release();
    if (written === records) producer.commit();
  }
  consumer.release();
  expect(consumer.next()).toBe(-1);
  expect(consumer.depth()).toBe(0);
  return { wraps, bytes };
}

describe('ByteRing random traffic', () => {
  it('moves 50,000 records of random sizes byte-exact across many wraps', () => {
    const { wraps, bytes } = traffic(4096, 50_000, 1);
    expect(wraps).toBeGreaterThan(1000);
    expect(bytes).toBeGreaterThan(50 * 4096);
  });

  it('keeps working across the 2^32 wrap of the positions', () => {
    for (const start of [0xffffff00, 0xfffff000, 0x7ffffff8, 0xfffffff8]) {
      const { wraps } = traffic(1024, 5_000, start, start);
      expect(wraps).toBeGreaterThan(100);
    }
  });

  it('works for several capacities and seeds', () => {
    for (const cap of [64, 256, 8192]) {
      for (let seed = 10; seed < 13; seed++) traffic(cap, 5_000, seed * cap);
    }
  });
});

// ---------------------------------------------------------------------------------------
// Across threads: the compiled ring in a real worker_threads Worker.
// ---------------------------------------------------------------------------------------

const DIST_RING = fileURLToPath(new URL('../dist/contract/ring.js', import.meta.url));

/** The compiled ring (make build, which make test runs first) must be as new as its source. */
function distIsFresh(): boolean {
  return existsSync(DIST_RING) && statSync(DIST_RING).mtimeMs >= statSync(fileURLToPath(new URL('./ring.ts', import.meta.url))).mtimeMs;
}

// Plain JS run in the worker: it uses the compiled ByteRing. It consumes ring `toWorker`
// (checking order, length and content of every record) and at the same time produces
// ring `toMain` with its own numbered records. Record: u32 seq, u32 checksum, then bytes.
const WORKER_CODE = `
const { workerData, parentPort } = require('node:worker_threads');
(async () => {
  const { ByteRing } = await import(workerData.ringUrl);
  const { toWorker, toMain, bell, count } = workerData;
  const rin = new ByteRing(toWorker);
  const rout = new ByteRing(toMain);
  const bells = new Int32Array(bell);
  ${'' /* shared helpers are injected below */}
  __HELPERS__
  let received = 0, sent = 0, errors = [], readSum = 0;
  const deadline = Date.now() + 25000;
  while (received < count || sent < count) {
    let progress = false;
    // produce
    let batch = 0;
    while (sent < count && batch < 64) {
      const len = lenOf(sent, 1);
      const at = rout.reserve(len);
      if (at < 0) break;
      writeRecord(rout.u8, rout.dv, at, len, sent, 1);
      sent++; batch++;
    }
    if (batch > 0 && rout.commit()) { Atomics.add(bells, 1, 1); Atomics.notify(bells, 1); progress = true; }
    // consume
    let got = 0;
    for (;;) {
      const at = rin.next();
      if (at < 0) break;
      const err = checkRecord(rin.u8, rin.dv, at, rin.len, received, 0);
      if (err && errors.length < 10) errors.push(err);
      readSum = (readSum + rin.len) | 0;
      received++; got++;
    }
    if (got > 0) { rin.release(); Atomics.add(bells, 1, 1); Atomics.notify(bells, 1); progress = true; }
    if (!progress) {
      if (Date.now() > deadline) { errors.push('worker timed out: received ' + received + ' sent ' + sent); break; }
      Atomics.wait(bells, 0, Atomics.load(bells, 0), 1);
    }
  }
  parentPort.postMessage({ received, sent, errors, readSum });
})().catch((e) => parentPort.postMessage({ errors: [String(e && e.stack || e)] }));
`;

// Helpers shared (as source) by both sides, so producer and checker agree.
function lenOf(seq: number, dir: number): number {
  let h = Math.imul(seq ^ (dir * 0x27d4eb2d), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return 8 + ((h >>> 0) % 300);
}

function body(u8: Uint8Array, at: number, len: number, seq: number, dir: number): number {
  let x = (Math.imul(seq + 1, 0x9e3779b1) ^ dir) >>> 0 || 1;
  let sum = 0;
  for (let i = 8; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    u8[at + i] = x & 0xff;
    sum = (Math.imul(sum, 31) + (x & 0xff)) | 0;
  }
  return sum >>> 0;
}

function writeRecord(u8: Uint8Array, dv: DataView, at: number, len: number, seq: number, dir: number): void {
  dv.setUint32(at, seq, true);
  dv.setUint32(at + 4, body(u8, at, len, seq, dir), true);
}

function checkRecord(u8: Uint8Array, dv: DataView, at: number, len: number, want: number, dir: number): string | null {
  const seq = dv.getUint32(at, true);
  if (seq !== want) return `expected seq ${want}, got ${seq}`;
  if (len !== lenOf(seq, dir)) return `seq ${seq}: length ${len} != ${lenOf(seq, dir)}`;
  let sum = 0;
  let x = (Math.imul(seq + 1, 0x9e3779b1) ^ dir) >>> 0 || 1;
  for (let i = 8; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    if (u8[at + i] !== (x & 0xff)) return `seq ${seq}: byte ${i} differs`;
    sum = (Math.imul(sum, 31) + u8[at + i]!) | 0;
  }
  if (dv.getUint32(at + 4, true) !== sum >>> 0) return `seq ${seq}: checksum mismatch`;
  return null;
}

/** Source of the helpers for the worker (type annotations stripped by the transpiler already). */
const HELPERS = [lenOf, body, writeRecord, checkRecord].map((f) => f.toString()).join('\n');

describe('ByteRing across threads', () => {
  beforeAll(() => {
    if (!distIsFresh()) throw new Error(`${DIST_RING} is missing or older than contract/ring.ts: run make build (make test does)`);
  });

  it('moves 200,000 records each way between the main thread and a worker, in order and intact', async () => {
    const COUNT = 200_000;
    const toWorker = new SharedArrayBuffer(ringBytes(1 << 16));
    const toMain = new SharedArrayBuffer(ringBytes(1 << 16));
    const bell = new SharedArrayBuffer(8); // [0] main → worker, [1] worker → main
    const bells = new Int32Array(bell);
    const worker = new Worker(WORKER_CODE.replace('__HELPERS__', HELPERS), {
      eval: true,
      workerData: { ringUrl: pathToFileURL(DIST_RING).href, toWorker, toMain, bell, count: COUNT },
    });
    const result = new Promise<{ received: number; sent: number; errors: string[]; readSum: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before reporting`)));
    });

    const out = new ByteRing(toWorker);
    const inp = new ByteRing(toMain);
    let sent = 0;
    let received = 0;
    let sentBytes = 0;
    const errors: string[] = [];
    const deadline = Date.now() + 25_000;
    // Let the worker start (its module import is asynchronous) while we fill the ring.
    while (sent < COUNT || received < COUNT) {
      let progress = false;
      let batch = 0;
      while (sent < COUNT && batch < 64) {
        const len = lenOf(sent, 0);
        const at = out.reserve(len);
        if (at < 0) break;
        writeRecord(out.u8, out.dv, at, len, sent, 0);
        sentBytes = (sentBytes + len) | 0;
        sent++;
        batch++;
      }
      if (batch > 0 && out.commit()) {
        Atomics.add(bells, 0, 1);
        Atomics.notify(bells, 0);
        progress = true;
      }
      let got = 0;
      for (;;) {
        const at = inp.next();
        if (at < 0) break;
        const err = checkRecord(inp.u8, inp.dv, at, inp.len, received, 1);
        if (err !== null && errors.length < 10) errors.push(err);
        received++;
        got++;
      }
      if (got > 0) {
        inp.release();
        Atomics.add(bells, 0, 1);
        Atomics.notify(bells, 0);
        progress = true;
      }
      if (!progress) {
        if (Date.now() > deadline) throw new Error(`main timed out: sent ${sent}, received ${received}`);
        // Yield to the event loop now and then so a worker error can surface.
        if ((sent + received) % 7 === 0) await new Promise((r) => setImmediate(r));
        else Atomics.wait(bells, 1, Atomics.load(bells, 1), 1);
      }
    }
    const w = await result;
    await worker.terminate();
    expect(errors).toEqual([]);
    expect(w.errors).toEqual([]);
    expect(w.received).toBe(COUNT);
    expect(w.sent).toBe(COUNT);
    expect(received).toBe(COUNT);
    expect(w.readSum).toBe(sentBytes);
    expect(out.depth()).toBe(0);
    expect(inp.depth()).toBe(0);
  }, 60_000);
});

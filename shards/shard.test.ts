import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AnnounceAnswer, AF_COMPACT, AF_GONE, AF_HAS_KEY, AF_NO_PEER_ID, AF_V6, AF_WS, AnnounceRequest, ENTRY_FULL, ENTRY_V4, ENTRY_V6, EVENT_COMPLETED, EVENT_NONE, EVENT_PAUSED, EVENT_STARTED, EVENT_STOPPED, KIND_ANNOUNCE, KIND_SCRAPE, ScrapeAnswer, SCRAPE_ENTRY, ScrapeRequest, ST_BUSY, ST_OK, ST_PEER_ID_IN_USE, ST_TABLE_FULL, ST_TOO_SOON } from '../contract/requests.js';
import { ADDR4, ADDR6, ShardControl, PF_COMPLETED, PF_FRESH, PF_LIVE, PF_PAUSED, PF_SEEDER, PF_V6, PeerRecord, SwarmRecord } from './memory-layout.js';
import { allocateGlobal, allocateShardMemory, type ShardLimits } from './memory.js';
import { ByteRing } from '../contract/ring.js';
import { maxAnswerBytes, ShardLogic, type ShardRules } from './shard.js';
import { AccountingRecord, ACF2_WS, ACF_SEEDER, ACF_STATE, ACF_STOPPED } from '../contract/accounting.js';
import { SwarmStore } from './swarm-store.js';
import { ChangeWriter } from './changes.js';
import { Replica } from './replica.js';
import type { ShardMemory } from './memory.js';
import { ALL_NODES, CH_FORWARD, CH_REMOVE, CH_UPSERT, ChangeRecord, REMOTE_ANNOUNCE, RemoteRecord, RF_SEEDER, RF_WINS_TIE, RM_ANNOUNCE, RM_REMOVE, RM_SWEEP, RM_UPSERT } from '../contract/replication.js';

const LIMITS: ShardLimits = { maxPeers: 50_000, maxSwarms: 10_000, requestRingBytes: 1 << 16, answerRingBytes: 1 << 16 };

function sha1(text: string): Uint8Array {
  return new Uint8Array(createHash('sha1').update(text).digest());
}

function peerId(i: number): Uint8Array {
  return new Uint8Array(Buffer.from(`-TR4060-${String(i).padStart(12, '0')}`, 'latin1'));
}

/** 16-byte IPv4-mapped address. */
function ip4(a: number, b: number, c: number, d: number): Uint8Array {
  return new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d]);
}

/** 16-byte native IPv6 address 2001:db8::<n> (n < 65536). */
function ip6(n: number): Uint8Array {
  const b = new Uint8Array(16);
  b[0] = 0x20;
  b[1] = 0x01;
  b[2] = 0x0d;
  b[3] = 0xb8;
  b[14] = n >> 8;
  b[15] = n & 0xff;
  return b;
}

interface Ann {
  ih: Uint8Array;
  pid: Uint8Array;
  ip: Uint8Array;
  port: number;
  left: number;
  event?: number;
  numwant?: number;
  compact?: boolean;
  noPeerId?: boolean;
  user?: number;
  key?: number; // AF_HAS_KEY when given
  source?: number; // AnnounceRequest.SOURCE, the tag of the sender's address (default 1: the same sender)
  uploaded?: number;
  downloaded?: number;
  torrent?: number;
  ws?: number; // a WebSocket peer on this socket id (AF_WS)
  gone?: boolean; // AF_GONE (with a stop: its socket closed)
  forwardedAt?: number; // AnnounceRequest.FORWARDED_AT (forwarded announces)
}

interface Peer {
  ip: Uint8Array; // 4 bytes for compact IPv4, else 16
  port: number;
  pid?: Uint8Array; // non-compact only
}

interface Answer {
  kind: number;
  status: number;
  count: number;
  reqId: number;
  seeders: number;
  leechers: number;
  completed: number;
  len: number; // payload length of the record
  peers: Peer[];
}

/** Write announce `a` as a request record at `at` of `q`; whether its address is IPv6. */
function fillAnnounce(q: Uint8Array, dv: DataView, at: number, a: Ann, reqId: number): boolean {
  q.fill(0xee, at, at + AnnounceRequest.SIZE); // garbage in padding and unused fields
  const v6 = !(a.ip.length === 16 && a.ip.subarray(0, 12).every((b, i) => b === (i >= 10 ? 0xff : 0)));
  const flags =
    (a.compact === false ? 0 : AF_COMPACT) | (a.noPeerId ? AF_NO_PEER_ID : 0) | (v6 && a.ws === undefined ? AF_V6 : 0) | (a.key !== undefined ? AF_HAS_KEY : 0) |
    (a.ws !== undefined ? AF_WS : 0) | (a.gone ? AF_GONE : 0);
  q[at + AnnounceRequest.KIND] = KIND_ANNOUNCE;
  q[at + AnnounceRequest.EVENT] = a.event ?? EVENT_NONE;
  q[at + AnnounceRequest.FLAGS] = flags;
  dv.setUint32(at + AnnounceRequest.REQ_ID, reqId, true);
  dv.setUint32(at + AnnounceRequest.USER, a.user ?? 0, true);
  dv.setUint32(at + AnnounceRequest.TORRENT, a.torrent ?? 0, true);
  q.set(a.ih, at + AnnounceRequest.INFO_HASH);
  q.set(a.pid, at + AnnounceRequest.PEER_ID);
  q.set(a.ip, at + AnnounceRequest.IP);
  dv.setUint16(at + AnnounceRequest.PORT, a.port, true);
  dv.setUint16(at + AnnounceRequest.NUMWANT, a.numwant ?? 50, true);
  dv.setUint32(at + AnnounceRequest.KEY, a.key ?? 0, true);
  dv.setUint32(at + AnnounceRequest.SOURCE, a.source ?? 1, true);
  dv.setFloat64(at + AnnounceRequest.UPLOADED, a.uploaded ?? 0, true);
  dv.setFloat64(at + AnnounceRequest.DOWNLOADED, a.downloaded ?? 0, true);
  dv.setFloat64(at + AnnounceRequest.LEFT, a.left, true);
  if (a.ws !== undefined) dv.setUint32(at + AnnounceRequest.SOCKET, a.ws, true);
  if (a.forwardedAt !== undefined) dv.setUint32(at + AnnounceRequest.FORWARDED_AT, a.forwardedAt, true);
  return v6;
}

/**
 * A shard without a thread: request records go through a real request ring, ShardLogic
 * answers into a real answer ring, and the answer is read back the way the acceptor does.
 */
class Harness {
  readonly store: SwarmStore;
  readonly logic: ShardLogic;
  private readonly reqP: ByteRing;
  private readonly reqC: ByteRing;
  private readonly ansP: ByteRing;
  private readonly ansC: ByteRing;
  now = 1000;
  private reqId = 1;

  /** The accounting ring's writing (the shard's) and reading sides, when `rules` were given. */
  readonly accounting: { w: ByteRing; r: ByteRing } | undefined;

  /** With replicate(): the other ends of the shard's replication rings, and what applies remote records. */
  private repl: { writer: ChangeWriter; changes: ByteRing; remote: ByteRing; replica: Replica } | undefined;
  private readonly mem: ShardMemory;

  constructor(limits: ShardLimits = LIMITS, rules?: Partial<ShardRules>) {
    const mem = allocateShardMemory(allocateGlobal(), { ...limits, accountingRingBytes: rules ? 1 << 16 : undefined, replicationRingBytes: 1 << 16 });
    this.mem = mem;
    this.store = new SwarmStore(mem);
    if (rules) this.accounting = { w: new ByteRing(mem.accounting), r: new ByteRing(mem.accounting) };
    this.logic = new ShardLogic(this.store, this.accounting?.w ?? null, rules);
    this.reqP = new ByteRing(mem.requests);
    this.reqC = new ByteRing(mem.requests);
    this.ansP = new ByteRing(mem.answers);
    this.ansC = new ByteRing(mem.answers);
  }

  announce(a: Ann): Answer {
    const at = this.reqP.reserve(AnnounceRequest.SIZE);
    expect(at).toBeGreaterThan(0);
    const reqId = this.reqId++;
    const v6 = fillAnnounce(this.reqP.u8, this.reqP.dv, at, a, reqId);
    const entry = a.ws !== undefined ? ENTRY_V4 : a.compact === false ? ENTRY_FULL : v6 ? ENTRY_V6 : ENTRY_V4;
    const ans = this.roundTrip();
    expect(ans.reqId).toBe(reqId);
    expect(ans.u8[ans.at + AnnounceAnswer.KIND]).toBe(KIND_ANNOUNCE);
    const adv = ans.dv;
    const count = adv.getUint16(ans.at + AnnounceAnswer.COUNT, true);
    expect(ans.len).toBe(AnnounceAnswer.PEERS + count * entry);
    const peers: Peer[] = [];
    for (let i = 0; i < count; i++) {
      const e = ans.at + AnnounceAnswer.PEERS + i * entry;
      const u8 = ans.u8;
      if (entry === ENTRY_V4) peers.push({ ip: u8.slice(e, e + 4), port: (u8[e + 4]! << 8) | u8[e + 5]! });
      else if (entry === ENTRY_V6) peers.push({ ip: u8.slice(e, e + 16), port: (u8[e + 16]! << 8) | u8[e + 17]! });
      else peers.push({ ip: u8.slice(e, e + 16), port: (u8[e + 16]! << 8) | u8[e + 17]!, pid: u8.slice(e + 18, e + 38) });
    }
    const out: Answer = {
      kind: ans.u8[ans.at + AnnounceAnswer.KIND]!,
      status: ans.u8[ans.at + AnnounceAnswer.STATUS]!,
      count,
      reqId: ans.reqId,
      seeders: adv.getUint32(ans.at + AnnounceAnswer.SEEDERS, true),
      leechers: adv.getUint32(ans.at + AnnounceAnswer.LEECHERS, true),
      completed: adv.getUint32(ans.at + AnnounceAnswer.COMPLETED, true),
      len: ans.len,
      peers,
    };
    this.ansC.release();
    return out;
  }

  scrape(hashes: Uint8Array[]): { count: number; files: [number, number, number][] } {
    const at = this.reqP.reserve(ScrapeRequest.HASHES + hashes.length * 20);
    const q = this.reqP.u8;
    const dv = this.reqP.dv;
    q[at + ScrapeRequest.KIND] = KIND_SCRAPE;
    dv.setUint16(at + ScrapeRequest.COUNT, hashes.length, true);
    const reqId = this.reqId++;
    dv.setUint32(at + ScrapeRequest.REQ_ID, reqId, true);
    hashes.forEach((h, i) => q.set(h, at + ScrapeRequest.HASHES + i * 20));
    const ans = this.roundTrip();
    expect(ans.u8[ans.at + ScrapeAnswer.KIND]).toBe(KIND_SCRAPE);
    expect(ans.reqId).toBe(reqId);
    const count = ans.dv.getUint16(ans.at + ScrapeAnswer.COUNT, true);
    expect(ans.len).toBe(ScrapeAnswer.FILES + count * SCRAPE_ENTRY);
    const files: [number, number, number][] = [];
    for (let i = 0; i < count; i++) {
      const e = ans.at + ScrapeAnswer.FILES + i * SCRAPE_ENTRY;
      files.push([ans.dv.getUint32(e, true), ans.dv.getUint32(e + 4, true), ans.dv.getUint32(e + 8, true)]);
    }
    this.ansC.release();
    return { count, files };
  }

  /** Publish the request, let the shard handle it, and return the (unreleased) answer record. */
  private roundTrip(): { u8: Uint8Array; dv: DataView; at: number; len: number; reqId: number } {
    expect(this.reqP.commit()).toBe(true);
    const off = this.reqC.next();
    expect(off).toBeGreaterThan(0);
    this.logic.handle(this.reqC.u8, this.reqC.dv, off, this.ansP, this.now);
    this.reqC.release();
    expect(this.reqC.next()).toBe(-1);
    expect(this.ansP.commit()).toBe(true);
    const at = this.ansC.next();
    expect(at).toBeGreaterThan(0);
    const len = this.ansC.len;
    expect(this.ansC.next()).toBe(-1); // exactly one answer per request
    return { u8: this.ansC.u8, dv: this.ansC.dv, at, len, reqId: this.ansC.dv.getUint32(at + AnnounceAnswer.REQ_ID, true) };
  }

  /** Replicate: local changes into the changes ring (read back by changes()), remote records applied by remote(). */
  replicate(): void {
    const writer = new ChangeWriter(this.store, new ByteRing(this.mem.changes));
    this.logic.replicate(writer);
    this.store.ctl[ShardControl.REPL_ON] = 1;
    this.repl = { writer, changes: new ByteRing(this.mem.changes), remote: new ByteRing(this.mem.remote), replica: new Replica(this.store, this.logic, writer, new ByteRing(this.mem.remote), ByteRing.create(1 << 16)) };
  }

  /** Apply one remote record (fields as in RemoteRecord; announce: a forwarded AnnounceRequest). */
  remote(r: { op: number; node?: number; epoch?: number; flags?: number; user?: number; ih?: Uint8Array; pid?: Uint8Array; addr?: number[]; seen?: number; announce?: Ann }): void {
    const ring = this.repl!.remote;
    const at = ring.reserve(RemoteRecord.SIZE + (r.announce ? AnnounceRequest.SIZE : 0));
    if (r.announce) fillAnnounce(ring.u8, ring.dv, at + REMOTE_ANNOUNCE, { forwardedAt: this.now, ...r.announce }, 0);
    ring.u8[at + RemoteRecord.OP] = r.op;
    ring.u8[at + RemoteRecord.FLAGS] = r.flags ?? 0;
    ring.dv.setUint32(at + RemoteRecord.NODE, r.node ?? 1, true);
    ring.dv.setUint32(at + RemoteRecord.EPOCH, r.epoch ?? 1, true);
    ring.dv.setUint32(at + RemoteRecord.USER, r.user ?? 0, true);
    if (r.ih) ring.u8.set(r.ih, at + RemoteRecord.INFO_HASH);
    if (r.pid) ring.u8.set(r.pid, at + RemoteRecord.PEER_ID);
    ring.u8.set(r.addr ?? [10, 0, 0, 9, 0x1b, 0x58], at + RemoteRecord.ADDR);
    ring.dv.setUint32(at + RemoteRecord.SEEN, r.seen ?? this.now, true);
    ring.commit();
    expect(this.repl!.replica.turn(this.now, 100, () => true)).toBe(1);
    this.accounting?.w.commit();
  }

  /** The change records written since the last call: [op, port or forwarded node] each. */
  changes(): Array<[number, number]> {
    const { writer, changes } = this.repl!;
    writer.commit(); // (the shard's loop commits once per batch)
    const out: Array<[number, number]> = [];
    for (let off = changes.next(); off >= 0; off = changes.next()) {
      const op = changes.u8[off + ChangeRecord.OP];
      out.push([op, op === CH_FORWARD ? changes.dv.getUint32(off + ChangeRecord.NODE, true) : (changes.u8[off + ChangeRecord.ADDR + 4] << 8) | changes.u8[off + ChangeRecord.ADDR + 5]]);
    }
    changes.release();
    return out;
  }

  peerSlot(ih: Uint8Array, pid: Uint8Array): number {
    const s = this.store.findSwarm(ih, 0);
    return s < 0 ? -1 : this.store.findPeer(s, pid, 0);
  }
}

/** Compact IPv4 entry as it must appear on the wire. */
function v4Bytes(p: Peer): number[] {
  return [...p.ip, p.port >> 8, p.port & 0xff];
}

const IH = sha1('torrent');
const IH2 = sha1('another torrent');

function ports(a: Answer): number[] {
  return a.peers.map((p) => p.port);
}

// ---------------------------------------------------------------------------------------
// Reading the store the way the redesign keeps it: per swarm and family one array of
// wire-form addresses [seeders | leechers], the owning slot beside each entry.
// ---------------------------------------------------------------------------------------

interface Seg {
  slot: number;
  ip: number[]; // 4 bytes (IPv4) or 16 (IPv6)
  port: number;
}

function famFields(v6: boolean): { seed: number; leech: number; block: number; cls: number; bytes: number } {
  return v6
    ? { seed: SwarmRecord.SEED6, leech: SwarmRecord.LEECH6, block: SwarmRecord.BLOCK6, cls: SwarmRecord.CLASS6, bytes: ADDR6 }
    : { seed: SwarmRecord.SEED4, leech: SwarmRecord.LEECH4, block: SwarmRecord.BLOCK4, cls: SwarmRecord.CLASS4, bytes: ADDR4 };
}

/** One segment of a swarm's array, checked: live peers of this swarm, right flags, POS pointing at the entry. */
function segment(store: SwarmStore, swarm: number, v6: boolean, seeders: boolean): Seg[] {
  const f = famFields(v6);
  const arena = v6 ? store.arena6 : store.arena4;
  const sat = swarm * SwarmRecord.SIZE;
  const S = store.swarms.dv.getUint32(sat + f.seed, true);
  const L = store.swarms.dv.getUint32(sat + f.leech, true);
  if (S + L === 0) {
    expect(store.swarms.u8[sat + f.cls]).toBe(0);
    return [];
  }
  expect(S + L).toBeLessThanOrEqual(2 ** (store.swarms.u8[sat + f.cls]! - 1));
  const blk = store.swarms.dv.getUint32(sat + f.block, true);
  const out: Seg[] = [];
  for (let i = seeders ? 0 : S; i < (seeders ? S : S + L); i++) {
    const slot = arena.slots.i32[blk + i]!;
    const at = slot * PeerRecord.SIZE;
    const flags = store.peers.u8[at + PeerRecord.FLAGS]!;
    expect(flags & PF_LIVE).toBe(PF_LIVE);
    expect(((flags & PF_SEEDER) !== 0) === seeders, `slot ${slot} in the ${seeders ? 'seeder' : 'leecher'} segment`).toBe(true);
    expect(((flags & PF_V6) !== 0) === v6, `slot ${slot} in the IPv${v6 ? 6 : 4} array`).toBe(true);
    expect(store.peers.dv.getUint32(at + PeerRecord.SWARM, true)).toBe(swarm);
    expect(store.peers.dv.getUint32(at + PeerRecord.POS, true)).toBe(i);
    const e = (blk + i) * f.bytes;
    const a = arena.addr.u8;
    out.push({ slot, ip: [...a.subarray(e, e + f.bytes - 2)], port: (a[e + f.bytes - 2]! << 8) | a[e + f.bytes - 1]! });
  }
  return out;
}

/** Where a peer is: family, segment and its address as stored. */
function whereIs(store: SwarmStore, slot: number): { v6: boolean; seeder: boolean; ip: number[]; port: number } {
  const at = slot * PeerRecord.SIZE;
  const flags = store.peers.u8[at + PeerRecord.FLAGS]!;
  const v6 = (flags & PF_V6) !== 0;
  const seeder = (flags & PF_SEEDER) !== 0;
  const seg = segment(store, store.peers.dv.getUint32(at + PeerRecord.SWARM, true), v6, seeder);
  const e = seg.find((x) => x.slot === slot);
  expect(e, `slot ${slot} is in its array`).toBeDefined();
  return { v6, seeder, ip: e!.ip, port: e!.port };
}

/** Rotation counter of the seeder segments (what leechers are handed). */
function rotOf(store: SwarmStore, swarm: number): number {
  return store.swarms.dv.getUint32(swarm * SwarmRecord.SIZE + SwarmRecord.ROT_SEED, true);
}

/** `list` read cyclically from `start`. */
function rotated<T>(list: T[], start: number): T[] {
  if (list.length === 0) return [];
  const k = start % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

const v4of = (ip: Uint8Array): number[] => [...ip.subarray(12)];

/** Shard totals and per-family counts of a swarm all agree with its arrays. */
function checkCounts(h: Harness, hashes: Uint8Array[]): void {
  let seeders = 0;
  let leechers = 0;
  let v6 = 0;
  for (const ih of hashes) {
    const s = h.store.findSwarm(ih, 0);
    if (s < 0) continue;
    const n = [segment(h.store, s, false, true), segment(h.store, s, false, false), segment(h.store, s, true, true), segment(h.store, s, true, false)].map(
      (x) => x.length,
    );
    seeders += n[0]! + n[2]!;
    leechers += n[1]! + n[3]!;
    v6 += n[2]! + n[3]!;
    expect(h.store.seeders(s)).toBe(n[0]! + n[2]!);
    expect(h.store.leechers(s)).toBe(n[1]! + n[3]!);
  }
  expect([h.store.ctl[ShardControl.SEEDERS], h.store.ctl[ShardControl.LEECHERS], h.store.ctl[ShardControl.PEERS_V6]]).toEqual([seeders, leechers, v6]);
  expect(h.store.ctl[ShardControl.PEER_LIVE]).toBe(seeders + leechers);
}

describe('ShardLogic announce basics', () => {
  it('answers a first announce with the counts including the new peer', () => {
    const h = new Harness();
    const a = h.announce({ ih: IH, pid: peerId(1), ip: ip4(10, 0, 0, 1), port: 6881, left: 100, event: EVENT_STARTED });
    expect(a).toMatchObject({ kind: KIND_ANNOUNCE, status: ST_OK, count: 0, seeders: 0, leechers: 1, completed: 0, len: AnnounceAnswer.PEERS });
    const slot = h.peerSlot(IH, peerId(1));
    expect(slot).toBeGreaterThanOrEqual(0);
    // the address lives in the swarm's IPv4 array, in wire form
    expect(whereIs(h.store, slot)).toEqual({ v6: false, seeder: false, ip: [10, 0, 0, 1], port: 6881 });
    const s = h.store.findSwarm(IH, 0);
    const blk = h.store.swarms.dv.getUint32(s * SwarmRecord.SIZE + SwarmRecord.BLOCK4, true);
    expect([...h.store.arena4.addr.u8.subarray(blk * ADDR4, blk * ADDR4 + 6)]).toEqual([10, 0, 0, 1, 0x1a, 0xe1]);
    const at = slot * PeerRecord.SIZE;
    const dv = h.store.peers.dv;
    expect(dv.getUint32(at + PeerRecord.LAST_SEEN, true)).toBe(1000);
    expect(dv.getFloat64(at + PeerRecord.LEFT, true)).toBe(100);
    expect(h.store.peers.u8[at + PeerRecord.FLAGS]).toBe(PF_LIVE | PF_FRESH);
    expect(h.store.ctl[ShardControl.LEECHERS]).toBe(1);
    expect(h.store.swarms.dv.getUint32(s * SwarmRecord.SIZE + SwarmRecord.LEECH4, true)).toBe(1);
  });

  it('stores reported totals and the user on the peer record', () => {
    const h = new Harness();
    h.announce({ ih: IH, pid: peerId(1), ip: ip4(10, 0, 0, 1), port: 1, left: 5, user: 77, uploaded: 2 ** 40, downloaded: 12345, key: 0xdeadbeef });
    const at = h.peerSlot(IH, peerId(1)) * PeerRecord.SIZE;
    const dv = h.store.peers.dv;
    expect(dv.getUint32(at + PeerRecord.USER, true)).toBe(77);
    expect(dv.getFloat64(at + PeerRecord.UPLOADED, true)).toBe(2 ** 40);
    expect(dv.getFloat64(at + PeerRecord.DOWNLOADED, true)).toBe(12345);
    expect(dv.getFloat64(at + PeerRecord.LEFT, true)).toBe(5);
    expect(dv.getUint32(at + PeerRecord.KEY, true)).toBe(0xdeadbeef);
    // a later announce updates them
    h.now = 1005;
    h.announce({ ih: IH, pid: peerId(1), ip: ip4(10, 0, 0, 1), port: 1, left: 0, user: 77, uploaded: 3, downloaded: 4, key: 0xdeadbeef });
    expect([dv.getFloat64(at + PeerRecord.UPLOADED, true), dv.getFloat64(at + PeerRecord.DOWNLOADED, true), dv.getFloat64(at + PeerRecord.LEFT, true)]).toEqual([3, 4, 0]);
    expect(dv.getUint32(at + PeerRecord.LAST_SEEN, true)).toBe(1005);
  });

  it('never gives a peer itself', () => {
    const h = new Harness();
    for (let i = 0; i < 6; i++) h.announce({ ih: IH, pid: peerId(i), ip: ip4(10, 0, 0, i + 1), port: 7000 + i, left: 10, numwant: 0 });
    for (let round = 0; round < 30; round++) {
      const i = (round * 7) % 6;
      for (const numwant of [50, 5, 3, 1]) {
        const a = h.announce({ ih: IH, pid: peerId(i), ip: ip4(10, 0, 0, i + 1), port: 7000 + i, left: 10, numwant });
        expect(a.status).toBe(ST_OK);
        expect(ports(a)).not.toContain(7000 + i);
        expect(a.count).toBe(Math.min(numwant, 5));
        expect(new Set(ports(a)).size).toBe(a.count);
        expect(a.leechers).toBe(6);
      }
    }
    // a lone peer gets nobody
    const lone = sha1('lone');
    h.announce({ ih: lone, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1, left: 0 });
    const again = h.announce({ ih: lone, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1, left: 0 });
    expect(again.count).toBe(0);
    expect(again.seeders).toBe(1);
    // nor does a lone leecher asking for seeders and leechers
    const lone2 = sha1('lone2');
    h.announce({ ih: lone2, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1, left: 5 });
    expect(h.announce({ ih: lone2, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1, left: 5 }).count).toBe(0);
  });

  it('gives seeders only leechers, and leechers seeders first then leechers', () => {
    const h = new Harness();
    for (let i = 0; i < 5; i++) h.announce({ ih: IH, pid: peerId(i), ip: ip4(10, 0, 1, i), port: 1000 + i, left: 0, numwant: 0 });
    for (let i = 0; i < 5; i++) h.announce({ ih: IH, pid: peerId(10 + i), ip: ip4(10, 0, 2, i), port: 2000 + i, left: 7, numwant: 0 });
    const s = h.store.findSwarm(IH, 0);
    // a seeder (existing) gets all leechers and no seeders
    const s1 = h.announce({ ih: IH, pid: peerId(2), ip: ip4(10, 0, 1, 2), port: 1002, left: 0, numwant: 50 });
    expect(s1.count).toBe(5);
    expect(ports(s1).sort()).toEqual([2000, 2001, 2002, 2003, 2004]);
    // a new seeder too
    const s2 = h.announce({ ih: IH, pid: peerId(99), ip: ip4(10, 0, 1, 99), port: 1099, left: 0, numwant: 50 });
    expect(ports(s2).sort()).toEqual([2000, 2001, 2002, 2003, 2004]);
    expect(s2).toMatchObject({ seeders: 6, leechers: 5 });
    // a new leecher: all seeders first, in array order from the rotation counter, then the leechers
    const seedOrder = segment(h.store, s, false, true).map((e) => e.port);
    expect(seedOrder).toEqual([1000, 1001, 1002, 1003, 1004, 1099]); // seeders are kept in arrival order
    const rot = rotOf(h.store, s);
    const l = h.announce({ ih: IH, pid: peerId(50), ip: ip4(10, 0, 3, 1), port: 3001, left: 9, numwant: 50 });
    expect(l.count).toBe(11);
    expect(ports(l).slice(0, 6)).toEqual(rotated(seedOrder, rot));
    expect(ports(l).slice(6).sort()).toEqual([2000, 2001, 2002, 2003, 2004]);
    expect(l).toMatchObject({ seeders: 6, leechers: 6 });
    // numwant smaller than the seeders: only seeders
    const l2 = h.announce({ ih: IH, pid: peerId(51), ip: ip4(10, 0, 3, 2), port: 3002, left: 9, numwant: 4 });
    expect(l2.count).toBe(4);
    for (const p of ports(l2)) expect(p).toBeLessThan(2000);
    // numwant between: all seeders then some leechers
    const l3 = h.announce({ ih: IH, pid: peerId(52), ip: ip4(10, 0, 3, 3), port: 3003, left: 9, numwant: 8 });
    expect(l3.count).toBe(8);
    expect(ports(l3).slice(0, 6).sort()).toEqual([1000, 1001, 1002, 1003, 1004, 1099]);
    for (const p of ports(l3).slice(6)) expect(p).toBeGreaterThanOrEqual(2000);
    // a seeder is never given a seeder, however many it asks for
    const s3 = h.announce({ ih: IH, pid: peerId(3), ip: ip4(10, 0, 1, 3), port: 1003, left: 0, numwant: 200 });
    expect(s3.count).toBe(8);
    for (const p of ports(s3)) expect(p).toBeGreaterThanOrEqual(2000);
    checkCounts(h, [IH]);
  });

  it('honours numwant, including 0', () => {
    const h = new Harness();
    for (let i = 0; i < 30; i++) h.announce({ ih: IH, pid: peerId(i), ip: ip4(10, 0, 0, i), port: 100 + i, left: i % 2, numwant: 0 });
    for (const numwant of [0, 1, 2, 7, 15, 29, 30, 200]) {
      const a = h.announce({ ih: IH, pid: peerId(1000 + numwant), ip: ip4(10, 1, 0, 1), port: 9, left: 1, numwant });
      // the askers pile up as leechers; they are still never more than numwant
      expect(a.count).toBe(Math.min(numwant, a.seeders + a.leechers - 1));
      expect(a.len).toBe(AnnounceAnswer.PEERS + a.count * ENTRY_V4);
    }
  });

  it('rotates: 200 seeders, numwant 50, four leechers together receive all 200', () => {
    const h = new Harness();
    for (let i = 0; i < 200; i++) h.announce({ ih: IH, pid: peerId(i), ip: ip4(10, 9, i >> 8, i & 255), port: 20_000 + i, left: 0, numwant: 0 });
    const s = h.store.findSwarm(IH, 0);
    expect(rotOf(h.store, s)).toBe(0);
    const seen = new Set<number>();
    for (let k = 0; k < 4; k++) {
      const a = h.announce({ ih: IH, pid: peerId(1000 + k), ip: ip4(10, 8, 0, k), port: 30_000 + k, left: 1, numwant: 50 });
      expect(a.count).toBe(50);
      const ps = ports(a);
      expect(ps).toEqual(Array.from({ length: 50 }, (_, i) => 20_000 + k * 50 + i));
      for (const p of ps) {
        expect(seen.has(p)).toBe(false);
        seen.add(p);
      }
      expect(rotOf(h.store, s)).toBe((k + 1) * 50);
    }
    expect(seen.size).toBe(200);
    // and the fifth starts over where the first began
    const fifth = h.announce({ ih: IH, pid: peerId(2000), ip: ip4(10, 8, 1, 0), port: 31_000, left: 1, numwant: 50 });
    expect(ports(fifth)).toEqual(Array.from({ length: 50 }, (_, i) => 20_000 + i));
  });

  it('rotates the leechers given to seeders too', () => {
    // The seeders are in the swarm before they ask: rotation covers a segment exactly only
    // while it is unchanged. (A seeder joining moves the first leecher to the end of the
    // array, which shifts the leecher segment's origin by one.)
    const h = new Harness();
    for (let i = 0; i < 30; i++) h.announce({ ih: IH, pid: peerId(i), ip: ip4(10, 9, 0, i), port: 20_000 + i, left: 5, numwant: 0 });
    for (let k = 0; k < 3; k++) h.announce({ ih: IH, pid: peerId(100 + k), ip: ip4(10, 8, 0, k), port: 30_000 + k, left: 0, numwant: 0 });
    const seen = new Set<number>();
    for (let k = 0; k < 3; k++) {
      const a = h.announce({ ih: IH, pid: peerId(100 + k), ip: ip4(10, 8, 0, k), port: 30_000 + k, left: 0, numwant: 10 });
      expect(a.count).toBe(10);
      for (const p of ports(a)) {
        expect(p).toBeLessThan(30_000);
        seen.add(p);
      }
    }
    expect(seen.size).toBe(30);
  });

  it("gives peers of the asker's family only, in 6- or 18-byte compact entries", () => {
    const h = new Harness();
    const v4s = [ip4(192, 168, 1, 1), ip4(8, 8, 8, 8), ip4(255, 0, 127, 1)];
    const v6s = [ip6(1), ip6(0xabcd)];
    v4s.forEach((ip, i) => h.announce({ ih: IH, pid: peerId(i), ip, port: 0x1234 + i, left: 0, numwant: 0 }));
    v6s.forEach((ip, i) => h.announce({ ih: IH, pid: peerId(10 + i), ip, port: 0xfe00 + i, left: 0, numwant: 0 }));
    expect(h.store.ctl[ShardControl.PEERS_V6]).toBe(2);
    const s = h.store.findSwarm(IH, 0);
    expect(segment(h.store, s, false, true).map((e) => [...e.ip, e.port])).toEqual([
      [192, 168, 1, 1, 0x1234],
      [8, 8, 8, 8, 0x1235],
      [255, 0, 127, 1, 0x1236],
    ]);
    expect(segment(h.store, s, true, true).map((e) => [e.ip, e.port])).toEqual([
      [[...ip6(1)], 0xfe00],
      [[...ip6(0xabcd)], 0xfe01],
    ]);

    const a4 = h.announce({ ih: IH, pid: peerId(50), ip: ip4(1, 2, 3, 4), port: 5, left: 1, numwant: 50 });
    expect(a4.count).toBe(3);
    expect(a4.len).toBe(AnnounceAnswer.PEERS + 3 * ENTRY_V4);
    expect(a4.peers.map(v4Bytes)).toEqual([
      [192, 168, 1, 1, 0x12, 0x34],
      [8, 8, 8, 8, 0x12, 0x35],
      [255, 0, 127, 1, 0x12, 0x36],
    ]);
    expect(a4.seeders).toBe(5); // counts are for the whole swarm

    const rot = rotOf(h.store, s);
    const a6 = h.announce({ ih: IH, pid: peerId(51), ip: ip6(7), port: 6, left: 1, numwant: 50 });
    expect(a6.count).toBe(2);
    expect(a6.len).toBe(AnnounceAnswer.PEERS + 2 * ENTRY_V6);
    expect(a6.peers).toEqual(
      rotated(
        [
          { ip: ip6(1), port: 0xfe00 },
          { ip: ip6(0xabcd), port: 0xfe01 },
        ],
        rot,
      ),
    );
    // the IPv6 leecher is given to an IPv6 seeder, the IPv4 one to an IPv4 seeder
    const s6 = h.announce({ ih: IH, pid: peerId(10), ip: ip6(1), port: 0xfe00, left: 0, numwant: 50 });
    expect(s6.peers).toEqual([{ ip: ip6(7), port: 6 }]);
    const s4 = h.announce({ ih: IH, pid: peerId(0), ip: v4s[0]!, port: 0x1234, left: 0, numwant: 50 });
    expect(s4.peers.map(v4Bytes)).toEqual([[1, 2, 3, 4, 0, 5]]);
    checkCounts(h, [IH]);
  });

  it('writes non-compact entries as ip16, big-endian port and peer_id (38 bytes), same family', () => {
    const h = new Harness();
    h.announce({ ih: IH, pid: peerId(1), ip: ip4(10, 0, 0, 1), port: 0xabcd, left: 0, numwant: 0 });
    h.announce({ ih: IH, pid: peerId(2), ip: ip4(10, 0, 0, 2), port: 80, left: 0, numwant: 0 });
    h.announce({ ih: IH, pid: peerId(3), ip: ip6(3), port: 443, left: 0, numwant: 0 });
    for (const noPeerId of [false, true]) {
      const a = h.announce({ ih: IH, pid: peerId(9), ip: ip4(1, 1, 1, 1), port: 1, left: 1, compact: false, noPeerId });
      expect(a.len).toBe(AnnounceAnswer.PEERS + 2 * ENTRY_FULL);
      expect(a.peers).toEqual([
        { ip: ip4(10, 0, 0, 1), port: 0xabcd, pid: peerId(1) },
        { ip: ip4(10, 0, 0, 2), port: 80, pid: peerId(2) },
      ]);
    }
    const a6 = h.announce({ ih: IH, pid: peerId(10), ip: ip6(10), port: 2, left: 1, compact: false });
    // only the IPv6 seeder: the IPv4 peers (seeders and the leecher peerId(9)) are another family
    expect(a6.count).toBe(1);
    expect(a6.len).toBe(AnnounceAnswer.PEERS + ENTRY_FULL);
    expect(a6.peers).toEqual([{ ip: ip6(3), port: 443, pid: peerId(3) }]);
  });

  it('follows a peer that moves between families and lists', () => {
    const h = new Harness();
    const base = { ih: IH, pid: peerId(1), port: 1 };
    h.announce({ ...base, ip: ip4(1, 1, 1, 1), left: 10 });
    const slot = h.peerSlot(IH, peerId(1));
    expect([h.store.ctl[ShardControl.SEEDERS], h.store.ctl[ShardControl.LEECHERS], h.store.ctl[ShardControl.PEERS_V6]]).toEqual([0, 1, 0]);
    expect(whereIs(h.store, slot)).toEqual({ v6: false, seeder: false, ip: [1, 1, 1, 1], port: 1 });
    let a = h.announce({ ...base, ip: ip6(1), left: 10 });
    expect([h.store.ctl[ShardControl.SEEDERS], h.store.ctl[ShardControl.LEECHERS], h.store.ctl[ShardControl.PEERS_V6]]).toEqual([0, 1, 1]);
    expect(whereIs(h.store, slot)).toEqual({ v6: true, seeder: false, ip: [...ip6(1)], port: 1 });
    a = h.announce({ ...base, ip: ip6(1), left: 0 });
    expect(a).toMatchObject({ seeders: 1, leechers: 0 });
    expect([h.store.ctl[ShardControl.SEEDERS], h.store.ctl[ShardControl.LEECHERS], h.store.ctl[ShardControl.PEERS_V6]]).toEqual([1, 0, 1]);
    expect(whereIs(h.store, slot)).toEqual({ v6: true, seeder: true, ip: [...ip6(1)], port: 1 });
    a = h.announce({ ...base, ip: ip4(2, 2, 2, 2), left: 0, port: 99 });
    expect([h.store.ctl[ShardControl.SEEDERS], h.store.ctl[ShardControl.LEECHERS], h.store.ctl[ShardControl.PEERS_V6]]).toEqual([1, 0, 0]);
    expect(h.store.ctl[ShardControl.PEER_LIVE]).toBe(1);
    expect(h.peerSlot(IH, peerId(1))).toBe(slot); // the same record throughout
    expect(whereIs(h.store, slot)).toEqual({ v6: false, seeder: true, ip: [2, 2, 2, 2], port: 99 });
    // others see the new address and port
    const other = h.announce({ ih: IH, pid: peerId(2), ip: ip4(3, 3, 3, 3), port: 3, left: 5 });
    expect(other.peers.map(v4Bytes)).toEqual([[2, 2, 2, 2, 0, 99]]);
    checkCounts(h, [IH]);
  });

  it('an existing peer that changes address is handed out with the new one', () => {
    const h = new Harness();
    for (let i = 0; i < 4; i++) h.announce({ ih: IH, pid: peerId(i), ip: ip4(10, 0, 0, i), port: 100 + i, left: 0, numwant: 0 });
    h.announce({ ih: IH, pid: peerId(9), ip: ip6(9), port: 900, left: 0, numwant: 0 });
    const s = h.store.findSwarm(IH, 0);
    const slot = h.peerSlot(IH, peerId(2));
    const before = segment(h.store, s, false, true);
    // new IP and port, same family and segment: rewritten in place
    const a = h.announce({ ih: IH, pid: peerId(2), ip: ip4(172, 16, 5, 4), port: 51413, left: 0, numwant: 0 });
    expect(a).toMatchObject({ status: ST_OK, seeders: 5, leechers: 0 });
    const after = segment(h.store, s, false, true);
    expect(after.map((e) => e.slot)).toEqual(before.map((e) => e.slot));
    expect(after.find((e) => e.slot === slot)).toEqual({ slot, ip: [172, 16, 5, 4], port: 51413 });
    expect(h.store.ctl[ShardControl.PEER_LIVE]).toBe(5);
    // only the port changes
    h.announce({ ih: IH, pid: peerId(2), ip: ip4(172, 16, 5, 4), port: 6000, left: 0, numwant: 0 });
    // a leecher asking for everything sees the new address and never the old one
    const l = h.announce({ ih: IH, pid: peerId(50), ip: ip4(1, 1, 1, 1), port: 1, left: 5, numwant: 50 });
    expect(l.count).toBe(4);
    const got = l.peers.map(v4Bytes);
    expect(got).toContainEqual([172, 16, 5, 4, 6000 >> 8, 6000 & 255]);
    expect(got).not.toContainEqual([10, 0, 0, 2, 0, 102]);
    expect(got).not.toContainEqual([172, 16, 5, 4, 51413 >> 8, 51413 & 255]);
    // and an IPv6 peer changing its address
    h.announce({ ih: IH, pid: peerId(9), ip: ip6(0x99), port: 901, left: 0, numwant: 0 });
    const l6 = h.announce({ ih: IH, pid: peerId(51), ip: ip6(51), port: 1, left: 5, numwant: 50 });
    expect(l6.peers).toEqual([{ ip: ip6(0x99), port: 901 }]);
    // a non-compact answer carries the new address with the peer's id
    const full = h.announce({ ih: IH, pid: peerId(52), ip: ip4(1, 1, 1, 2), port: 1, left: 5, numwant: 50, compact: false });
    expect(full.peers).toContainEqual({ ip: ip4(172, 16, 5, 4), port: 6000, pid: peerId(2) });
    checkCounts(h, [IH]);
  });

  it('a peer switching family moves from one array to the other, and only that family is given it', () => {
    const h = new Harness();
    h.announce({ ih: IH, pid: peerId(1), ip: ip4(10, 0, 0, 1), port: 11, left: 0, numwant: 0 });
    h.announce({ ih: IH, pid: peerId(2), ip: ip4(10, 0, 0, 2), port: 12, left: 0, numwant: 0 });
    h.announce({ ih: IH, pid: peerId(3), ip: ip6(3), port: 13, left: 0, numwant: 0 });
    const s = h.store.findSwarm(IH, 0);
    const slot = h.peerSlot(IH, peerId(2));
    const counts = (): number[] =>
      [SwarmRecord.SEED4, SwarmRecord.LEECH4, SwarmRecord.SEED6, SwarmRecord.LEECH6].map((f) => h.store.swarms.dv.getUint32(s * SwarmRecord.SIZE + f, true));
    expect(counts()).toEqual([2, 0, 1, 0]);
    // v4 → v6
    h.announce({ ih: IH, pid: peerId(2), ip: ip6(2), port: 22, left: 0, numwant: 0 });
    expect(counts()).toEqual([1, 0, 2, 0]);
    expect(segment(h.store, s, false, true).map((e) => e.slot)).not.toContain(slot);
    expect(segment(h.store, s, true, true).find((e) => e.slot === slot)).toEqual({ slot, ip: [...ip6(2)], port: 22 });
    expect(h.store.ctl[ShardControl.PEERS_V6]).toBe(2);
    const l4 = h.announce({ ih: IH, pid: peerId(40), ip: ip4(9, 9, 9, 9), port: 1, left: 1, numwant: 50 });
    expect(l4.peers.map(v4Bytes)).toEqual([[10, 0, 0, 1, 0, 11]]);
    const l6 = h.announce({ ih: IH, pid: peerId(60), ip: ip6(60), port: 1, left: 1, numwant: 50 });
    expect(l6.peers.map((p) => p.port).sort()).toEqual([13, 22]);
    // v6 → v4, becoming a leecher at the same time
    h.announce({ ih: IH, pid: peerId(2), ip: ip4(10, 0, 0, 22), port: 23, left: 7, numwant: 0 });
    expect(counts()).toEqual([1, 2, 1, 1]); // peerId(40) is an IPv4 leecher, peerId(60) an IPv6 one
    expect(whereIs(h.store, slot)).toEqual({ v6: false, seeder: false, ip: [10, 0, 0, 22], port: 23 });
    const s6 = h.announce({ ih: IH, pid: peerId(3), ip: ip6(3), port: 13, left: 0, numwant: 50 });
    expect(s6.peers).toEqual([{ ip: ip6(60), port: 1 }]);
    const s4 = h.announce({ ih: IH, pid: peerId(1), ip: ip4(10, 0, 0, 1), port: 11, left: 0, numwant: 50 });
    expect(s4.peers.map(v4Bytes).sort()).toEqual([[10, 0, 0, 22, 0, 23], [9, 9, 9, 9, 0, 1]].sort());
    expect(h.store.ctl[ShardControl.PEER_LIVE]).toBe(5);
    checkCounts(h, [IH]);
  });
});

describe('ShardLogic WebSocket peers', () => {
  const sock = (p: Peer) => ((p.ip[0]! << 24) | (p.ip[1]! << 16) | (p.ip[2]! << 8) | p.ip[3]!) >>> 0;

  it('answers WebSocket peers to one another only (their socket ids), counting every peer of the swarm', () => {
    const h = new Harness();
    h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1, left: 0 }); // HTTP seeder
    h.announce({ ih: IH, pid: peerId(2), ip: ip4(1, 1, 1, 2), port: 0, left: 0, ws: 0x01020304 }); // browser seeder
    h.announce({ ih: IH, pid: peerId(3), ip: ip6(3), port: 0, left: 5, ws: 7 }); // browser leecher (over IPv6)
    const w = h.announce({ ih: IH, pid: peerId(4), ip: ip4(1, 1, 1, 4), port: 0, left: 5, ws: 0xfffffffe });
    expect(w).toMatchObject({ seeders: 2, leechers: 2 });
    expect(w.peers.map(sock).sort((x, y) => x - y)).toEqual([7, 0x01020304]);
    const t = h.announce({ ih: IH, pid: peerId(5), ip: ip4(1, 1, 1, 5), port: 5, left: 5 }); // HTTP leecher
    expect(t).toMatchObject({ seeders: 2, leechers: 3 });
    expect(t.peers.map((p) => p.port)).toEqual([1]); // the HTTP seeder only
    expect(h.store.ctl[ShardControl.PEERS_WS]).toBe(3);
    expect(h.store.ctl[ShardControl.PEERS_V6]).toBe(0); // (peer 3's address is not its entry)
    // a peer_id moving from the browser to HTTP changes family, and back
    h.announce({ ih: IH, pid: peerId(2), ip: ip4(1, 1, 1, 2), port: 2, left: 0 });
    expect(h.store.ctl[ShardControl.PEERS_WS]).toBe(2);
    expect(h.announce({ ih: IH, pid: peerId(6), ip: ip4(1, 1, 1, 6), port: 6, left: 5 }).peers.map((p) => p.port).sort()).toEqual([1, 2, 5]);
    h.announce({ ih: IH, pid: peerId(2), ip: ip4(1, 1, 1, 2), port: 0, left: 0, ws: 9 });
    expect(h.store.ctl[ShardControl.PEERS_WS]).toBe(3);
    expect(h.scrape([IH]).files).toEqual([[2, 0, 4]]);
    expect([h.store.ctl[ShardControl.SEEDERS], h.store.ctl[ShardControl.LEECHERS], h.store.ctl[ShardControl.PEER_LIVE]]).toEqual([2, 4, 6]);
  });

  it('stops a peer whose socket closed at the totals it last reported: no delta, no backwards counters', () => {
    const h = new Harness(LIMITS, { peerTimeout: 3600, ledger: true });
    h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 0, left: 5, user: 3, torrent: 2, uploaded: 500, ws: 1 });
    h.now += 10;
    h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 0, left: 5, user: 3, torrent: 2, event: EVENT_STOPPED, gone: true, ws: 1 });
    // the same stop again (a close racing an explicit stop): the peer is gone, nothing is recorded
    h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 0, left: 0, user: 3, torrent: 2, event: EVENT_STOPPED, gone: true, ws: 1 });
    expect(h.announce({ ih: IH, pid: peerId(2), ip: ip4(1, 1, 1, 2), port: 2, left: 5 })).toMatchObject({ seeders: 0, leechers: 1 });
    const ring = h.accounting!;
    ring.w.commit();
    const flags: number[][] = [];
    for (let r = ring.r.next(); r >= 0; r = ring.r.next()) {
      flags.push([ring.r.u8[r + AccountingRecord.FLAGS]!, ring.r.u8[r + AccountingRecord.CHEATS]!, ring.r.u8[r + AccountingRecord.FLAGS2]!, ring.r.dv.getFloat64(r + AccountingRecord.TOTAL_UP, true)]);
    }
    // the browser's announce is marked (replayed as its departure at a restart); a stop is a stop
    expect(flags).toEqual([[0, 0, ACF2_WS, 500], [ACF_STOPPED, 0, 0, 500], [ACF_STATE, 0, 0, 0]]);
  });

  it('ignores a closed socket\'s stop for a peer that socket no longer holds', () => {
    const h = new Harness();
    h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 0, left: 5, ws: 1 });
    h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 0, left: 5, ws: 2 }); // the same browser on a new socket
    expect(h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 0, left: 5, event: EVENT_STOPPED, gone: true, ws: 1 })).toMatchObject({ leechers: 1 });
    h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 6881, left: 5 }); // and now over HTTP
    expect(h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 0, left: 5, event: EVENT_STOPPED, gone: true, ws: 2 })).toMatchObject({ leechers: 1 });
    expect(h.announce({ ih: IH, pid: peerId(2), ip: ip4(1, 1, 1, 2), port: 2, left: 5 }).peers.map((p) => p.port)).toEqual([6881]);
  });
});

describe('ShardLogic journal records', () => {
  /** The records the shard published since the last call: [flags, user, uploaded delta, total uploaded]. */
  function records(h: Harness): [number, number, number, number][] {
    h.accounting!.w.commit(); // (as the shard thread does after each request batch)
    const ring = h.accounting!.r;
    const out: [number, number, number, number][] = [];
    for (let r = ring.next(); r >= 0; r = ring.next()) {
      out.push([ring.u8[r + AccountingRecord.FLAGS], ring.dv.getUint32(r + AccountingRecord.USER, true), ring.dv.getFloat64(r + AccountingRecord.UPLOADED, true), ring.dv.getFloat64(r + AccountingRecord.TOTAL_UP, true)]);
    }
    ring.release();
    return out;
  }

  it('accounts a user\'s peer on a registered torrent, and journals every other change as a peer\'s state', () => {
    const h = new Harness(LIMITS, { peerTimeout: 3600, ledger: true });
    h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1, left: 10, user: 7, torrent: 3, uploaded: 100 });
    h.announce({ ih: IH, pid: peerId(2), ip: ip4(1, 1, 1, 2), port: 2, left: 0, user: 8, torrent: 3, uploaded: 0 });
    h.now += 10;
    h.announce({ ih: IH, pid: peerId(2), ip: ip4(1, 1, 1, 2), port: 2, left: 0, user: 8, torrent: 3, uploaded: 50 });
    expect(records(h)).toEqual([[0, 7, 0, 100], [ACF_SEEDER, 8, 0, 0], [ACF_SEEDER, 8, 50, 50]]);
    // open mode (user 0), an unregistered torrent (0): the state, no deltas
    h.announce({ ih: IH2, pid: peerId(3), ip: ip4(1, 1, 1, 3), port: 3, left: 10, uploaded: 100 });
    h.now += 10;
    h.announce({ ih: IH2, pid: peerId(3), ip: ip4(1, 1, 1, 3), port: 3, left: 10, uploaded: 300 });
    h.announce({ ih: IH2, pid: peerId(4), ip: ip4(1, 1, 1, 4), port: 4, left: 10, user: 7, torrent: 0, uploaded: 5 });
    h.announce({ ih: IH2, pid: peerId(3), ip: ip4(1, 1, 1, 3), port: 3, left: 10, uploaded: 400, event: EVENT_STOPPED });
    // a stop of a peer that is not there changes nothing: no record
    h.announce({ ih: IH2, pid: peerId(9), ip: ip4(1, 1, 1, 9), port: 9, left: 10, event: EVENT_STOPPED });
    expect(records(h)).toEqual([[ACF_STATE, 0, 0, 100], [ACF_STATE, 0, 0, 300], [ACF_STATE, 7, 0, 5], [ACF_STATE | ACF_STOPPED, 0, 0, 400]]);
  });

  it('journals only states without a ledger (no database)', () => {
    const h = new Harness(LIMITS, { peerTimeout: 3600, ledger: false });
    h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1, left: 10, user: 7, torrent: 3, uploaded: 100 });
    h.now += 10;
    h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1, left: 10, user: 7, torrent: 3, uploaded: 900 });
    expect(records(h)).toEqual([[ACF_STATE, 7, 0, 100], [ACF_STATE, 7, 0, 900]]);
  });

  it('journals no states where no checkpoint is kept: accounting only', () => {
    const h = new Harness(LIMITS, { peerTimeout: 3600, ledger: true, states: false });
    h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1, left: 10, uploaded: 100 });
    h.announce({ ih: IH, pid: peerId(2), ip: ip4(1, 1, 1, 2), port: 2, left: 10, user: 7, torrent: 3, uploaded: 5 });
    expect(records(h)).toEqual([[0, 7, 0, 5]]);
  });
});

describe('ShardLogic events', () => {
  it('counts completed once per peer even if it is sent twice', () => {
    const h = new Harness();
    h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1, left: 100, event: EVENT_STARTED });
    let a = h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1, left: 0, event: EVENT_COMPLETED, downloaded: 1 });
    expect(a).toMatchObject({ seeders: 1, leechers: 0, completed: 1 });
    a = h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1, left: 0, event: EVENT_COMPLETED, downloaded: 1 });
    expect(a).toMatchObject({ seeders: 1, leechers: 0, completed: 1 });
    a = h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1, left: 0 });
    expect(a.completed).toBe(1);
    const slot = h.peerSlot(IH, peerId(1));
    expect(h.store.peers.u8[slot * PeerRecord.SIZE + PeerRecord.FLAGS]! & PF_COMPLETED).toBe(PF_COMPLETED);
    // the flag survives a move between families
    h.announce({ ih: IH, pid: peerId(1), ip: ip6(1), port: 1, left: 0, event: EVENT_COMPLETED, downloaded: 1 });
    expect(h.store.peers.u8[slot * PeerRecord.SIZE + PeerRecord.FLAGS]! & PF_COMPLETED).toBe(PF_COMPLETED);
    // a completed the shard saw no download for is no snatch: a peer first seen completing,
    // or one that was a seeder all along
    a = h.announce({ ih: IH, pid: peerId(2), ip: ip4(1, 1, 1, 2), port: 2, left: 0, event: EVENT_COMPLETED, downloaded: 1 });
    expect(a).toMatchObject({ seeders: 2, completed: 1 });
    a = h.announce({ ih: IH, pid: peerId(2), ip: ip4(1, 1, 1, 2), port: 2, left: 0, event: EVENT_COMPLETED, downloaded: 1 });
    expect(a.completed).toBe(1);
    // another leecher completing counts
    h.announce({ ih: IH, pid: peerId(3), ip: ip4(1, 1, 1, 3), port: 3, left: 10 });
    a = h.announce({ ih: IH, pid: peerId(3), ip: ip4(1, 1, 1, 3), port: 3, left: 0, event: EVENT_COMPLETED, downloaded: 1 });
    expect(a).toMatchObject({ seeders: 3, completed: 2 });
    expect(h.scrape([IH]).files).toEqual([[3, 2, 0]]);
  });

  it('stopped removes the peer and the counts drop; it gets no peers', () => {
    const h = new Harness();
    for (let i = 0; i < 4; i++) h.announce({ ih: IH, pid: peerId(i), ip: ip4(1, 1, 1, i), port: i + 1, left: i < 2 ? 0 : 5 });
    h.announce({ ih: IH, pid: peerId(7), ip: ip6(7), port: 7, left: 5 });
    expect(h.store.ctl[ShardControl.PEER_LIVE]).toBe(5);
    const s = h.store.findSwarm(IH, 0);
    let a = h.announce({ ih: IH, pid: peerId(0), ip: ip4(1, 1, 1, 0), port: 1, left: 0, event: EVENT_STOPPED, numwant: 50 });
    expect(a).toMatchObject({ status: ST_OK, count: 0, seeders: 1, leechers: 3, len: AnnounceAnswer.PEERS });
    expect(h.peerSlot(IH, peerId(0))).toBe(-1);
    a = h.announce({ ih: IH, pid: peerId(3), ip: ip4(1, 1, 1, 3), port: 4, left: 5, event: EVENT_STOPPED });
    expect(a).toMatchObject({ count: 0, seeders: 1, leechers: 2 });
    a = h.announce({ ih: IH, pid: peerId(7), ip: ip6(7), port: 7, left: 5, event: EVENT_STOPPED });
    expect(a).toMatchObject({ count: 0, seeders: 1, leechers: 1 });
    expect(h.store.ctl[ShardControl.PEER_LIVE]).toBe(2);
    expect([h.store.ctl[ShardControl.SEEDERS], h.store.ctl[ShardControl.LEECHERS], h.store.ctl[ShardControl.PEERS_V6]]).toEqual([1, 1, 0]);
    expect(segment(h.store, s, false, true).map((e) => e.port)).toEqual([2]);
    expect(segment(h.store, s, false, false).map((e) => e.port)).toEqual([3]);
    expect(h.store.swarms.u8[s * SwarmRecord.SIZE + SwarmRecord.CLASS6]).toBe(0); // the emptied IPv6 array was released
    // nobody is handed the stopped peers any more
    const l = h.announce({ ih: IH, pid: peerId(9), ip: ip4(9, 9, 9, 9), port: 9, left: 1 });
    expect(ports(l).sort()).toEqual([2, 3]);
    // stopping twice, or an unknown peer stopping, is harmless
    a = h.announce({ ih: IH, pid: peerId(0), ip: ip4(1, 1, 1, 0), port: 1, left: 0, event: EVENT_STOPPED });
    expect(a).toMatchObject({ status: ST_OK, count: 0, seeders: 1, leechers: 2 });
    checkCounts(h, [IH]);
  });

  it('stopped for an unknown torrent answers zeros and creates no swarm', () => {
    const h = new Harness();
    const ih = sha1('never seen');
    const a = h.announce({ ih, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1, left: 0, event: EVENT_STOPPED });
    expect(a).toMatchObject({ status: ST_OK, count: 0, seeders: 0, leechers: 0, completed: 0, len: AnnounceAnswer.PEERS });
    expect(h.store.findSwarm(ih, 0)).toBe(-1);
    expect(h.store.ctl[ShardControl.SWARM_LIVE]).toBe(0);
  });

  it('paused peers get only leechers and stay in the leecher segment', () => {
    const h = new Harness();
    for (let i = 0; i < 3; i++) h.announce({ ih: IH, pid: peerId(i), ip: ip4(1, 1, 1, i), port: 100 + i, left: 0, numwant: 0 });
    for (let i = 0; i < 3; i++) h.announce({ ih: IH, pid: peerId(10 + i), ip: ip4(1, 1, 2, i), port: 200 + i, left: 9, numwant: 0 });
    const p = h.announce({ ih: IH, pid: peerId(50), ip: ip4(1, 1, 3, 1), port: 300, left: 9, event: EVENT_PAUSED, numwant: 50 });
    expect(p.count).toBe(3);
    expect(ports(p).sort()).toEqual([200, 201, 202]);
    expect(p).toMatchObject({ seeders: 3, leechers: 4 });
    const slot = h.peerSlot(IH, peerId(50));
    expect(h.store.peers.u8[slot * PeerRecord.SIZE + PeerRecord.FLAGS]! & PF_PAUSED).toBe(PF_PAUSED);
    expect(whereIs(h.store, slot)).toMatchObject({ v6: false, seeder: false });
    // paused again: still no seeders
    const p2 = h.announce({ ih: IH, pid: peerId(50), ip: ip4(1, 1, 3, 1), port: 300, left: 9, event: EVENT_PAUSED, numwant: 50 });
    expect(ports(p2).sort()).toEqual([200, 201, 202]);
    // resuming (no event) brings seeders back and clears the flag
    const r = h.announce({ ih: IH, pid: peerId(50), ip: ip4(1, 1, 3, 1), port: 300, left: 9, numwant: 50 });
    expect(ports(r).slice(0, 3).sort()).toEqual([100, 101, 102]);
    expect(h.store.peers.u8[slot * PeerRecord.SIZE + PeerRecord.FLAGS]! & PF_PAUSED).toBe(0);
    // a leecher is given the paused peer
    h.announce({ ih: IH, pid: peerId(50), ip: ip4(1, 1, 3, 1), port: 300, left: 9, event: EVENT_PAUSED, numwant: 0 });
    const l = h.announce({ ih: IH, pid: peerId(60), ip: ip4(1, 1, 4, 1), port: 400, left: 9, numwant: 50 });
    expect(ports(l)).toContain(300);
    checkCounts(h, [IH]);
  });
});

describe('ShardLogic peer_id ownership', () => {
  it('refuses a peer_id held by another user in the swarm, for announces and stops', () => {
    const h = new Harness();
    h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1111, left: 5, user: 7 });
    h.announce({ ih: IH, pid: peerId(2), ip: ip4(1, 1, 1, 2), port: 2222, left: 0, user: 8 });
    const slot = h.peerSlot(IH, peerId(1));
    for (const event of [EVENT_NONE, EVENT_STARTED, EVENT_COMPLETED, EVENT_STOPPED]) {
      const a = h.announce({ ih: IH, pid: peerId(1), ip: ip4(6, 6, 6, 6), port: 6666, left: 0, user: 9, event });
      expect(a).toMatchObject({ status: ST_PEER_ID_IN_USE, count: 0, seeders: 0, leechers: 0, completed: 0, len: AnnounceAnswer.PEERS });
    }
    // also from another family
    const a6 = h.announce({ ih: IH, pid: peerId(1), ip: ip6(6), port: 6666, left: 0, user: 9 });
    expect(a6.status).toBe(ST_PEER_ID_IN_USE);
    // the holder is untouched: same slot, segment, family and address
    expect(h.peerSlot(IH, peerId(1))).toBe(slot);
    expect(whereIs(h.store, slot)).toEqual({ v6: false, seeder: false, ip: [1, 1, 1, 1], port: 1111 });
    expect(h.store.peers.dv.getUint32(slot * PeerRecord.SIZE + PeerRecord.USER, true)).toBe(7);
    expect(h.scrape([IH]).files).toEqual([[1, 0, 1]]);
    // the same peer_id in another swarm is fine for the other user
    const other = h.announce({ ih: sha1('other'), pid: peerId(1), ip: ip4(6, 6, 6, 6), port: 6666, left: 0, user: 9 });
    expect(other.status).toBe(ST_OK);
    // and the owner itself is fine
    expect(h.announce({ ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1111, left: 5, user: 7 }).status).toBe(ST_OK);
    checkCounts(h, [IH, sha1('other')]);
  });

  it('private mode: the user owns its peer whatever key and address its announces carry', () => {
    const h = new Harness();
    const base = { ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1, left: 5, user: 3 };
    expect(h.announce({ ...base, key: 0x1234, source: 10 }).status).toBe(ST_OK);
    expect(h.announce({ ...base, key: 0x4321, source: 11, port: 2 }).status).toBe(ST_OK);
    expect(h.announce({ ...base, source: 12, port: 3, event: EVENT_COMPLETED, left: 0 }).status).toBe(ST_OK);
    expect(whereIs(h.store, h.peerSlot(IH, peerId(1)))).toMatchObject({ seeder: true, port: 3 });
    expect(h.announce({ ...base, key: 0x1234, source: 10, user: 4 }).status).toBe(ST_PEER_ID_IN_USE);
    expect(h.announce({ ...base, key: 9, source: 13, event: EVENT_STOPPED }).status).toBe(ST_OK);
    expect(h.peerSlot(IH, peerId(1))).toBe(-1);
  });

  it('open mode: the sending address or the same key owns the peer, nothing else', () => {
    const h = new Harness();
    const base = { ih: IH, pid: peerId(1), ip: ip4(1, 1, 1, 1), port: 1, left: 5 };
    // aria2 over UDP: a new random key in every announce, always from the same address
    expect(h.announce({ ...base, key: 0x1111, source: 10, event: EVENT_STARTED }).status).toBe(ST_OK);
    expect(h.announce({ ...base, key: 0x2222, source: 10 }).status).toBe(ST_OK);
    expect(h.announce({ ...base, key: 0x3333, source: 10, left: 0, event: EVENT_COMPLETED, downloaded: 1 }).status).toBe(ST_OK);
    expect(h.scrape([IH]).files).toEqual([[1, 1, 0]]);
    // another address with another key (or none) can neither update nor stop it
    for (const other of [{ key: 0x4444 }, {}]) {
      for (const event of [EVENT_NONE, EVENT_STARTED, EVENT_COMPLETED, EVENT_STOPPED]) {
        const a = h.announce({ ...base, ...other, source: 66, port: 6666, event });
        expect(a).toMatchObject({ status: ST_PEER_ID_IN_USE, count: 0, seeders: 0, leechers: 0 });
      }
    }
    expect(whereIs(h.store, h.peerSlot(IH, peerId(1)))).toMatchObject({ seeder: true, port: 1 });
    // a client that moved address proves itself with the key it last sent
    expect(h.announce({ ...base, key: 0x3333, source: 20, port: 2, left: 0 }).status).toBe(ST_OK);
    // ... and from then on the new address is the peer's
    expect(h.announce({ ...base, key: 0x5555, source: 20, port: 2, left: 0 }).status).toBe(ST_OK);
    expect(h.announce({ ...base, key: 0x5555, source: 10, left: 0 }).status).toBe(ST_OK); // same key again
    expect(h.announce({ ...base, source: 20, left: 0 }).status).toBe(ST_PEER_ID_IN_USE); // no key, old address
    // a keyless client is owned by its address alone
    const h2 = new Harness();
    expect(h2.announce({ ...base, source: 30 }).status).toBe(ST_OK);
    expect(h2.announce({ ...base, source: 31, key: 7 }).status).toBe(ST_PEER_ID_IN_USE);
    expect(h2.announce({ ...base, source: 30, event: EVENT_STOPPED }).status).toBe(ST_OK);
    expect(h2.peerSlot(IH, peerId(1))).toBe(-1);
    checkCounts(h, [IH]);
  });
});

describe('ShardLogic scrape and limits', () => {
  it('scrapes several hashes, known and unknown, in request order', () => {
    const h = new Harness();
    const A = sha1('A');
    const B = sha1('B');
    const C = sha1('C');
    for (let i = 0; i < 3; i++) h.announce({ ih: A, pid: peerId(i), ip: i === 1 ? ip6(i) : ip4(1, 0, 0, i), port: 1, left: 0 });
    h.announce({ ih: A, pid: peerId(9), ip: ip4(1, 0, 0, 9), port: 1, left: 3 });
    h.announce({ ih: B, pid: peerId(1), ip: ip4(1, 0, 0, 1), port: 1, left: 3 });
    h.announce({ ih: B, pid: peerId(2), ip: ip6(2), port: 1, left: 3 });
    h.announce({ ih: B, pid: peerId(2), ip: ip6(2), port: 1, left: 0, event: EVENT_COMPLETED, downloaded: 1 });
    h.announce({ ih: C, pid: peerId(1), ip: ip4(1, 0, 0, 1), port: 1, left: 3 });
    h.announce({ ih: C, pid: peerId(1), ip: ip4(1, 0, 0, 1), port: 1, left: 3, event: EVENT_STOPPED });
    const unknown = sha1('unknown');
    const r = h.scrape([unknown, B, A, C, unknown, A]);
    expect(r.count).toBe(6);
    // (seeders, completed, leechers), both families summed
    expect(r.files).toEqual([
      [0, 0, 0],
      [1, 1, 1],
      [3, 0, 1],
      [0, 0, 0],
      [0, 0, 0],
      [3, 0, 1],
    ]);
    expect(h.scrape([]).files).toEqual([]);
  });

  it('refuses new peers with ST_TABLE_FULL at max_peers and counts the refusals', () => {
    const h = new Harness({ maxPeers: 8, maxSwarms: 4, requestRingBytes: 1 << 12, answerRingBytes: 1 << 12 });
    for (let i = 0; i < 8; i++) expect(h.announce({ ih: IH, pid: peerId(i), ip: ip4(1, 0, 0, i), port: 1, left: 1 }).status).toBe(ST_OK);
    const a = h.announce({ ih: IH, pid: peerId(8), ip: ip4(1, 0, 0, 8), port: 1, left: 1, numwant: 50 });
    expect(a).toMatchObject({ status: ST_TABLE_FULL, count: 0, seeders: 0, leechers: 0, len: AnnounceAnswer.PEERS });
    expect(h.store.ctl[ShardControl.TABLE_FULL]).toBe(1);
    expect(h.peerSlot(IH, peerId(8))).toBe(-1);
    // known peers still announce, also switching family
    expect(h.announce({ ih: IH, pid: peerId(3), ip: ip4(1, 0, 0, 3), port: 1, left: 1 }).leechers).toBe(8);
    expect(h.announce({ ih: IH, pid: peerId(4), ip: ip6(4), port: 1, left: 1 }).status).toBe(ST_OK);
    expect(h.store.ctl[ShardControl.PEERS_V6]).toBe(1);
    // a stop makes room
    h.announce({ ih: IH, pid: peerId(3), ip: ip4(1, 0, 0, 3), port: 1, left: 1, event: EVENT_STOPPED });
    expect(h.announce({ ih: IH, pid: peerId(8), ip: ip4(1, 0, 0, 8), port: 1, left: 1 }).status).toBe(ST_OK);
    expect(h.store.ctl[ShardControl.TABLE_FULL]).toBe(1);
    checkCounts(h, [IH]);
  });

  it('refuses new swarms with ST_TABLE_FULL at max_swarms and counts the refusals', () => {
    const h = new Harness({ maxPeers: 100, maxSwarms: 4, requestRingBytes: 1 << 12, answerRingBytes: 1 << 12 });
    for (let i = 0; i < 4; i++) expect(h.announce({ ih: sha1(`s${i}`), pid: peerId(1), ip: ip4(1, 0, 0, 1), port: 1, left: 1 }).status).toBe(ST_OK);
    const a = h.announce({ ih: sha1('s4'), pid: peerId(1), ip: ip4(1, 0, 0, 1), port: 1, left: 1 });
    expect(a).toMatchObject({ status: ST_TABLE_FULL, count: 0, seeders: 0, leechers: 0, len: AnnounceAnswer.PEERS });
    expect(h.store.ctl[ShardControl.TABLE_FULL]).toBe(1);
    expect(h.store.findSwarm(sha1('s4'), 0)).toBe(-1);
    // a stop for a swarm that cannot exist is not a refusal
    const s = h.announce({ ih: sha1('s5'), pid: peerId(1), ip: ip4(1, 0, 0, 1), port: 1, left: 1, event: EVENT_STOPPED });
    expect(s.status).toBe(ST_OK);
    expect(h.store.ctl[ShardControl.TABLE_FULL]).toBe(1);
  });

  it('refuses with ST_TABLE_FULL when the arena has no room for the array a peer needs', () => {
    // maxPeers 16 reserves 64 entries per family; take 62 of the IPv6 arena's directly,
    // each block at a multiple of its size: [0,32) [32,48) [48,56) [56,60) [60,62)
    const h = new Harness({ maxPeers: 16, maxSwarms: 4, requestRingBytes: 1 << 12, answerRingBytes: 1 << 12 });
    expect([6, 5, 4, 3, 2].map((cls) => h.store.arena6.alloc(cls))).toEqual([0, 32, 48, 56, 60]);
    expect(h.store.ctl[ShardControl.ARENA6_TOP]).toBe(62);
    // two IPv6 peers fit (a 2-entry block at [62, 64)); a third needs a 4-entry block, which
    // would start at 64: refused
    expect(h.announce({ ih: IH, pid: peerId(1), ip: ip6(1), port: 1, left: 0 }).status).toBe(ST_OK);
    expect(h.announce({ ih: IH, pid: peerId(2), ip: ip6(2), port: 2, left: 5 }).status).toBe(ST_OK);
    expect(h.store.ctl[ShardControl.ARENA6_TOP]).toBe(64);
    const a = h.announce({ ih: IH, pid: peerId(4), ip: ip6(4), port: 4, left: 5, numwant: 50 });
    expect(a).toMatchObject({ status: ST_TABLE_FULL, count: 0, seeders: 0, leechers: 0, len: AnnounceAnswer.PEERS });
    expect(h.store.ctl[ShardControl.TABLE_FULL]).toBe(1);
    expect(h.peerSlot(IH, peerId(4))).toBe(-1); // the refused peer's slot was given back
    expect(h.store.ctl[ShardControl.PEER_LIVE]).toBe(2);
    expect(h.store.ctl[ShardControl.PEER_FREE]).not.toBe(-1);
    expect(h.store.ctl[ShardControl.ARENA6_TOP]).toBe(64);
    // IPv4 still works; an IPv4 peer moving to IPv6 is refused and dropped (it announces again)
    expect(h.announce({ ih: IH, pid: peerId(3), ip: ip4(1, 1, 1, 3), port: 3, left: 5 }).status).toBe(ST_OK);
    const moved = h.announce({ ih: IH, pid: peerId(3), ip: ip6(3), port: 3, left: 5 });
    expect(moved.status).toBe(ST_TABLE_FULL);
    expect(h.store.ctl[ShardControl.TABLE_FULL]).toBe(2);
    expect(h.peerSlot(IH, peerId(3))).toBe(-1);
    expect(h.store.ctl[ShardControl.PEER_LIVE]).toBe(2);
    checkCounts(h, [IH]);
    // the IPv6 peers already there are unharmed and answered normally
    const s = h.scrape([IH]);
    expect(s.files).toEqual([[1, 0, 1]]);
    const again = h.announce({ ih: IH, pid: peerId(2), ip: ip6(2), port: 2, left: 5, numwant: 50 });
    expect(again.status).toBe(ST_OK);
    expect(again.peers).toEqual([{ ip: ip6(1), port: 1 }]);
    // a freed 4-entry block is enough: the next refused peer gets in
    h.store.arena6.free(56, 3);
    const third = h.announce({ ih: IH, pid: peerId(4), ip: ip6(4), port: 4, left: 5 });
    expect(third.status).toBe(ST_OK);
    expect(h.store.ctl[ShardControl.TABLE_FULL]).toBe(2);
    expect(h.store.ctl[ShardControl.ARENA6_TOP]).toBe(64);
    checkCounts(h, [IH]);
  });

  it('the largest answer fits maxAnswerBytes', () => {
    expect(maxAnswerBytes(200, 74)).toBe(AnnounceAnswer.PEERS + 200 * ENTRY_FULL);
    expect(maxAnswerBytes(1, 1000)).toBe(ScrapeAnswer.FILES + 1000 * SCRAPE_ENTRY);
    const h = new Harness();
    for (let i = 0; i < 300; i++) h.announce({ ih: IH, pid: peerId(i), ip: ip4(1, 0, i >> 8, i & 255), port: 1, left: 0, numwant: 0 });
    const a = h.announce({ ih: IH, pid: peerId(999), ip: ip4(9, 9, 9, 9), port: 1, left: 1, numwant: 200, compact: false });
    expect(a.count).toBe(200);
    expect(a.len).toBe(maxAnswerBytes(200, 1));
    for (const p of a.peers) expect(p.pid).toBeDefined();
  });
});

describe('ShardLogic randomized against a model', () => {
  it('answers 6,000 random announces consistently with a model of the swarms', () => {
    let seed = 12345;
    const rnd = (): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const h = new Harness();
    const hashes = [sha1('x'), sha1('y'), sha1('z')];
    type M = { seeder: boolean; v6: boolean; ip: Uint8Array; port: number; completed: boolean };
    const model = hashes.map(() => ({ peers: new Map<number, M>(), completed: 0 }));
    const addrKey = (v6: boolean, ip: Uint8Array | number[], port: number): string => `${v6 ? 6 : 4}/${Buffer.from(ip).toString('hex')}:${port}`;
    let familySwitches = 0;
    let addressChanges = 0;
    for (let op = 0; op < 6_000; op++) {
      const w = Math.floor(rnd() * hashes.length);
      const sw = model[w]!;
      const id = Math.floor(rnd() * 60);
      const before = sw.peers.get(id);
      // mostly keep the family and address; sometimes switch family or move
      let v6 = before ? before.v6 : rnd() < 0.3;
      if (before && rnd() < 0.08) {
        v6 = !v6;
        familySwitches++;
      }
      const variant = Math.floor(rnd() * 3);
      const ip = v6 ? ip6(id * 4 + variant) : ip4(10, variant, 0, id);
      const port = 1000 + id * 10 + Math.floor(rnd() * 3);
      if (before && before.v6 === v6 && (port !== before.port || Buffer.compare(before.ip, ip) !== 0)) addressChanges++;
      const r = rnd();
      const event = r < 0.1 ? EVENT_STOPPED : r < 0.2 ? EVENT_COMPLETED : r < 0.3 ? EVENT_STARTED : r < 0.35 ? EVENT_PAUSED : EVENT_NONE;
      const left = rnd() < 0.4 ? 0 : 100;
      const numwant = Math.floor(rnd() * 40);
      const compact = rnd() < 0.8;
      const a = h.announce({ ih: hashes[w]!, pid: peerId(id), ip, port, left, event, numwant, compact, downloaded: 1 });
      expect(a.status).toBe(ST_OK);
      // expected peers: same family, not self, seeders only to leechers that are not paused
      const others = [...sw.peers.entries()].filter(([pid, p]) => pid !== id && p.v6 === v6);
      const wantSeeders = left !== 0 && event !== EVENT_PAUSED;
      const candidates = others.filter(([, p]) => wantSeeders || !p.seeder);
      if (event === EVENT_STOPPED) {
        expect(a.count).toBe(0);
        sw.peers.delete(id);
      } else {
        expect(a.count).toBe(Math.min(numwant, candidates.length));
        const byAddr = new Map(candidates.map(([pid, p]) => [addrKey(p.v6, v6 ? p.ip : p.ip.subarray(12), p.port), { pid, p }]));
        const got = a.peers.map((p) => addrKey(v6, compact || v6 ? p.ip : p.ip.subarray(12), p.port));
        expect(new Set(got).size).toBe(got.length);
        let sawLeecher = false;
        a.peers.forEach((peer, i) => {
          const m = byAddr.get(got[i]!);
          expect(m, `${got[i]} is not a candidate`).toBeDefined();
          if (!compact) {
            expect(peer.pid).toEqual(peerId(m!.pid));
            if (!v6) expect(v4of(peer.ip)).toEqual(v4of(m!.p.ip)); // and the ::ffff: prefix
            if (!v6) expect([...peer.ip.subarray(0, 12)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
          }
          if (!m!.p.seeder) sawLeecher = true;
          else expect(sawLeecher, 'a seeder after a leecher').toBe(false);
        });
        // seeders first: if any leecher was given, every same-family seeder was given
        if (wantSeeders && sawLeecher) expect(got.filter((k) => byAddr.get(k)!.p.seeder).length).toBe(candidates.filter(([, p]) => p.seeder).length);
        // a snatch is counted when a peer the shard knew as a leecher completes
        const counted = event === EVENT_COMPLETED && before !== undefined && !before.completed && !before.seeder && left === 0;
        const completed = (before?.completed ?? false) || counted;
        if (counted) sw.completed++;
        sw.peers.set(id, { seeder: left === 0, v6, ip, port, completed });
      }
      let s = 0;
      for (const p of sw.peers.values()) if (p.seeder) s++;
      expect([a.seeders, a.leechers, a.completed]).toEqual([s, sw.peers.size - s, sw.completed]);
      if (op % 250 === 0 || op === 5_999) {
        // the arrays hold exactly the model's peers, with their current addresses
        for (let k = 0; k < hashes.length; k++) {
          const sl = h.store.findSwarm(hashes[k]!, 0);
          for (const fam6 of [false, true]) {
            for (const seedSeg of [true, false]) {
              const want = [...model[k]!.peers.values()]
                .filter((p) => p.v6 === fam6 && p.seeder === seedSeg)
                .map((p) => addrKey(fam6, fam6 ? p.ip : p.ip.subarray(12), p.port))
                .sort();
              const have = sl < 0 ? [] : segment(h.store, sl, fam6, seedSeg).map((e) => addrKey(fam6, e.ip, e.port)).sort();
              expect(have).toEqual(want);
            }
          }
        }
        checkCounts(h, hashes);
      }
    }
    expect(familySwitches).toBeGreaterThan(100);
    expect(addressChanges).toBeGreaterThan(500);
    const r = h.scrape(hashes);
    expect(r.files).toEqual(
      model.map((sw) => {
        let s = 0;
        for (const p of sw.peers.values()) if (p.seeder) s++;
        return [s, sw.completed, sw.peers.size - s];
      }),
    );
  });
});

describe('ShardLogic with other nodes (replication)', () => {
  const remotePid = peerId(900);
  const upsert = (h: Harness, extra: object = {}) => h.remote({ op: RM_UPSERT, ih: IH, pid: remotePid, node: 7, ...extra });
  const ip = ip4(10, 0, 0, 1);

  it('lists and counts other nodes peers, never expires them, and removes them only for their node', () => {
    const h = new Harness(LIMITS, { peerTimeout: 60 });
    h.replicate();
    upsert(h, { flags: RF_SEEDER });
    const a = h.announce({ ih: IH, pid: peerId(1), ip, port: 6001, left: 10 });
    expect([a.seeders, a.leechers, ports(a)]).toEqual([1, 1, [7000]]);
    expect(h.scrape([IH]).files).toEqual([[1, 0, 1]]);
    expect(h.store.ctl[ShardControl.REMOTE_PEERS]).toBe(1);
    h.now += 1000;
    h.store.expire(h.now, 60, 1 << 20);
    expect(h.scrape([IH]).files).toEqual([[1, 0, 0]]); // the local one expired, the remote one stays
    h.remote({ op: RM_REMOVE, ih: IH, pid: remotePid, node: 8 }); // another node cannot remove it
    expect(h.scrape([IH]).files).toEqual([[1, 0, 0]]);
    h.remote({ op: RM_REMOVE, ih: IH, pid: remotePid, node: 7 });
    expect(h.scrape([IH]).files).toEqual([[0, 0, 0]]);
    expect(h.store.ctl[ShardControl.REMOTE_PEERS]).toBe(0);
  });

  it('sweeps the peers of a node, or those older than a sync', () => {
    const h = new Harness();
    h.replicate();
    upsert(h, { epoch: 1 });
    h.remote({ op: RM_UPSERT, ih: IH, pid: peerId(2), node: 8, epoch: 2 });
    h.remote({ op: RM_SWEEP, node: ALL_NODES, epoch: 2 });
    expect(h.scrape([IH]).files).toEqual([[0, 0, 1]]);
    h.remote({ op: RM_SWEEP, node: 8, epoch: 0xffffffff });
    expect(h.scrape([IH]).files).toEqual([[0, 0, 0]]);
  });

  it('writes a change only when what others see changes, and a removal when a local peer leaves', () => {
    const h = new Harness();
    h.replicate();
    const p = { ih: IH, pid: peerId(1), ip, port: 6001, left: 10 };
    h.announce(p);
    expect(h.changes()).toEqual([[CH_UPSERT, 6001]]);
    h.now += 100;
    h.announce({ ...p, uploaded: 100 });
    expect(h.changes()).toEqual([]); // nothing others see
    h.announce({ ...p, port: 6002 });
    h.announce({ ...p, port: 6002, left: 0 });
    expect(h.changes()).toEqual([[CH_UPSERT, 6002], [CH_UPSERT, 6002]]);
    h.announce({ ...p, left: 0, event: EVENT_STOPPED });
    expect(h.changes().map(([op]) => op)).toEqual([CH_REMOVE]);
  });

  it('keeps a local peer newer than another node copy (and says so), and lets an older one go', () => {
    const h = new Harness();
    h.replicate();
    h.announce({ ih: IH, pid: remotePid, ip, port: 6001, left: 10 });
    h.changes();
    upsert(h, { seen: h.now - 10 }); // older: ours stays, published again
    expect(h.changes()).toEqual([[CH_UPSERT, 6001]]);
    expect(h.store.ctl[ShardControl.REMOTE_PEERS]).toBe(0);
    upsert(h, { seen: h.now, flags: RF_WINS_TIE }); // as new, and the other node wins ties: it moved there
    expect(h.changes().map(([op]) => op)).toEqual([CH_REMOVE]);
    expect(h.store.ctl[ShardControl.REMOTE_PEERS]).toBe(1);
  });

  it('counts other nodes peers for their user (the cap), through replacement, sweep and takeover', () => {
    const h = new Harness();
    h.replicate();
    const swarmOf = () => h.store.findSwarm(IH, 0);
    upsert(h, { user: 5, node: 7 });
    expect(h.logic.owners.get(5, swarmOf())).toBe(1);
    upsert(h, { user: 5, node: 8, seen: h.now + 1 }); // the peer moved to a third node
    expect(h.logic.owners.get(5, swarmOf())).toBe(1);
    upsert(h, { user: 5, node: 7, seen: h.now }); // the first node's older copy: ignored
    expect(h.peerSlot(IH, remotePid) >= 0 && h.store.peers.dv.getUint32(h.peerSlot(IH, remotePid) * PeerRecord.SIZE + PeerRecord.KEY, true)).toBe(8);
    h.remote({ op: RM_UPSERT, ih: IH, pid: peerId(2), node: 8, user: 0 }); // open mode: not counted (address tags are per node)
    h.remote({ op: RM_SWEEP, node: 8, epoch: 0xffffffff });
    expect(h.logic.owners.get(5, swarmOf())).toBe(0);
    expect(h.store.ctl[ShardControl.REMOTE_PEERS]).toBe(0);
    upsert(h, { user: 5 });
    h.store.ctl[ShardControl.REPL_ON] = 0; // replication cut off: answered, not taken over (its node accounts it)
    expect(h.announce({ ih: IH, pid: remotePid, ip, port: 6001, left: 10, user: 5 }).status).toBe(ST_OK);
    expect([h.logic.owners.get(5, swarmOf()), h.store.ctl[ShardControl.REMOTE_PEERS]]).toEqual([1, 1]);
    // until its node would have expired it: then it is no longer there, and becomes local
    h.now += 100;
    h.store.expire(h.now, 60, 1 << 20, h.now - 100);
    expect(h.store.ctl[ShardControl.REMOTE_PEERS]).toBe(0);
    h.announce({ ih: IH, pid: remotePid, ip, port: 6001, left: 10, user: 5 });
    expect(h.logic.owners.get(5, swarmOf())).toBe(1);
  });

  it('in open mode, forwards too, and applies a forwarded announce only with the key the peer proved itself with', () => {
    const h = new Harness();
    h.replicate();
    h.announce({ ih: IH, pid: peerId(1), ip, port: 6001, left: 10, key: 42 });
    h.announce({ ih: IH, pid: peerId(2), ip, port: 6002, left: 10 });
    h.changes();
    h.now += 5; // (forwards received after those announces)
    const fwd = (pid: Uint8Array, key: number | undefined, port: number) => h.remote({ op: RM_ANNOUNCE, announce: { ih: IH, pid, ip, port, left: 10, key, source: 0 } });
    fwd(peerId(1), 7, 7001); // wrong key: dropped
    fwd(peerId(2), undefined, 7002); // no key to prove it: dropped
    expect(h.changes()).toEqual([]);
    fwd(peerId(1), 42, 7001);
    expect(h.changes()).toEqual([[CH_UPSERT, 7001]]);
    // and another node's peer announced here is forwarded, not taken over
    upsert(h, { flags: RF_SEEDER });
    h.announce({ ih: IH, pid: remotePid, ip, port: 7000, left: 0 });
    expect(h.changes()).toEqual([[CH_FORWARD, 7]]);
    // forwarded to a node that no longer has it, or has it as a third node's: nothing proves who sent it
    fwd(peerId(5), 1, 7005);
    fwd(remotePid, 1, 7000);
    expect(h.changes()).toEqual([]);
    expect(h.store.ctl[ShardControl.REMOTE_PEERS]).toBe(1);
    // replication cut off: answered, not taken over (the peer stays its node's)
    h.store.ctl[ShardControl.REPL_ON] = 0;
    const a = h.announce({ ih: IH, pid: remotePid, ip, port: 7000, left: 0 });
    expect(a.status).toBe(ST_OK);
    expect(h.store.ctl[ShardControl.REMOTE_PEERS]).toBe(1);
  });

  it('holds a client going from node to node to min interval where its announces are forwarded', () => {
    const h = new Harness(LIMITS, { minInterval: 300 });
    h.replicate();
    upsert(h, { user: 5 });
    const p = { ih: IH, pid: remotePid, ip, port: 7000, left: 10, user: 5 };
    expect(h.announce(p).status).toBe(ST_OK);
    h.now += 10;
    expect(h.announce(p).status).toBe(ST_TOO_SOON);
    expect(h.announce({ ...p, event: EVENT_STOPPED }).status).toBe(ST_OK); // (a stop always passes)
    expect(h.changes().map(([op]) => op)).toEqual([CH_FORWARD, CH_FORWARD]);
  });

  it('keeps the two latest leecher departures in order when one comes late (as of when another node received it)', () => {
    const h = new Harness();
    h.announce({ ih: IH, pid: peerId(1), ip, port: 6001, left: 10, user: 1 });
    h.announce({ ih: IH, pid: peerId(2), ip, port: 6002, left: 10, user: 2 });
    h.announce({ ih: IH, pid: peerId(3), ip, port: 6003, left: 10, user: 3 });
    const [p1, p2, p3] = [1, 2, 3].map((i) => h.peerSlot(IH, peerId(i)));
    const sat = h.store.findSwarm(IH, 0) * SwarmRecord.SIZE;
    const read = () => [SwarmRecord.LEECHER_AT, SwarmRecord.LEECHER_USER, SwarmRecord.LEECHER_AT2, SwarmRecord.LEECHER_USER2].map((f) => h.store.swarms.dv.getUint32(sat + f, true));
    h.store.leecherLeft(p1, 1000);
    h.store.leecherLeft(p2, 960); // late: second place
    expect(read()).toEqual([1000, 1, 960, 2]);
    h.store.leecherLeft(p1, 900); // the same user's, older: nothing moves back
    h.store.leecherLeft(p3, 950); // older than both: kept out
    expect(read()).toEqual([1000, 1, 960, 2]);
    h.store.leecherLeft(p3, 1010);
    expect(read()).toEqual([1010, 3, 1000, 1]);
  });

  it('refuses (busy), never drops, an announce it cannot forward: the replication thread is behind', () => {
    const h = new Harness();
    h.replicate();
    upsert(h, { user: 5 });
    const statuses = new Set<number>();
    for (let i = 0; i < 1000; i++) statuses.add(h.announce({ ih: IH, pid: remotePid, ip, port: 7000, left: 10, user: 5 }).status);
    expect([...statuses].sort()).toEqual([ST_OK, ST_BUSY]);
    const forwarded = h.changes().length; // each one answered OK went
    expect(forwarded).toBeGreaterThan(100);
    expect(h.announce({ ih: IH, pid: remotePid, ip, port: 7000, left: 10, user: 5 }).status).toBe(ST_OK); // room again
  });

  it('drops a forwarded announce older than the peer last announce here', () => {
    const h = new Harness();
    h.replicate();
    const p = { ih: IH, pid: peerId(1), ip, port: 6001, left: 10, user: 3 };
    h.announce(p);
    h.changes();
    h.remote({ op: RM_ANNOUNCE, announce: { ...p, port: 6009, event: EVENT_STOPPED, forwardedAt: h.now - 5 } });
    expect(h.changes()).toEqual([]);
    expect(h.scrape([IH]).files).toEqual([[0, 0, 1]]);
    // received in the same second as the direct one: older as far as anyone can tell
    h.now += 10;
    h.announce({ ...p, uploaded: 500 });
    h.remote({ op: RM_ANNOUNCE, announce: { ...p, port: 6009, uploaded: 600, forwardedAt: h.now } });
    expect(h.changes()).toEqual([]);
    // received later, but reporting less upload than the baseline: older too
    h.now += 1;
    h.remote({ op: RM_ANNOUNCE, announce: { ...p, port: 6009, uploaded: 400 } });
    expect(h.changes()).toEqual([]);
    h.remote({ op: RM_ANNOUNCE, announce: { ...p, port: 6009, uploaded: 600 } });
    expect(h.changes()).toEqual([[CH_UPSERT, 6009]]);
    // a late one for a peer that left (stopped here since): not brought back; a new session is
    h.announce({ ...p, port: 6009, uploaded: 600, event: EVENT_STOPPED });
    h.changes();
    h.now += 1;
    h.remote({ op: RM_ANNOUNCE, announce: { ...p, uploaded: 700 } });
    expect(h.scrape([IH]).files).toEqual([[0, 0, 0]]);
    h.remote({ op: RM_ANNOUNCE, announce: { ...p, event: EVENT_STARTED } });
    expect(h.scrape([IH]).files).toEqual([[0, 0, 1]]);
  });

  it('forwards a ledger announce of another node peer to its node (answered here, not accounted), refuses another user its peer_id', () => {
    const h = new Harness(LIMITS, { ledger: true });
    h.replicate();
    upsert(h, { user: 5, flags: RF_SEEDER });
    h.announce({ ih: IH, pid: peerId(3), ip, port: 6003, left: 10, user: 6, torrent: 1 });
    h.changes();
    const drain = () => {
      const out: number[] = [];
      for (let off = h.accounting!.r.next(); off >= 0; off = h.accounting!.r.next()) out.push(h.accounting!.r.u8[off + AccountingRecord.FLAGS]);
      h.accounting!.r.release();
      return out;
    };
    h.accounting!.w.commit();
    drain();
    const a = h.announce({ ih: IH, pid: remotePid, ip, port: 7000, left: 0, user: 5, torrent: 1, uploaded: 100 });
    expect([a.status, a.seeders, a.leechers, ports(a)]).toEqual([ST_OK, 1, 1, [6003]]);
    expect(h.changes()).toEqual([[CH_FORWARD, 7]]);
    h.accounting!.w.commit();
    expect(drain()).toEqual([]);
    expect(h.announce({ ih: IH, pid: remotePid, ip, port: 7000, left: 0, user: 9, torrent: 1 }).status).toBe(ST_PEER_ID_IN_USE);
    // a node takes an announce forwarded to it as its own, accounted, even for a peer it has
    // as another node's (both took it for the other's): it becomes local, never sent back
    h.remote({ op: RM_ANNOUNCE, announce: { ih: IH, pid: remotePid, ip, port: 7000, left: 0, user: 5, torrent: 1, uploaded: 100 } });
    expect(h.store.ctl[ShardControl.REMOTE_PEERS]).toBe(0);
    expect(h.changes()).toEqual([[CH_UPSERT, 7000]]);
    expect(drain()).toEqual([ACF_SEEDER]); // its baseline here
  });
});

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MIN_CLASS, classEntries, classFor, type PeerArena } from './arena.js';
import {
  ADDR4, ADDR6, CTL, ENTRY_FULL, GLOBAL, INITIAL_ARENA_ENTRIES, INITIAL_PEERS, INITIAL_SWARMS, MAX_CLASS, NIL, PF_LIVE, PF_SEEDER, PF_V6, PR, SW,
  SWF_LIVE,
} from './layout.js';
import { allocateGlobal, allocateShardMemory, type ShardLimits, type ShardMemory } from './memory.js';
import { SwarmStore } from './swarm-store.js';
import { HashIndex, type KeyMatcher } from './table.js';
import { prng } from '../test/support/prng.js';
import { alignedBlocks } from '../test/support/arena-model.js';

const LIMITS: ShardLimits = { maxPeers: 50_000, maxSwarms: 10_000, requestRingBytes: 1 << 16, answerRingBytes: 1 << 16 };

function fresh(limits: ShardLimits = LIMITS): { mem: ShardMemory; store: SwarmStore } {
  const mem = allocateShardMemory(allocateGlobal(), limits);
  return { mem, store: new SwarmStore(mem) };
}

/** A uniform 20-byte key (like a real info_hash). */
function sha1(text: string): Uint8Array {
  return new Uint8Array(createHash('sha1').update(text).digest());
}

/** 20 bytes sharing the first 16 with every other key of the same family; `i` in the rest. */
function prefixed(i: number, family = 0): Uint8Array {
  const k = new Uint8Array(20).fill(0x41 + family);
  new DataView(k.buffer).setUint32(16, i, false);
  return k;
}

/** Azureus-style peer_id: client prefix, then digits. */
function peerId(i: number): Uint8Array {
  return new Uint8Array(Buffer.from(`-qB4630-${String(i).padStart(12, '0')}`, 'latin1'));
}

function hex(k: Uint8Array): string {
  return Buffer.from(k).toString('hex');
}

function sorted(a: Iterable<number>): number[] {
  return [...a].sort((x, y) => x - y);
}

/** Wire-form address: IPv4 a.b.c.d = n (big-endian) + port BE, or IPv6 2001:db8::<n> + port BE. */
function wire(v6: boolean, n: number, port: number): Uint8Array {
  if (!v6) return new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255, port >> 8, port & 255]);
  const w = new Uint8Array(ADDR6);
  w.set([0x20, 0x01, 0x0d, 0xb8], 0);
  new DataView(w.buffer).setUint32(12, n >>> 0, false);
  w[16] = port >> 8;
  w[17] = port & 255;
  return w;
}

/** A default address for a peer_id (FNV-1a of its bytes), so tests need not invent one. */
function addrFor(pid: Uint8Array, v6: boolean, salt = 0): Uint8Array {
  let h = 0x811c9dc5 ^ salt;
  for (const b of pid) h = Math.imul(h ^ b, 0x01000193);
  return wire(v6, h >>> 0, 1024 + ((h >>> 7) & 0x7fff));
}

interface PeerOpts {
  seeder?: boolean;
  v6?: boolean;
  user?: number;
  now?: number;
  addr?: Uint8Array;
}

/** What ShardLogic does for a new peer: alloc, set flags and fields, place. -1 when refused. */
function addPeer(store: SwarmStore, swarm: number, pid: Uint8Array, o: PeerOpts = {}): number {
  const slot = store.allocPeer(swarm, pid, 0);
  if (slot < 0) return slot;
  const at = slot * PR.SIZE;
  store.peers.u8[at + PR.FLAGS] = PF_LIVE | (o.seeder ? PF_SEEDER : 0) | (o.v6 ? PF_V6 : 0);
  store.peers.dv.setUint32(at + PR.USER, o.user ?? 0, true);
  store.peers.dv.setUint32(at + PR.LAST_SEEN, o.now ?? 0, true);
  if (!store.place(slot, o.addr ?? addrFor(pid, !!o.v6), 0)) {
    store.freePeer(slot);
    return -2;
  }
  return slot;
}

/** Change a placed peer's segment and/or family the way ShardLogic does (displace, set, place). */
function setFlags(store: SwarmStore, slot: number, seeder: boolean, v6: boolean, addr?: Uint8Array): void {
  const at = slot * PR.SIZE;
  const keep = addr ?? entryAddr(store, slot);
  store.displace(slot);
  store.peers.u8[at + PR.FLAGS] = (store.peers.u8[at + PR.FLAGS]! & ~(PF_SEEDER | PF_V6)) | (seeder ? PF_SEEDER : 0) | (v6 ? PF_V6 : 0);
  if (!store.place(slot, keep, 0)) throw new Error(`place of ${slot} refused`);
}

function touch(store: SwarmStore, slot: number, now: number): void {
  store.peers.dv.setUint32(slot * PR.SIZE + PR.LAST_SEEN, now, true);
}

interface Fam {
  arena: PeerArena;
  seed: number;
  leech: number;
  block: number;
  cls: number;
  bytes: number;
  top: number;
  free: number;
}
function fam(store: SwarmStore, v6: boolean): Fam {
  return v6
    ? { arena: store.arena6, seed: SW.SEED6, leech: SW.LEECH6, block: SW.BLOCK6, cls: SW.CLASS6, bytes: ADDR6, top: CTL.ARENA6_TOP, free: CTL.FREE6 }
    : { arena: store.arena4, seed: SW.SEED4, leech: SW.LEECH4, block: SW.BLOCK4, cls: SW.CLASS4, bytes: ADDR4, top: CTL.ARENA4_TOP, free: CTL.FREE4 };
}

interface Counts {
  seed4: number;
  leech4: number;
  seed6: number;
  leech6: number;
  completed: number;
}
function swarmCounts(store: SwarmStore, swarm: number): Counts {
  const dv = store.swarms.dv;
  const at = swarm * SW.SIZE;
  return {
    seed4: dv.getUint32(at + SW.SEED4, true),
    leech4: dv.getUint32(at + SW.LEECH4, true),
    seed6: dv.getUint32(at + SW.SEED6, true),
    leech6: dv.getUint32(at + SW.LEECH6, true),
    completed: dv.getUint32(at + SW.COMPLETED, true),
  };
}
function counts(seed4: number, leech4: number, seed6 = 0, leech6 = 0, completed = 0): Counts {
  return { seed4, leech4, seed6, leech6, completed };
}

function classOf(store: SwarmStore, swarm: number, v6: boolean): number {
  return store.swarms.u8[swarm * SW.SIZE + fam(store, v6).cls]!;
}
function blockOf(store: SwarmStore, swarm: number, v6: boolean): number {
  return store.swarms.dv.getUint32(swarm * SW.SIZE + fam(store, v6).block, true);
}

/** The wire address of a placed peer, read from its swarm's array at PR.POS. */
function entryAddr(store: SwarmStore, slot: number): Uint8Array {
  const at = slot * PR.SIZE;
  const v6 = (store.peers.u8[at + PR.FLAGS]! & PF_V6) !== 0;
  const f = fam(store, v6);
  const swarm = store.peers.dv.getUint32(at + PR.SWARM, true);
  const e = blockOf(store, swarm, v6) + store.peers.dv.getUint32(at + PR.POS, true);
  return f.arena.addr.u8.slice(e * f.bytes, (e + 1) * f.bytes);
}

interface Entry {
  slot: number;
  addr: string;
}

/**
 * One segment of a swarm's array (seeders [0, S) or leechers [S, S + L)) in array order.
 * Checks that every entry's peer is live, of this swarm, in this segment and family, and
 * that its PR.POS points at the entry.
 */
function segment(store: SwarmStore, swarm: number, v6: boolean, seeders: boolean): Entry[] {
  const f = fam(store, v6);
  const sat = swarm * SW.SIZE;
  const S = store.swarms.dv.getUint32(sat + f.seed, true);
  const L = store.swarms.dv.getUint32(sat + f.leech, true);
  if (S + L === 0) return [];
  const blk = store.swarms.dv.getUint32(sat + f.block, true);
  const out: Entry[] = [];
  for (let i = seeders ? 0 : S; i < (seeders ? S : S + L); i++) {
    const slot = f.arena.slots.i32[blk + i]!;
    const at = slot * PR.SIZE;
    const flags = store.peers.u8[at + PR.FLAGS]!;
    if (!(flags & PF_LIVE)) throw new Error(`swarm ${swarm} entry ${i}: slot ${slot} not live`);
    if (((flags & PF_SEEDER) !== 0) !== seeders) throw new Error(`swarm ${swarm} entry ${i}: slot ${slot} in the wrong segment`);
    if (((flags & PF_V6) !== 0) !== v6) throw new Error(`swarm ${swarm} entry ${i}: slot ${slot} in the wrong family`);
    if (store.peers.dv.getUint32(at + PR.SWARM, true) !== swarm) throw new Error(`swarm ${swarm} entry ${i}: slot ${slot} belongs elsewhere`);
    if (store.peers.dv.getUint32(at + PR.POS, true) !== i) throw new Error(`slot ${slot}: POS ${store.peers.dv.getUint32(at + PR.POS, true)} != ${i}`);
    out.push({ slot, addr: hex(f.arena.addr.u8.subarray((blk + i) * f.bytes, (blk + i + 1) * f.bytes)) });
  }
  return out;
}

function slotsOf(store: SwarmStore, swarm: number, v6: boolean, seeders: boolean): number[] {
  return segment(store, swarm, v6, seeders).map((e) => e.slot);
}

/**
 * Blocks on one arena's free lists, by class ascending, each list head first. Checks
 * cycles, range, alignment, both links (next and previous in the first two slot words)
 * and the mark of each block.
 */
function arenaFree(store: SwarmStore, v6: boolean): { start: number; cls: number }[] {
  const f = fam(store, v6);
  const top = store.ctl[f.top]!;
  const name = `arena ${v6 ? 6 : 4}`;
  const out: { start: number; cls: number }[] = [];
  for (let c = 0; c < MAX_CLASS; c++) {
    const seen = new Set<number>();
    const size = classEntries(c);
    let prev = NIL;
    let b = store.ctl[f.free + c]!;
    while (b !== NIL) {
      if (seen.has(b)) throw new Error(`${name} free list ${c} has a cycle at ${b}`);
      if (c < MIN_CLASS) throw new Error(`${name} free list ${c} below the smallest class holds ${b}`);
      if (b < 0 || b + size > top) throw new Error(`${name} free block ${b} (class ${c}) outside 0..${top}`);
      if (b % size !== 0) throw new Error(`${name} free block ${b} (class ${c}) not aligned`);
      if (f.arena.slots.i32[b + 1] !== prev) throw new Error(`${name} free block ${b} (class ${c}): previous link ${f.arena.slots.i32[b + 1]}, not ${prev}`);
      if (f.arena.marks.u8[b] !== c) throw new Error(`${name} free block ${b} (class ${c}) marked ${f.arena.marks.u8[b]}`);
      seen.add(b);
      out.push({ start: b, cls: c });
      prev = b;
      b = f.arena.slots.i32[b]!;
    }
  }
  return out;
}

function byStart(blocks: { start: number; cls: number }[]): { start: number; cls: number }[] {
  return [...blocks].sort((a, b) => a.start - b.start);
}


/**
 * Where the arena of `v6` will put the next block of class `cls`: the head of the smallest
 * non-empty list of a class that fits, else from the bump pointer (stepping back over free
 * blocks that end there) at the next multiple of the block's size.
 */
function nextBlock(store: SwarmStore, v6: boolean, cls: number): { start: number; fromLists: boolean } {
  const f = fam(store, v6);
  const free = arenaFree(store, v6);
  const fits = free.filter((b) => b.cls >= cls);
  if (fits.length > 0) return { start: store.ctl[f.free + Math.min(...fits.map((b) => b.cls))]!, fromLists: true };
  let low = store.ctl[f.top]!;
  for (let b = free.find((x) => x.start + classEntries(x.cls) === low); b; b = free.find((x) => x.start + classEntries(x.cls) === low)) low = b.start;
  const size = classEntries(cls);
  return { start: Math.ceil(low / size) * size, fromLists: false };
}

/** Free list of the peer or swarm slab, checked for cycles and for holding only dead slots. */
function freeList(store: SwarmStore, kind: 'peer' | 'swarm'): number[] {
  const c = store.ctl;
  const out: number[] = [];
  const seen = new Set<number>();
  const high = kind === 'peer' ? c[CTL.PEER_HIGH]! : c[CTL.SWARM_HIGH]!;
  let s = kind === 'peer' ? c[CTL.PEER_FREE]! : c[CTL.SWARM_FREE]!;
  while (s !== NIL) {
    if (seen.has(s)) throw new Error(`${kind} free list has a cycle at ${s}`);
    if (s < 0 || s >= high) throw new Error(`${kind} free list holds ${s}, outside 0..${high}`);
    seen.add(s);
    out.push(s);
    if (kind === 'peer') {
      if (store.peers.u8[s * PR.SIZE + PR.FLAGS]! & PF_LIVE) throw new Error(`live peer ${s} on the free list`);
      s = store.peers.dv.getInt32(s * PR.SIZE + PR.POS, true);
    } else {
      if (store.swarms.u8[s * SW.SIZE + SW.FLAGS]! & SWF_LIVE) throw new Error(`live swarm ${s} on the free list`);
      s = store.swarms.dv.getInt32(s * SW.SIZE + SW.LAST_ACTIVE, true);
    }
  }
  return out;
}

function indexEntries(index: HashIndex): number {
  let n = 0;
  for (let i = 0; i < index.capacity; i++) if (index.i32[i * 2 + 1] !== 0) n++;
  return n;
}

/**
 * Every invariant of the store, from the arrays and records alone: each live swarm's arrays
 * hold live peers of that swarm with matching flags and POS, each live peer exactly once;
 * counts and shard totals add up; indexes find every live swarm and peer and hold nothing
 * else; slab free lists hold exactly the dead slots; used and free arena blocks tile each
 * arena up to its bump pointer. `tight`: arrays are in the smallest class the grow/shrink
 * rules allow (not guaranteed right after a recover()).
 */
function checkStore(store: SwarmStore, tight = true): void {
  const c = store.ctl;
  const errors: string[] = [];
  const err = (m: string): void => {
    if (errors.length < 20) errors.push(m);
  };
  const swarmHigh = c[CTL.SWARM_HIGH]!;
  const peerHigh = c[CTL.PEER_HIGH]!;
  if (c[CTL.SWARM_CAP] !== store.swarms.capacity) err(`SWARM_CAP ${c[CTL.SWARM_CAP]} != ${store.swarms.capacity}`);
  if (c[CTL.PEER_CAP] !== store.peers.capacity) err(`PEER_CAP ${c[CTL.PEER_CAP]} != ${store.peers.capacity}`);
  if (c[CTL.SWARM_INDEX_CAP] !== store.swarmIndex.capacity) err('SWARM_INDEX_CAP');
  if (c[CTL.PEER_INDEX_CAP] !== store.peerIndex.capacity) err('PEER_INDEX_CAP');
  const seenAt = new Map<number, string>();
  const used: [{ start: number; cls: number }[], { start: number; cls: number }[]] = [[], []];
  let live = 0;
  let seeders = 0;
  let leechers = 0;
  let v6peers = 0;
  for (let s = 0; s < swarmHigh; s++) {
    const sat = s * SW.SIZE;
    if (!(store.swarms.u8[sat + SW.FLAGS]! & SWF_LIVE)) continue;
    live++;
    if (store.findSwarm(store.swarms.u8, sat + SW.INFO_HASH) !== s) err(`swarm ${s} not findable`);
    for (const v6 of [false, true]) {
      const f = fam(store, v6);
      const S = store.swarms.dv.getUint32(sat + f.seed, true);
      const L = store.swarms.dv.getUint32(sat + f.leech, true);
      const cls = store.swarms.u8[sat + f.cls]!;
      const n = S + L;
      if ((n === 0) !== (cls === 0)) err(`swarm ${s}/${v6 ? 6 : 4}: ${n} entries in class ${cls}`);
      if (n > classEntries(cls)) err(`swarm ${s}/${v6 ? 6 : 4}: ${n} entries overflow class ${cls}`);
      if (tight && cls > MIN_CLASS && n <= classEntries(cls) >> 2) err(`swarm ${s}/${v6 ? 6 : 4}: ${n} entries, class ${cls} not shrunk`);
      if (cls === 0) continue;
      if (cls < MIN_CLASS) err(`swarm ${s}/${v6 ? 6 : 4}: class ${cls} below the smallest`);
      const blk = store.swarms.dv.getUint32(sat + f.block, true);
      if (blk + classEntries(cls) > c[f.top]!) err(`swarm ${s}/${v6 ? 6 : 4}: block ${blk} beyond the arena top`);
      if (tight && blk % classEntries(cls) !== 0) err(`swarm ${s}/${v6 ? 6 : 4}: block ${blk} of class ${cls} not aligned`);
      used[v6 ? 1 : 0].push({ start: blk, cls });
      seeders += S;
      leechers += L;
      if (v6) v6peers += n;
      for (const seed of [true, false]) {
        try {
          for (const e of segment(store, s, v6, seed)) {
            const where = `${s}/${v6 ? 6 : 4}`;
            if (seenAt.has(e.slot)) err(`slot ${e.slot} in ${where} and in ${seenAt.get(e.slot)}`);
            seenAt.set(e.slot, where);
          }
        } catch (e) {
          err((e as Error).message);
        }
      }
    }
  }
  if (c[CTL.SWARM_LIVE] !== live) err(`SWARM_LIVE ${c[CTL.SWARM_LIVE]} != ${live}`);
  if (c[CTL.SEEDERS] !== seeders) err(`SEEDERS ${c[CTL.SEEDERS]} != ${seeders}`);
  if (c[CTL.LEECHERS] !== leechers) err(`LEECHERS ${c[CTL.LEECHERS]} != ${leechers}`);
  if (c[CTL.PEERS_V6] !== v6peers) err(`PEERS_V6 ${c[CTL.PEERS_V6]} != ${v6peers}`);
  let livePeers = 0;
  for (let p = 0; p < peerHigh; p++) {
    const at = p * PR.SIZE;
    if (!(store.peers.u8[at + PR.FLAGS]! & PF_LIVE)) continue;
    livePeers++;
    if (!seenAt.has(p)) err(`live peer ${p} is in no array`);
    if (store.findPeer(store.peers.dv.getUint32(at + PR.SWARM, true), store.peers.u8, at + PR.PEER_ID) !== p) err(`peer ${p} not findable`);
  }
  if (livePeers !== seenAt.size) err(`${livePeers} live peers, ${seenAt.size} array entries`);
  if (c[CTL.PEER_LIVE] !== livePeers) err(`PEER_LIVE ${c[CTL.PEER_LIVE]} != ${livePeers}`);
  if (indexEntries(store.peerIndex) !== livePeers) err(`peer index holds ${indexEntries(store.peerIndex)} entries for ${livePeers} peers`);
  if (indexEntries(store.swarmIndex) !== live) err(`swarm index holds ${indexEntries(store.swarmIndex)} entries for ${live} swarms`);
  try {
    if (freeList(store, 'peer').length !== peerHigh - livePeers) err('peer free list length');
    if (freeList(store, 'swarm').length !== swarmHigh - live) err('swarm free list length');
  } catch (e) {
    err((e as Error).message);
  }
  for (const v6 of [false, true]) {
    const f = fam(store, v6);
    try {
      const free = arenaFree(store, v6);
      const blocks = [...used[v6 ? 1 : 0], ...free].sort((a, b) => a.start - b.start);
      let cursor = 0;
      for (const b of blocks) {
        if (b.start !== cursor) {
          err(`arena ${v6 ? 6 : 4}: ${b.start < cursor ? 'overlap' : 'gap'} at ${Math.min(b.start, cursor)}`);
          break;
        }
        cursor = b.start + classEntries(b.cls);
      }
      const top = c[f.top]!;
      if (cursor !== top) err(`arena ${v6 ? 6 : 4}: blocks end at ${cursor}, top ${top}`);
      if (f.arena.addr.capacity < top || f.arena.slots.capacity < top || f.arena.marks.capacity < top) err(`arena ${v6 ? 6 : 4} capacity below top`);
      // marks agree with the lists: exactly the first entry of each free block, below the top
      const marked = new Map(free.map((b) => [b.start, b.cls]));
      const u8 = f.arena.marks.u8;
      for (let i = 0; i < u8.length; i++) {
        const want = i < top ? (marked.get(i) ?? 0) : 0;
        if (u8[i] !== want) {
          err(`arena ${v6 ? 6 : 4}: mark ${i} is ${u8[i]}, not ${want}`);
          break;
        }
      }
      // merged: no free block's buddy is a free block of the same class
      for (const b of free) {
        if (marked.get(b.start ^ classEntries(b.cls)) === b.cls) err(`arena ${v6 ? 6 : 4}: free buddies ${b.start} and ${b.start ^ classEntries(b.cls)} (class ${b.cls})`);
      }
    } catch (e) {
      err((e as Error).message);
    }
  }
  expect(errors).toEqual([]);
}

// =======================================================================================

describe('SwarmStore: fresh tables', () => {
  it('initialises the control block from the buffers', () => {
    const { store, mem } = fresh();
    const c = store.ctl;
    expect(c[CTL.SWARM_CAP]).toBe(INITIAL_SWARMS);
    expect(c[CTL.SWARM_HIGH]).toBe(0);
    expect(c[CTL.SWARM_FREE]).toBe(NIL);
    expect(c[CTL.SWARM_LIVE]).toBe(0);
    expect(c[CTL.SWARM_INDEX_CAP]).toBe(INITIAL_SWARMS * 2);
    expect(c[CTL.PEER_CAP]).toBe(INITIAL_PEERS);
    expect(c[CTL.PEER_HIGH]).toBe(0);
    expect(c[CTL.PEER_FREE]).toBe(NIL);
    expect(c[CTL.PEER_LIVE]).toBe(0);
    expect(c[CTL.PEER_INDEX_CAP]).toBe(INITIAL_PEERS * 2);
    expect(c[CTL.ARENA4_TOP]).toBe(0);
    expect(c[CTL.ARENA6_TOP]).toBe(0);
    for (let k = 0; k < MAX_CLASS; k++) {
      expect(c[CTL.FREE4 + k]).toBe(NIL);
      expect(c[CTL.FREE6 + k]).toBe(NIL);
    }
    expect(mem.swarms.byteLength).toBe(INITIAL_SWARMS * SW.SIZE);
    expect(mem.swarms.maxByteLength).toBe(LIMITS.maxSwarms * SW.SIZE);
    expect(mem.peers.maxByteLength).toBe(LIMITS.maxPeers * PR.SIZE);
    expect(mem.peerIndex.maxByteLength).toBe(HashIndex.bytesFor(131072)); // 2^ceil(log2(100k))
    expect(mem.swarmIndex.maxByteLength).toBe(HashIndex.bytesFor(32768));
    // arenas: four entries per peer reserved, committed as they grow
    expect(mem.addr4.maxByteLength).toBe(LIMITS.maxPeers * 4 * ADDR4);
    expect(mem.slots4.maxByteLength).toBe(LIMITS.maxPeers * 4 * 4);
    expect(mem.addr6.maxByteLength).toBe(LIMITS.maxPeers * 4 * ADDR6);
    expect(mem.slots6.maxByteLength).toBe(LIMITS.maxPeers * 4 * 4);
    expect(mem.marks4.maxByteLength).toBe(LIMITS.maxPeers * 4);
    expect(mem.marks6.maxByteLength).toBe(LIMITS.maxPeers * 4);
    expect(store.arena4.addr.capacity).toBe(INITIAL_ARENA_ENTRIES);
    expect(store.arena4.slots.capacity).toBe(INITIAL_ARENA_ENTRIES);
    expect(store.arena4.marks.capacity).toBe(INITIAL_ARENA_ENTRIES);
    expect(store.arena6.addr.capacity).toBe(store.arena6.slots.capacity);
    expect(store.arena6.marks.capacity).toBe(store.arena6.slots.capacity);
    expect(store.arena4.marks.sab).toBe(mem.marks4);
    expect(store.arena6.marks.sab).toBe(mem.marks6);
    expect(new Int32Array(mem.global)[GLOBAL.HASH_SEED]).toBe(Atomics.load(store.global, GLOBAL.HASH_SEED));
    checkStore(store);
  });

  it('a second store on the same buffers does not re-initialise them', () => {
    const { store, mem } = fresh();
    const s = store.addSwarm(sha1('a'), 0, 5);
    addPeer(store, s, peerId(1), { addr: wire(false, 0x0a000001, 80) });
    addPeer(store, s, peerId(2), { v6: true, seeder: true });
    addPeer(store, s, peerId(3), { addr: wire(false, 0x0a000003, 80) });
    addPeer(store, s, peerId(4), { addr: wire(false, 0x0a000004, 80) }); // a 4-entry array: [0, 2) is free again
    store.removePeer(store.findPeer(s, peerId(4), 0));
    const again = new SwarmStore(mem);
    expect(again.ctl[CTL.SWARM_LIVE]).toBe(1);
    expect(again.ctl[CTL.PEER_LIVE]).toBe(3);
    expect(again.ctl[CTL.ARENA4_TOP]).toBe(8);
    expect(again.ctl[CTL.ARENA6_TOP]).toBe(2); // one 2-entry block
    expect(arenaFree(again, false)).toEqual([{ start: 0, cls: 3 }]); // [0, 2) merged with the gap [2, 4)
    // the second life merges with what the first one freed
    again.removePeer(again.findPeer(s, peerId(3), 0));
    expect(classOf(again, s, false)).toBe(2);
    again.removePeer(again.findPeer(s, peerId(2), 0));
    expect(arenaFree(again, true)).toEqual([{ start: 0, cls: 2 }]);
    addPeer(again, s, peerId(2), { v6: true, seeder: true });
    expect(again.findSwarm(sha1('a'), 0)).toBe(s);
    expect(again.findPeer(s, peerId(1), 0)).toBe(0);
    expect(segment(again, s, false, false)).toEqual([{ slot: 0, addr: '0a0000010050' }]);
    expect(slotsOf(again, s, true, true)).toEqual([1]);
    checkStore(again);
  });

  it('an observer on another thread never initialises tables its shard has not yet', () => {
    const mem = allocateShardMemory(allocateGlobal(), LIMITS);
    const observer = new SwarmStore(mem, true);
    expect(observer.findSwarm(sha1('a'), 0)).toBe(-1);
    expect([...new Int32Array(mem.ctl)].every((w) => w === 0)).toBe(true);
    // the shard then initialises them as on any first start
    const shard = new SwarmStore(mem);
    expect(shard.ctl[CTL.SWARM_INDEX_CAP]).toBeGreaterThan(0);
    expect(shard.addSwarm(sha1('a'), 0, 5)).toBe(0);
    expect(new SwarmStore(mem, true).findSwarm(sha1('a'), 0)).toBe(0);
  });
});

describe('SwarmStore: swarms', () => {
  it('adds, finds and removes swarms, reusing freed slots last-in first-out', () => {
    const { store } = fresh();
    const keys = [0, 1, 2, 3].map((i) => sha1(`swarm ${i}`));
    const slots = keys.map((k, i) => store.addSwarm(k, 0, 100 + i));
    expect(slots).toEqual([0, 1, 2, 3]);
    expect(store.ctl[CTL.SWARM_LIVE]).toBe(4);
    expect(store.ctl[CTL.SWARM_HIGH]).toBe(4);
    for (let i = 0; i < 4; i++) {
      expect(store.findSwarm(keys[i]!, 0)).toBe(i);
      const at = i * SW.SIZE;
      expect(store.swarms.u8.slice(at + SW.INFO_HASH, at + SW.INFO_HASH + 20)).toEqual(keys[i]);
      expect(store.swarms.u8[at + SW.FLAGS]).toBe(SWF_LIVE);
      expect(classOf(store, i, false)).toBe(0);
      expect(classOf(store, i, true)).toBe(0);
      expect(store.swarms.dv.getUint32(at + SW.ROT_SEED, true)).toBe(0);
      expect(store.swarms.dv.getUint32(at + SW.ROT_LEECH, true)).toBe(0);
      expect(store.swarms.dv.getUint32(at + SW.LAST_ACTIVE, true)).toBe(100 + i);
      expect(swarmCounts(store, i)).toEqual(counts(0, 0));
      expect(store.seeders(i)).toBe(0);
      expect(store.leechers(i)).toBe(0);
    }
    expect(store.findSwarm(sha1('nope'), 0)).toBe(-1);

    store.removeSwarm(1);
    store.removeSwarm(3);
    expect(store.ctl[CTL.SWARM_LIVE]).toBe(2);
    expect(store.findSwarm(keys[1]!, 0)).toBe(-1);
    expect(store.findSwarm(keys[3]!, 0)).toBe(-1);
    expect(store.findSwarm(keys[0]!, 0)).toBe(0);
    expect(store.findSwarm(keys[2]!, 0)).toBe(2);
    expect(freeList(store, 'swarm')).toEqual([3, 1]);

    // a reused slot is wiped: no stale counters, classes or rotation from its previous life
    const at3 = 3 * SW.SIZE;
    store.swarms.dv.setUint32(at3 + SW.COMPLETED, 77, true);
    store.swarms.dv.setUint32(at3 + SW.SEED4, 5, true);
    store.swarms.dv.setUint32(at3 + SW.ROT_SEED, 9, true);
    store.swarms.dv.setUint32(at3 + SW.ROT_LEECH, 8, true);
    store.swarms.u8[at3 + SW.CLASS6] = 4;
    const k5 = sha1('swarm 5');
    expect(store.addSwarm(k5, 0, 9)).toBe(3);
    expect(swarmCounts(store, 3)).toEqual(counts(0, 0));
    expect(classOf(store, 3, true)).toBe(0);
    expect(store.swarms.dv.getUint32(at3 + SW.ROT_SEED, true)).toBe(0);
    expect(store.swarms.dv.getUint32(at3 + SW.ROT_LEECH, true)).toBe(0);
    expect(store.addSwarm(sha1('swarm 6'), 0, 9)).toBe(1);
    expect(store.addSwarm(sha1('swarm 7'), 0, 9)).toBe(4);
    expect(store.ctl[CTL.SWARM_FREE]).toBe(NIL);
    expect(store.findSwarm(k5, 0)).toBe(3);
    checkStore(store);
  });

  it('reads keys at an offset inside a larger buffer', () => {
    const { store } = fresh();
    const buf = new Uint8Array(100);
    const key = sha1('offset');
    buf.set(key, 37);
    const s = store.addSwarm(buf, 37, 0);
    expect(store.findSwarm(key, 0)).toBe(s);
    expect(store.findSwarm(buf, 37)).toBe(s);
    const pbuf = new Uint8Array(64);
    pbuf.set(peerId(9), 11);
    const p = store.allocPeer(s, pbuf, 11);
    expect(store.findPeer(s, peerId(9), 0)).toBe(p);
    expect(store.peers.u8.slice(p * PR.SIZE + PR.PEER_ID, p * PR.SIZE + PR.PEER_ID + 20)).toEqual(peerId(9));
    // place() reads the address at an offset too
    store.peers.u8[p * PR.SIZE + PR.FLAGS] = PF_LIVE | PF_V6;
    const abuf = new Uint8Array(40).fill(0xcc);
    abuf.set(wire(true, 0x01020304, 0xbeef), 5);
    expect(store.place(p, abuf, 5)).toBe(true);
    expect(segment(store, s, true, false)).toEqual([{ slot: p, addr: hex(wire(true, 0x01020304, 0xbeef)) }]);
    // and setAddress
    abuf.set(wire(true, 7, 7), 21);
    store.setAddress(p, abuf, 21);
    expect(entryAddr(store, p)).toEqual(wire(true, 7, 7));
  });

  it('tells apart thousands of info_hashes that share all but their last bytes', () => {
    const { store } = fresh();
    const slots = new Map<string, number>();
    for (let family = 0; family < 3; family++) {
      for (let i = 0; i < 1500; i++) {
        const k = prefixed(i, family);
        const s = store.addSwarm(k, 0, 0);
        expect(s).toBeGreaterThanOrEqual(0);
        slots.set(hex(k), s);
      }
    }
    expect(new Set(slots.values()).size).toBe(4500);
    for (const [k, s] of slots) expect(store.findSwarm(Buffer.from(k, 'hex'), 0)).toBe(s);
    // remove every third, the rest stay findable
    let n = 0;
    for (const [k, s] of slots) {
      if (n++ % 3 === 0) {
        store.removeSwarm(s);
        slots.delete(k);
        expect(store.findSwarm(Buffer.from(k, 'hex'), 0)).toBe(-1);
      }
    }
    for (const [k, s] of slots) expect(store.findSwarm(Buffer.from(k, 'hex'), 0)).toBe(s);
    expect(store.ctl[CTL.SWARM_LIVE]).toBe(3000);
    expect(store.findSwarm(prefixed(1500, 0), 0)).toBe(-1);
    checkStore(store);
  });

  it('removing a swarm whose arrays are empty frees no block; the block of a swarm emptied by peers leaving was freed already', () => {
    const { store } = fresh();
    const s = store.addSwarm(sha1('s'), 0, 0);
    const p = [0, 1, 2, 3].map((i) => addPeer(store, s, peerId(i), { v6: i === 3 }));
    // IPv4: 2 entries at 0, then 4 entries at 4 (aligned); the gap [2, 4) merged with the freed [0, 2)
    expect(store.ctl[CTL.ARENA4_TOP]).toBe(8);
    expect([classOf(store, s, false), blockOf(store, s, false)]).toEqual([3, 4]);
    expect(arenaFree(store, false)).toEqual([{ start: 0, cls: 3 }]);
    expect(store.ctl[CTL.ARENA6_TOP]).toBe(2);
    checkStore(store);
    store.removePeer(p[0]!);
    store.removePeer(p[1]!); // 1 of 4 entries: back to 2 entries, split from [0, 4)
    expect([classOf(store, s, false), blockOf(store, s, false)]).toEqual([2, 0]);
    expect(arenaFree(store, false)).toEqual([{ start: 2, cls: 2 }, { start: 4, cls: 3 }]);
    checkStore(store);
    store.removePeer(p[2]!);
    store.removePeer(p[3]!);
    expect(classOf(store, s, false)).toBe(0);
    expect(classOf(store, s, true)).toBe(0);
    // everything merged: the whole of each arena is one free block
    expect(arenaFree(store, false)).toEqual([{ start: 0, cls: 4 }]);
    expect(arenaFree(store, true)).toEqual([{ start: 0, cls: 2 }]);
    store.removeSwarm(s);
    expect(arenaFree(store, false)).toEqual([{ start: 0, cls: 4 }]);
    expect(arenaFree(store, true)).toEqual([{ start: 0, cls: 2 }]);
    expect([store.ctl[CTL.ARENA4_TOP], store.ctl[CTL.ARENA6_TOP]]).toEqual([8, 2]);
    checkStore(store);
  });
});

describe('SwarmStore: peers, arrays and counts', () => {
  it('allocates, finds and frees peers keyed by (swarm, peer_id)', () => {
    const { store } = fresh();
    const a = store.addSwarm(sha1('a'), 0, 0);
    const b = store.addSwarm(sha1('b'), 0, 0);
    const pa = store.allocPeer(a, peerId(1), 0);
    const pb = store.allocPeer(b, peerId(1), 0); // same peer_id, other swarm
    expect([pa, pb]).toEqual([0, 1]);
    expect(store.findPeer(a, peerId(1), 0)).toBe(pa);
    expect(store.findPeer(b, peerId(1), 0)).toBe(pb);
    expect(store.findPeer(a, peerId(2), 0)).toBe(-1);
    expect(store.findPeer(2, peerId(1), 0)).toBe(-1);
    expect(store.peers.dv.getUint32(pb * PR.SIZE + PR.SWARM, true)).toBe(b);
    expect(store.ctl[CTL.PEER_LIVE]).toBe(2);
    // allocPeer alone does not count or place (the caller places)
    expect(swarmCounts(store, a)).toEqual(counts(0, 0));
    expect(classOf(store, a, false)).toBe(0);
    store.peers.u8[pa * PR.SIZE + PR.FLAGS] = PF_LIVE;
    expect(store.place(pa, wire(false, 1, 1), 0)).toBe(true);
    store.peers.u8[pb * PR.SIZE + PR.FLAGS] = PF_LIVE | PF_SEEDER;
    expect(store.place(pb, wire(false, 2, 2), 0)).toBe(true);
    expect(swarmCounts(store, a)).toEqual(counts(0, 1));
    store.removePeer(pa);
    expect(store.findPeer(a, peerId(1), 0)).toBe(-1);
    expect(store.findPeer(b, peerId(1), 0)).toBe(pb);
    expect(store.ctl[CTL.PEER_LIVE]).toBe(1);
    expect(store.ctl[CTL.PEER_FREE]).toBe(pa);
    expect(store.peers.u8[pa * PR.SIZE + PR.FLAGS]).toBe(0);
    expect(swarmCounts(store, a)).toEqual(counts(0, 0));
    expect(swarmCounts(store, b)).toEqual(counts(1, 0));
    expect(classOf(store, a, false)).toBe(0); // the last peer left: its block went back
    // the freed slot is reused and wiped
    store.peers.dv.setUint32(pa * PR.SIZE + PR.LAST_SEEN, 99, true);
    const pc = store.allocPeer(b, peerId(3), 0);
    expect(pc).toBe(pa);
    expect(store.peers.dv.getUint32(pc * PR.SIZE + PR.SWARM, true)).toBe(b);
    expect(store.peers.u8[pc * PR.SIZE + PR.FLAGS]).toBe(0);
    expect(store.peers.dv.getUint32(pc * PR.SIZE + PR.LAST_SEEN, true)).toBe(0);
    expect(store.peers.dv.getUint32(pc * PR.SIZE + PR.POS, true)).toBe(0);
    expect(store.ctl[CTL.PEER_FREE]).toBe(NIL);
  });

  it('place and displace keep [seeders | leechers] contiguous, with exact positions and POS', () => {
    const { store } = fresh();
    const s = store.addSwarm(sha1('partition'), 0, 0);
    const A = (i: number): Uint8Array => wire(false, 0x0a000000 + i, 1000 + i);
    const view = (): string[] => {
      const f = fam(store, false);
      const S = store.swarms.dv.getUint32(s * SW.SIZE + f.seed, true);
      return [...slotsOf(store, s, false, true).map((p) => `S${p}`), ...slotsOf(store, s, false, false).map((p) => `L${p}`)].map((x, i) =>
        i === S ? `|${x}` : x,
      );
    };
    const l1 = addPeer(store, s, peerId(1), { addr: A(1) });
    const l2 = addPeer(store, s, peerId(2), { addr: A(2) });
    const l3 = addPeer(store, s, peerId(3), { addr: A(3) });
    expect(view()).toEqual([`|L${l1}`, `L${l2}`, `L${l3}`]);
    // a seeder takes the first leecher's place; that leecher goes to the end
    const s1 = addPeer(store, s, peerId(4), { addr: A(4), seeder: true });
    expect(view()).toEqual([`S${s1}`, `|L${l2}`, `L${l3}`, `L${l1}`]);
    expect(segment(store, s, false, false).map((e) => e.addr)).toEqual([A(2), A(3), A(1)].map(hex));
    // removing the only seeder: the last leecher fills its place
    store.removePeer(s1);
    expect(view()).toEqual([`|L${l1}`, `L${l2}`, `L${l3}`]);
    const s2 = addPeer(store, s, peerId(5), { addr: A(5), seeder: true });
    const s3 = addPeer(store, s, peerId(6), { addr: A(6), seeder: true });
    expect(view()).toEqual([`S${s2}`, `S${s3}`, `|L${l3}`, `L${l1}`, `L${l2}`]);
    // removing a seeder that is not the last: the last seeder fills the hole, the last leecher the last seeder's place
    store.removePeer(s2);
    expect(view()).toEqual([`S${s3}`, `|L${l2}`, `L${l3}`, `L${l1}`]);
    // removing a leecher from the middle: the last leecher fills the hole
    store.removePeer(l3);
    expect(view()).toEqual([`S${s3}`, `|L${l2}`, `L${l1}`]);
    // removing the last entry moves nothing
    store.removePeer(l1);
    expect(view()).toEqual([`S${s3}`, `|L${l2}`]);
    // a seeder with no leechers goes to the end
    const s4 = addPeer(store, s, peerId(7), { addr: A(7), seeder: true });
    expect(view()).toEqual([`S${s3}`, `S${s4}`, `|L${l2}`]);
    // every address followed its peer through all the moves
    for (const [slot, i] of [[s3, 6], [s4, 7], [l2, 2]] as const) expect(entryAddr(store, slot)).toEqual(A(i));
    expect(swarmCounts(store, s)).toEqual(counts(2, 1));
    expect([store.ctl[CTL.SEEDERS], store.ctl[CTL.LEECHERS], store.ctl[CTL.PEERS_V6]]).toEqual([2, 1, 0]);
    checkStore(store);
  });

  it('counts per swarm per family and shard totals; moves between segments and families', () => {
    const { store } = fresh();
    const a = store.addSwarm(sha1('a'), 0, 0);
    const b = store.addSwarm(sha1('b'), 0, 0);
    const s1 = addPeer(store, a, peerId(1), { seeder: true });
    const s2 = addPeer(store, a, peerId(2), { seeder: true, v6: true });
    const s3 = addPeer(store, a, peerId(3), { seeder: true });
    const l1 = addPeer(store, a, peerId(4));
    const l2 = addPeer(store, a, peerId(5), { v6: true });
    const bl = addPeer(store, b, peerId(1));
    expect(swarmCounts(store, a)).toEqual(counts(2, 1, 1, 1));
    expect(swarmCounts(store, b)).toEqual(counts(0, 1));
    expect([store.seeders(a), store.leechers(a), store.seeders(b), store.leechers(b)]).toEqual([3, 2, 0, 1]);
    expect([store.ctl[CTL.SEEDERS], store.ctl[CTL.LEECHERS], store.ctl[CTL.PEERS_V6]]).toEqual([3, 3, 2]);
    // with no leecher in between, arrays are in insertion order
    expect(slotsOf(store, a, false, true)).toEqual([s1, s3]);
    expect(slotsOf(store, a, false, false)).toEqual([l1]);
    expect(slotsOf(store, a, true, true)).toEqual([s2]);
    expect(slotsOf(store, a, true, false)).toEqual([l2]);
    expect(slotsOf(store, b, false, false)).toEqual([bl]);
    expect(slotsOf(store, b, false, true)).toEqual([]);
    expect(slotsOf(store, b, true, false)).toEqual([]);

    // a seeder becoming a leecher (same family, v6): moves segments, keeps its address
    const s2addr = entryAddr(store, s2);
    setFlags(store, s2, false, true);
    expect(slotsOf(store, a, true, true)).toEqual([]);
    expect(sorted(slotsOf(store, a, true, false))).toEqual(sorted([l2, s2]));
    expect(entryAddr(store, s2)).toEqual(s2addr);
    expect(swarmCounts(store, a)).toEqual(counts(2, 1, 0, 2));
    expect([store.ctl[CTL.SEEDERS], store.ctl[CTL.LEECHERS], store.ctl[CTL.PEERS_V6]]).toEqual([2, 4, 2]);
    // family change v6 → v4: moves arrays, with its new address
    setFlags(store, l2, false, false, wire(false, 0x7f000001, 9));
    expect(slotsOf(store, a, true, false)).toEqual([s2]);
    expect(sorted(slotsOf(store, a, false, false))).toEqual(sorted([l1, l2]));
    expect(entryAddr(store, l2)).toEqual(wire(false, 0x7f000001, 9));
    expect(swarmCounts(store, a)).toEqual(counts(2, 2, 0, 1));
    expect(store.ctl[CTL.PEERS_V6]).toBe(1);
    // family and segment at once: v4 seeder → v6 leecher
    setFlags(store, s1, false, true, wire(true, 5, 5));
    expect(swarmCounts(store, a)).toEqual(counts(1, 2, 0, 2));
    expect([store.ctl[CTL.SEEDERS], store.ctl[CTL.LEECHERS], store.ctl[CTL.PEERS_V6]]).toEqual([1, 5, 2]);
    checkStore(store);

    // last peers of a family: the array is released
    store.removePeer(s1);
    store.removePeer(s2);
    expect(classOf(store, a, true)).toBe(0);
    expect(swarmCounts(store, a)).toEqual(counts(1, 2));
    store.removePeer(l1);
    store.removePeer(l2);
    store.removePeer(s3);
    expect(swarmCounts(store, a)).toEqual(counts(0, 0));
    expect(classOf(store, a, false)).toBe(0);
    expect([store.ctl[CTL.SEEDERS], store.ctl[CTL.LEECHERS], store.ctl[CTL.PEERS_V6]]).toEqual([0, 1, 0]);
    expect(store.ctl[CTL.PEER_LIVE]).toBe(1);
    // a displaced peer is out of the counts but still allocated until freed
    store.displace(bl);
    expect(swarmCounts(store, b)).toEqual(counts(0, 0));
    expect(store.ctl[CTL.LEECHERS]).toBe(0);
    expect(store.ctl[CTL.PEER_LIVE]).toBe(1);
    expect(store.findPeer(b, peerId(1), 0)).toBe(bl);
    store.freePeer(bl);
    expect(store.ctl[CTL.PEER_LIVE]).toBe(0);
    expect(store.findPeer(b, peerId(1), 0)).toBe(-1);
    checkStore(store);
  });

  it('setAddress rewrites the entry in place: same position, same counts, other entries untouched', () => {
    const { store } = fresh();
    const s = store.addSwarm(sha1('addr'), 0, 0);
    const p4 = [0, 1, 2, 3].map((i) => addPeer(store, s, peerId(i), { seeder: i < 2, addr: wire(false, 100 + i, 100 + i) }));
    const p6 = [4, 5].map((i) => addPeer(store, s, peerId(i), { v6: true, addr: wire(true, 100 + i, 100 + i) }));
    const before4 = segment(store, s, false, true).concat(segment(store, s, false, false));
    const pos = store.peers.dv.getUint32(p4[2]! * PR.SIZE + PR.POS, true);
    store.setAddress(p4[2]!, wire(false, 0xc0a80101, 51413), 0);
    store.setAddress(p6[1]!, wire(true, 0xffffffff, 1), 0);
    expect(store.peers.dv.getUint32(p4[2]! * PR.SIZE + PR.POS, true)).toBe(pos);
    const after4 = segment(store, s, false, true).concat(segment(store, s, false, false));
    expect(after4.map((e) => e.slot)).toEqual(before4.map((e) => e.slot));
    expect(after4.map((e) => e.addr)).toEqual(before4.map((e) => (e.slot === p4[2] ? hex(wire(false, 0xc0a80101, 51413)) : e.addr)));
    expect(segment(store, s, true, false)).toEqual([
      { slot: p6[0], addr: hex(wire(true, 104, 104)) },
      { slot: p6[1], addr: hex(wire(true, 0xffffffff, 1)) },
    ]);
    expect(swarmCounts(store, s)).toEqual(counts(2, 2, 0, 2));
    checkStore(store);
  });

  it('keeps thousands of peers with the same peer_id apart in different swarms', () => {
    const { store } = fresh();
    const pid = peerId(424242);
    const swarms: number[] = [];
    const peers: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const s = store.addSwarm(prefixed(i), 0, 0);
      swarms.push(s);
      peers.push(addPeer(store, s, pid, { seeder: i % 2 === 0, v6: i % 3 === 0, addr: wire(i % 3 === 0, i, i) }));
    }
    expect(new Set(peers).size).toBe(3000);
    for (let i = 0; i < 3000; i++) {
      expect(store.findPeer(swarms[i]!, pid, 0)).toBe(peers[i]);
      expect(entryAddr(store, peers[i]!)).toEqual(wire(i % 3 === 0, i, i));
    }
    // remove half; the others are still found, the removed are gone
    for (let i = 0; i < 3000; i += 2) store.removePeer(peers[i]!);
    for (let i = 0; i < 3000; i++) expect(store.findPeer(swarms[i]!, pid, 0)).toBe(i % 2 === 0 ? -1 : peers[i]);
    expect(store.ctl[CTL.SEEDERS]).toBe(0);
    expect(store.ctl[CTL.LEECHERS]).toBe(1500);
    expect(store.ctl[CTL.PEERS_V6]).toBe(500); // odd multiples of 3 below 3000
    // and many peer_ids that differ only in their last digits in one swarm
    const one = swarms[1]!;
    const slots = new Map<number, number>();
    for (let i = 0; i < 5000; i++) slots.set(i, addPeer(store, one, peerId(i)));
    for (const [i, s] of slots) expect(store.findPeer(one, peerId(i), 0)).toBe(s);
    expect(swarmCounts(store, one)).toEqual(counts(0, 5001));
    expect(sorted(slotsOf(store, one, false, false))).toEqual(sorted([...slots.values(), peers[1]!]));
    for (const e of segment(store, one, false, false)) {
      if (e.slot !== peers[1]) expect(e.addr).toBe(hex(addrFor(store.peers.u8.slice(e.slot * PR.SIZE + PR.PEER_ID, e.slot * PR.SIZE + PR.PEER_ID + 20), false)));
    }
    checkStore(store);
  });
});

describe('SwarmStore: growth', () => {
  it('grows slabs and indexes by doubling beyond the initial sizes', () => {
    const { store, mem } = fresh();
    const swarms: number[] = [];
    for (let i = 0; i < 5000; i++) swarms.push(store.addSwarm(sha1(`g${i}`), 0, i));
    expect(swarms).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    const c = store.ctl;
    expect(c[CTL.SWARM_CAP]).toBe(8192);
    expect(store.swarms.capacity).toBe(8192);
    expect(mem.swarms.byteLength).toBe(8192 * SW.SIZE);
    expect(c[CTL.SWARM_INDEX_CAP]).toBe(16384); // load kept ≤ 1/2
    expect(store.swarmIndex.capacity).toBe(16384);
    const peers: { swarm: number; id: number; slot: number; seeder: boolean; v6: boolean }[] = [];
    for (let i = 0; i < 20_000; i++) {
      const swarm = swarms[(i * 7919) % 5000]!;
      const seeder = i % 3 === 0;
      const v6 = i % 5 === 0;
      peers.push({ swarm, id: i, slot: addPeer(store, swarm, peerId(i), { seeder, v6, now: i }), seeder, v6 });
    }
    expect(c[CTL.PEER_CAP]).toBe(32768);
    expect(mem.peers.byteLength).toBe(32768 * PR.SIZE);
    expect(c[CTL.PEER_INDEX_CAP]).toBe(65536);
    expect(c[CTL.PEER_LIVE]).toBe(20_000);
    expect(c[CTL.SEEDERS]).toBe(6667);
    expect(c[CTL.LEECHERS]).toBe(13_333);
    expect(c[CTL.PEERS_V6]).toBe(4000);
    for (const p of peers) {
      expect(store.findPeer(p.swarm, peerId(p.id), 0)).toBe(p.slot);
      // records survived the copy into the grown buffer
      expect(store.peers.dv.getUint32(p.slot * PR.SIZE + PR.LAST_SEEN, true)).toBe(p.id);
    }
    for (let i = 0; i < 5000; i++) expect(store.findSwarm(sha1(`g${i}`), 0)).toBe(i);
    // per-swarm arrays match what was added, with the right addresses
    const bySwarm = new Map<number, Map<string, Set<string>>>();
    for (const p of peers) {
      let e = bySwarm.get(p.swarm);
      if (!e) bySwarm.set(p.swarm, (e = new Map()));
      const k = `${p.v6 ? 6 : 4}${p.seeder ? 's' : 'l'}`;
      if (!e.has(k)) e.set(k, new Set());
      e.get(k)!.add(`${p.slot}=${hex(addrFor(peerId(p.id), p.v6))}`);
    }
    for (const [s, e] of bySwarm) {
      for (const v6 of [false, true]) {
        for (const seed of [true, false]) {
          const got = new Set(segment(store, s, v6, seed).map((x) => `${x.slot}=${x.addr}`));
          expect(got).toEqual(e.get(`${v6 ? 6 : 4}${seed ? 's' : 'l'}`) ?? new Set());
        }
      }
    }
    checkStore(store);
  });

  it('one swarm of 20,000 peers: arrays grow class by class, then shrink back as peers leave, on merged and split blocks', () => {
    const { store, mem } = fresh();
    const s = store.addSwarm(sha1('huge'), 0, 0);
    const rnd = prng(31);
    const N = 20_000;
    const peers: { slot: number; seeder: boolean; v6: boolean; addr: string }[] = [];
    const removed = new Set<(typeof peers)[number]>();
    const expectCls: [number, number] = [0, 0];
    const n: [number, number] = [0, 0];
    const step = (v6: boolean, delta: 1 | -1): void => {
      const k = v6 ? 1 : 0;
      n[k] += delta;
      const cls = expectCls[k];
      if (delta > 0 && n[k] > classEntries(cls)) expectCls[k] = cls === 0 ? MIN_CLASS : cls + 1;
      if (delta < 0) {
        if (n[k] === 0) expectCls[k] = 0;
        else if (cls > MIN_CLASS && n[k] <= classEntries(cls) >> 2) expectCls[k] = cls - 1;
      }
      expect(classOf(store, s, v6)).toBe(expectCls[k]);
      if (expectCls[k] !== 0) expect(blockOf(store, s, v6) % classEntries(expectCls[k])).toBe(0);
    };
    const checkModel = (): void => {
      for (const v6 of [false, true]) {
        for (const seed of [true, false]) {
          const want = peers.filter((p) => !removed.has(p) && p.v6 === v6 && p.seeder === seed).map((p) => `${p.slot}=${p.addr}`).sort();
          expect(segment(store, s, v6, seed).map((e) => `${e.slot}=${e.addr}`).sort()).toEqual(want);
        }
      }
    };
    const grow = (): void => {
      for (let i = peers.length; i < N; i++) {
        const v6 = i % 10 === 9;
        const seeder = rnd() < 0.3;
        const addr = wire(v6, i, i & 0xffff);
        const slot = addPeer(store, s, peerId(i), { seeder, v6, addr });
        expect(slot).toBeGreaterThanOrEqual(0);
        peers.push({ slot, seeder, v6, addr: hex(addr) });
        step(v6, 1);
        if (i % 2500 === 0) checkModel();
      }
    };
    grow();
    checkModel();
    // 18,000 IPv4 peers: class 16 (32,768 entries); 2,000 IPv6: class 12 (2,048)
    expect(classOf(store, s, false)).toBe(classFor(18_000));
    expect(classOf(store, s, false)).toBe(16);
    expect(classOf(store, s, true)).toBe(12);
    const seeders = peers.filter((p) => p.seeder).length;
    expect(store.seeders(s)).toBe(seeders);
    expect(store.leechers(s)).toBe(N - seeders);
    expect([store.ctl[CTL.SEEDERS], store.ctl[CTL.LEECHERS], store.ctl[CTL.PEERS_V6]]).toEqual([seeders, N - seeders, 2000]);
    // Each block of class c >= 3 came from the bump pointer at 2^(c-1), the first multiple
    // of its size past the one before, and the outgrown blocks below it merged into one:
    // the 32,768-entry array sits at 32,768, with [0, 32768) free as a single block.
    expect(blockOf(store, s, false)).toBe(2 ** 15);
    expect(store.ctl[CTL.ARENA4_TOP]).toBe(2 ** 16);
    expect(arenaFree(store, false)).toEqual([{ start: 0, cls: 16 }]);
    expect(blockOf(store, s, true)).toBe(2 ** 11);
    expect(store.ctl[CTL.ARENA6_TOP]).toBe(2 ** 12);
    expect(arenaFree(store, true)).toEqual([{ start: 0, cls: 12 }]);
    expect(store.arena4.addr.capacity).toBe(65536); // grown from 8192 by doubling
    expect(mem.addr4.byteLength).toBe(65536 * ADDR4);
    expect(mem.slots4.byteLength).toBe(65536 * 4);
    expect(mem.marks4.byteLength).toBe(65536);
    checkStore(store);

    // everybody leaves, in random order: arrays shrink class by class
    const order = peers.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const leaving = [...peers];
    let left = peers.length;
    for (const i of order) {
      const p = leaving[i]!;
      store.removePeer(p.slot);
      removed.add(p);
      step(p.v6, -1);
      left--;
      if (left % 4000 === 0) {
        checkModel();
        checkStore(store);
      }
    }
    expect(left).toBe(0);
    expect(classOf(store, s, false)).toBe(0);
    expect(classOf(store, s, true)).toBe(0);
    expect([store.ctl[CTL.SEEDERS], store.ctl[CTL.LEECHERS], store.ctl[CTL.PEERS_V6], store.ctl[CTL.PEER_LIVE]]).toEqual([0, 0, 0, 0]);
    // shrinking split every smaller block from free ones: the arena did not grow, and with
    // everybody gone it is one free block again
    expect(store.ctl[CTL.ARENA4_TOP]).toBe(2 ** 16);
    expect(store.ctl[CTL.ARENA6_TOP]).toBe(2 ** 12);
    expect(arenaFree(store, false)).toEqual([{ start: 0, cls: 17 }]);
    expect(arenaFree(store, true)).toEqual([{ start: 0, cls: 13 }]);
    checkStore(store);

    // growing again splits and merges the same blocks: the bump pointers stay put
    peers.length = 0;
    removed.clear();
    grow();
    checkModel();
    expect(store.ctl[CTL.ARENA4_TOP]).toBe(2 ** 16);
    expect(store.ctl[CTL.ARENA6_TOP]).toBe(2 ** 12);
    expect([blockOf(store, s, false), blockOf(store, s, true)]).toEqual([2 ** 15, 2 ** 11]);
    expect(arenaFree(store, false)).toEqual([{ start: 0, cls: 16 }]);
    expect(arenaFree(store, true)).toEqual([{ start: 0, cls: 12 }]);
    checkStore(store);
  });

  it('stops at the configured bounds: allocPeer and addSwarm return -1', () => {
    const { store } = fresh();
    const swarms: number[] = [];
    for (let i = 0; i < 100; i++) swarms.push(store.addSwarm(sha1(`b${i}`), 0, 0));
    for (let i = 0; i < LIMITS.maxPeers; i++) {
      const slot = addPeer(store, swarms[i % 100]!, peerId(i), { v6: i % 7 === 0 });
      if (slot !== i) throw new Error(`peer ${i} got slot ${slot}`);
    }
    const c = store.ctl;
    expect(c[CTL.PEER_CAP]).toBe(LIMITS.maxPeers);
    expect(c[CTL.PEER_LIVE]).toBe(LIMITS.maxPeers);
    expect(c[CTL.PEER_INDEX_CAP]).toBe(131072);
    expect(store.allocPeer(swarms[0]!, peerId(999_999), 0)).toBe(-1);
    expect(store.allocPeer(swarms[5]!, peerId(999_998), 0)).toBe(-1);
    expect(c[CTL.PEER_LIVE]).toBe(LIMITS.maxPeers);
    expect(c[CTL.PEER_HIGH]).toBe(LIMITS.maxPeers);
    // the refused peer was not indexed
    expect(store.findPeer(swarms[0]!, peerId(999_999), 0)).toBe(-1);
    expect(c[CTL.LEECHERS]).toBe(LIMITS.maxPeers);
    expect(c[CTL.PEERS_V6]).toBe(Math.ceil(LIMITS.maxPeers / 7));
    checkStore(store);
    // freeing one makes room for exactly one
    store.removePeer(12_345);
    expect(addPeer(store, swarms[0]!, peerId(999_999))).toBe(12_345);
    expect(store.allocPeer(swarms[0]!, peerId(999_997), 0)).toBe(-1);
    expect(store.findPeer(swarms[0]!, peerId(999_999), 0)).toBe(12_345);
    expect(store.findPeer(swarms[12_345 % 100]!, peerId(12_345), 0)).toBe(-1);
    expect(store.findPeer(swarms[49_999 % 100]!, peerId(49_999), 0)).toBe(49_999);

    // swarms
    for (let i = 100; i < LIMITS.maxSwarms; i++) {
      const s = store.addSwarm(sha1(`b${i}`), 0, 0);
      if (s !== i) throw new Error(`swarm ${i} got slot ${s}`);
    }
    expect(c[CTL.SWARM_CAP]).toBe(LIMITS.maxSwarms);
    expect(c[CTL.SWARM_LIVE]).toBe(LIMITS.maxSwarms);
    expect(store.addSwarm(sha1('one too many'), 0, 0)).toBe(-1);
    expect(store.findSwarm(sha1('one too many'), 0)).toBe(-1);
    expect(c[CTL.SWARM_LIVE]).toBe(LIMITS.maxSwarms);
    store.removeSwarm(9_999);
    expect(store.addSwarm(sha1('one too many'), 0, 0)).toBe(9_999);
    expect(store.addSwarm(sha1('two too many'), 0, 0)).toBe(-1);
    for (let i = 0; i < 9_999; i += 97) expect(store.findSwarm(sha1(`b${i}`), 0)).toBe(i);
    checkStore(store);
  });

  it('stops at small bounds below the initial sizes', () => {
    const { store } = fresh({ maxPeers: 300, maxSwarms: 50, requestRingBytes: 1 << 12, answerRingBytes: 1 << 12 });
    expect(store.arena4.addr.capacity).toBe(1200); // the reservation, below the initial size
    for (let i = 0; i < 50; i++) expect(store.addSwarm(sha1(`s${i}`), 0, 0)).toBe(i);
    expect(store.addSwarm(sha1('s50'), 0, 0)).toBe(-1);
    for (let i = 0; i < 300; i++) expect(addPeer(store, i % 50, peerId(i), { v6: i % 2 === 1 })).toBe(i);
    expect(store.allocPeer(0, peerId(300), 0)).toBe(-1);
    for (let i = 0; i < 300; i++) expect(store.findPeer(i % 50, peerId(i), 0)).toBe(i);
    checkStore(store);
  });

  it('place returns false when no aligned block fits the reservation (pinned free space); room made → the array grows', () => {
    // 40 peers reserve 160 entries per family. A 64-entry block must start at a multiple of
    // 64: at 0 or 64, since [128, 192) lies beyond the reservation.
    const MAXP = 40;
    const { store } = fresh({ maxPeers: MAXP, maxSwarms: 64, requestRingBytes: 1 << 12, answerRingBytes: 1 << 12 });
    const reserve = MAXP * 4;
    expect(store.arena4.addr.maxRecords).toBe(reserve);
    expect(store.arena4.marks.maxRecords).toBe(reserve);
    const swarms = Array.from({ length: 40 }, (_, i) => store.addSwarm(sha1(`pin ${i}`), 0, 0));
    let id = 0;
    const add = (s: number, o: PeerOpts = {}): number => addPeer(store, s, peerId(id++), o);
    // 33 swarms of one peer: 2-entry blocks one after the other, no free block
    const pins = swarms.slice(0, 33).map((s) => add(s));
    for (let i = 0; i < 33; i++) expect(blockOf(store, swarms[i]!, false)).toBe(2 * i);
    expect(store.ctl[CTL.ARENA4_TOP]).toBe(66);
    expect(arenaFree(store, false)).toEqual([]);
    // all but the first and the last leave: [2, 64) merges into its maximal blocks; the
    // pins at [0, 2) and [64, 66) keep both 64-entry blocks below the top from being free
    for (let i = 1; i < 32; i++) store.removePeer(pins[i]!);
    expect(byStart(arenaFree(store, false))).toEqual([
      { start: 2, cls: 2 }, { start: 4, cls: 3 }, { start: 8, cls: 4 }, { start: 16, cls: 5 }, { start: 32, cls: 6 },
    ]);
    checkStore(store);
    // one swarm grows to 32 peers on the free blocks, each class in turn; the top stays
    const x = swarms[1]!;
    const blocks: number[] = [];
    for (let k = 0; k < 32; k++) {
      expect(add(x)).toBeGreaterThanOrEqual(0);
      if (blocks.at(-1) !== blockOf(store, x, false)) blocks.push(blockOf(store, x, false));
    }
    expect(blocks).toEqual([2, 4, 8, 16, 32]);
    expect(classOf(store, x, false)).toBe(6);
    expect(store.ctl[CTL.ARENA4_TOP]).toBe(66);
    expect(arenaFree(store, false)).toEqual([{ start: 2, cls: 2 }, { start: 4, cls: 3 }, { start: 8, cls: 4 }, { start: 16, cls: 5 }]);
    checkStore(store);

    // its 33rd peer needs 64 entries: none free, and from the top they would start at 128
    // and end at 192 (66 + 64 would fit, but not aligned): refused, nothing changed
    const refuse = (): void => {
      const before = { counts: swarmCounts(store, x), top: store.ctl[CTL.ARENA4_TOP], free: arenaFree(store, false), leechers: store.ctl[CTL.LEECHERS], live: store.ctl[CTL.PEER_LIVE] };
      expect(arenaFree(store, false).filter((b) => b.cls >= 7)).toEqual([]);
      expect(nextBlock(store, false, 7)).toEqual({ start: 128, fromLists: false });
      const slot = store.allocPeer(x, peerId(id), 0);
      expect(slot).toBeGreaterThanOrEqual(0);
      store.peers.u8[slot * PR.SIZE + PR.FLAGS] = PF_LIVE;
      expect(store.place(slot, wire(false, id, 1), 0)).toBe(false);
      expect({ counts: swarmCounts(store, x), top: store.ctl[CTL.ARENA4_TOP], free: arenaFree(store, false), leechers: store.ctl[CTL.LEECHERS] }).toEqual({
        counts: before.counts,
        top: before.top,
        free: before.free,
        leechers: before.leechers,
      });
      expect([blockOf(store, x, false), classOf(store, x, false)]).toEqual([32, 6]);
      store.freePeer(slot);
      expect(store.ctl[CTL.PEER_LIVE]).toBe(before.live);
      expect(store.findPeer(x, peerId(id), 0)).toBe(-1);
      id++;
    };
    expect(store.ctl[CTL.PEER_LIVE]).toBe(34);
    refuse();
    expect(store.arena4.addr.capacity).toBe(reserve);
    checkStore(store);

    // the free blocks still serve: another swarm grows to 5 peers without moving the top,
    // and the other family's arena is unaffected
    const y = swarms[2]!;
    const yPeers = Array.from({ length: 5 }, () => add(y));
    expect(yPeers.every((p) => p >= 0)).toBe(true);
    expect([blockOf(store, y, false), classOf(store, y, false)]).toEqual([8, 4]);
    expect(store.ctl[CTL.ARENA4_TOP]).toBe(66);
    expect(add(y, { v6: true })).toBeGreaterThanOrEqual(0);
    expect([store.ctl[CTL.PEERS_V6], store.ctl[CTL.ARENA6_TOP]]).toEqual([1, 2]);
    store.removePeer(yPeers[4]!);
    refuse();
    checkStore(store);

    // the pin at [64, 66) leaves: a free block at the top, not merged with what lies beyond
    // it; the 64-entry block now starts there and the array grows
    store.removePeer(pins[32]!);
    expect(arenaFree(store, false)).toEqual([{ start: 64, cls: 2 }, { start: 2, cls: 2 }, { start: 4, cls: 3 }, { start: 16, cls: 5 }]);
    expect(nextBlock(store, false, 7)).toEqual({ start: 64, fromLists: false });
    expect(add(x)).toBeGreaterThanOrEqual(0);
    expect([blockOf(store, x, false), classOf(store, x, false)]).toEqual([64, 7]);
    expect(store.ctl[CTL.ARENA4_TOP]).toBe(128);
    expect(swarmCounts(store, x)).toEqual(counts(0, 33));
    expect(arenaFree(store, false)).toEqual([{ start: 2, cls: 2 }, { start: 4, cls: 3 }, { start: 16, cls: 5 }, { start: 32, cls: 6 }]);
    checkStore(store);
    // and with everybody gone, the arena is one free block
    for (const s of swarms) for (const v6 of [false, true]) for (const seed of [true, false]) for (const p of slotsOf(store, s, v6, seed)) store.removePeer(p);
    expect(store.ctl[CTL.PEER_LIVE]).toBe(0);
    expect(arenaFree(store, false)).toEqual([{ start: 0, cls: 8 }]);
    expect(arenaFree(store, true)).toEqual([{ start: 0, cls: 2 }]);
    checkStore(store);
  });

  it('lockstep growth of 2,000 swarms to 20 peers each keeps the arena within 1.3x of the arrays; all gone → one merged arena', () => {
    // Everyone re-announcing after a restart: each swarm gets one peer per round. Without
    // merging, every outgrown block waited for a swarm of exactly its size (about 2x).
    const { store } = fresh();
    const N = 2000;
    const K = 20;
    const swarms = Array.from({ length: N }, (_, i) => store.addSwarm(sha1(`lockstep ${i}`), 0, 0));
    const slots: number[] = [];
    let id = 0;
    for (let round = 0; round < K; round++) {
      for (const s of swarms) {
        const slot = addPeer(store, s, peerId(id++), { seeder: id % 4 === 0 });
        expect(slot).toBeGreaterThanOrEqual(0);
        slots.push(slot);
      }
      if (round === 0 || round === 4 || round === 16) checkStore(store);
    }
    let need = 0;
    for (const s of swarms) {
      expect(classOf(store, s, false)).toBe(classFor(K));
      need += classEntries(classOf(store, s, false));
    }
    expect(need).toBe(N * 32);
    const top = store.ctl[CTL.ARENA4_TOP]!;
    expect(top).toBeGreaterThanOrEqual(need);
    expect(top).toBeLessThanOrEqual(1.3 * need);
    checkStore(store);
    // everybody leaves (in the order they came): the whole arena is free and merged
    for (const slot of slots) store.removePeer(slot);
    expect(store.ctl[CTL.ARENA4_TOP]).toBe(top);
    expect(byStart(arenaFree(store, false))).toEqual(alignedBlocks(0, top));
    checkStore(store);
  });
});

describe('SwarmStore.copyPeers', () => {
  function build(): { store: SwarmStore; s: number; seeds: number[]; leeches: number[]; seeds6: number[] } {
    const { store } = fresh();
    const s = store.addSwarm(sha1('copy'), 0, 0);
    const seeds = [0, 1, 2, 3, 4].map((i) => addPeer(store, s, peerId(i), { seeder: true, addr: wire(false, 0x0a000100 + i, 2000 + i) }));
    const leeches = [0, 1, 2].map((i) => addPeer(store, s, peerId(10 + i), { addr: wire(false, 0x0a000200 + i, 3000 + i) }));
    const seeds6 = [0, 1].map((i) => addPeer(store, s, peerId(20 + i), { seeder: true, v6: true, addr: wire(true, 0x600 + i, 4000 + i) }));
    return { store, s, seeds, leeches, seeds6 };
  }
  const rot = (store: SwarmStore, s: number, seeders = true): number =>
    store.swarms.dv.getUint32(s * SW.SIZE + (seeders ? SW.ROT_SEED : SW.ROT_LEECH), true);
  const entries = (out: Uint8Array, to: number, n: number, size: number): string[] =>
    Array.from({ length: n }, (_, i) => hex(out.subarray(to + i * size, to + (i + 1) * size)));

  it('copies compact entries of one segment from the rotation counter, wrapping, and advances it by the number copied', () => {
    const { store, s, seeds, leeches } = build();
    const seedAddrs = segment(store, s, false, true).map((e) => e.addr);
    expect(segment(store, s, false, true).map((e) => e.slot)).toEqual(seeds);
    const out = new Uint8Array(200).fill(0xee);
    expect(store.copyPeers(s, false, true, -1, 3, out, 10, 6)).toBe(3);
    expect(entries(out, 10, 3, 6)).toEqual(seedAddrs.slice(0, 3));
    expect(out[9]).toBe(0xee); // nothing written outside the entries
    expect(out[28]).toBe(0xee);
    expect(rot(store, s)).toBe(3);
    expect(store.copyPeers(s, false, true, -1, 4, out, 0, 6)).toBe(4);
    expect(entries(out, 0, 4, 6)).toEqual([seedAddrs[3], seedAddrs[4], seedAddrs[0], seedAddrs[1]]);
    expect(rot(store, s)).toBe(7);
    // the leecher segment has its own counter and holds only leechers
    const leechAddrs = segment(store, s, false, false).map((e) => e.addr);
    expect(segment(store, s, false, false).map((e) => e.slot).sort()).toEqual(sorted(leeches));
    expect(store.copyPeers(s, false, false, -1, 2, out, 0, 6)).toBe(2);
    expect(entries(out, 0, 2, 6)).toEqual([leechAddrs[0], leechAddrs[1]]);
    expect(rot(store, s, false)).toBe(2);
    expect(store.copyPeers(s, false, false, -1, 50, out, 0, 6)).toBe(3);
    expect(entries(out, 0, 3, 6)).toEqual([leechAddrs[2], leechAddrs[0], leechAddrs[1]]);
    expect(rot(store, s, false)).toBe(5);
    expect(rot(store, s)).toBe(7); // the seeder counter did not move
    // nothing asked or nothing there: nothing copied, the counters stay
    expect(store.copyPeers(s, false, true, -1, 0, out, 0, 6)).toBe(0);
    expect(store.copyPeers(s, true, false, -1, 10, out, 0, 18)).toBe(0);
    expect(rot(store, s)).toBe(7);
    expect(rot(store, s, false)).toBe(5);
    checkStore(store);
  });

  it('never copies `self`, still visiting each other entry once', () => {
    const { store, s, seeds } = build();
    const out = new Uint8Array(200);
    const addrs = segment(store, s, false, true);
    for (let r = 0; r < 12; r++) {
      const self = seeds[r % 5]!;
      const start = rot(store, s) % 5;
      const n = store.copyPeers(s, false, true, self, 50, out, 0, 6);
      expect(n).toBe(4);
      const want: string[] = [];
      for (let k = 0; k < 5; k++) {
        const e = addrs[(start + k) % 5]!;
        if (e.slot !== self) want.push(e.addr);
      }
      expect(entries(out, 0, 4, 6)).toEqual(want);
    }
    // a lone peer gets nobody
    const { store: st2 } = fresh();
    const lone = st2.addSwarm(sha1('lone'), 0, 0);
    const p = addPeer(st2, lone, peerId(1), { seeder: true });
    expect(st2.copyPeers(lone, false, true, p, 50, out, 0, 6)).toBe(0);
    expect(rot(st2, lone)).toBe(0);
  });

  it('writes non-compact entries: ip16 (IPv4 as ::ffff:a.b.c.d), port big-endian, peer_id', () => {
    const { store, s } = build();
    const out = new Uint8Array(400).fill(0xee);
    expect(store.copyPeers(s, false, false, -1, 2, out, 3, ENTRY_FULL)).toBe(2);
    const leech = segment(store, s, false, false);
    for (let i = 0; i < 2; i++) {
      const e = out.subarray(3 + i * ENTRY_FULL, 3 + (i + 1) * ENTRY_FULL);
      const a = Buffer.from(leech[i]!.addr, 'hex');
      expect([...e.subarray(0, 12)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
      expect([...e.subarray(12, 18)]).toEqual([...a]);
      const slot = leech[i]!.slot;
      expect(e.subarray(18, 38)).toEqual(store.peers.u8.subarray(slot * PR.SIZE + PR.PEER_ID, slot * PR.SIZE + PR.PEER_ID + 20));
    }
    expect(out[2]).toBe(0xee);
    expect(out[3 + 2 * ENTRY_FULL]).toBe(0xee);
    expect(store.copyPeers(s, true, true, -1, 5, out, 0, ENTRY_FULL)).toBe(2);
    const seed6 = segment(store, s, true, true);
    for (let i = 0; i < 2; i++) {
      const e = out.subarray(i * ENTRY_FULL, (i + 1) * ENTRY_FULL);
      expect(hex(e.subarray(0, 18))).toBe(seed6[(i + 2) % 2]!.addr); // rot was 2 → 2 % 2 = 0
      expect(e.subarray(18, 38)).toEqual(peerId(20 + ((i + 2) % 2)));
    }
    // compact IPv6: 18 bytes as stored
    expect(store.copyPeers(s, true, true, -1, 1, out, 0, 18)).toBe(1);
    expect(hex(out.subarray(0, 18))).toBe(seed6[0]!.addr); // rot 4 % 2 = 0
  });
});

describe('SwarmStore.expire', () => {
  it('removes only peers not seen for longer than the timeout and frees empty stale swarms', () => {
    const { store } = fresh();
    const A = store.addSwarm(sha1('A'), 0, 150); // peers, one stays
    const B = store.addSwarm(sha1('B'), 0, 50); // empty and stale → freed
    const C = store.addSwarm(sha1('C'), 0, 100); // empty, exactly at the timeout → kept
    const D = store.addSwarm(sha1('D'), 0, 60); // its only peer expires, then it is freed
    const E = store.addSwarm(sha1('E'), 0, 10); // stale but has a fresh peer → kept
    const a1 = addPeer(store, A, peerId(1), { now: 0, seeder: true });
    const a2 = addPeer(store, A, peerId(2), { now: 99 });
    const a3 = addPeer(store, A, peerId(3), { now: 100 }); // 200 - 100 = timeout: kept
    const a4 = addPeer(store, A, peerId(4), { now: 150, v6: true });
    const d1 = addPeer(store, D, peerId(5), { now: 60, v6: true });
    const e1 = addPeer(store, E, peerId(6), { now: 190 });
    expect(store.ctl[CTL.PEERS_V6]).toBe(2);
    const removed = store.expire(200, 100, 1_000_000);
    expect(removed).toBe(3);
    expect(store.findPeer(A, peerId(1), 0)).toBe(-1);
    expect(store.findPeer(A, peerId(2), 0)).toBe(-1);
    expect(store.findPeer(A, peerId(3), 0)).toBe(a3);
    expect(store.findPeer(A, peerId(4), 0)).toBe(a4);
    expect(store.findPeer(D, peerId(5), 0)).toBe(-1);
    expect(store.findPeer(E, peerId(6), 0)).toBe(e1);
    expect(sorted(freeList(store, 'peer'))).toEqual(sorted([a1, a2, d1]));
    expect(swarmCounts(store, A)).toEqual(counts(0, 1, 0, 1));
    expect(segment(store, A, false, false)).toEqual([{ slot: a3, addr: hex(addrFor(peerId(3), false)) }]);
    expect(segment(store, A, true, false)).toEqual([{ slot: a4, addr: hex(addrFor(peerId(4), true)) }]);
    expect(store.findSwarm(sha1('A'), 0)).toBe(A);
    expect(store.findSwarm(sha1('B'), 0)).toBe(-1);
    expect(store.findSwarm(sha1('C'), 0)).toBe(C);
    expect(store.findSwarm(sha1('D'), 0)).toBe(-1);
    expect(store.findSwarm(sha1('E'), 0)).toBe(E);
    expect(sorted(freeList(store, 'swarm'))).toEqual(sorted([B, D]));
    expect(store.ctl[CTL.SWARM_LIVE]).toBe(3);
    expect(store.ctl[CTL.PEER_LIVE]).toBe(3);
    expect(store.ctl[CTL.SEEDERS]).toBe(0);
    expect(store.ctl[CTL.LEECHERS]).toBe(3);
    expect(store.ctl[CTL.PEERS_V6]).toBe(1);
    // D's IPv6 block went back when its last peer expired
    expect(classOf(store, D, true)).toBe(0);
    checkStore(store);
    // nothing more to do at the same time
    expect(store.expire(200, 100, 1_000_000)).toBe(0);
    expect(store.ctl[CTL.SWARM_LIVE]).toBe(3);
  });

  it('visits at most `budget` slots per call and continues where it stopped', () => {
    const { store } = fresh();
    const s = store.addSwarm(sha1('S'), 0, 1000);
    for (let i = 0; i < 10; i++) addPeer(store, s, peerId(i), { now: 0, v6: i % 2 === 1 });
    const c = store.ctl;
    expect(store.expire(500, 100, 4)).toBe(4);
    expect(c[CTL.SWEEP_PEER]).toBe(4);
    for (let i = 0; i < 4; i++) expect(store.findPeer(s, peerId(i), 0)).toBe(-1);
    for (let i = 4; i < 10; i++) expect(store.findPeer(s, peerId(i), 0)).toBe(i);
    expect(swarmCounts(store, s)).toEqual(counts(0, 3, 0, 3));
    // refresh peer 9 and re-add peer 0 (slot 3, last freed, reused)
    touch(store, 9, 500);
    expect(addPeer(store, s, peerId(0), { now: 500 })).toBe(3);
    expect(store.expire(500, 100, 4)).toBe(4); // slots 4..7
    expect(c[CTL.SWEEP_PEER]).toBe(8);
    expect(store.expire(500, 100, 4)).toBe(1); // slots 8, 9 (fresh), 0, 1 (free), wraps
    expect(c[CTL.SWEEP_PEER]).toBe(2);
    expect(store.findPeer(s, peerId(8), 0)).toBe(-1);
    expect(store.findPeer(s, peerId(9), 0)).toBe(9);
    expect(store.findPeer(s, peerId(0), 0)).toBe(3);
    expect(swarmCounts(store, s)).toEqual(counts(0, 1, 0, 1));
    expect(segment(store, s, false, false).map((e) => e.slot)).toEqual([3]);
    expect(segment(store, s, true, false).map((e) => e.slot)).toEqual([9]);
    // swarm sweep has its own cursor
    expect(c[CTL.SWEEP_SWARM]).toBe(1); // one swarm slot: visited up to 4 times, cursor past it
    checkStore(store);
  });
});

// ---------------------------------------------------------------------------------------
// recover(): a second store attached to the same memory re-derives everything.
// ---------------------------------------------------------------------------------------

interface SwarmSnap {
  slot: number;
  counts: Counts;
  seed4: Entry[];
  leech4: Entry[];
  seed6: Entry[];
  leech6: Entry[];
}
interface Snapshot {
  ctl: Record<string, number>;
  swarms: Record<string, SwarmSnap>;
  peers: Record<string, number>;
  peerFree: number[];
  swarmFree: number[];
}

function snapSwarm(store: SwarmStore, s: number): SwarmSnap {
  return {
    slot: s,
    counts: swarmCounts(store, s),
    seed4: segment(store, s, false, true),
    leech4: segment(store, s, false, false),
    seed6: segment(store, s, true, true),
    leech6: segment(store, s, true, false),
  };
}

function snapshot(store: SwarmStore, swarmKeys: Uint8Array[], peerKeys: { swarm: Uint8Array; pid: Uint8Array }[]): Snapshot {
  const c = store.ctl;
  const ctl: Record<string, number> = {};
  for (const k of ['SWARM_HIGH', 'SWARM_LIVE', 'PEER_HIGH', 'PEER_LIVE', 'SEEDERS', 'LEECHERS', 'PEERS_V6', 'ARENA4_TOP', 'ARENA6_TOP'] as const) {
    ctl[k] = c[CTL[k]]!;
  }
  const swarms: Snapshot['swarms'] = {};
  for (const k of swarmKeys) {
    const s = store.findSwarm(k, 0);
    if (s >= 0) swarms[hex(k)] = snapSwarm(store, s);
  }
  const peers: Record<string, number> = {};
  for (const p of peerKeys) {
    const s = store.findSwarm(p.swarm, 0);
    peers[`${hex(p.swarm)}/${hex(p.pid)}`] = s < 0 ? -2 : store.findPeer(s, p.pid, 0);
  }
  return { ctl, swarms, peers, peerFree: sorted(freeList(store, 'peer')), swarmFree: sorted(freeList(store, 'swarm')) };
}

/** A populated store: 300 swarms, ~6000 peers of mixed kinds and families, some removed (free lists in use). */
function populated(): { mem: ShardMemory; store: SwarmStore; swarmKeys: Uint8Array[]; peerKeys: { swarm: Uint8Array; pid: Uint8Array }[] } {
  const { mem, store } = fresh();
  const rnd = prng(99);
  const swarmKeys = Array.from({ length: 300 }, (_, i) => (i % 2 ? sha1(`r${i}`) : prefixed(i, 5)));
  const peerKeys: { swarm: Uint8Array; pid: Uint8Array }[] = [];
  const slots = swarmKeys.map((k) => store.addSwarm(k, 0, 0));
  for (let i = 0; i < 6000; i++) {
    const w = Math.floor(rnd() * 300);
    const pid = peerId(Math.floor(rnd() * 400));
    if (store.findPeer(slots[w]!, pid, 0) >= 0) continue;
    addPeer(store, slots[w]!, pid, { seeder: rnd() < 0.4, v6: rnd() < 0.2, now: i });
    peerKeys.push({ swarm: swarmKeys[w]!, pid });
  }
  // some churn: remove ~1/5 of the peers and 20 swarms (after emptying them)
  for (const p of peerKeys) {
    if (rnd() < 0.2) {
      const s = store.findSwarm(p.swarm, 0);
      const slot = store.findPeer(s, p.pid, 0);
      if (slot >= 0) store.removePeer(slot);
    }
  }
  for (let w = 0; w < 300; w += 15) {
    const s = slots[w]!;
    for (const v6 of [false, true]) for (const seed of [true, false]) for (const p of slotsOf(store, s, v6, seed)) store.removePeer(p);
    store.removeSwarm(s);
  }
  // completed counters and rotation are records, not derived: recover keeps them
  for (let w = 1; w < 300; w += 7) {
    if (w % 15 === 0) continue;
    store.swarms.dv.setUint32(slots[w]! * SW.SIZE + SW.COMPLETED, w, true);
    store.swarms.dv.setUint32(slots[w]! * SW.SIZE + SW.ROT_SEED, w * 3, true);
    store.swarms.dv.setUint32(slots[w]! * SW.SIZE + SW.ROT_LEECH, w * 5, true);
  }
  checkStore(store);
  return { mem, store, swarmKeys, peerKeys };
}

/** The hash stored beside `slot` in an index (hashes are seeded and private to the store). */
function indexHashOf(index: HashIndex, slot: number): number {
  for (let i = 0; i < index.capacity; i++) if (index.i32[i * 2 + 1] === slot + 1) return index.i32[i * 2]!;
  throw new Error(`slot ${slot} is not indexed`);
}

/** A swarm (by key index) whose array of `v6` has at least `n` entries in the `seeders` segment. */
function pick(store: SwarmStore, swarmKeys: Uint8Array[], used: Set<number>, v6: boolean, seeders: boolean, n: number): number {
  for (let w = 0; w < swarmKeys.length; w++) {
    if (used.has(w)) continue;
    const s = store.findSwarm(swarmKeys[w]!, 0);
    if (s >= 0 && segment(store, s, v6, seeders).length >= n && segment(store, s, v6, !seeders).length >= 1) {
      used.add(w);
      return w;
    }
  }
  throw new Error('no swarm fits');
}

describe('SwarmStore.recover', () => {
  it('a second store on the same buffers reproduces counts, finds, arrays (order and addresses) and free lists', () => {
    const { mem, store, swarmKeys, peerKeys } = populated();
    const before = snapshot(store, swarmKeys, peerKeys);
    expect(before.ctl.PEER_LIVE).toBeGreaterThan(3000);
    expect(before.ctl.PEERS_V6).toBeGreaterThan(500);
    expect(before.peerFree.length).toBe(before.ctl.PEER_HIGH! - before.ctl.PEER_LIVE!);
    expect(before.swarmFree.length).toBe(20);
    const free4 = byStart(arenaFree(store, false));
    const free6 = byStart(arenaFree(store, true));
    expect(free4.length).toBeGreaterThan(0);
    expect(free6.length).toBeGreaterThan(0);
    const again = new SwarmStore(mem);
    again.recover();
    expect(snapshot(again, swarmKeys, peerKeys)).toEqual(before);
    // rebuilt from the used blocks alone, the free blocks are the same merged ones
    expect(byStart(arenaFree(again, false))).toEqual(free4);
    expect(byStart(arenaFree(again, true))).toEqual(free6);
    for (let w = 1; w < 300; w += 7) {
      if (w % 15 === 0) continue;
      const s = again.findSwarm(swarmKeys[w]!, 0);
      expect(again.swarms.dv.getUint32(s * SW.SIZE + SW.COMPLETED, true)).toBe(w);
      expect(again.swarms.dv.getUint32(s * SW.SIZE + SW.ROT_SEED, true)).toBe(w * 3);
      expect(again.swarms.dv.getUint32(s * SW.SIZE + SW.ROT_LEECH, true)).toBe(w * 5);
    }
    checkStore(again);
  });

  it('recovers from destroyed indexes, positions, flags, counters and free lists', () => {
    const { mem, store, swarmKeys, peerKeys } = populated();
    const before = snapshot(store, swarmKeys, peerKeys);
    const rnd = prng(5);
    const usedBlock = blockOf(store, store.findSwarm(swarmKeys[1]!, 0), false);
    // indexes wiped
    store.swarmIndex.i32.fill(0);
    store.peerIndex.i32.fill(0);
    // every peer's POS scrambled, seeder/v6 flags of live peers flipped at random
    const high = store.ctl[CTL.PEER_HIGH]!;
    for (let p = 0; p < high; p++) {
      const at = p * PR.SIZE;
      store.peers.dv.setInt32(at + PR.POS, Math.floor(rnd() * high) - 3, true);
      if (store.peers.u8[at + PR.FLAGS]! & PF_LIVE) store.peers.u8[at + PR.FLAGS] = store.peers.u8[at + PR.FLAGS]! ^ (rnd() < 0.5 ? PF_SEEDER : 0) ^ (rnd() < 0.5 ? PF_V6 : 0);
    }
    // swarm free-list links garbage (a cycle), classes of dead swarms garbage
    for (let s = 0; s < store.ctl[CTL.SWARM_HIGH]!; s++) {
      const at = s * SW.SIZE;
      if (!(store.swarms.u8[at + SW.FLAGS]! & SWF_LIVE)) {
        store.swarms.dv.setInt32(at + SW.LAST_ACTIVE, 0, true);
        store.swarms.u8[at + SW.CLASS4] = 5;
      }
    }
    // totals and free heads wrong (free heads point at live records / used blocks)
    const c = store.ctl;
    c[CTL.SEEDERS] = -5;
    c[CTL.LEECHERS] = 99;
    c[CTL.PEERS_V6] = 7;
    c[CTL.PEER_LIVE] = 1;
    c[CTL.SWARM_LIVE] = 0;
    c[CTL.PEER_FREE] = before.swarms[hex(swarmKeys[1]!)]!.seed4[0]?.slot ?? before.swarms[hex(swarmKeys[1]!)]!.leech4[0]!.slot;
    c[CTL.SWARM_FREE] = 1;
    for (let k = 0; k < MAX_CLASS; k++) {
      c[CTL.FREE4 + k] = k % 3 === 0 ? NIL : usedBlock;
      c[CTL.FREE6 + k] = k;
    }
    // marks garbage too: on used blocks (a merge would take them) and inside free ones
    store.arena4.marks.u8[usedBlock] = classOf(store, store.findSwarm(swarmKeys[1]!, 0), false);
    for (let k = 0; k < 200; k++) store.arena4.marks.u8[Math.floor(rnd() * c[CTL.ARENA4_TOP]!)] = 1 + Math.floor(rnd() * 10);
    for (let k = 0; k < 50; k++) store.arena6.marks.u8[Math.floor(rnd() * c[CTL.ARENA6_TOP]!)] = 1 + Math.floor(rnd() * 10);

    const again = new SwarmStore(mem);
    again.recover();
    expect(snapshot(again, swarmKeys, peerKeys)).toEqual(before);
    checkStore(again); // arena free lists rebuilt: used and free blocks tile each arena
  });

  it('repairs torn arrays: duplicates, dead, foreign and out-of-range slots, wrong counters', () => {
    const { mem, store, swarmKeys, peerKeys } = populated();
    const before = snapshot(store, swarmKeys, peerKeys);
    const taken = new Set<number>();
    const slotOf = (w: number): number => store.findSwarm(swarmKeys[w]!, 0);
    const setEntry = (s: number, v6: boolean, i: number, slot: number): void => {
      fam(store, v6).arena.slots.i32[blockOf(store, s, v6) + i] = slot;
    };
    const setCount = (s: number, field: number, value: number): void => store.swarms.dv.setUint32(s * SW.SIZE + field, value, true);
    const getCount = (s: number, field: number): number => store.swarms.dv.getUint32(s * SW.SIZE + field, true);
    const expected = structuredClone(before.swarms);
    const freed = new Set<number>(); // peers that must end up freed
    const exp = (w: number): SwarmSnap => expected[hex(swarmKeys[w]!)]!;
    const dropLeech4 = (w: number, j: number): void => {
      freed.add(exp(w).leech4[j]!.slot);
      exp(w).leech4.splice(j, 1);
    };

    // 1) a duplicate in the leecher segment: the first occurrence wins, the overwritten peer is lost
    const w1 = pick(store, swarmKeys, taken, false, false, 3);
    const s1 = slotOf(w1);
    const S1 = getCount(s1, SW.SEED4);
    setEntry(s1, false, S1 + 2, exp(w1).leech4[0]!.slot);
    dropLeech4(w1, 2);
    // 2) entries pointing to a dead slot (a freed peer), out of range, negative
    const w2 = pick(store, swarmKeys, taken, false, false, 4);
    const s2 = slotOf(w2);
    const S2 = getCount(s2, SW.SEED4);
    const dead = before.peerFree[0]!;
    setEntry(s2, false, S2 + 3, dead);
    setEntry(s2, false, S2 + 1, store.ctl[CTL.PEER_HIGH]! + 10);
    setEntry(s2, false, S2 + 0, -7);
    dropLeech4(w2, 3);
    dropLeech4(w2, 1);
    dropLeech4(w2, 0);
    // 3) a peer record killed mid-free (not live any more) while still in an array
    const w3 = pick(store, swarmKeys, taken, false, true, 2);
    const killed = exp(w3).seed4[1]!.slot;
    store.peers.u8[killed * PR.SIZE + PR.FLAGS] = 0;
    exp(w3).seed4.splice(1, 1);
    freed.add(killed);
    // 4) an entry naming a live peer of another swarm: dropped here, kept there
    const w4 = pick(store, swarmKeys, taken, false, false, 2);
    const s4 = slotOf(w4);
    const foreign = exp(w3).seed4[0]!.slot;
    setEntry(s4, false, getCount(s4, SW.SEED4) + 1, foreign);
    dropLeech4(w4, 1);
    // 5) an IPv6 duplicate of an IPv4 entry of the same swarm: the IPv4 entry (recovered first) wins
    let w5 = -1;
    for (let w = 0; w < swarmKeys.length && w5 < 0; w++) {
      if (taken.has(w)) continue;
      const s = slotOf(w);
      if (s >= 0 && before.swarms[hex(swarmKeys[w]!)]!.leech6.length >= 2 && before.swarms[hex(swarmKeys[w]!)]!.seed4.length >= 1) w5 = w;
    }
    expect(w5).toBeGreaterThanOrEqual(0);
    taken.add(w5);
    const s5 = slotOf(w5);
    const lostV6 = exp(w5).leech6[1]!.slot;
    setEntry(s5, true, getCount(s5, SW.SEED6) + 1, exp(w5).seed4[0]!.slot);
    exp(w5).leech6.splice(1, 1);
    freed.add(lostV6);
    // 6) the segment boundary one entry early (seeders - 1, leechers + 1): the last seeder is
    //    now the first leecher; the counters say where the array ends, so nobody is lost
    const w6 = pick(store, swarmKeys, taken, false, true, 2);
    const s6 = slotOf(w6);
    setCount(s6, SW.SEED4, getCount(s6, SW.SEED4) - 1);
    setCount(s6, SW.LEECH4, getCount(s6, SW.LEECH4) + 1);
    exp(w6).leech4.unshift(exp(w6).seed4.pop()!);
    // 6b) only the seeder counter one too small: the array now ends one entry early as well,
    //     so the last seeder becomes a leecher and the last leecher is lost
    const w6b = pick(store, swarmKeys, taken, false, true, 2);
    const s6b = slotOf(w6b);
    setCount(s6b, SW.SEED4, getCount(s6b, SW.SEED4) - 1);
    dropLeech4(w6b, exp(w6b).leech4.length - 1);
    exp(w6b).leech4.unshift(exp(w6b).seed4.pop()!);
    // 7) leecher counter two too small: the last two leechers are lost
    const w7 = pick(store, swarmKeys, taken, false, false, 3);
    const s7 = slotOf(w7);
    setCount(s7, SW.LEECH4, getCount(s7, SW.LEECH4) - 2);
    const l7 = exp(w7).leech4.length;
    dropLeech4(w7, l7 - 1);
    dropLeech4(w7, l7 - 2);
    // 8) leecher counter too large: the stale entries past the end are not peers of this swarm
    const w8 = pick(store, swarmKeys, taken, false, false, 1);
    const s8 = slotOf(w8);
    const n8 = getCount(s8, SW.SEED4) + getCount(s8, SW.LEECH4);
    const cap8 = classEntries(classOf(store, s8, false));
    const extra = Math.min(3, cap8 - n8);
    const stale = [exp(w8).leech4[0]!.slot, dead, -1];
    for (let k = 0; k < extra; k++) setEntry(s8, false, n8 + k, stale[k]!);
    setCount(s8, SW.LEECH4, getCount(s8, SW.LEECH4) + 3); // even beyond the block: clamped to its class
    // 9) seeder counter garbage (larger than the block): everything in the block counts as a seeder
    const w9 = pick(store, swarmKeys, taken, false, false, 1);
    const s9 = slotOf(w9);
    const n9 = getCount(s9, SW.SEED4) + getCount(s9, SW.LEECH4);
    for (let i = n9; i < classEntries(classOf(store, s9, false)); i++) setEntry(s9, false, i, -1);
    setCount(s9, SW.SEED4, 0xffffffff);
    exp(w9).seed4.push(...exp(w9).leech4.splice(0));
    // 10) an IPv6 array with garbage counters but no block: nothing there
    const w10 = pick(store, swarmKeys, taken, false, false, 1);
    const s10 = slotOf(w10);
    if (classOf(store, s10, true) === 0) {
      setCount(s10, SW.SEED6, 5);
      setCount(s10, SW.LEECH6, 9);
    }
    // totals wrong too
    store.ctl[CTL.SEEDERS] = 0;
    store.ctl[CTL.PEERS_V6] = 1_000_000;

    const again = new SwarmStore(mem);
    again.recover();
    checkStore(again, false);
    // recounted, with POS and flags derived from where each entry is
    const c = (e: SwarmSnap): Counts => ({
      seed4: e.seed4.length,
      leech4: e.leech4.length,
      seed6: e.seed6.length,
      leech6: e.leech6.length,
      completed: e.counts.completed,
    });
    for (const w of [...taken]) {
      const k = hex(swarmKeys[w]!);
      const s = again.findSwarm(swarmKeys[w]!, 0);
      const e = expected[k]!;
      e.counts = c(e);
      expect(snapSwarm(again, s), `swarm ${w}`).toEqual(e);
    }
    // every other swarm is exactly as it was
    const after = snapshot(again, swarmKeys, peerKeys);
    for (const [k, sw] of Object.entries(before.swarms)) {
      if ([...taken].some((w) => hex(swarmKeys[w]!) === k)) continue;
      expect(after.swarms[k], k).toEqual(sw);
    }
    // the lost peers are freed and not findable; everybody else is found where they were
    for (const p of freed) expect(after.peerFree).toContain(p);
    for (const [k, slot] of Object.entries(before.peers)) {
      if (slot >= 0 && freed.has(slot)) expect(after.peers[k]).toBe(-1);
      else expect(after.peers[k], k).toBe(slot);
    }
    expect(after.ctl.PEER_LIVE).toBe(before.ctl.PEER_LIVE! - freed.size);
    expect(after.peerFree.length).toBe(after.ctl.PEER_HIGH! - after.ctl.PEER_LIVE!);
    // and the seeder flag of the moved peers follows the segment
    const moved = exp(w6).leech4[0]!.slot;
    expect(again.peers.u8[moved * PR.SIZE + PR.FLAGS]! & PF_SEEDER).toBe(0);
    for (const e of exp(w9).seed4) expect(again.peers.u8[e.slot * PR.SIZE + PR.FLAGS]! & PF_SEEDER).toBe(PF_SEEDER);
  });

  it('resolves records a crash left half-written', () => {
    const { mem, store, swarmKeys, peerKeys } = populated();
    const c = store.ctl;
    const s1 = store.findSwarm(swarmKeys[1]!, 0);
    const w3 = [3, 7, 11, 13, 17, 19].find((w) => segment(store, store.findSwarm(swarmKeys[w]!, 0), false, false).length > 0)!;
    const s3 = store.findSwarm(swarmKeys[w3]!, 0);
    // 1) died in allocPeer/announce after taking a fresh slot and indexing it, before place()
    const half = store.allocPeer(s1, peerId(90_001), 0);
    store.peers.u8[half * PR.SIZE + PR.FLAGS] = PF_LIVE | PF_SEEDER;
    expect(store.findPeer(s1, peerId(90_001), 0)).toBe(half);
    // 2) died in removePeer after displace(), before freePeer(): the record is live but no
    //    array holds it (its address is gone), so it is freed; the client announces again
    const victim = segment(store, s3, false, false)[0]!.slot;
    const victimId = store.peers.u8.slice(victim * PR.SIZE + PR.PEER_ID, victim * PR.SIZE + PR.PEER_ID + 20);
    store.displace(victim);
    expect(store.findPeer(s3, victimId, 0)).toBe(victim);
    // 2b) ... or after unindexing too
    const victim2 = segment(store, s3, false, false)[0]?.slot ?? segment(store, s3, false, true)[0]!.slot;
    const victim2Id = store.peers.u8.slice(victim2 * PR.SIZE + PR.PEER_ID, victim2 * PR.SIZE + PR.PEER_ID + 20);
    store.displace(victim2);
    store.peerIndex.remove(indexHashOf(store.peerIndex, victim2), victim2);
    // 3) a live swarm record freed in the middle (flags cleared, blocks and peers still there)
    const s5 = store.findSwarm(swarmKeys[5]!, 0);
    const orphans = [false, true].flatMap((v6) => [...slotsOf(store, s5, v6, true), ...slotsOf(store, s5, v6, false)]);
    expect(orphans.length).toBeGreaterThan(0);
    const orphanBlock = { start: blockOf(store, s5, false), cls: classOf(store, s5, false) };
    expect(orphanBlock.cls).toBeGreaterThan(0);
    store.swarms.u8[s5 * SW.SIZE + SW.FLAGS] = 0;
    // 4) a peer record pointing beyond the swarm slab's high-water mark
    const stray = segment(store, s1, false, false)[0]?.slot ?? segment(store, s1, false, true)[0]!.slot;
    store.peers.dv.setUint32(stray * PR.SIZE + PR.SWARM, c[CTL.SWARM_HIGH]! + 3, true);
    const strayId = store.peers.u8.slice(stray * PR.SIZE + PR.PEER_ID, stray * PR.SIZE + PR.PEER_ID + 20);
    //    ... even if garbage above the high-water mark looks like a live swarm with a block
    expect(c[CTL.SWARM_HIGH]! + 3).toBeLessThan(store.swarms.capacity);
    const ghost = (c[CTL.SWARM_HIGH]! + 3) * SW.SIZE;
    store.swarms.u8[ghost + SW.FLAGS] = SWF_LIVE;
    store.swarms.u8[ghost + SW.CLASS4] = 3;
    store.swarms.dv.setUint32(ghost + SW.LEECH4, 1, true);

    const again = new SwarmStore(mem);
    again.recover();
    checkStore(again, false);
    const after = snapshot(again, swarmKeys, peerKeys);
    // 1) live but in no array → freed, not findable
    expect(again.findPeer(s1, peerId(90_001), 0)).toBe(-1);
    expect(after.peerFree).toContain(half);
    // 2) freed, not findable
    expect(again.findPeer(s3, victimId, 0)).toBe(-1);
    expect(after.peerFree).toContain(victim);
    expect(again.findPeer(s3, victim2Id, 0)).toBe(-1);
    expect(after.peerFree).toContain(victim2);
    // 3) the swarm is gone, its peers are freed, its blocks are free
    expect(again.findSwarm(swarmKeys[5]!, 0)).toBe(-1);
    expect(after.swarmFree).toContain(s5);
    for (const p of orphans) expect(after.peerFree).toContain(p);
    const free4 = arenaFree(again, false);
    const covered = free4.some((b) => b.start <= orphanBlock.start && b.start + classEntries(b.cls) > orphanBlock.start);
    expect(covered).toBe(true);
    // 4) dropped
    expect(again.findPeer(s1, strayId, 0)).toBe(-1);
    expect(after.peerFree).toContain(stray);
    // everything adds up
    let seeders = 0;
    let leechers = 0;
    let v6 = 0;
    for (const sw of Object.values(after.swarms)) {
      expect(sw.seed4.length).toBe(sw.counts.seed4);
      expect(sw.leech4.length).toBe(sw.counts.leech4);
      expect(sw.seed6.length).toBe(sw.counts.seed6);
      expect(sw.leech6.length).toBe(sw.counts.leech6);
      seeders += sw.counts.seed4 + sw.counts.seed6;
      leechers += sw.counts.leech4 + sw.counts.leech6;
      v6 += sw.counts.seed6 + sw.counts.leech6;
    }
    expect(after.ctl.SEEDERS).toBe(seeders);
    expect(after.ctl.LEECHERS).toBe(leechers);
    expect(after.ctl.PEERS_V6).toBe(v6);
    expect(after.ctl.PEER_LIVE).toBe(seeders + leechers);
    expect(after.peerFree.length).toBe(after.ctl.PEER_HIGH! - after.ctl.PEER_LIVE!);
    expect(after.ctl.SWARM_LIVE).toBe(Object.keys(after.swarms).length);

    // and the recovered store keeps working: every free slot is handed out before new ones
    const free = new Set(after.peerFree);
    const s = again.findSwarm(swarmKeys[7]!, 0);
    for (let i = 0, n = free.size; i < n; i++) {
      const slot = addPeer(again, s, peerId(100_000 + i), { v6: i % 4 === 0, seeder: i % 3 === 0 });
      expect(free.delete(slot)).toBe(true);
    }
    expect(free.size).toBe(0);
    expect(addPeer(again, s, peerId(200_000))).toBe(after.ctl.PEER_HIGH);
    const swarmFree = new Set(after.swarmFree);
    for (let i = 0, n = swarmFree.size; i < n; i++) expect(swarmFree.delete(again.addSwarm(sha1(`new ${i}`), 0, 0))).toBe(true);
    expect(again.addSwarm(sha1('newest'), 0, 0)).toBe(after.ctl.SWARM_HIGH);
    // arena blocks come from the rebuilt free lists before the bump pointer moves: a new
    // swarm's array growing class by class takes the smallest free block that fits, split
    // down, else an aligned block from the top
    const grower = again.addSwarm(sha1('grower'), 0, 0);
    let fromLists = 0;
    let fromTop = 0;
    for (let i = 0; i < 1100; i++) {
      const cls = classOf(again, grower, false);
      const willGrow = i === classEntries(cls);
      const next = cls === 0 ? MIN_CLASS : cls + 1;
      const want = nextBlock(again, false, next);
      const top = again.ctl[CTL.ARENA4_TOP]!;
      expect(addPeer(again, grower, peerId(300_000 + i))).toBeGreaterThanOrEqual(0);
      if (!willGrow) continue;
      expect([blockOf(again, grower, false), classOf(again, grower, false)]).toEqual([want.start, next]);
      if (want.fromLists) {
        fromLists++;
        expect(again.ctl[CTL.ARENA4_TOP]).toBe(top);
      } else {
        fromTop++;
        expect(again.ctl[CTL.ARENA4_TOP]).toBe(want.start + classEntries(next));
      }
    }
    expect(classOf(again, grower, false)).toBe(12);
    expect(fromLists).toBeGreaterThan(0);
    expect(fromTop).toBeGreaterThan(0);
    checkStore(again, false);
  });
});

// ---------------------------------------------------------------------------------------
// Randomized: ≥ 20,000 operations against a reference model made of JS Maps.
// ---------------------------------------------------------------------------------------

interface MPeer {
  swarm: MSwarm;
  pid: Uint8Array;
  pidHex: string;
  slot: number;
  seeder: boolean;
  v6: boolean;
  addr: Uint8Array;
  lastSeen: number;
  at: number; // index in `all`
}
interface MSwarm {
  key: Uint8Array;
  slot: number;
  lastActive: number;
  peers: Map<string, MPeer>;
}

describe('SwarmStore randomized against a model', () => {
  it('30,000 operations: add, move, change family, change address, remove, expire, recover', () => {
    const TIMEOUT = 200;
    const rnd = prng(2024);
    let { mem, store } = fresh();
    const swarmPool = Array.from({ length: 2500 }, (_, i) => (i % 2 ? sha1(`m${i}`) : prefixed(i, 9)));
    const hot = swarmPool[0]!; // one swarm gets a large share of the peers: big arrays grow and shrink
    const pidPool = Array.from({ length: 2000 }, (_, i) => peerId(i * 13));
    const swarms = new Map<string, MSwarm>();
    const all: MPeer[] = [];
    let now = 1;
    let expired = 0;
    let freedSwarms = 0;
    let recoveries = 0;
    let moves = 0;
    let familyChanges = 0;
    let addressChanges = 0;
    let maxClass = 0;
    let shrinks = 0;
    let addrSeq = 1;
    const newAddr = (v6: boolean): Uint8Array => wire(v6, addrSeq++, 1 + (addrSeq % 65535));

    function removeFromAll(p: MPeer): void {
      const last = all.pop()!;
      if (last !== p) {
        all[p.at] = last;
        last.at = p.at;
      }
      p.swarm.peers.delete(p.pidHex);
    }

    function check(): void {
      const c = store.ctl;
      expect(c[CTL.SWARM_LIVE]).toBe(swarms.size);
      expect(c[CTL.PEER_LIVE]).toBe(all.length);
      let seeders = 0;
      let v6 = 0;
      for (const p of all) {
        if (p.seeder) seeders++;
        if (p.v6) v6++;
      }
      expect(c[CTL.SEEDERS]).toBe(seeders);
      expect(c[CTL.LEECHERS]).toBe(all.length - seeders);
      expect(c[CTL.PEERS_V6]).toBe(v6);
      // Collect mismatches and assert once (thousands of expect() calls per check are slow).
      const errors: string[] = [];
      for (const sw of swarms.values()) {
        const found = store.findSwarm(sw.key, 0);
        if (found !== sw.slot) errors.push(`swarm ${hex(sw.key)} found at ${found}, expected ${sw.slot}`);
        const want = { s4: [] as string[], l4: [] as string[], s6: [] as string[], l6: [] as string[] };
        for (const p of sw.peers.values()) want[`${p.seeder ? 's' : 'l'}${p.v6 ? 6 : 4}`].push(`${p.slot}=${hex(p.addr)}`);
        const counts = swarmCounts(store, sw.slot);
        const got = [counts.seed4, counts.leech4, counts.seed6, counts.leech6].join();
        const exp = [want.s4.length, want.l4.length, want.s6.length, want.l6.length].join();
        if (got !== exp) errors.push(`swarm ${sw.slot} counts ${got}, model ${exp}`);
        for (const [k, v6, seed] of [['s4', false, true], ['l4', false, false], ['s6', true, true], ['l6', true, false]] as const) {
          let seg: string[];
          try {
            seg = segment(store, sw.slot, v6, seed).map((e) => `${e.slot}=${e.addr}`);
          } catch (e) {
            errors.push((e as Error).message);
            continue;
          }
          if (seg.sort().join() !== want[k].sort().join()) errors.push(`swarm ${sw.slot} segment ${k} differs`);
        }
      }
      for (const p of all) {
        const found = store.findPeer(p.swarm.slot, p.pid, 0);
        if (found !== p.slot) errors.push(`peer ${p.pidHex} in swarm ${p.swarm.slot} found at ${found}, expected ${p.slot}`);
        const at = p.slot * PR.SIZE;
        const flags = PF_LIVE | (p.seeder ? PF_SEEDER : 0) | (p.v6 ? PF_V6 : 0);
        if (store.peers.u8[at + PR.FLAGS] !== flags) errors.push(`peer ${p.slot} flags ${store.peers.u8[at + PR.FLAGS]} != ${flags}`);
        if (store.peers.dv.getUint32(at + PR.LAST_SEEN, true) !== p.lastSeen) errors.push(`peer ${p.slot} last seen differs`);
        if (store.peers.dv.getUint32(at + PR.SWARM, true) !== p.swarm.slot) errors.push(`peer ${p.slot} swarm differs`);
      }
      // absent keys are absent
      for (let i = 0; i < 50; i++) {
        const k = swarmPool[Math.floor(rnd() * swarmPool.length)]!;
        const sw = swarms.get(hex(k));
        if (!sw) {
          if (store.findSwarm(k, 0) !== -1) errors.push(`absent swarm ${hex(k)} found`);
        } else {
          const pid = pidPool[Math.floor(rnd() * pidPool.length)]!;
          if (!sw.peers.has(hex(pid)) && store.findPeer(sw.slot, pid, 0) !== -1) errors.push(`absent peer ${hex(pid)} found`);
        }
      }
      expect(errors.slice(0, 10)).toEqual([]);
      checkStore(store, recoveries === 0);
    }

    const hotClass = (): number => {
      const sw = swarms.get(hex(hot));
      return sw ? Math.max(classOf(store, sw.slot, false), classOf(store, sw.slot, true)) : 0;
    };

    const OPS = 30_000;
    let maxPeers = 0;
    for (let op = 1; op <= OPS; op++) {
      if (rnd() < 0.1) now += 1 + Math.floor(rnd() * 3);
      const growing = op < 9000;
      const r = rnd();
      const hotBefore = hotClass();
      if (growing ? r < 0.66 : r < 0.3) {
        // announce: new peer (or refresh if it exists)
        const key = rnd() < 0.25 ? hot : swarmPool[Math.floor(rnd() * swarmPool.length)]!;
        const pid = pidPool[Math.floor(rnd() * pidPool.length)]!;
        let sw = swarms.get(hex(key));
        if (!sw) {
          expect(store.findSwarm(key, 0)).toBe(-1);
          const slot = store.addSwarm(key, 0, now);
          expect(slot).toBeGreaterThanOrEqual(0);
          sw = { key, slot, lastActive: now, peers: new Map() };
          swarms.set(hex(key), sw);
        }
        sw.lastActive = now;
        store.swarms.dv.setUint32(sw.slot * SW.SIZE + SW.LAST_ACTIVE, now, true);
        const existing = sw.peers.get(hex(pid));
        if (existing) {
          expect(store.findPeer(sw.slot, pid, 0)).toBe(existing.slot);
          existing.lastSeen = now;
          touch(store, existing.slot, now);
        } else {
          expect(store.findPeer(sw.slot, pid, 0)).toBe(-1);
          const seeder = rnd() < 0.3;
          const v6 = rnd() < 0.25;
          const addr = newAddr(v6);
          const slot = addPeer(store, sw.slot, pid, { seeder, v6, now, addr });
          expect(slot).toBeGreaterThanOrEqual(0);
          const p: MPeer = { swarm: sw, pid, pidHex: hex(pid), slot, seeder, v6, addr, lastSeen: now, at: all.length };
          all.push(p);
          sw.peers.set(p.pidHex, p);
        }
      } else if (all.length === 0) {
        continue;
      } else if (growing ? r < 0.7 : r < 0.45) {
        // seeder ↔ leecher (completed / new download), same family and address
        const p = all[Math.floor(rnd() * all.length)]!;
        p.seeder = !p.seeder;
        p.lastSeen = now;
        touch(store, p.slot, now);
        setFlags(store, p.slot, p.seeder, p.v6);
        moves++;
      } else if (growing ? r < 0.78 : r < 0.55) {
        // family change v4 ↔ v6, with an address of the new family; sometimes also the segment
        const p = all[Math.floor(rnd() * all.length)]!;
        p.v6 = !p.v6;
        p.addr = newAddr(p.v6);
        if (rnd() < 0.3) p.seeder = !p.seeder;
        p.lastSeen = now;
        touch(store, p.slot, now);
        setFlags(store, p.slot, p.seeder, p.v6, p.addr);
        familyChanges++;
      } else if (growing ? r < 0.86 : r < 0.65) {
        // address change in the same family (new IP or port): rewritten in place
        const p = all[Math.floor(rnd() * all.length)]!;
        p.addr = newAddr(p.v6);
        p.lastSeen = now;
        touch(store, p.slot, now);
        p.swarm.lastActive = now;
        store.swarms.dv.setUint32(p.swarm.slot * SW.SIZE + SW.LAST_ACTIVE, now, true);
        store.setAddress(p.slot, p.addr, 0);
        addressChanges++;
      } else if (growing || r < 0.9) {
        // stopped (the hot swarm loses peers faster once growth ends)
        let p = all[Math.floor(rnd() * all.length)]!;
        if (!growing && rnd() < 0.3) {
          const sw = swarms.get(hex(hot));
          if (sw && sw.peers.size > 0) p = [...sw.peers.values()][Math.floor(rnd() * sw.peers.size)]!;
        }
        expect(store.findPeer(p.swarm.slot, p.pid, 0)).toBe(p.slot);
        store.removePeer(p.slot);
        removeFromAll(p);
        expect(store.findPeer(p.swarm.slot, p.pid, 0)).toBe(-1);
      } else {
        // expire with a random budget: compute exactly which slots the sweep visits
        const budget = 1 + Math.floor(rnd() * (rnd() < 0.3 ? 20_000 : 800));
        const c = store.ctl;
        const bySlot = new Map<number, MPeer>();
        for (const p of all) bySlot.set(p.slot, p);
        const swarmBySlot = new Map<number, MSwarm>();
        for (const sw of swarms.values()) swarmBySlot.set(sw.slot, sw);
        let high = c[CTL.PEER_HIGH]!;
        let pos = c[CTL.SWEEP_PEER]!;
        const gone = new Set<MPeer>(); // a budget larger than the slab visits slots twice
        for (let n = 0; n < budget && high > 0; n++) {
          if (pos >= high) pos = 0;
          const p = bySlot.get(pos);
          if (p && now - p.lastSeen > TIMEOUT) gone.add(p);
          pos++;
        }
        const expectPeerCursor = pos;
        for (const p of gone) removeFromAll(p);
        high = c[CTL.SWARM_HIGH]!;
        pos = c[CTL.SWEEP_SWARM]!;
        const goneSwarms: MSwarm[] = [];
        for (let n = 0; n < budget && high > 0; n++) {
          if (pos >= high) pos = 0;
          const sw = swarmBySlot.get(pos);
          if (sw && sw.peers.size === 0 && now - sw.lastActive > TIMEOUT && !goneSwarms.includes(sw)) goneSwarms.push(sw);
          pos++;
        }
        expect(store.expire(now, TIMEOUT, budget)).toBe(gone.size);
        expect(c[CTL.SWEEP_PEER]).toBe(expectPeerCursor);
        expect(c[CTL.SWEEP_SWARM]).toBe(pos);
        for (const sw of goneSwarms) {
          swarms.delete(hex(sw.key));
          expect(store.findSwarm(sw.key, 0)).toBe(-1);
        }
        expired += gone.size;
        freedSwarms += goneSwarms.length;
      }
      const hotAfter = hotClass();
      maxClass = Math.max(maxClass, hotAfter);
      if (hotAfter > 0 && hotAfter < hotBefore) shrinks++;
      maxPeers = Math.max(maxPeers, all.length);
      if (op % 7_500 === 0) {
        // a respawned shard on the same memory
        store = new SwarmStore(mem);
        store.recover();
        recoveries++;
        check();
      }
      if (op % 500 === 0) check();
    }
    check();
    // the run really exercised what it claims to
    expect(maxPeers).toBeGreaterThan(INITIAL_PEERS);
    expect(store.ctl[CTL.SWARM_HIGH]).toBeGreaterThan(INITIAL_SWARMS);
    expect(expired).toBeGreaterThan(500);
    expect(freedSwarms).toBeGreaterThan(50);
    expect(recoveries).toBe(4);
    expect(moves).toBeGreaterThan(2000);
    expect(familyChanges).toBeGreaterThan(1000);
    expect(addressChanges).toBeGreaterThan(1000);
    expect(maxClass).toBeGreaterThanOrEqual(10); // the hot swarm's array reached ≥ 512 entries
    expect(shrinks).toBeGreaterThan(2);
  }, 120_000);
});

// ---------------------------------------------------------------------------------------
// HashIndex (unchanged by the redesign).
// ---------------------------------------------------------------------------------------

describe('HashIndex', () => {
  /** Index over slots whose keys are small integers, hashes chosen by the test. */
  function model(capacity: number, maxCapacity = capacity): { index: HashIndex; m: KeyMatcher; keyOf: Map<number, number> } {
    const sab = new SharedArrayBuffer(HashIndex.bytesFor(capacity), { maxByteLength: HashIndex.bytesFor(maxCapacity) });
    const keyOf = new Map<number, number>();
    const m: KeyMatcher = { matches: (slot, _key, keyOff) => keyOf.get(slot) === keyOff };
    return { index: new HashIndex(sab), m, keyOf };
  }
  const none = new Uint8Array(0);

  /** Every entry is reachable from its home position without crossing an empty cell. */
  function checkInvariant(index: HashIndex): void {
    const t = index.i32;
    for (let i = 0; i < index.capacity; i++) {
      if (t[i * 2 + 1] === 0) continue;
      let j = t[i * 2]! & index.mask;
      while (j !== i) {
        if (t[j * 2 + 1] === 0) throw new Error(`entry at ${i} unreachable from its home ${t[i * 2]! & index.mask}`);
        j = (j + 1) & index.mask;
      }
    }
  }

  it('finds, inserts and removes with many identical hashes and clusters wrapping the end', () => {
    const rnd = prng(7);
    const { index, m, keyOf } = model(64);
    expect(index.capacity).toBe(64);
    expect(index.maxEntries).toBe(64);
    const hashes = [0, 1, 63, 62, 63 + 64, -1, 0x7fffffff, 31];
    const live = new Map<number, { key: number; hash: number }>(); // slot → key, hash
    let nextKey = 1000;
    for (let op = 0; op < 20_000; op++) {
      if (live.size < 32 && (live.size === 0 || rnd() < 0.55)) {
        let slot = Math.floor(rnd() * 200);
        while (live.has(slot)) slot = (slot + 1) % 200;
        const hash = hashes[Math.floor(rnd() * hashes.length)]!;
        const key = nextKey++;
        keyOf.set(slot, key);
        expect(index.find(hash, none, key, 0, m)).toBe(-1);
        index.insert(hash, slot);
        live.set(slot, { key, hash });
      } else {
        const slots = [...live.keys()];
        const slot = slots[Math.floor(rnd() * slots.length)]!;
        const { hash, key } = live.get(slot)!;
        index.remove(hash, slot);
        live.delete(slot);
        expect(index.find(hash, none, key, 0, m)).toBe(-1);
        keyOf.delete(slot);
      }
      if (op % 50 === 0) {
        checkInvariant(index);
        let entries = 0;
        for (let i = 0; i < 64; i++) if (index.i32[i * 2 + 1] !== 0) entries++;
        expect(entries).toBe(live.size);
        for (const [slot, { key, hash }] of live) expect(index.find(hash, none, key, 0, m)).toBe(slot);
      }
    }
  });

  it('remove of an absent slot changes nothing; reset grows and empties', () => {
    const { index, m, keyOf } = model(16, 64);
    keyOf.set(3, 3);
    keyOf.set(4, 4);
    index.insert(5, 3);
    index.insert(5, 4);
    const before = index.i32.slice();
    index.remove(5, 9);
    index.remove(6, 3);
    expect(index.i32).toEqual(before);
    expect(index.find(5, none, 4, 0, m)).toBe(4);
    index.reset(64);
    expect(index.capacity).toBe(64);
    expect(index.mask).toBe(63);
    expect(index.find(5, none, 4, 0, m)).toBe(-1);
    expect(index.i32.every((v) => v === 0)).toBe(true);
  });
});

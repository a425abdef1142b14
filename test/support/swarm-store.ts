// Shared by the swarm table tests (shards/*.test.ts): fresh tables, peers put in by hand,
// readers of the raw records, and checkStore(), which verifies every invariant of a store.
import { expect } from 'vitest';
import { MIN_CLASS, classEntries, type PeerArena } from '../../shards/arena.js';
import { ADDR4, ADDR6, ShardControl, MAX_CLASS, NIL, PF_LIVE, PF_SEEDER, PF_V6, PeerRecord, SwarmRecord, SWF_LIVE } from '../../shards/memory-layout.js';
import { allocateGlobal, allocateShardMemory, type ShardLimits, type ShardMemory } from '../../shards/memory.js';
import { SwarmStore } from '../../shards/swarm-store.js';
import { HashIndex } from '../../shards/table.js';
import { createHash } from 'node:crypto';

export const LIMITS: ShardLimits = { maxPeers: 50_000, maxSwarms: 10_000, requestRingBytes: 1 << 16, answerRingBytes: 1 << 16 };

export function fresh(limits: ShardLimits = LIMITS): { mem: ShardMemory; store: SwarmStore } {
  const mem = allocateShardMemory(allocateGlobal(), limits);
  return { mem, store: new SwarmStore(mem) };
}

/** A uniform 20-byte key (like a real info_hash). */
export function sha1(text: string): Uint8Array {
  return new Uint8Array(createHash('sha1').update(text).digest());
}

/** 20 bytes sharing the first 16 with every other key of the same family; `i` in the rest. */
export function prefixed(i: number, family = 0): Uint8Array {
  const k = new Uint8Array(20).fill(0x41 + family);
  new DataView(k.buffer).setUint32(16, i, false);
  return k;
}

/** Azureus-style peer_id: client prefix, then digits. */
export function peerId(i: number): Uint8Array {
  return new Uint8Array(Buffer.from(`-qB4630-${String(i).padStart(12, '0')}`, 'latin1'));
}

export function hex(k: Uint8Array): string {
  return Buffer.from(k).toString('hex');
}

export function sorted(a: Iterable<number>): number[] {
  return [...a].sort((x, y) => x - y);
}

/** Wire-form address: IPv4 a.b.c.d = n (big-endian) + port BE, or IPv6 2001:db8::<n> + port BE. */
export function wire(v6: boolean, n: number, port: number): Uint8Array {
  if (!v6) return new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255, port >> 8, port & 255]);
  const w = new Uint8Array(ADDR6);
  w.set([0x20, 0x01, 0x0d, 0xb8], 0);
  new DataView(w.buffer).setUint32(12, n >>> 0, false);
  w[16] = port >> 8;
  w[17] = port & 255;
  return w;
}

/** A default address for a peer_id (FNV-1a of its bytes), so tests need not invent one. */
export function addrFor(pid: Uint8Array, v6: boolean, salt = 0): Uint8Array {
  let h = 0x811c9dc5 ^ salt;
  for (const b of pid) h = Math.imul(h ^ b, 0x01000193);
  return wire(v6, h >>> 0, 1024 + ((h >>> 7) & 0x7fff));
}

export interface PeerOpts {
  seeder?: boolean;
  v6?: boolean;
  user?: number;
  now?: number;
  addr?: Uint8Array;
}

/** What ShardLogic does for a new peer: alloc, set flags and fields, place. -1 when refused. */
export function addPeer(store: SwarmStore, swarm: number, pid: Uint8Array, o: PeerOpts = {}): number {
  const slot = store.allocPeer(swarm, pid, 0);
  if (slot < 0) return slot;
  const at = slot * PeerRecord.SIZE;
  store.peers.u8[at + PeerRecord.FLAGS] = PF_LIVE | (o.seeder ? PF_SEEDER : 0) | (o.v6 ? PF_V6 : 0);
  store.peers.dv.setUint32(at + PeerRecord.USER, o.user ?? 0, true);
  store.peers.dv.setUint32(at + PeerRecord.LAST_SEEN, o.now ?? 0, true);
  if (!store.arrays.place(slot, o.addr ?? addrFor(pid, !!o.v6), 0)) {
    store.freePeer(slot);
    return -2;
  }
  return slot;
}

/** Change a placed peer's segment and/or family the way ShardLogic does (displace, set, place). */
export function setFlags(store: SwarmStore, slot: number, seeder: boolean, v6: boolean, addr?: Uint8Array): void {
  const at = slot * PeerRecord.SIZE;
  const keep = addr ?? entryAddr(store, slot);
  store.arrays.displace(slot);
  store.peers.u8[at + PeerRecord.FLAGS] = (store.peers.u8[at + PeerRecord.FLAGS]! & ~(PF_SEEDER | PF_V6)) | (seeder ? PF_SEEDER : 0) | (v6 ? PF_V6 : 0);
  if (!store.arrays.place(slot, keep, 0)) throw new Error(`place of ${slot} refused`);
}

export function touch(store: SwarmStore, slot: number, now: number): void {
  store.peers.dv.setUint32(slot * PeerRecord.SIZE + PeerRecord.LAST_SEEN, now, true);
}

export interface Fam {
  arena: PeerArena;
  seed: number;
  leech: number;
  block: number;
  cls: number;
  bytes: number;
  top: number;
  free: number;
}
export function fam(store: SwarmStore, v6: boolean): Fam {
  return v6
    ? { arena: store.arena6, seed: SwarmRecord.SEED6, leech: SwarmRecord.LEECH6, block: SwarmRecord.BLOCK6, cls: SwarmRecord.CLASS6, bytes: ADDR6, top: ShardControl.ARENA6_TOP, free: ShardControl.FREE6 }
    : { arena: store.arena4, seed: SwarmRecord.SEED4, leech: SwarmRecord.LEECH4, block: SwarmRecord.BLOCK4, cls: SwarmRecord.CLASS4, bytes: ADDR4, top: ShardControl.ARENA4_TOP, free: ShardControl.FREE4 };
}

export interface Counts {
  seed4: number;
  leech4: number;
  seed6: number;
  leech6: number;
  completed: number;
}
export function swarmCounts(store: SwarmStore, swarm: number): Counts {
  const dv = store.swarms.dv;
  const at = swarm * SwarmRecord.SIZE;
  return {
    seed4: dv.getUint32(at + SwarmRecord.SEED4, true),
    leech4: dv.getUint32(at + SwarmRecord.LEECH4, true),
    seed6: dv.getUint32(at + SwarmRecord.SEED6, true),
    leech6: dv.getUint32(at + SwarmRecord.LEECH6, true),
    completed: dv.getUint32(at + SwarmRecord.COMPLETED, true),
  };
}
export function counts(seed4: number, leech4: number, seed6 = 0, leech6 = 0, completed = 0): Counts {
  return { seed4, leech4, seed6, leech6, completed };
}

export function classOf(store: SwarmStore, swarm: number, v6: boolean): number {
  return store.swarms.u8[swarm * SwarmRecord.SIZE + fam(store, v6).cls]!;
}
export function blockOf(store: SwarmStore, swarm: number, v6: boolean): number {
  return store.swarms.dv.getUint32(swarm * SwarmRecord.SIZE + fam(store, v6).block, true);
}

/** The wire address of a placed peer, read from its swarm's array at PeerRecord.POS. */
export function entryAddr(store: SwarmStore, slot: number): Uint8Array {
  const at = slot * PeerRecord.SIZE;
  const v6 = (store.peers.u8[at + PeerRecord.FLAGS]! & PF_V6) !== 0;
  const f = fam(store, v6);
  const swarm = store.peers.dv.getUint32(at + PeerRecord.SWARM, true);
  const e = blockOf(store, swarm, v6) + store.peers.dv.getUint32(at + PeerRecord.POS, true);
  return f.arena.addr.u8.slice(e * f.bytes, (e + 1) * f.bytes);
}

export interface Entry {
  slot: number;
  addr: string;
}

/**
 * One segment of a swarm's array (seeders [0, S) or leechers [S, S + L)) in array order.
 * Checks that every entry's peer is live, of this swarm, in this segment and family, and
 * that its PeerRecord.POS points at the entry.
 */
export function segment(store: SwarmStore, swarm: number, v6: boolean, seeders: boolean): Entry[] {
  const f = fam(store, v6);
  const sat = swarm * SwarmRecord.SIZE;
  const S = store.swarms.dv.getUint32(sat + f.seed, true);
  const L = store.swarms.dv.getUint32(sat + f.leech, true);
  if (S + L === 0) return [];
  const blk = store.swarms.dv.getUint32(sat + f.block, true);
  const out: Entry[] = [];
  for (let i = seeders ? 0 : S; i < (seeders ? S : S + L); i++) {
    const slot = f.arena.slots.i32[blk + i]!;
    const at = slot * PeerRecord.SIZE;
    const flags = store.peers.u8[at + PeerRecord.FLAGS]!;
    if (!(flags & PF_LIVE)) throw new Error(`swarm ${swarm} entry ${i}: slot ${slot} not live`);
    if (((flags & PF_SEEDER) !== 0) !== seeders) throw new Error(`swarm ${swarm} entry ${i}: slot ${slot} in the wrong segment`);
    if (((flags & PF_V6) !== 0) !== v6) throw new Error(`swarm ${swarm} entry ${i}: slot ${slot} in the wrong family`);
    if (store.peers.dv.getUint32(at + PeerRecord.SWARM, true) !== swarm) throw new Error(`swarm ${swarm} entry ${i}: slot ${slot} belongs elsewhere`);
    if (store.peers.dv.getUint32(at + PeerRecord.POS, true) !== i) throw new Error(`slot ${slot}: POS ${store.peers.dv.getUint32(at + PeerRecord.POS, true)} != ${i}`);
    out.push({ slot, addr: hex(f.arena.addr.u8.subarray((blk + i) * f.bytes, (blk + i + 1) * f.bytes)) });
  }
  return out;
}

export function slotsOf(store: SwarmStore, swarm: number, v6: boolean, seeders: boolean): number[] {
  return segment(store, swarm, v6, seeders).map((e) => e.slot);
}

/**
 * Blocks on one arena's free lists, by class ascending, each list head first. Checks
 * cycles, range, alignment, both links (next and previous in the first two slot words)
 * and the mark of each block.
 */
export function arenaFree(store: SwarmStore, v6: boolean): { start: number; cls: number }[] {
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

export function byStart(blocks: { start: number; cls: number }[]): { start: number; cls: number }[] {
  return [...blocks].sort((a, b) => a.start - b.start);
}


/**
 * Where the arena of `v6` will put the next block of class `cls`: the head of the smallest
 * non-empty list of a class that fits, else from the bump pointer (stepping back over free
 * blocks that end there) at the next multiple of the block's size.
 */
export function nextBlock(store: SwarmStore, v6: boolean, cls: number): { start: number; fromLists: boolean } {
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
export function freeList(store: SwarmStore, kind: 'peer' | 'swarm'): number[] {
  const c = store.ctl;
  const out: number[] = [];
  const seen = new Set<number>();
  const high = kind === 'peer' ? c[ShardControl.PEER_HIGH]! : c[ShardControl.SWARM_HIGH]!;
  let s = kind === 'peer' ? c[ShardControl.PEER_FREE]! : c[ShardControl.SWARM_FREE]!;
  while (s !== NIL) {
    if (seen.has(s)) throw new Error(`${kind} free list has a cycle at ${s}`);
    if (s < 0 || s >= high) throw new Error(`${kind} free list holds ${s}, outside 0..${high}`);
    seen.add(s);
    out.push(s);
    if (kind === 'peer') {
      if (store.peers.u8[s * PeerRecord.SIZE + PeerRecord.FLAGS]! & PF_LIVE) throw new Error(`live peer ${s} on the free list`);
      s = store.peers.dv.getInt32(s * PeerRecord.SIZE + PeerRecord.POS, true);
    } else {
      if (store.swarms.u8[s * SwarmRecord.SIZE + SwarmRecord.FLAGS]! & SWF_LIVE) throw new Error(`live swarm ${s} on the free list`);
      s = store.swarms.dv.getInt32(s * SwarmRecord.SIZE + SwarmRecord.LAST_ACTIVE, true);
    }
  }
  return out;
}

export function indexEntries(index: HashIndex): number {
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
export function checkStore(store: SwarmStore, tight = true): void {
  const c = store.ctl;
  const errors: string[] = [];
  const err = (m: string): void => {
    if (errors.length < 20) errors.push(m);
  };
  const swarmHigh = c[ShardControl.SWARM_HIGH]!;
  const peerHigh = c[ShardControl.PEER_HIGH]!;
  if (c[ShardControl.SWARM_CAP] !== store.swarms.capacity) err(`SWARM_CAP ${c[ShardControl.SWARM_CAP]} != ${store.swarms.capacity}`);
  if (c[ShardControl.PEER_CAP] !== store.peers.capacity) err(`PEER_CAP ${c[ShardControl.PEER_CAP]} != ${store.peers.capacity}`);
  if (c[ShardControl.SWARM_INDEX_CAP] !== store.swarmIndex.capacity) err('SWARM_INDEX_CAP');
  if (c[ShardControl.PEER_INDEX_CAP] !== store.peerIndex.capacity) err('PEER_INDEX_CAP');
  const seenAt = new Map<number, string>();
  const used: [{ start: number; cls: number }[], { start: number; cls: number }[]] = [[], []];
  let live = 0;
  let seeders = 0;
  let leechers = 0;
  let v6peers = 0;
  for (let s = 0; s < swarmHigh; s++) {
    const sat = s * SwarmRecord.SIZE;
    if (!(store.swarms.u8[sat + SwarmRecord.FLAGS]! & SWF_LIVE)) continue;
    live++;
    if (store.findSwarm(store.swarms.u8, sat + SwarmRecord.INFO_HASH) !== s) err(`swarm ${s} not findable`);
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
  if (c[ShardControl.SWARM_LIVE] !== live) err(`SWARM_LIVE ${c[ShardControl.SWARM_LIVE]} != ${live}`);
  if (c[ShardControl.SEEDERS] !== seeders) err(`SEEDERS ${c[ShardControl.SEEDERS]} != ${seeders}`);
  if (c[ShardControl.LEECHERS] !== leechers) err(`LEECHERS ${c[ShardControl.LEECHERS]} != ${leechers}`);
  if (c[ShardControl.PEERS_V6] !== v6peers) err(`PEERS_V6 ${c[ShardControl.PEERS_V6]} != ${v6peers}`);
  let livePeers = 0;
  for (let p = 0; p < peerHigh; p++) {
    const at = p * PeerRecord.SIZE;
    if (!(store.peers.u8[at + PeerRecord.FLAGS]! & PF_LIVE)) continue;
    livePeers++;
    if (!seenAt.has(p)) err(`live peer ${p} is in no array`);
    if (store.findPeer(store.peers.dv.getUint32(at + PeerRecord.SWARM, true), store.peers.u8, at + PeerRecord.PEER_ID) !== p) err(`peer ${p} not findable`);
  }
  if (livePeers !== seenAt.size) err(`${livePeers} live peers, ${seenAt.size} array entries`);
  if (c[ShardControl.PEER_LIVE] !== livePeers) err(`PEER_LIVE ${c[ShardControl.PEER_LIVE]} != ${livePeers}`);
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

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CTL, GLOBAL, INITIAL_PEERS, INITIAL_SWARMS, NIL, PF_LIVE, PF_SEEDER, PF_V6, PR, SW, SWF_LIVE,
} from './layout.js';
import { allocateGlobal, allocateShardMemory, type ShardLimits, type ShardMemory } from './memory.js';
import { SwarmStore } from './swarm-store.js';
import { HashIndex, type KeyMatcher } from './table.js';

const LIMITS: ShardLimits = { maxPeers: 50_000, maxSwarms: 10_000, requestRingBytes: 1 << 16, answerRingBytes: 1 << 16 };

/** Small deterministic PRNG (mulberry32) so failures reproduce. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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

interface PeerOpts {
  seeder?: boolean;
  v6?: boolean;
  user?: number;
  now?: number;
  port?: number;
}

/** What ShardLogic does for a new peer: alloc, fill, link. */
function addPeer(store: SwarmStore, swarm: number, pid: Uint8Array, o: PeerOpts = {}): number {
  const slot = store.allocPeer(swarm, pid, 0);
  if (slot < 0) return slot;
  const at = slot * PR.SIZE;
  const u8 = store.peers.u8;
  const dv = store.peers.dv;
  u8[at + PR.FLAGS] = PF_LIVE | (o.seeder ? PF_SEEDER : 0) | (o.v6 ? PF_V6 : 0);
  dv.setUint32(at + PR.USER, o.user ?? 0, true);
  dv.setUint32(at + PR.LAST_SEEN, o.now ?? 0, true);
  dv.setUint16(at + PR.PORT, o.port ?? 6881, true);
  store.link(slot);
  return slot;
}

/** Change a linked peer's seeder/v6 flags the way ShardLogic does (unlink, set, link). */
function setFlags(store: SwarmStore, slot: number, seeder: boolean, v6: boolean): void {
  store.unlink(slot);
  const at = slot * PR.SIZE;
  store.peers.u8[at + PR.FLAGS] = PF_LIVE | (seeder ? PF_SEEDER : 0) | (v6 ? PF_V6 : 0);
  store.link(slot);
}

function touch(store: SwarmStore, slot: number, now: number): void {
  store.peers.dv.setUint32(slot * PR.SIZE + PR.LAST_SEEN, now, true);
}

function swarmCounts(store: SwarmStore, swarm: number): { seeders: number; leechers: number; completed: number } {
  const dv = store.swarms.dv;
  const at = swarm * SW.SIZE;
  return {
    seeders: dv.getUint32(at + SW.SEEDERS, true),
    leechers: dv.getUint32(at + SW.LEECHERS, true),
    completed: dv.getUint32(at + SW.COMPLETED, true),
  };
}

/**
 * The slots on a swarm's seed or leech list, in rotation order from the head. Checks the
 * circular doubly-linked structure and that every member belongs on this list.
 */
function walk(store: SwarmStore, swarm: number, seeders: boolean): number[] {
  const sdv = store.swarms.dv;
  const pdv = store.peers.dv;
  const pu8 = store.peers.u8;
  const head = sdv.getInt32(swarm * SW.SIZE + (seeders ? SW.SEED_HEAD : SW.LEECH_HEAD), true);
  if (head === NIL) return [];
  const out: number[] = [];
  const limit = store.ctl[CTL.PEER_HIGH] + 1;
  let p = head;
  do {
    out.push(p);
    const at = p * PR.SIZE;
    if (!(pu8[at + PR.FLAGS] & PF_LIVE)) throw new Error(`slot ${p} on a list is not live`);
    if (((pu8[at + PR.FLAGS] & PF_SEEDER) !== 0) !== seeders) throw new Error(`slot ${p} on the wrong list`);
    if (pdv.getUint32(at + PR.SWARM, true) !== swarm) throw new Error(`slot ${p} on swarm ${swarm}'s list belongs elsewhere`);
    const next = pdv.getInt32(at + PR.NEXT, true);
    if (pdv.getInt32(next * PR.SIZE + PR.PREV, true) !== p) throw new Error(`prev of ${next} is not ${p}`);
    p = next;
    if (out.length > limit) throw new Error('list does not return to its head');
  } while (p !== head);
  return out;
}

function sorted(a: Iterable<number>): number[] {
  return [...a].sort((x, y) => x - y);
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
      s = store.peers.dv.getInt32(s * PR.SIZE + PR.NEXT, true);
    } else {
      if (store.swarms.u8[s * SW.SIZE + SW.FLAGS]! & SWF_LIVE) throw new Error(`live swarm ${s} on the free list`);
      s = store.swarms.dv.getInt32(s * SW.SIZE + SW.LAST_ACTIVE, true);
    }
  }
  return out;
}

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
    expect(mem.swarms.byteLength).toBe(INITIAL_SWARMS * SW.SIZE);
    expect(mem.swarms.maxByteLength).toBe(LIMITS.maxSwarms * SW.SIZE);
    expect(mem.peers.maxByteLength).toBe(LIMITS.maxPeers * PR.SIZE);
    expect(mem.peerIndex.maxByteLength).toBe(HashIndex.bytesFor(131072)); // 2^ceil(log2(100k))
    expect(mem.swarmIndex.maxByteLength).toBe(HashIndex.bytesFor(32768));
    expect(new Int32Array(mem.global)[GLOBAL.HASH_SEED]).toBe(Atomics.load(store.global, GLOBAL.HASH_SEED));
  });

  it('a second store on the same buffers does not re-initialise them', () => {
    const { store, mem } = fresh();
    const s = store.addSwarm(sha1('a'), 0, 5);
    addPeer(store, s, peerId(1));
    const again = new SwarmStore(mem);
    expect(again.ctl[CTL.SWARM_LIVE]).toBe(1);
    expect(again.ctl[CTL.PEER_LIVE]).toBe(1);
    expect(again.findSwarm(sha1('a'), 0)).toBe(s);
    expect(again.findPeer(s, peerId(1), 0)).toBe(0);
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
      expect(store.swarms.dv.getInt32(at + SW.SEED_HEAD, true)).toBe(NIL);
      expect(store.swarms.dv.getInt32(at + SW.LEECH_HEAD, true)).toBe(NIL);
      expect(store.swarms.dv.getUint32(at + SW.LAST_ACTIVE, true)).toBe(100 + i);
      expect(swarmCounts(store, i)).toEqual({ seeders: 0, leechers: 0, completed: 0 });
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

    // a reused slot is wiped: no stale counters from its previous life
    store.swarms.dv.setUint32(3 * SW.SIZE + SW.COMPLETED, 77, true);
    const k5 = sha1('swarm 5');
    expect(store.addSwarm(k5, 0, 9)).toBe(3);
    expect(swarmCounts(store, 3)).toEqual({ seeders: 0, leechers: 0, completed: 0 });
    expect(store.addSwarm(sha1('swarm 6'), 0, 9)).toBe(1);
    expect(store.addSwarm(sha1('swarm 7'), 0, 9)).toBe(4);
    expect(store.ctl[CTL.SWARM_FREE]).toBe(NIL);
    expect(store.findSwarm(k5, 0)).toBe(3);
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
  });

  it('tells apart thousands of info_hashes that share all but their last bytes', () => {
    const { store } = fresh();
    const slots = new Map<string, number>();
    for (let fam = 0; fam < 3; fam++) {
      for (let i = 0; i < 1500; i++) {
        const k = prefixed(i, fam);
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
  });
});

describe('SwarmStore: peers, lists and counts', () => {
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
    // allocPeer alone does not count or link (the caller links)
    expect(swarmCounts(store, a)).toEqual({ seeders: 0, leechers: 0, completed: 0 });
    store.peers.u8[pa * PR.SIZE + PR.FLAGS] = PF_LIVE;
    store.link(pa);
    store.peers.u8[pb * PR.SIZE + PR.FLAGS] = PF_LIVE | PF_SEEDER;
    store.link(pb);
    store.removePeer(pa);
    expect(store.findPeer(a, peerId(1), 0)).toBe(-1);
    expect(store.findPeer(b, peerId(1), 0)).toBe(pb);
    expect(store.ctl[CTL.PEER_LIVE]).toBe(1);
    expect(store.ctl[CTL.PEER_FREE]).toBe(pa);
    expect(store.peers.u8[pa * PR.SIZE + PR.FLAGS]).toBe(0);
    expect(swarmCounts(store, a)).toEqual({ seeders: 0, leechers: 0, completed: 0 });
    expect(swarmCounts(store, b)).toEqual({ seeders: 1, leechers: 0, completed: 0 });
    // the freed slot is reused and wiped
    const pc = store.allocPeer(b, peerId(3), 0);
    expect(pc).toBe(pa);
    expect(store.peers.dv.getUint32(pc * PR.SIZE + PR.SWARM, true)).toBe(b);
    expect(store.peers.u8[pc * PR.SIZE + PR.FLAGS]).toBe(0);
    expect(store.ctl[CTL.PEER_FREE]).toBe(NIL);
  });

  it('link and unlink keep per-swarm counts, shard totals and rotation order', () => {
    const { store } = fresh();
    const a = store.addSwarm(sha1('a'), 0, 0);
    const b = store.addSwarm(sha1('b'), 0, 0);
    const s1 = addPeer(store, a, peerId(1), { seeder: true });
    const s2 = addPeer(store, a, peerId(2), { seeder: true, v6: true });
    const s3 = addPeer(store, a, peerId(3), { seeder: true });
    const l1 = addPeer(store, a, peerId(4));
    const l2 = addPeer(store, a, peerId(5), { v6: true });
    const bl = addPeer(store, b, peerId(1));
    expect(swarmCounts(store, a)).toEqual({ seeders: 3, leechers: 2, completed: 0 });
    expect(swarmCounts(store, b)).toEqual({ seeders: 0, leechers: 1, completed: 0 });
    expect(store.ctl[CTL.SEEDERS]).toBe(3);
    expect(store.ctl[CTL.LEECHERS]).toBe(3);
    expect(store.ctl[CTL.PEERS_V6]).toBe(2);
    // new peers go behind the head: rotation order is insertion order
    expect(walk(store, a, true)).toEqual([s1, s2, s3]);
    expect(walk(store, a, false)).toEqual([l1, l2]);
    expect(walk(store, b, false)).toEqual([bl]);
    expect(walk(store, b, true)).toEqual([]);

    // unlinking the head moves the head on
    store.unlink(s1);
    expect(walk(store, a, true)).toEqual([s2, s3]);
    // unlinking from the middle
    store.link(s1);
    expect(walk(store, a, true)).toEqual([s2, s3, s1]);
    store.unlink(s3);
    expect(walk(store, a, true)).toEqual([s2, s1]);
    expect(store.ctl[CTL.SEEDERS]).toBe(2);

    // a seeder becoming a leecher moves lists
    setFlags(store, s2, false, true);
    expect(walk(store, a, true)).toEqual([s1]);
    expect(walk(store, a, false)).toEqual([l1, l2, s2]);
    expect(swarmCounts(store, a)).toEqual({ seeders: 1, leechers: 3, completed: 0 });
    expect(store.ctl[CTL.PEERS_V6]).toBe(2);
    // family change
    setFlags(store, l2, false, false);
    expect(store.ctl[CTL.PEERS_V6]).toBe(1);

    // last peer of a list: list becomes empty
    store.removePeer(s1);
    expect(walk(store, a, true)).toEqual([]);
    expect(store.swarms.dv.getInt32(a * SW.SIZE + SW.SEED_HEAD, true)).toBe(NIL);
    store.removePeer(l1);
    store.removePeer(l2);
    store.removePeer(s2);
    expect(walk(store, a, false)).toEqual([]);
    expect(swarmCounts(store, a)).toEqual({ seeders: 0, leechers: 0, completed: 0 });
    expect(store.ctl[CTL.SEEDERS]).toBe(0);
    expect(store.ctl[CTL.LEECHERS]).toBe(1);
    expect(store.ctl[CTL.PEERS_V6]).toBe(0);
    expect(store.ctl[CTL.PEER_LIVE]).toBe(2); // bl and the unlinked s3 (still allocated)
    store.link(s3);
    store.removePeer(s3);
    expect(store.ctl[CTL.PEER_LIVE]).toBe(1);
    expect(store.ctl[CTL.SEEDERS]).toBe(0);
  });

  it('keeps thousands of peers with the same peer_id apart in different swarms', () => {
    const { store } = fresh();
    const pid = peerId(424242);
    const swarms: number[] = [];
    const peers: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const s = store.addSwarm(prefixed(i), 0, 0);
      swarms.push(s);
      peers.push(addPeer(store, s, pid, { seeder: i % 2 === 0 }));
    }
    expect(new Set(peers).size).toBe(3000);
    for (let i = 0; i < 3000; i++) expect(store.findPeer(swarms[i]!, pid, 0)).toBe(peers[i]);
    // remove half; the others are still found, the removed are gone
    for (let i = 0; i < 3000; i += 2) store.removePeer(peers[i]!);
    for (let i = 0; i < 3000; i++) expect(store.findPeer(swarms[i]!, pid, 0)).toBe(i % 2 === 0 ? -1 : peers[i]);
    expect(store.ctl[CTL.SEEDERS]).toBe(0);
    expect(store.ctl[CTL.LEECHERS]).toBe(1500);
    // and many peer_ids that differ only in their last digits in one swarm
    const one = swarms[1]!;
    const slots = new Map<number, number>();
    for (let i = 0; i < 5000; i++) slots.set(i, addPeer(store, one, peerId(i)));
    for (const [i, s] of slots) expect(store.findPeer(one, peerId(i), 0)).toBe(s);
    expect(swarmCounts(store, one)).toEqual({ seeders: 0, leechers: 5001, completed: 0 });
    expect(sorted(walk(store, one, false))).toEqual(sorted([...slots.values(), peers[1]!]));
  });

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
    const peers: { swarm: number; id: number; slot: number; seeder: boolean }[] = [];
    for (let i = 0; i < 20_000; i++) {
      const swarm = swarms[(i * 7919) % 5000]!;
      const seeder = i % 3 === 0;
      peers.push({ swarm, id: i, slot: addPeer(store, swarm, peerId(i), { seeder, now: i }), seeder });
    }
    expect(c[CTL.PEER_CAP]).toBe(32768);
    expect(mem.peers.byteLength).toBe(32768 * PR.SIZE);
    expect(c[CTL.PEER_INDEX_CAP]).toBe(65536);
    expect(c[CTL.PEER_LIVE]).toBe(20_000);
    expect(c[CTL.SEEDERS]).toBe(6667);
    expect(c[CTL.LEECHERS]).toBe(13_333);
    for (const p of peers) {
      expect(store.findPeer(p.swarm, peerId(p.id), 0)).toBe(p.slot);
      // records survived the copy into the grown buffer
      expect(store.peers.dv.getUint32(p.slot * PR.SIZE + PR.LAST_SEEN, true)).toBe(p.id);
    }
    for (let i = 0; i < 5000; i++) expect(store.findSwarm(sha1(`g${i}`), 0)).toBe(i);
    // per-swarm lists match what was added
    const bySwarm = new Map<number, { seed: number[]; leech: number[] }>();
    for (const p of peers) {
      let e = bySwarm.get(p.swarm);
      if (!e) bySwarm.set(p.swarm, (e = { seed: [], leech: [] }));
      (p.seeder ? e.seed : e.leech).push(p.slot);
    }
    for (const [s, e] of bySwarm) {
      expect(walk(store, s, true)).toEqual(e.seed);
      expect(walk(store, s, false)).toEqual(e.leech);
      expect(swarmCounts(store, s)).toEqual({ seeders: e.seed.length, leechers: e.leech.length, completed: 0 });
    }
  });

  it('stops at the configured bounds: allocPeer and addSwarm return -1', () => {
    const { store } = fresh();
    const swarms: number[] = [];
    for (let i = 0; i < 100; i++) swarms.push(store.addSwarm(sha1(`b${i}`), 0, 0));
    for (let i = 0; i < LIMITS.maxPeers; i++) {
      const slot = addPeer(store, swarms[i % 100]!, peerId(i));
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
    // freeing one makes room for exactly one
    store.removePeer(12_345);
    expect(store.allocPeer(swarms[0]!, peerId(999_999), 0)).toBe(12_345);
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
  });

  it('stops at small bounds below the initial sizes', () => {
    const { store } = fresh({ maxPeers: 300, maxSwarms: 50, requestRingBytes: 1 << 12, answerRingBytes: 1 << 12 });
    for (let i = 0; i < 50; i++) expect(store.addSwarm(sha1(`s${i}`), 0, 0)).toBe(i);
    expect(store.addSwarm(sha1('s50'), 0, 0)).toBe(-1);
    for (let i = 0; i < 300; i++) expect(addPeer(store, i % 50, peerId(i))).toBe(i);
    expect(store.allocPeer(0, peerId(300), 0)).toBe(-1);
    for (let i = 0; i < 300; i++) expect(store.findPeer(i % 50, peerId(i), 0)).toBe(i);
  });
});

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
    const d1 = addPeer(store, D, peerId(5), { now: 60 });
    const e1 = addPeer(store, E, peerId(6), { now: 190 });
    expect(store.ctl[CTL.PEERS_V6]).toBe(1);
    const removed = store.expire(200, 100, 1_000_000);
    expect(removed).toBe(3);
    expect(store.findPeer(A, peerId(1), 0)).toBe(-1);
    expect(store.findPeer(A, peerId(2), 0)).toBe(-1);
    expect(store.findPeer(A, peerId(3), 0)).toBe(a3);
    expect(store.findPeer(A, peerId(4), 0)).toBe(a4);
    expect(store.findPeer(D, peerId(5), 0)).toBe(-1);
    expect(store.findPeer(E, peerId(6), 0)).toBe(e1);
    expect(sorted(freeList(store, 'peer'))).toEqual(sorted([a1, a2, d1]));
    expect(swarmCounts(store, A)).toEqual({ seeders: 0, leechers: 2, completed: 0 });
    expect(walk(store, A, false)).toEqual([a3, a4]);
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
    // nothing more to do at the same time
    expect(store.expire(200, 100, 1_000_000)).toBe(0);
    expect(store.ctl[CTL.SWARM_LIVE]).toBe(3);
  });

  it('visits at most `budget` slots per call and continues where it stopped', () => {
    const { store } = fresh();
    const s = store.addSwarm(sha1('S'), 0, 1000);
    for (let i = 0; i < 10; i++) addPeer(store, s, peerId(i), { now: 0 });
    const c = store.ctl;
    expect(store.expire(500, 100, 4)).toBe(4);
    expect(c[CTL.SWEEP_PEER]).toBe(4);
    for (let i = 0; i < 4; i++) expect(store.findPeer(s, peerId(i), 0)).toBe(-1);
    for (let i = 4; i < 10; i++) expect(store.findPeer(s, peerId(i), 0)).toBe(i);
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
    expect(swarmCounts(store, s).leechers).toBe(2);
    // swarm sweep has its own cursor
    expect(c[CTL.SWEEP_SWARM]).toBe(1); // one swarm slot: visited up to 4 times, cursor past it
  });
});

// ---------------------------------------------------------------------------------------
// recover(): a second store attached to the same memory re-derives everything.
// ---------------------------------------------------------------------------------------

interface Snapshot {
  ctl: Record<string, number>;
  swarms: Record<string, { slot: number; seeders: number; leechers: number; completed: number; seed: number[]; leech: number[] }>;
  peers: Record<string, number>;
  peerFree: number[];
  swarmFree: number[];
}

function snapshot(store: SwarmStore, swarmKeys: Uint8Array[], peerKeys: { swarm: Uint8Array; pid: Uint8Array }[]): Snapshot {
  const c = store.ctl;
  const ctl: Record<string, number> = {};
  for (const k of ['SWARM_HIGH', 'SWARM_LIVE', 'PEER_HIGH', 'PEER_LIVE', 'SEEDERS', 'LEECHERS', 'PEERS_V6'] as const) ctl[k] = c[CTL[k]]!;
  const swarms: Snapshot['swarms'] = {};
  for (const k of swarmKeys) {
    const s = store.findSwarm(k, 0);
    if (s < 0) continue;
    swarms[hex(k)] = { slot: s, ...swarmCounts(store, s), seed: sorted(walk(store, s, true)), leech: sorted(walk(store, s, false)) };
  }
  const peers: Record<string, number> = {};
  for (const p of peerKeys) {
    const s = store.findSwarm(p.swarm, 0);
    peers[`${hex(p.swarm)}/${hex(p.pid)}`] = s < 0 ? -2 : store.findPeer(s, p.pid, 0);
  }
  return { ctl, swarms, peers, peerFree: sorted(freeList(store, 'peer')), swarmFree: sorted(freeList(store, 'swarm')) };
}

/** A populated store: 300 swarms, ~6000 peers of mixed kinds, some removed (free lists in use). */
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
    for (const list of [true, false]) for (const p of walk(store, s, list)) store.removePeer(p);
    store.removeSwarm(s);
  }
  // completed counters are records, not derived: recover keeps them
  for (let w = 1; w < 300; w += 7) if (w % 15 !== 0) store.swarms.dv.setUint32(slots[w]! * SW.SIZE + SW.COMPLETED, w, true);
  return { mem, store, swarmKeys, peerKeys };
}

/** The hash stored beside `slot` in an index (hashes are seeded and private to the store). */
function indexHashOf(index: HashIndex, slot: number): number {
  for (let i = 0; i < index.capacity; i++) if (index.i32[i * 2 + 1] === slot + 1) return index.i32[i * 2]!;
  throw new Error(`slot ${slot} is not indexed`);
}

describe('SwarmStore.recover', () => {
  it('a second store on the same buffers reproduces counts, finds and lists', () => {
    const { mem, store, swarmKeys, peerKeys } = populated();
    const before = snapshot(store, swarmKeys, peerKeys);
    expect(before.ctl.PEER_LIVE).toBeGreaterThan(3000);
    expect(before.peerFree.length).toBe(before.ctl.PEER_HIGH! - before.ctl.PEER_LIVE!);
    expect(before.swarmFree.length).toBe(20);
    const again = new SwarmStore(mem);
    again.recover();
    expect(snapshot(again, swarmKeys, peerKeys)).toEqual(before);
  });

  it('recovers from destroyed indexes, lists, counters and free lists', () => {
    const { mem, store, swarmKeys, peerKeys } = populated();
    const before = snapshot(store, swarmKeys, peerKeys);
    const rnd = prng(5);
    // indexes wiped
    store.swarmIndex.i32.fill(0);
    store.peerIndex.i32.fill(0);
    // every list link and head scrambled, per-swarm counters garbage
    const high = store.ctl[CTL.PEER_HIGH]!;
    for (let p = 0; p < high; p++) {
      store.peers.dv.setInt32(p * PR.SIZE + PR.NEXT, Math.floor(rnd() * high), true);
      store.peers.dv.setInt32(p * PR.SIZE + PR.PREV, Math.floor(rnd() * high), true);
    }
    for (let s = 0; s < store.ctl[CTL.SWARM_HIGH]!; s++) {
      const at = s * SW.SIZE;
      store.swarms.dv.setInt32(at + SW.SEED_HEAD, Math.floor(rnd() * high), true);
      store.swarms.dv.setInt32(at + SW.LEECH_HEAD, NIL, true);
      store.swarms.dv.setUint32(at + SW.SEEDERS, 12345, true);
      store.swarms.dv.setUint32(at + SW.LEECHERS, 0xffffffff, true);
      if (!(store.swarms.u8[at + SW.FLAGS]! & SWF_LIVE)) store.swarms.dv.setInt32(at + SW.LAST_ACTIVE, 0, true); // free list → cycle
    }
    // totals and free heads wrong (free heads point at live records)
    const c = store.ctl;
    c[CTL.SEEDERS] = -5;
    c[CTL.LEECHERS] = 99;
    c[CTL.PEERS_V6] = 7;
    c[CTL.PEER_LIVE] = 1;
    c[CTL.SWARM_LIVE] = 0;
    c[CTL.PEER_FREE] = before.swarms[hex(swarmKeys[1]!)]!.seed[0] ?? 0;
    c[CTL.SWARM_FREE] = 1;

    const again = new SwarmStore(mem);
    again.recover();
    expect(snapshot(again, swarmKeys, peerKeys)).toEqual(before);
  });

  it('resolves records a crash left half-written', () => {
    const { mem, store, swarmKeys, peerKeys } = populated();
    const c = store.ctl;
    const s1 = store.findSwarm(swarmKeys[1]!, 0);
    const w3 = [3, 7, 11, 13, 17, 19].find((w) => walk(store, store.findSwarm(swarmKeys[w]!, 0), false).length > 0)!;
    const s3 = store.findSwarm(swarmKeys[w3]!, 0);
    // 1) died in allocPeer after taking a fresh slot and indexing it, before the record was filled
    const half = store.allocPeer(s1, peerId(90_001), 0);
    expect(store.findPeer(s1, peerId(90_001), 0)).toBe(half);
    // 2) died in removePeer after unlinking and unindexing, before clearing the flags:
    //    the record is still live, so it comes back whole
    const victim = walk(store, s3, false)[0]!;
    const victimId = store.peers.u8.slice(victim * PR.SIZE + PR.PEER_ID, victim * PR.SIZE + PR.PEER_ID + 20);
    store.unlink(victim);
    store.peerIndex.remove(indexHashOf(store.peerIndex, victim), victim);
    expect(store.findPeer(s3, victimId, 0)).toBe(-1);
    // 3) a live peer record whose swarm was freed (died in the middle of freeing a swarm)
    const s5 = store.findSwarm(swarmKeys[5]!, 0);
    const orphans = [...walk(store, s5, true), ...walk(store, s5, false)];
    expect(orphans.length).toBeGreaterThan(0);
    store.swarms.u8[s5 * SW.SIZE + SW.FLAGS] = 0;
    // 4) a peer record pointing beyond the swarm slab's high-water mark
    const stray = walk(store, s1, false)[0] ?? walk(store, s1, true)[0]!;
    store.peers.dv.setUint32(stray * PR.SIZE + PR.SWARM, c[CTL.SWARM_HIGH]! + 3, true);
    const strayId = store.peers.u8.slice(stray * PR.SIZE + PR.PEER_ID, stray * PR.SIZE + PR.PEER_ID + 20);
    //    ... even if garbage above the high-water mark looks like a live swarm
    expect(c[CTL.SWARM_HIGH]! + 3).toBeLessThan(store.swarms.capacity);
    store.swarms.u8[(c[CTL.SWARM_HIGH]! + 3) * SW.SIZE + SW.FLAGS] = SWF_LIVE;

    const again = new SwarmStore(mem);
    again.recover();
    const after = snapshot(again, swarmKeys, peerKeys);
    // 1) not live → freed, not findable
    expect(again.findPeer(s1, peerId(90_001), 0)).toBe(-1);
    expect(after.peerFree).toContain(half);
    // 2) back on its list, findable, counted
    expect(again.findPeer(s3, victimId, 0)).toBe(victim);
    expect(after.swarms[hex(swarmKeys[w3]!)]!.leech).toContain(victim);
    // 3) the swarm is gone and its peers are freed
    expect(again.findSwarm(swarmKeys[5]!, 0)).toBe(-1);
    expect(after.swarmFree).toContain(s5);
    for (const p of orphans) expect(after.peerFree).toContain(p);
    // 4) dropped
    expect(again.findPeer(s1, strayId, 0)).toBe(-1);
    expect(after.peerFree).toContain(stray);
    // everything adds up
    let seeders = 0;
    let leechers = 0;
    for (const sw of Object.values(after.swarms)) {
      expect(sw.seed.length).toBe(sw.seeders);
      expect(sw.leech.length).toBe(sw.leechers);
      seeders += sw.seeders;
      leechers += sw.leechers;
    }
    expect(after.ctl.SEEDERS).toBe(seeders);
    expect(after.ctl.LEECHERS).toBe(leechers);
    expect(after.ctl.PEER_LIVE).toBe(seeders + leechers);
    expect(after.peerFree.length).toBe(after.ctl.PEER_HIGH! - after.ctl.PEER_LIVE!);
    expect(after.ctl.SWARM_LIVE).toBe(Object.keys(after.swarms).length);

    // and the recovered store keeps working: every free slot is handed out before new ones
    const free = new Set(after.peerFree);
    const s = again.findSwarm(swarmKeys[7]!, 0);
    for (let i = 0, n = free.size; i < n; i++) {
      const slot = addPeer(again, s, peerId(100_000 + i));
      expect(free.delete(slot)).toBe(true);
    }
    expect(free.size).toBe(0);
    expect(addPeer(again, s, peerId(200_000))).toBe(after.ctl.PEER_HIGH);
    const swarmFree = new Set(after.swarmFree);
    for (let i = 0, n = swarmFree.size; i < n; i++) expect(swarmFree.delete(again.addSwarm(sha1(`new ${i}`), 0, 0))).toBe(true);
    expect(again.addSwarm(sha1('newest'), 0, 0)).toBe(after.ctl.SWARM_HIGH);
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
  it('30,000 operations: add, update, seeder flip, remove, expire, recover', () => {
    const TIMEOUT = 200;
    const rnd = prng(2024);
    let { mem, store } = fresh();
    const swarmPool = Array.from({ length: 2500 }, (_, i) => (i % 2 ? sha1(`m${i}`) : prefixed(i, 9)));
    const pidPool = Array.from({ length: 2000 }, (_, i) => peerId(i * 13));
    const swarms = new Map<string, MSwarm>();
    const all: MPeer[] = [];
    let now = 1;
    let expired = 0;
    let freedSwarms = 0;
    let recoveries = 0;

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
        const seed: number[] = [];
        const leech: number[] = [];
        for (const p of sw.peers.values()) (p.seeder ? seed : leech).push(p.slot);
        const counts = swarmCounts(store, sw.slot);
        if (counts.seeders !== seed.length || counts.leechers !== leech.length) {
          errors.push(`swarm ${sw.slot} counts ${counts.seeders}/${counts.leechers}, model ${seed.length}/${leech.length}`);
        }
        if (sorted(walk(store, sw.slot, true)).join() !== sorted(seed).join()) errors.push(`swarm ${sw.slot} seed list differs`);
        if (sorted(walk(store, sw.slot, false)).join() !== sorted(leech).join()) errors.push(`swarm ${sw.slot} leech list differs`);
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
      expect(freeList(store, 'peer').length).toBe(c[CTL.PEER_HIGH]! - all.length);
      expect(freeList(store, 'swarm').length).toBe(c[CTL.SWARM_HIGH]! - swarms.size);
    }

    const OPS = 30_000;
    let maxPeers = 0;
    for (let op = 1; op <= OPS; op++) {
      if (rnd() < 0.1) now += 1 + Math.floor(rnd() * 3);
      const growing = op < 9000;
      const r = rnd();
      if (growing ? r < 0.7 : r < 0.35) {
        // announce: new peer (or refresh if it exists)
        const key = swarmPool[Math.floor(rnd() * swarmPool.length)]!;
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
          const slot = addPeer(store, sw.slot, pid, { seeder, v6, now });
          expect(slot).toBeGreaterThanOrEqual(0);
          const p: MPeer = { swarm: sw, pid, pidHex: hex(pid), slot, seeder, v6, lastSeen: now, at: all.length };
          all.push(p);
          sw.peers.set(p.pidHex, p);
        }
      } else if (all.length === 0) {
        continue;
      } else if (growing ? r < 0.8 : r < 0.6) {
        // update: refresh, sometimes change family
        const p = all[Math.floor(rnd() * all.length)]!;
        p.lastSeen = now;
        touch(store, p.slot, now);
        p.swarm.lastActive = now;
        store.swarms.dv.setUint32(p.swarm.slot * SW.SIZE + SW.LAST_ACTIVE, now, true);
        if (rnd() < 0.2) {
          p.v6 = !p.v6;
          setFlags(store, p.slot, p.seeder, p.v6);
        }
      } else if (growing ? r < 0.9 : r < 0.72) {
        // seeder flip (completed / new download)
        const p = all[Math.floor(rnd() * all.length)]!;
        p.seeder = !p.seeder;
        p.lastSeen = now;
        touch(store, p.slot, now);
        setFlags(store, p.slot, p.seeder, p.v6);
      } else if (growing || r < 0.9) {
        // stopped
        const p = all[Math.floor(rnd() * all.length)]!;
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
      maxPeers = Math.max(maxPeers, all.length);
      if (op % 7_500 === 0) {
        // a respawned shard on the same memory
        store = new SwarmStore(mem);
        store.recover();
        recoveries++;
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
  }, 120_000);
});

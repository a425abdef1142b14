// SwarmStore: fresh tables, swarms, peers and their arrays, growth, expiry.
import { describe, expect, it } from 'vitest';
import { MIN_CLASS, classEntries, classFor } from './arena.js';
import { ADDR4, ADDR6, ShardControl, GlobalBlock, INITIAL_ARENA_ENTRIES, INITIAL_PEERS, INITIAL_SWARMS, MAX_CLASS, NIL, PF_LIVE, PF_SEEDER, PF_V6, PeerRecord, SwarmRecord, SWF_LIVE } from './memory-layout.js';
import { allocateGlobal, allocateShardMemory } from './memory.js';
import { SwarmStore } from './swarm-store.js';
import { HashIndex } from './table.js';
import { prng } from '../test/support/prng.js';
import { alignedBlocks } from '../test/support/arena-model.js';
import { LIMITS, fresh, sha1, prefixed, peerId, hex, sorted, wire, addrFor, PeerOpts, addPeer, setFlags, touch, fam, swarmCounts, counts, classOf, blockOf, entryAddr, segment, slotsOf, arenaFree, byStart, nextBlock, freeList, checkStore } from '../test/support/swarm-store.js';

describe('SwarmStore: fresh tables', () => {
  it('initialises the control block from the buffers', () => {
    const { store, mem } = fresh();
    const c = store.ctl;
    expect(c[ShardControl.SWARM_CAP]).toBe(INITIAL_SWARMS);
    expect(c[ShardControl.SWARM_HIGH]).toBe(0);
    expect(c[ShardControl.SWARM_FREE]).toBe(NIL);
    expect(c[ShardControl.SWARM_LIVE]).toBe(0);
    expect(c[ShardControl.SWARM_INDEX_CAP]).toBe(INITIAL_SWARMS * 2);
    expect(c[ShardControl.PEER_CAP]).toBe(INITIAL_PEERS);
    expect(c[ShardControl.PEER_HIGH]).toBe(0);
    expect(c[ShardControl.PEER_FREE]).toBe(NIL);
    expect(c[ShardControl.PEER_LIVE]).toBe(0);
    expect(c[ShardControl.PEER_INDEX_CAP]).toBe(INITIAL_PEERS * 2);
    expect(c[ShardControl.ARENA4_TOP]).toBe(0);
    expect(c[ShardControl.ARENA6_TOP]).toBe(0);
    for (let k = 0; k < MAX_CLASS; k++) {
      expect(c[ShardControl.FREE4 + k]).toBe(NIL);
      expect(c[ShardControl.FREE6 + k]).toBe(NIL);
    }
    expect(mem.swarms.byteLength).toBe(INITIAL_SWARMS * SwarmRecord.SIZE);
    expect(mem.swarms.maxByteLength).toBe(LIMITS.maxSwarms * SwarmRecord.SIZE);
    expect(mem.peers.maxByteLength).toBe(LIMITS.maxPeers * PeerRecord.SIZE);
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
    expect(new Int32Array(mem.global)[GlobalBlock.HASH_SEED]).toBe(Atomics.load(store.global, GlobalBlock.HASH_SEED));
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
    expect(again.ctl[ShardControl.SWARM_LIVE]).toBe(1);
    expect(again.ctl[ShardControl.PEER_LIVE]).toBe(3);
    expect(again.ctl[ShardControl.ARENA4_TOP]).toBe(8);
    expect(again.ctl[ShardControl.ARENA6_TOP]).toBe(2); // one 2-entry block
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
    expect(shard.ctl[ShardControl.SWARM_INDEX_CAP]).toBeGreaterThan(0);
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
    expect(store.ctl[ShardControl.SWARM_LIVE]).toBe(4);
    expect(store.ctl[ShardControl.SWARM_HIGH]).toBe(4);
    for (let i = 0; i < 4; i++) {
      expect(store.findSwarm(keys[i]!, 0)).toBe(i);
      const at = i * SwarmRecord.SIZE;
      expect(store.swarms.u8.slice(at + SwarmRecord.INFO_HASH, at + SwarmRecord.INFO_HASH + 20)).toEqual(keys[i]);
      expect(store.swarms.u8[at + SwarmRecord.FLAGS]).toBe(SWF_LIVE);
      expect(classOf(store, i, false)).toBe(0);
      expect(classOf(store, i, true)).toBe(0);
      expect(store.swarms.dv.getUint32(at + SwarmRecord.ROT_SEED, true)).toBe(0);
      expect(store.swarms.dv.getUint32(at + SwarmRecord.ROT_LEECH, true)).toBe(0);
      expect(store.swarms.dv.getUint32(at + SwarmRecord.LAST_ACTIVE, true)).toBe(100 + i);
      expect(swarmCounts(store, i)).toEqual(counts(0, 0));
      expect(store.seeders(i)).toBe(0);
      expect(store.leechers(i)).toBe(0);
    }
    expect(store.findSwarm(sha1('nope'), 0)).toBe(-1);

    store.removeSwarm(1);
    store.removeSwarm(3);
    expect(store.ctl[ShardControl.SWARM_LIVE]).toBe(2);
    expect(store.findSwarm(keys[1]!, 0)).toBe(-1);
    expect(store.findSwarm(keys[3]!, 0)).toBe(-1);
    expect(store.findSwarm(keys[0]!, 0)).toBe(0);
    expect(store.findSwarm(keys[2]!, 0)).toBe(2);
    expect(freeList(store, 'swarm')).toEqual([3, 1]);

    // a reused slot is wiped: no stale counters, classes or rotation from its previous life
    const at3 = 3 * SwarmRecord.SIZE;
    store.swarms.dv.setUint32(at3 + SwarmRecord.COMPLETED, 77, true);
    store.swarms.dv.setUint32(at3 + SwarmRecord.SEED4, 5, true);
    store.swarms.dv.setUint32(at3 + SwarmRecord.ROT_SEED, 9, true);
    store.swarms.dv.setUint32(at3 + SwarmRecord.ROT_LEECH, 8, true);
    store.swarms.u8[at3 + SwarmRecord.CLASS6] = 4;
    const k5 = sha1('swarm 5');
    expect(store.addSwarm(k5, 0, 9)).toBe(3);
    expect(swarmCounts(store, 3)).toEqual(counts(0, 0));
    expect(classOf(store, 3, true)).toBe(0);
    expect(store.swarms.dv.getUint32(at3 + SwarmRecord.ROT_SEED, true)).toBe(0);
    expect(store.swarms.dv.getUint32(at3 + SwarmRecord.ROT_LEECH, true)).toBe(0);
    expect(store.addSwarm(sha1('swarm 6'), 0, 9)).toBe(1);
    expect(store.addSwarm(sha1('swarm 7'), 0, 9)).toBe(4);
    expect(store.ctl[ShardControl.SWARM_FREE]).toBe(NIL);
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
    expect(store.peers.u8.slice(p * PeerRecord.SIZE + PeerRecord.PEER_ID, p * PeerRecord.SIZE + PeerRecord.PEER_ID + 20)).toEqual(peerId(9));
    // place() reads the address at an offset too
    store.peers.u8[p * PeerRecord.SIZE + PeerRecord.FLAGS] = PF_LIVE | PF_V6;
    const abuf = new Uint8Array(40).fill(0xcc);
    abuf.set(wire(true, 0x01020304, 0xbeef), 5);
    expect(store.arrays.place(p, abuf, 5)).toBe(true);
    expect(segment(store, s, true, false)).toEqual([{ slot: p, addr: hex(wire(true, 0x01020304, 0xbeef)) }]);
    // and setAddress
    abuf.set(wire(true, 7, 7), 21);
    store.arrays.setAddress(p, abuf, 21);
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
    expect(store.ctl[ShardControl.SWARM_LIVE]).toBe(3000);
    expect(store.findSwarm(prefixed(1500, 0), 0)).toBe(-1);
    checkStore(store);
  });

  it('removing a swarm whose arrays are empty frees no block; the block of a swarm emptied by peers leaving was freed already', () => {
    const { store } = fresh();
    const s = store.addSwarm(sha1('s'), 0, 0);
    const p = [0, 1, 2, 3].map((i) => addPeer(store, s, peerId(i), { v6: i === 3 }));
    // IPv4: 2 entries at 0, then 4 entries at 4 (aligned); the gap [2, 4) merged with the freed [0, 2)
    expect(store.ctl[ShardControl.ARENA4_TOP]).toBe(8);
    expect([classOf(store, s, false), blockOf(store, s, false)]).toEqual([3, 4]);
    expect(arenaFree(store, false)).toEqual([{ start: 0, cls: 3 }]);
    expect(store.ctl[ShardControl.ARENA6_TOP]).toBe(2);
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
    expect([store.ctl[ShardControl.ARENA4_TOP], store.ctl[ShardControl.ARENA6_TOP]]).toEqual([8, 2]);
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
    expect(store.peers.dv.getUint32(pb * PeerRecord.SIZE + PeerRecord.SWARM, true)).toBe(b);
    expect(store.ctl[ShardControl.PEER_LIVE]).toBe(2);
    // allocPeer alone does not count or place (the caller places)
    expect(swarmCounts(store, a)).toEqual(counts(0, 0));
    expect(classOf(store, a, false)).toBe(0);
    store.peers.u8[pa * PeerRecord.SIZE + PeerRecord.FLAGS] = PF_LIVE;
    expect(store.arrays.place(pa, wire(false, 1, 1), 0)).toBe(true);
    store.peers.u8[pb * PeerRecord.SIZE + PeerRecord.FLAGS] = PF_LIVE | PF_SEEDER;
    expect(store.arrays.place(pb, wire(false, 2, 2), 0)).toBe(true);
    expect(swarmCounts(store, a)).toEqual(counts(0, 1));
    store.removePeer(pa);
    expect(store.findPeer(a, peerId(1), 0)).toBe(-1);
    expect(store.findPeer(b, peerId(1), 0)).toBe(pb);
    expect(store.ctl[ShardControl.PEER_LIVE]).toBe(1);
    expect(store.ctl[ShardControl.PEER_FREE]).toBe(pa);
    expect(store.peers.u8[pa * PeerRecord.SIZE + PeerRecord.FLAGS]).toBe(0);
    expect(swarmCounts(store, a)).toEqual(counts(0, 0));
    expect(swarmCounts(store, b)).toEqual(counts(1, 0));
    expect(classOf(store, a, false)).toBe(0); // the last peer left: its block went back
    // the freed slot is reused and wiped
    store.peers.dv.setUint32(pa * PeerRecord.SIZE + PeerRecord.LAST_SEEN, 99, true);
    const pc = store.allocPeer(b, peerId(3), 0);
    expect(pc).toBe(pa);
    expect(store.peers.dv.getUint32(pc * PeerRecord.SIZE + PeerRecord.SWARM, true)).toBe(b);
    expect(store.peers.u8[pc * PeerRecord.SIZE + PeerRecord.FLAGS]).toBe(0);
    expect(store.peers.dv.getUint32(pc * PeerRecord.SIZE + PeerRecord.LAST_SEEN, true)).toBe(0);
    expect(store.peers.dv.getUint32(pc * PeerRecord.SIZE + PeerRecord.POS, true)).toBe(0);
    expect(store.ctl[ShardControl.PEER_FREE]).toBe(NIL);
  });

  it('place and displace keep [seeders | leechers] contiguous, with exact positions and POS', () => {
    const { store } = fresh();
    const s = store.addSwarm(sha1('partition'), 0, 0);
    const A = (i: number): Uint8Array => wire(false, 0x0a000000 + i, 1000 + i);
    const view = (): string[] => {
      const f = fam(store, false);
      const S = store.swarms.dv.getUint32(s * SwarmRecord.SIZE + f.seed, true);
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
    expect([store.ctl[ShardControl.SEEDERS], store.ctl[ShardControl.LEECHERS], store.ctl[ShardControl.PEERS_V6]]).toEqual([2, 1, 0]);
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
    expect([store.ctl[ShardControl.SEEDERS], store.ctl[ShardControl.LEECHERS], store.ctl[ShardControl.PEERS_V6]]).toEqual([3, 3, 2]);
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
    expect([store.ctl[ShardControl.SEEDERS], store.ctl[ShardControl.LEECHERS], store.ctl[ShardControl.PEERS_V6]]).toEqual([2, 4, 2]);
    // family change v6 → v4: moves arrays, with its new address
    setFlags(store, l2, false, false, wire(false, 0x7f000001, 9));
    expect(slotsOf(store, a, true, false)).toEqual([s2]);
    expect(sorted(slotsOf(store, a, false, false))).toEqual(sorted([l1, l2]));
    expect(entryAddr(store, l2)).toEqual(wire(false, 0x7f000001, 9));
    expect(swarmCounts(store, a)).toEqual(counts(2, 2, 0, 1));
    expect(store.ctl[ShardControl.PEERS_V6]).toBe(1);
    // family and segment at once: v4 seeder → v6 leecher
    setFlags(store, s1, false, true, wire(true, 5, 5));
    expect(swarmCounts(store, a)).toEqual(counts(1, 2, 0, 2));
    expect([store.ctl[ShardControl.SEEDERS], store.ctl[ShardControl.LEECHERS], store.ctl[ShardControl.PEERS_V6]]).toEqual([1, 5, 2]);
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
    expect([store.ctl[ShardControl.SEEDERS], store.ctl[ShardControl.LEECHERS], store.ctl[ShardControl.PEERS_V6]]).toEqual([0, 1, 0]);
    expect(store.ctl[ShardControl.PEER_LIVE]).toBe(1);
    // a displaced peer is out of the counts but still allocated until freed
    store.arrays.displace(bl);
    expect(swarmCounts(store, b)).toEqual(counts(0, 0));
    expect(store.ctl[ShardControl.LEECHERS]).toBe(0);
    expect(store.ctl[ShardControl.PEER_LIVE]).toBe(1);
    expect(store.findPeer(b, peerId(1), 0)).toBe(bl);
    store.freePeer(bl);
    expect(store.ctl[ShardControl.PEER_LIVE]).toBe(0);
    expect(store.findPeer(b, peerId(1), 0)).toBe(-1);
    checkStore(store);
  });

  it('setAddress rewrites the entry in place: same position, same counts, other entries untouched', () => {
    const { store } = fresh();
    const s = store.addSwarm(sha1('addr'), 0, 0);
    const p4 = [0, 1, 2, 3].map((i) => addPeer(store, s, peerId(i), { seeder: i < 2, addr: wire(false, 100 + i, 100 + i) }));
    const p6 = [4, 5].map((i) => addPeer(store, s, peerId(i), { v6: true, addr: wire(true, 100 + i, 100 + i) }));
    const before4 = segment(store, s, false, true).concat(segment(store, s, false, false));
    const pos = store.peers.dv.getUint32(p4[2]! * PeerRecord.SIZE + PeerRecord.POS, true);
    store.arrays.setAddress(p4[2]!, wire(false, 0xc0a80101, 51413), 0);
    store.arrays.setAddress(p6[1]!, wire(true, 0xffffffff, 1), 0);
    expect(store.peers.dv.getUint32(p4[2]! * PeerRecord.SIZE + PeerRecord.POS, true)).toBe(pos);
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
    expect(store.ctl[ShardControl.SEEDERS]).toBe(0);
    expect(store.ctl[ShardControl.LEECHERS]).toBe(1500);
    expect(store.ctl[ShardControl.PEERS_V6]).toBe(500); // odd multiples of 3 below 3000
    // and many peer_ids that differ only in their last digits in one swarm
    const one = swarms[1]!;
    const slots = new Map<number, number>();
    for (let i = 0; i < 5000; i++) slots.set(i, addPeer(store, one, peerId(i)));
    for (const [i, s] of slots) expect(store.findPeer(one, peerId(i), 0)).toBe(s);
    expect(swarmCounts(store, one)).toEqual(counts(0, 5001));
    expect(sorted(slotsOf(store, one, false, false))).toEqual(sorted([...slots.values(), peers[1]!]));
    for (const e of segment(store, one, false, false)) {
      if (e.slot !== peers[1]) expect(e.addr).toBe(hex(addrFor(store.peers.u8.slice(e.slot * PeerRecord.SIZE + PeerRecord.PEER_ID, e.slot * PeerRecord.SIZE + PeerRecord.PEER_ID + 20), false)));
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
    expect(c[ShardControl.SWARM_CAP]).toBe(8192);
    expect(store.swarms.capacity).toBe(8192);
    expect(mem.swarms.byteLength).toBe(8192 * SwarmRecord.SIZE);
    expect(c[ShardControl.SWARM_INDEX_CAP]).toBe(16384); // load kept ≤ 1/2
    expect(store.swarmIndex.capacity).toBe(16384);
    const peers: { swarm: number; id: number; slot: number; seeder: boolean; v6: boolean }[] = [];
    for (let i = 0; i < 20_000; i++) {
      const swarm = swarms[(i * 7919) % 5000]!;
      const seeder = i % 3 === 0;
      const v6 = i % 5 === 0;
      peers.push({ swarm, id: i, slot: addPeer(store, swarm, peerId(i), { seeder, v6, now: i }), seeder, v6 });
    }
    expect(c[ShardControl.PEER_CAP]).toBe(32768);
    expect(mem.peers.byteLength).toBe(32768 * PeerRecord.SIZE);
    expect(c[ShardControl.PEER_INDEX_CAP]).toBe(65536);
    expect(c[ShardControl.PEER_LIVE]).toBe(20_000);
    expect(c[ShardControl.SEEDERS]).toBe(6667);
    expect(c[ShardControl.LEECHERS]).toBe(13_333);
    expect(c[ShardControl.PEERS_V6]).toBe(4000);
    for (const p of peers) {
      expect(store.findPeer(p.swarm, peerId(p.id), 0)).toBe(p.slot);
      // records survived the copy into the grown buffer
      expect(store.peers.dv.getUint32(p.slot * PeerRecord.SIZE + PeerRecord.LAST_SEEN, true)).toBe(p.id);
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
    expect([store.ctl[ShardControl.SEEDERS], store.ctl[ShardControl.LEECHERS], store.ctl[ShardControl.PEERS_V6]]).toEqual([seeders, N - seeders, 2000]);
    // Each block of class c >= 3 came from the bump pointer at 2^(c-1), the first multiple
    // of its size past the one before, and the outgrown blocks below it merged into one:
    // the 32,768-entry array sits at 32,768, with [0, 32768) free as a single block.
    expect(blockOf(store, s, false)).toBe(2 ** 15);
    expect(store.ctl[ShardControl.ARENA4_TOP]).toBe(2 ** 16);
    expect(arenaFree(store, false)).toEqual([{ start: 0, cls: 16 }]);
    expect(blockOf(store, s, true)).toBe(2 ** 11);
    expect(store.ctl[ShardControl.ARENA6_TOP]).toBe(2 ** 12);
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
    expect([store.ctl[ShardControl.SEEDERS], store.ctl[ShardControl.LEECHERS], store.ctl[ShardControl.PEERS_V6], store.ctl[ShardControl.PEER_LIVE]]).toEqual([0, 0, 0, 0]);
    // shrinking split every smaller block from free ones: the arena did not grow, and with
    // everybody gone it is one free block again
    expect(store.ctl[ShardControl.ARENA4_TOP]).toBe(2 ** 16);
    expect(store.ctl[ShardControl.ARENA6_TOP]).toBe(2 ** 12);
    expect(arenaFree(store, false)).toEqual([{ start: 0, cls: 17 }]);
    expect(arenaFree(store, true)).toEqual([{ start: 0, cls: 13 }]);
    checkStore(store);

    // growing again splits and merges the same blocks: the bump pointers stay put
    peers.length = 0;
    removed.clear();
    grow();
    checkModel();
    expect(store.ctl[ShardControl.ARENA4_TOP]).toBe(2 ** 16);
    expect(store.ctl[ShardControl.ARENA6_TOP]).toBe(2 ** 12);
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
    expect(c[ShardControl.PEER_CAP]).toBe(LIMITS.maxPeers);
    expect(c[ShardControl.PEER_LIVE]).toBe(LIMITS.maxPeers);
    expect(c[ShardControl.PEER_INDEX_CAP]).toBe(131072);
    expect(store.allocPeer(swarms[0]!, peerId(999_999), 0)).toBe(-1);
    expect(store.allocPeer(swarms[5]!, peerId(999_998), 0)).toBe(-1);
    expect(c[ShardControl.PEER_LIVE]).toBe(LIMITS.maxPeers);
    expect(c[ShardControl.PEER_HIGH]).toBe(LIMITS.maxPeers);
    // the refused peer was not indexed
    expect(store.findPeer(swarms[0]!, peerId(999_999), 0)).toBe(-1);
    expect(c[ShardControl.LEECHERS]).toBe(LIMITS.maxPeers);
    expect(c[ShardControl.PEERS_V6]).toBe(Math.ceil(LIMITS.maxPeers / 7));
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
    expect(c[ShardControl.SWARM_CAP]).toBe(LIMITS.maxSwarms);
    expect(c[ShardControl.SWARM_LIVE]).toBe(LIMITS.maxSwarms);
    expect(store.addSwarm(sha1('one too many'), 0, 0)).toBe(-1);
    expect(store.findSwarm(sha1('one too many'), 0)).toBe(-1);
    expect(c[ShardControl.SWARM_LIVE]).toBe(LIMITS.maxSwarms);
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
    expect(store.ctl[ShardControl.ARENA4_TOP]).toBe(66);
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
    expect(store.ctl[ShardControl.ARENA4_TOP]).toBe(66);
    expect(arenaFree(store, false)).toEqual([{ start: 2, cls: 2 }, { start: 4, cls: 3 }, { start: 8, cls: 4 }, { start: 16, cls: 5 }]);
    checkStore(store);

    // its 33rd peer needs 64 entries: none free, and from the top they would start at 128
    // and end at 192 (66 + 64 would fit, but not aligned): refused, nothing changed
    const refuse = (): void => {
      const before = { counts: swarmCounts(store, x), top: store.ctl[ShardControl.ARENA4_TOP], free: arenaFree(store, false), leechers: store.ctl[ShardControl.LEECHERS], live: store.ctl[ShardControl.PEER_LIVE] };
      expect(arenaFree(store, false).filter((b) => b.cls >= 7)).toEqual([]);
      expect(nextBlock(store, false, 7)).toEqual({ start: 128, fromLists: false });
      const slot = store.allocPeer(x, peerId(id), 0);
      expect(slot).toBeGreaterThanOrEqual(0);
      store.peers.u8[slot * PeerRecord.SIZE + PeerRecord.FLAGS] = PF_LIVE;
      expect(store.arrays.place(slot, wire(false, id, 1), 0)).toBe(false);
      expect({ counts: swarmCounts(store, x), top: store.ctl[ShardControl.ARENA4_TOP], free: arenaFree(store, false), leechers: store.ctl[ShardControl.LEECHERS] }).toEqual({
        counts: before.counts,
        top: before.top,
        free: before.free,
        leechers: before.leechers,
      });
      expect([blockOf(store, x, false), classOf(store, x, false)]).toEqual([32, 6]);
      store.freePeer(slot);
      expect(store.ctl[ShardControl.PEER_LIVE]).toBe(before.live);
      expect(store.findPeer(x, peerId(id), 0)).toBe(-1);
      id++;
    };
    expect(store.ctl[ShardControl.PEER_LIVE]).toBe(34);
    refuse();
    expect(store.arena4.addr.capacity).toBe(reserve);
    checkStore(store);

    // the free blocks still serve: another swarm grows to 5 peers without moving the top,
    // and the other family's arena is unaffected
    const y = swarms[2]!;
    const yPeers = Array.from({ length: 5 }, () => add(y));
    expect(yPeers.every((p) => p >= 0)).toBe(true);
    expect([blockOf(store, y, false), classOf(store, y, false)]).toEqual([8, 4]);
    expect(store.ctl[ShardControl.ARENA4_TOP]).toBe(66);
    expect(add(y, { v6: true })).toBeGreaterThanOrEqual(0);
    expect([store.ctl[ShardControl.PEERS_V6], store.ctl[ShardControl.ARENA6_TOP]]).toEqual([1, 2]);
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
    expect(store.ctl[ShardControl.ARENA4_TOP]).toBe(128);
    expect(swarmCounts(store, x)).toEqual(counts(0, 33));
    expect(arenaFree(store, false)).toEqual([{ start: 2, cls: 2 }, { start: 4, cls: 3 }, { start: 16, cls: 5 }, { start: 32, cls: 6 }]);
    checkStore(store);
    // and with everybody gone, the arena is one free block
    for (const s of swarms) for (const v6 of [false, true]) for (const seed of [true, false]) for (const p of slotsOf(store, s, v6, seed)) store.removePeer(p);
    expect(store.ctl[ShardControl.PEER_LIVE]).toBe(0);
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
    const top = store.ctl[ShardControl.ARENA4_TOP]!;
    expect(top).toBeGreaterThanOrEqual(need);
    expect(top).toBeLessThanOrEqual(1.3 * need);
    checkStore(store);
    // everybody leaves (in the order they came): the whole arena is free and merged
    for (const slot of slots) store.removePeer(slot);
    expect(store.ctl[ShardControl.ARENA4_TOP]).toBe(top);
    expect(byStart(arenaFree(store, false))).toEqual(alignedBlocks(0, top));
    checkStore(store);
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
    expect(store.ctl[ShardControl.PEERS_V6]).toBe(2);
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
    expect(store.ctl[ShardControl.SWARM_LIVE]).toBe(3);
    expect(store.ctl[ShardControl.PEER_LIVE]).toBe(3);
    expect(store.ctl[ShardControl.SEEDERS]).toBe(0);
    expect(store.ctl[ShardControl.LEECHERS]).toBe(3);
    expect(store.ctl[ShardControl.PEERS_V6]).toBe(1);
    // D's IPv6 block went back when its last peer expired
    expect(classOf(store, D, true)).toBe(0);
    checkStore(store);
    // nothing more to do at the same time
    expect(store.expire(200, 100, 1_000_000)).toBe(0);
    expect(store.ctl[ShardControl.SWARM_LIVE]).toBe(3);
  });

  it('visits at most `budget` slots per call and continues where it stopped', () => {
    const { store } = fresh();
    const s = store.addSwarm(sha1('S'), 0, 1000);
    for (let i = 0; i < 10; i++) addPeer(store, s, peerId(i), { now: 0, v6: i % 2 === 1 });
    const c = store.ctl;
    expect(store.expire(500, 100, 4)).toBe(4);
    expect(c[ShardControl.SWEEP_PEER]).toBe(4);
    for (let i = 0; i < 4; i++) expect(store.findPeer(s, peerId(i), 0)).toBe(-1);
    for (let i = 4; i < 10; i++) expect(store.findPeer(s, peerId(i), 0)).toBe(i);
    expect(swarmCounts(store, s)).toEqual(counts(0, 3, 0, 3));
    // refresh peer 9 and re-add peer 0 (slot 3, last freed, reused)
    touch(store, 9, 500);
    expect(addPeer(store, s, peerId(0), { now: 500 })).toBe(3);
    expect(store.expire(500, 100, 4)).toBe(4); // slots 4..7
    expect(c[ShardControl.SWEEP_PEER]).toBe(8);
    expect(store.expire(500, 100, 4)).toBe(1); // slots 8, 9 (fresh), 0, 1 (free), wraps
    expect(c[ShardControl.SWEEP_PEER]).toBe(2);
    expect(store.findPeer(s, peerId(8), 0)).toBe(-1);
    expect(store.findPeer(s, peerId(9), 0)).toBe(9);
    expect(store.findPeer(s, peerId(0), 0)).toBe(3);
    expect(swarmCounts(store, s)).toEqual(counts(0, 1, 0, 1));
    expect(segment(store, s, false, false).map((e) => e.slot)).toEqual([3]);
    expect(segment(store, s, true, false).map((e) => e.slot)).toEqual([9]);
    // swarm sweep has its own cursor
    expect(c[ShardControl.SWEEP_SWARM]).toBe(1); // one swarm slot: visited up to 4 times, cursor past it
    checkStore(store);
  });
});

// recover() (recovery.ts): a second store attached to the same memory re-derives everything.
import { describe, expect, it } from 'vitest';
import { MIN_CLASS, classEntries } from './arena.js';
import { ShardControl, MAX_CLASS, NIL, PF_LIVE, PF_SEEDER, PF_V6, PeerRecord, SwarmRecord, SWF_LIVE } from './memory-layout.js';
import { type ShardMemory } from './memory.js';
import { SwarmStore } from './swarm-store.js';
import { HashIndex } from './table.js';
import { prng } from '../test/support/prng.js';
import { fresh, sha1, prefixed, peerId, hex, sorted, addPeer, fam, Counts, swarmCounts, counts, classOf, blockOf, Entry, segment, slotsOf, arenaFree, byStart, nextBlock, freeList, checkStore } from '../test/support/swarm-store.js';

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
    ctl[k] = c[ShardControl[k]]!;
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
    store.swarms.dv.setUint32(slots[w]! * SwarmRecord.SIZE + SwarmRecord.COMPLETED, w, true);
    store.swarms.dv.setUint32(slots[w]! * SwarmRecord.SIZE + SwarmRecord.ROT_SEED, w * 3, true);
    store.swarms.dv.setUint32(slots[w]! * SwarmRecord.SIZE + SwarmRecord.ROT_LEECH, w * 5, true);
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
      expect(again.swarms.dv.getUint32(s * SwarmRecord.SIZE + SwarmRecord.COMPLETED, true)).toBe(w);
      expect(again.swarms.dv.getUint32(s * SwarmRecord.SIZE + SwarmRecord.ROT_SEED, true)).toBe(w * 3);
      expect(again.swarms.dv.getUint32(s * SwarmRecord.SIZE + SwarmRecord.ROT_LEECH, true)).toBe(w * 5);
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
    const high = store.ctl[ShardControl.PEER_HIGH]!;
    for (let p = 0; p < high; p++) {
      const at = p * PeerRecord.SIZE;
      store.peers.dv.setInt32(at + PeerRecord.POS, Math.floor(rnd() * high) - 3, true);
      if (store.peers.u8[at + PeerRecord.FLAGS]! & PF_LIVE) store.peers.u8[at + PeerRecord.FLAGS] = store.peers.u8[at + PeerRecord.FLAGS]! ^ (rnd() < 0.5 ? PF_SEEDER : 0) ^ (rnd() < 0.5 ? PF_V6 : 0);
    }
    // swarm free-list links garbage (a cycle), classes of dead swarms garbage
    for (let s = 0; s < store.ctl[ShardControl.SWARM_HIGH]!; s++) {
      const at = s * SwarmRecord.SIZE;
      if (!(store.swarms.u8[at + SwarmRecord.FLAGS]! & SWF_LIVE)) {
        store.swarms.dv.setInt32(at + SwarmRecord.LAST_ACTIVE, 0, true);
        store.swarms.u8[at + SwarmRecord.CLASS4] = 5;
      }
    }
    // totals and free heads wrong (free heads point at live records / used blocks)
    const c = store.ctl;
    c[ShardControl.SEEDERS] = -5;
    c[ShardControl.LEECHERS] = 99;
    c[ShardControl.PEERS_V6] = 7;
    c[ShardControl.PEER_LIVE] = 1;
    c[ShardControl.SWARM_LIVE] = 0;
    c[ShardControl.PEER_FREE] = before.swarms[hex(swarmKeys[1]!)]!.seed4[0]?.slot ?? before.swarms[hex(swarmKeys[1]!)]!.leech4[0]!.slot;
    c[ShardControl.SWARM_FREE] = 1;
    for (let k = 0; k < MAX_CLASS; k++) {
      c[ShardControl.FREE4 + k] = k % 3 === 0 ? NIL : usedBlock;
      c[ShardControl.FREE6 + k] = k;
    }
    // marks garbage too: on used blocks (a merge would take them) and inside free ones
    store.arena4.marks.u8[usedBlock] = classOf(store, store.findSwarm(swarmKeys[1]!, 0), false);
    for (let k = 0; k < 200; k++) store.arena4.marks.u8[Math.floor(rnd() * c[ShardControl.ARENA4_TOP]!)] = 1 + Math.floor(rnd() * 10);
    for (let k = 0; k < 50; k++) store.arena6.marks.u8[Math.floor(rnd() * c[ShardControl.ARENA6_TOP]!)] = 1 + Math.floor(rnd() * 10);

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
    const setCount = (s: number, field: number, value: number): void => store.swarms.dv.setUint32(s * SwarmRecord.SIZE + field, value, true);
    const getCount = (s: number, field: number): number => store.swarms.dv.getUint32(s * SwarmRecord.SIZE + field, true);
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
    const S1 = getCount(s1, SwarmRecord.SEED4);
    setEntry(s1, false, S1 + 2, exp(w1).leech4[0]!.slot);
    dropLeech4(w1, 2);
    // 2) entries pointing to a dead slot (a freed peer), out of range, negative
    const w2 = pick(store, swarmKeys, taken, false, false, 4);
    const s2 = slotOf(w2);
    const S2 = getCount(s2, SwarmRecord.SEED4);
    const dead = before.peerFree[0]!;
    setEntry(s2, false, S2 + 3, dead);
    setEntry(s2, false, S2 + 1, store.ctl[ShardControl.PEER_HIGH]! + 10);
    setEntry(s2, false, S2 + 0, -7);
    dropLeech4(w2, 3);
    dropLeech4(w2, 1);
    dropLeech4(w2, 0);
    // 3) a peer record killed mid-free (not live any more) while still in an array
    const w3 = pick(store, swarmKeys, taken, false, true, 2);
    const killed = exp(w3).seed4[1]!.slot;
    store.peers.u8[killed * PeerRecord.SIZE + PeerRecord.FLAGS] = 0;
    exp(w3).seed4.splice(1, 1);
    freed.add(killed);
    // 4) an entry naming a live peer of another swarm: dropped here, kept there
    const w4 = pick(store, swarmKeys, taken, false, false, 2);
    const s4 = slotOf(w4);
    const foreign = exp(w3).seed4[0]!.slot;
    setEntry(s4, false, getCount(s4, SwarmRecord.SEED4) + 1, foreign);
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
    setEntry(s5, true, getCount(s5, SwarmRecord.SEED6) + 1, exp(w5).seed4[0]!.slot);
    exp(w5).leech6.splice(1, 1);
    freed.add(lostV6);
    // 6) the segment boundary one entry early (seeders - 1, leechers + 1): the last seeder is
    //    now the first leecher; the counters say where the array ends, so nobody is lost
    const w6 = pick(store, swarmKeys, taken, false, true, 2);
    const s6 = slotOf(w6);
    setCount(s6, SwarmRecord.SEED4, getCount(s6, SwarmRecord.SEED4) - 1);
    setCount(s6, SwarmRecord.LEECH4, getCount(s6, SwarmRecord.LEECH4) + 1);
    exp(w6).leech4.unshift(exp(w6).seed4.pop()!);
    // 6b) only the seeder counter one too small: the array now ends one entry early as well,
    //     so the last seeder becomes a leecher and the last leecher is lost
    const w6b = pick(store, swarmKeys, taken, false, true, 2);
    const s6b = slotOf(w6b);
    setCount(s6b, SwarmRecord.SEED4, getCount(s6b, SwarmRecord.SEED4) - 1);
    dropLeech4(w6b, exp(w6b).leech4.length - 1);
    exp(w6b).leech4.unshift(exp(w6b).seed4.pop()!);
    // 7) leecher counter two too small: the last two leechers are lost
    const w7 = pick(store, swarmKeys, taken, false, false, 3);
    const s7 = slotOf(w7);
    setCount(s7, SwarmRecord.LEECH4, getCount(s7, SwarmRecord.LEECH4) - 2);
    const l7 = exp(w7).leech4.length;
    dropLeech4(w7, l7 - 1);
    dropLeech4(w7, l7 - 2);
    // 8) leecher counter too large: the stale entries past the end are not peers of this swarm
    const w8 = pick(store, swarmKeys, taken, false, false, 1);
    const s8 = slotOf(w8);
    const n8 = getCount(s8, SwarmRecord.SEED4) + getCount(s8, SwarmRecord.LEECH4);
    const cap8 = classEntries(classOf(store, s8, false));
    const extra = Math.min(3, cap8 - n8);
    const stale = [exp(w8).leech4[0]!.slot, dead, -1];
    for (let k = 0; k < extra; k++) setEntry(s8, false, n8 + k, stale[k]!);
    setCount(s8, SwarmRecord.LEECH4, getCount(s8, SwarmRecord.LEECH4) + 3); // even beyond the block: clamped to its class
    // 9) seeder counter garbage (larger than the block): everything in the block counts as a seeder
    const w9 = pick(store, swarmKeys, taken, false, false, 1);
    const s9 = slotOf(w9);
    const n9 = getCount(s9, SwarmRecord.SEED4) + getCount(s9, SwarmRecord.LEECH4);
    for (let i = n9; i < classEntries(classOf(store, s9, false)); i++) setEntry(s9, false, i, -1);
    setCount(s9, SwarmRecord.SEED4, 0xffffffff);
    exp(w9).seed4.push(...exp(w9).leech4.splice(0));
    // 10) an IPv6 array with garbage counters but no block: nothing there
    const w10 = pick(store, swarmKeys, taken, false, false, 1);
    const s10 = slotOf(w10);
    if (classOf(store, s10, true) === 0) {
      setCount(s10, SwarmRecord.SEED6, 5);
      setCount(s10, SwarmRecord.LEECH6, 9);
    }
    // totals wrong too
    store.ctl[ShardControl.SEEDERS] = 0;
    store.ctl[ShardControl.PEERS_V6] = 1_000_000;

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
    expect(again.peers.u8[moved * PeerRecord.SIZE + PeerRecord.FLAGS]! & PF_SEEDER).toBe(0);
    for (const e of exp(w9).seed4) expect(again.peers.u8[e.slot * PeerRecord.SIZE + PeerRecord.FLAGS]! & PF_SEEDER).toBe(PF_SEEDER);
  });

  it('resolves records a crash left half-written', () => {
    const { mem, store, swarmKeys, peerKeys } = populated();
    const c = store.ctl;
    const s1 = store.findSwarm(swarmKeys[1]!, 0);
    const w3 = [3, 7, 11, 13, 17, 19].find((w) => segment(store, store.findSwarm(swarmKeys[w]!, 0), false, false).length > 0)!;
    const s3 = store.findSwarm(swarmKeys[w3]!, 0);
    // 1) died in allocPeer/announce after taking a fresh slot and indexing it, before place()
    const half = store.allocPeer(s1, peerId(90_001), 0);
    store.peers.u8[half * PeerRecord.SIZE + PeerRecord.FLAGS] = PF_LIVE | PF_SEEDER;
    expect(store.findPeer(s1, peerId(90_001), 0)).toBe(half);
    // 2) died in removePeer after displace(), before freePeer(): the record is live but no
    //    array holds it (its address is gone), so it is freed; the client announces again
    const victim = segment(store, s3, false, false)[0]!.slot;
    const victimId = store.peers.u8.slice(victim * PeerRecord.SIZE + PeerRecord.PEER_ID, victim * PeerRecord.SIZE + PeerRecord.PEER_ID + 20);
    store.arrays.displace(victim);
    expect(store.findPeer(s3, victimId, 0)).toBe(victim);
    // 2b) ... or after unindexing too
    const victim2 = segment(store, s3, false, false)[0]?.slot ?? segment(store, s3, false, true)[0]!.slot;
    const victim2Id = store.peers.u8.slice(victim2 * PeerRecord.SIZE + PeerRecord.PEER_ID, victim2 * PeerRecord.SIZE + PeerRecord.PEER_ID + 20);
    store.arrays.displace(victim2);
    store.peerIndex.remove(indexHashOf(store.peerIndex, victim2), victim2);
    // 3) a live swarm record freed in the middle (flags cleared, blocks and peers still there)
    const s5 = store.findSwarm(swarmKeys[5]!, 0);
    const orphans = [false, true].flatMap((v6) => [...slotsOf(store, s5, v6, true), ...slotsOf(store, s5, v6, false)]);
    expect(orphans.length).toBeGreaterThan(0);
    const orphanBlock = { start: blockOf(store, s5, false), cls: classOf(store, s5, false) };
    expect(orphanBlock.cls).toBeGreaterThan(0);
    store.swarms.u8[s5 * SwarmRecord.SIZE + SwarmRecord.FLAGS] = 0;
    // 4) a peer record pointing beyond the swarm slab's high-water mark
    const stray = segment(store, s1, false, false)[0]?.slot ?? segment(store, s1, false, true)[0]!.slot;
    store.peers.dv.setUint32(stray * PeerRecord.SIZE + PeerRecord.SWARM, c[ShardControl.SWARM_HIGH]! + 3, true);
    const strayId = store.peers.u8.slice(stray * PeerRecord.SIZE + PeerRecord.PEER_ID, stray * PeerRecord.SIZE + PeerRecord.PEER_ID + 20);
    //    ... even if garbage above the high-water mark looks like a live swarm with a block
    expect(c[ShardControl.SWARM_HIGH]! + 3).toBeLessThan(store.swarms.capacity);
    const ghost = (c[ShardControl.SWARM_HIGH]! + 3) * SwarmRecord.SIZE;
    store.swarms.u8[ghost + SwarmRecord.FLAGS] = SWF_LIVE;
    store.swarms.u8[ghost + SwarmRecord.CLASS4] = 3;
    store.swarms.dv.setUint32(ghost + SwarmRecord.LEECH4, 1, true);

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
      const top = again.ctl[ShardControl.ARENA4_TOP]!;
      expect(addPeer(again, grower, peerId(300_000 + i))).toBeGreaterThanOrEqual(0);
      if (!willGrow) continue;
      expect([blockOf(again, grower, false), classOf(again, grower, false)]).toEqual([want.start, next]);
      if (want.fromLists) {
        fromLists++;
        expect(again.ctl[ShardControl.ARENA4_TOP]).toBe(top);
      } else {
        fromTop++;
        expect(again.ctl[ShardControl.ARENA4_TOP]).toBe(want.start + classEntries(next));
      }
    }
    expect(classOf(again, grower, false)).toBe(12);
    expect(fromLists).toBeGreaterThan(0);
    expect(fromTop).toBeGreaterThan(0);
    checkStore(again, false);
  });
});

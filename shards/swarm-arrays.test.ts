// The swarms' peer arrays (swarm-arrays.ts): what copyPeers hands out, rotation, never the asker.
import { describe, expect, it } from 'vitest';
import { PeerRecord, SwarmRecord } from './memory-layout.js';
import { ENTRY_FULL } from '../contract/requests.js';
import { SwarmStore } from './swarm-store.js';
import { fresh, sha1, peerId, hex, sorted, wire, addPeer, segment, checkStore } from '../test/support/swarm-store.js';

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
    store.swarms.dv.getUint32(s * SwarmRecord.SIZE + (seeders ? SwarmRecord.ROT_SEED : SwarmRecord.ROT_LEECH), true);
  const entries = (out: Uint8Array, to: number, n: number, size: number): string[] =>
    Array.from({ length: n }, (_, i) => hex(out.subarray(to + i * size, to + (i + 1) * size)));

  it('copies compact entries of one segment from the rotation counter, wrapping, and advances it by the number copied', () => {
    const { store, s, seeds, leeches } = build();
    const seedAddrs = segment(store, s, false, true).map((e) => e.addr);
    expect(segment(store, s, false, true).map((e) => e.slot)).toEqual(seeds);
    const out = new Uint8Array(200).fill(0xee);
    expect(store.arrays.copyPeers(s, store.arrays.family(0), true, -1, 3, out, 10, 6)).toBe(3);
    expect(entries(out, 10, 3, 6)).toEqual(seedAddrs.slice(0, 3));
    expect(out[9]).toBe(0xee); // nothing written outside the entries
    expect(out[28]).toBe(0xee);
    expect(rot(store, s)).toBe(3);
    expect(store.arrays.copyPeers(s, store.arrays.family(0), true, -1, 4, out, 0, 6)).toBe(4);
    expect(entries(out, 0, 4, 6)).toEqual([seedAddrs[3], seedAddrs[4], seedAddrs[0], seedAddrs[1]]);
    expect(rot(store, s)).toBe(7);
    // the leecher segment has its own counter and holds only leechers
    const leechAddrs = segment(store, s, false, false).map((e) => e.addr);
    expect(segment(store, s, false, false).map((e) => e.slot).sort()).toEqual(sorted(leeches));
    expect(store.arrays.copyPeers(s, store.arrays.family(0), false, -1, 2, out, 0, 6)).toBe(2);
    expect(entries(out, 0, 2, 6)).toEqual([leechAddrs[0], leechAddrs[1]]);
    expect(rot(store, s, false)).toBe(2);
    expect(store.arrays.copyPeers(s, store.arrays.family(0), false, -1, 50, out, 0, 6)).toBe(3);
    expect(entries(out, 0, 3, 6)).toEqual([leechAddrs[2], leechAddrs[0], leechAddrs[1]]);
    expect(rot(store, s, false)).toBe(5);
    expect(rot(store, s)).toBe(7); // the seeder counter did not move
    // nothing asked or nothing there: nothing copied, the counters stay
    expect(store.arrays.copyPeers(s, store.arrays.family(0), true, -1, 0, out, 0, 6)).toBe(0);
    expect(store.arrays.copyPeers(s, store.arrays.family(1), false, -1, 10, out, 0, 18)).toBe(0);
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
      const n = store.arrays.copyPeers(s, store.arrays.family(0), true, self, 50, out, 0, 6);
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
    expect(st2.arrays.copyPeers(lone, st2.arrays.family(0), true, p, 50, out, 0, 6)).toBe(0);
    expect(rot(st2, lone)).toBe(0);
  });

  it('writes non-compact entries: ip16 (IPv4 as ::ffff:a.b.c.d), port big-endian, peer_id', () => {
    const { store, s } = build();
    const out = new Uint8Array(400).fill(0xee);
    expect(store.arrays.copyPeers(s, store.arrays.family(0), false, -1, 2, out, 3, ENTRY_FULL)).toBe(2);
    const leech = segment(store, s, false, false);
    for (let i = 0; i < 2; i++) {
      const e = out.subarray(3 + i * ENTRY_FULL, 3 + (i + 1) * ENTRY_FULL);
      const a = Buffer.from(leech[i]!.addr, 'hex');
      expect([...e.subarray(0, 12)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
      expect([...e.subarray(12, 18)]).toEqual([...a]);
      const slot = leech[i]!.slot;
      expect(e.subarray(18, 38)).toEqual(store.peers.u8.subarray(slot * PeerRecord.SIZE + PeerRecord.PEER_ID, slot * PeerRecord.SIZE + PeerRecord.PEER_ID + 20));
    }
    expect(out[2]).toBe(0xee);
    expect(out[3 + 2 * ENTRY_FULL]).toBe(0xee);
    expect(store.arrays.copyPeers(s, store.arrays.family(1), true, -1, 5, out, 0, ENTRY_FULL)).toBe(2);
    const seed6 = segment(store, s, true, true);
    for (let i = 0; i < 2; i++) {
      const e = out.subarray(i * ENTRY_FULL, (i + 1) * ENTRY_FULL);
      expect(hex(e.subarray(0, 18))).toBe(seed6[(i + 2) % 2]!.addr); // rot was 2 → 2 % 2 = 0
      expect(e.subarray(18, 38)).toEqual(peerId(20 + ((i + 2) % 2)));
    }
    // compact IPv6: 18 bytes as stored
    expect(store.arrays.copyPeers(s, store.arrays.family(1), true, -1, 1, out, 0, 18)).toBe(1);
    expect(hex(out.subarray(0, 18))).toBe(seed6[0]!.addr); // rot 4 % 2 = 0
  });
});

// SwarmStore driven by random operations against a reference model made of JS Maps.
import { describe, expect, it } from 'vitest';
import { ShardControl, INITIAL_PEERS, INITIAL_SWARMS, PF_LIVE, PF_SEEDER, PF_V6, PeerRecord, SwarmRecord } from './memory-layout.js';
import { SwarmStore } from './swarm-store.js';
import { prng } from '../test/support/prng.js';
import { fresh, sha1, prefixed, peerId, hex, wire, addPeer, setFlags, touch, swarmCounts, counts, classOf, segment, checkStore } from '../test/support/swarm-store.js';

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
      expect(c[ShardControl.SWARM_LIVE]).toBe(swarms.size);
      expect(c[ShardControl.PEER_LIVE]).toBe(all.length);
      let seeders = 0;
      let v6 = 0;
      for (const p of all) {
        if (p.seeder) seeders++;
        if (p.v6) v6++;
      }
      expect(c[ShardControl.SEEDERS]).toBe(seeders);
      expect(c[ShardControl.LEECHERS]).toBe(all.length - seeders);
      expect(c[ShardControl.PEERS_V6]).toBe(v6);
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
        const at = p.slot * PeerRecord.SIZE;
        const flags = PF_LIVE | (p.seeder ? PF_SEEDER : 0) | (p.v6 ? PF_V6 : 0);
        if (store.peers.u8[at + PeerRecord.FLAGS] !== flags) errors.push(`peer ${p.slot} flags ${store.peers.u8[at + PeerRecord.FLAGS]} != ${flags}`);
        if (store.peers.dv.getUint32(at + PeerRecord.LAST_SEEN, true) !== p.lastSeen) errors.push(`peer ${p.slot} last seen differs`);
        if (store.peers.dv.getUint32(at + PeerRecord.SWARM, true) !== p.swarm.slot) errors.push(`peer ${p.slot} swarm differs`);
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
        store.swarms.dv.setUint32(sw.slot * SwarmRecord.SIZE + SwarmRecord.LAST_ACTIVE, now, true);
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
        store.swarms.dv.setUint32(p.swarm.slot * SwarmRecord.SIZE + SwarmRecord.LAST_ACTIVE, now, true);
        store.arrays.setAddress(p.slot, p.addr, 0);
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
        let high = c[ShardControl.PEER_HIGH]!;
        let pos = c[ShardControl.SWEEP_PEER]!;
        const gone = new Set<MPeer>(); // a budget larger than the slab visits slots twice
        for (let n = 0; n < budget && high > 0; n++) {
          if (pos >= high) pos = 0;
          const p = bySlot.get(pos);
          if (p && now - p.lastSeen > TIMEOUT) gone.add(p);
          pos++;
        }
        const expectPeerCursor = pos;
        for (const p of gone) removeFromAll(p);
        high = c[ShardControl.SWARM_HIGH]!;
        pos = c[ShardControl.SWEEP_SWARM]!;
        const goneSwarms: MSwarm[] = [];
        for (let n = 0; n < budget && high > 0; n++) {
          if (pos >= high) pos = 0;
          const sw = swarmBySlot.get(pos);
          if (sw && sw.peers.size === 0 && now - sw.lastActive > TIMEOUT && !goneSwarms.includes(sw)) goneSwarms.push(sw);
          pos++;
        }
        expect(store.expire(now, TIMEOUT, budget)).toBe(gone.size);
        expect(c[ShardControl.SWEEP_PEER]).toBe(expectPeerCursor);
        expect(c[ShardControl.SWEEP_SWARM]).toBe(pos);
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
    expect(store.ctl[ShardControl.SWARM_HIGH]).toBeGreaterThan(INITIAL_SWARMS);
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

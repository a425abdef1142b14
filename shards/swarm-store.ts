import { hash20, equal20 } from './hash.js';
import { CTL, GLOBAL, INITIAL_PEERS, INITIAL_SWARMS, NIL, PF_LIVE, PF_SEEDER, PF_V6, PR, SW, SWF_LIVE } from './layout.js';
import { HashIndex, Slab, type KeyMatcher } from './table.js';

/** The shared buffers that hold one shard's swarms. Owned by the acceptor, written by the shard. */
export interface SwarmBuffers {
  ctl: SharedArrayBuffer;
  global: SharedArrayBuffer;
  swarms: SharedArrayBuffer;
  swarmIndex: SharedArrayBuffer;
  peers: SharedArrayBuffer;
  peerIndex: SharedArrayBuffer;
}

/**
 * Swarms and peers of one shard, with no JS object per swarm or peer.
 *
 * - swarm slab: SW records; index info_hash → swarm slot.
 * - peer slab: PR records; index (swarm slot, peer_id) → peer slot.
 * - each swarm links its peers in two circular doubly-linked lists (seeders; leechers and
 *   paused peers) through PR.NEXT/PREV; the list head is also the rotation cursor of
 *   peer selection, so successive answers walk around the swarm.
 * - free slots of both slabs are chained through a link field; slabs and indexes double
 *   when full (indexes are rebuilt from the slabs, keeping their load ≤ 1/2).
 *
 * Only the owning shard thread writes. Table headers live in the control block so a
 * respawned shard resumes on the same memory (after recover() re-derives what a crash in
 * the middle of an update could have left inconsistent).
 */
export class SwarmStore {
  readonly ctl: Int32Array;
  readonly global: Int32Array;
  readonly swarms: Slab;
  readonly swarmIndex: HashIndex;
  readonly peers: Slab;
  readonly peerIndex: HashIndex;
  private readonly seed: number;
  private readonly swarmKeys: KeyMatcher;
  private readonly peerKeys: KeyMatcher;

  constructor(bufs: SwarmBuffers) {
    this.ctl = new Int32Array(bufs.ctl);
    this.global = new Int32Array(bufs.global);
    this.swarms = new Slab(bufs.swarms, SW.SIZE);
    this.swarmIndex = new HashIndex(bufs.swarmIndex);
    this.peers = new Slab(bufs.peers, PR.SIZE);
    this.peerIndex = new HashIndex(bufs.peerIndex);
    this.seed = Atomics.load(this.global, GLOBAL.HASH_SEED);
    const swarms = this.swarms;
    const peers = this.peers;
    this.swarmKeys = {
      matches: (slot, key, off) => equal20(swarms.u8, slot * SW.SIZE + SW.INFO_HASH, key, off),
    };
    this.peerKeys = {
      matches: (slot, key, off, swarm) =>
        peers.dv.getUint32(slot * PR.SIZE + PR.SWARM, true) === swarm && equal20(peers.u8, slot * PR.SIZE + PR.PEER_ID, key, off),
    };
    if (this.ctl[CTL.SWARM_INDEX_CAP] === 0) this.init();
  }

  /** Sizes of the buffers for a fresh shard. */
  static initialBytes(): { swarms: number; swarmIndex: number; peers: number; peerIndex: number } {
    return {
      swarms: INITIAL_SWARMS * SW.SIZE,
      swarmIndex: HashIndex.bytesFor(INITIAL_SWARMS * 2),
      peers: INITIAL_PEERS * PR.SIZE,
      peerIndex: HashIndex.bytesFor(INITIAL_PEERS * 2),
    };
  }

  private init(): void {
    const c = this.ctl;
    c[CTL.SWARM_CAP] = this.swarms.capacity;
    c[CTL.SWARM_HIGH] = 0;
    c[CTL.SWARM_FREE] = NIL;
    c[CTL.SWARM_LIVE] = 0;
    c[CTL.SWARM_INDEX_CAP] = this.swarmIndex.capacity;
    c[CTL.PEER_CAP] = this.peers.capacity;
    c[CTL.PEER_HIGH] = 0;
    c[CTL.PEER_FREE] = NIL;
    c[CTL.PEER_LIVE] = 0;
    c[CTL.PEER_INDEX_CAP] = this.peerIndex.capacity;
  }

  // ------------------------------------------------------------------ swarms

  findSwarm(key: Uint8Array, off: number): number {
    return this.swarmIndex.find(hash20(key, off, this.seed), key, off, 0, this.swarmKeys);
  }

  /** Create the swarm of an info_hash. Returns -1 when the table is at its configured bound. */
  addSwarm(key: Uint8Array, off: number, now: number): number {
    const c = this.ctl;
    if (c[CTL.SWARM_LIVE] + 1 > this.swarmIndex.capacity >> 1 && !this.growSwarmIndex()) return -1;
    let slot = c[CTL.SWARM_FREE];
    if (slot !== NIL) {
      c[CTL.SWARM_FREE] = this.swarms.dv.getInt32(slot * SW.SIZE + SW.LAST_ACTIVE, true);
    } else {
      if (c[CTL.SWARM_HIGH] >= this.swarms.capacity) {
        if (!this.swarms.grow()) return -1;
        c[CTL.SWARM_CAP] = this.swarms.capacity;
      }
      slot = c[CTL.SWARM_HIGH]++;
    }
    const u8 = this.swarms.u8;
    const dv = this.swarms.dv;
    const at = slot * SW.SIZE;
    u8.fill(0, at, at + SW.SIZE);
    u8.set(key.subarray(off, off + 20), at + SW.INFO_HASH);
    u8[at + SW.FLAGS] = SWF_LIVE;
    dv.setInt32(at + SW.SEED_HEAD, NIL, true);
    dv.setInt32(at + SW.LEECH_HEAD, NIL, true);
    dv.setUint32(at + SW.LAST_ACTIVE, now, true);
    this.swarmIndex.insert(hash20(key, off, this.seed), slot);
    c[CTL.SWARM_LIVE]++;
    return slot;
  }

  /** Free an empty swarm. */
  removeSwarm(slot: number): void {
    const u8 = this.swarms.u8;
    const at = slot * SW.SIZE;
    this.swarmIndex.remove(hash20(u8, at + SW.INFO_HASH, this.seed), slot);
    u8[at + SW.FLAGS] = 0;
    this.swarms.dv.setInt32(at + SW.LAST_ACTIVE, this.ctl[CTL.SWARM_FREE], true);
    this.ctl[CTL.SWARM_FREE] = slot;
    this.ctl[CTL.SWARM_LIVE]--;
  }

  private growSwarmIndex(): boolean {
    const next = this.swarmIndex.capacity * 2;
    if (next > this.swarmIndex.maxEntries) return false;
    this.rebuildSwarmIndex(next);
    return true;
  }

  private rebuildSwarmIndex(entries: number): void {
    this.swarmIndex.reset(entries);
    this.ctl[CTL.SWARM_INDEX_CAP] = this.swarmIndex.capacity;
    const u8 = this.swarms.u8;
    const high = this.ctl[CTL.SWARM_HIGH];
    for (let s = 0; s < high; s++) {
      const at = s * SW.SIZE;
      if (u8[at + SW.FLAGS] & SWF_LIVE) this.swarmIndex.insert(hash20(u8, at + SW.INFO_HASH, this.seed), s);
    }
  }

  // ------------------------------------------------------------------ peers

  findPeer(swarm: number, peerId: Uint8Array, off: number): number {
    return this.peerIndex.find(hash20(peerId, off, this.seed, swarm), peerId, off, swarm, this.peerKeys);
  }

  /**
   * Take a peer slot for (swarm, peer_id) and index it. The caller fills the record and
   * then links it with link(). Returns -1 when the table is at its configured bound.
   */
  allocPeer(swarm: number, peerId: Uint8Array, off: number): number {
    const c = this.ctl;
    if (c[CTL.PEER_LIVE] + 1 > this.peerIndex.capacity >> 1 && !this.growPeerIndex()) return -1;
    let slot = c[CTL.PEER_FREE];
    if (slot !== NIL) {
      c[CTL.PEER_FREE] = this.peers.dv.getInt32(slot * PR.SIZE + PR.NEXT, true);
    } else {
      if (c[CTL.PEER_HIGH] >= this.peers.capacity) {
        if (!this.peers.grow()) return -1;
        c[CTL.PEER_CAP] = this.peers.capacity;
      }
      slot = c[CTL.PEER_HIGH]++;
    }
    const at = slot * PR.SIZE;
    this.peers.u8.fill(0, at, at + PR.SIZE);
    this.peers.dv.setUint32(at + PR.SWARM, swarm, true);
    this.peers.u8.set(peerId.subarray(off, off + 20), at + PR.PEER_ID);
    this.peerIndex.insert(hash20(peerId, off, this.seed, swarm), slot);
    c[CTL.PEER_LIVE]++;
    return slot;
  }

  /** Unlink, unindex and free a peer. */
  removePeer(slot: number): void {
    const u8 = this.peers.u8;
    const at = slot * PR.SIZE;
    const swarm = this.peers.dv.getUint32(at + PR.SWARM, true);
    this.unlink(slot);
    this.peerIndex.remove(hash20(u8, at + PR.PEER_ID, this.seed, swarm), slot);
    u8[at + PR.FLAGS] = 0;
    this.peers.dv.setInt32(at + PR.NEXT, this.ctl[CTL.PEER_FREE], true);
    this.ctl[CTL.PEER_FREE] = slot;
    this.ctl[CTL.PEER_LIVE]--;
  }

  private growPeerIndex(): boolean {
    const next = this.peerIndex.capacity * 2;
    if (next > this.peerIndex.maxEntries) return false;
    this.rebuildPeerIndex(next);
    return true;
  }

  private rebuildPeerIndex(entries: number): void {
    this.peerIndex.reset(entries);
    this.ctl[CTL.PEER_INDEX_CAP] = this.peerIndex.capacity;
    const u8 = this.peers.u8;
    const dv = this.peers.dv;
    const high = this.ctl[CTL.PEER_HIGH];
    for (let p = 0; p < high; p++) {
      const at = p * PR.SIZE;
      if (u8[at + PR.FLAGS] & PF_LIVE) {
        this.peerIndex.insert(hash20(u8, at + PR.PEER_ID, this.seed, dv.getUint32(at + PR.SWARM, true)), p);
      }
    }
  }

  // ------------------------------------------------------------------ swarm lists

  /**
   * Put a live peer on its swarm's seed or leech list (by PF_SEEDER) and count it.
   * New peers go just behind the head, i.e. last in rotation order.
   */
  link(slot: number): void {
    const pdv = this.peers.dv;
    const pat = slot * PR.SIZE;
    const flags = this.peers.u8[pat + PR.FLAGS];
    const sat = pdv.getUint32(pat + PR.SWARM, true) * SW.SIZE;
    const sdv = this.swarms.dv;
    const seeder = (flags & PF_SEEDER) !== 0;
    const headField = sat + (seeder ? SW.SEED_HEAD : SW.LEECH_HEAD);
    const head = sdv.getInt32(headField, true);
    if (head === NIL) {
      pdv.setInt32(pat + PR.NEXT, slot, true);
      pdv.setInt32(pat + PR.PREV, slot, true);
      sdv.setInt32(headField, slot, true);
    } else {
      const tail = pdv.getInt32(head * PR.SIZE + PR.PREV, true);
      pdv.setInt32(pat + PR.NEXT, head, true);
      pdv.setInt32(pat + PR.PREV, tail, true);
      pdv.setInt32(tail * PR.SIZE + PR.NEXT, slot, true);
      pdv.setInt32(head * PR.SIZE + PR.PREV, slot, true);
    }
    const countField = sat + (seeder ? SW.SEEDERS : SW.LEECHERS);
    sdv.setUint32(countField, sdv.getUint32(countField, true) + 1, true);
    this.ctl[seeder ? CTL.SEEDERS : CTL.LEECHERS]++;
    if (flags & PF_V6) this.ctl[CTL.PEERS_V6]++;
  }

  /** Take a peer off its list and uncount it (inverse of link). */
  unlink(slot: number): void {
    const pdv = this.peers.dv;
    const pat = slot * PR.SIZE;
    const flags = this.peers.u8[pat + PR.FLAGS];
    const sat = pdv.getUint32(pat + PR.SWARM, true) * SW.SIZE;
    const sdv = this.swarms.dv;
    const seeder = (flags & PF_SEEDER) !== 0;
    const headField = sat + (seeder ? SW.SEED_HEAD : SW.LEECH_HEAD);
    const next = pdv.getInt32(pat + PR.NEXT, true);
    if (next === slot) {
      sdv.setInt32(headField, NIL, true);
    } else {
      const prev = pdv.getInt32(pat + PR.PREV, true);
      pdv.setInt32(prev * PR.SIZE + PR.NEXT, next, true);
      pdv.setInt32(next * PR.SIZE + PR.PREV, prev, true);
      if (sdv.getInt32(headField, true) === slot) sdv.setInt32(headField, next, true);
    }
    const countField = sat + (seeder ? SW.SEEDERS : SW.LEECHERS);
    sdv.setUint32(countField, sdv.getUint32(countField, true) - 1, true);
    this.ctl[seeder ? CTL.SEEDERS : CTL.LEECHERS]--;
    if (flags & PF_V6) this.ctl[CTL.PEERS_V6]--;
  }

  // ------------------------------------------------------------------ maintenance

  /**
   * Expire peers not seen for `timeout` seconds and free swarms that have had no peer for
   * as long. Visits at most `budget` slots of each slab, continuing where the last call
   * stopped, so one call never stalls the shard.
   */
  expire(now: number, timeout: number, budget: number): number {
    const c = this.ctl;
    const pu8 = this.peers.u8;
    const pdv = this.peers.dv;
    let removed = 0;
    let high = c[CTL.PEER_HIGH];
    let p = c[CTL.SWEEP_PEER];
    for (let n = 0; n < budget && high > 0; n++) {
      if (p >= high) p = 0;
      const at = p * PR.SIZE;
      if (pu8[at + PR.FLAGS] & PF_LIVE && now - pdv.getUint32(at + PR.LAST_SEEN, true) > timeout) {
        this.removePeer(p);
        removed++;
      }
      p++;
    }
    c[CTL.SWEEP_PEER] = p;
    const su8 = this.swarms.u8;
    const sdv = this.swarms.dv;
    high = c[CTL.SWARM_HIGH];
    let s = c[CTL.SWEEP_SWARM];
    for (let n = 0; n < budget && high > 0; n++) {
      if (s >= high) s = 0;
      const at = s * SW.SIZE;
      if (
        su8[at + SW.FLAGS] & SWF_LIVE &&
        sdv.getUint32(at + SW.SEEDERS, true) + sdv.getUint32(at + SW.LEECHERS, true) === 0 &&
        now - sdv.getUint32(at + SW.LAST_ACTIVE, true) > timeout
      ) {
        this.removeSwarm(s);
      }
      s++;
    }
    c[CTL.SWEEP_SWARM] = s;
    return removed;
  }

  /**
   * Re-derive everything but the records themselves: free lists, both indexes, the swarm
   * lists and every counter. Run by a shard respawned on memory whose previous thread may
   * have died in the middle of an update; live records are the source of truth.
   */
  recover(): void {
    this.swarms.refresh();
    this.peers.refresh();
    this.swarmIndex.refresh();
    this.peerIndex.refresh();
    const c = this.ctl;
    const su8 = this.swarms.u8;
    const sdv = this.swarms.dv;
    // swarms: reset lists and counts, rebuild the free list
    let free = NIL;
    let live = 0;
    for (let s = c[CTL.SWARM_HIGH] - 1; s >= 0; s--) {
      const at = s * SW.SIZE;
      if (su8[at + SW.FLAGS] & SWF_LIVE) {
        live++;
        sdv.setUint32(at + SW.SEEDERS, 0, true);
        sdv.setUint32(at + SW.LEECHERS, 0, true);
        sdv.setInt32(at + SW.SEED_HEAD, NIL, true);
        sdv.setInt32(at + SW.LEECH_HEAD, NIL, true);
      } else {
        sdv.setInt32(at + SW.LAST_ACTIVE, free, true);
        free = s;
      }
    }
    c[CTL.SWARM_FREE] = free;
    c[CTL.SWARM_LIVE] = live;
    this.rebuildSwarmIndex(this.swarmIndex.capacity);
    // peers: drop those whose swarm is gone, relink the rest, rebuild the free list
    c[CTL.SEEDERS] = 0;
    c[CTL.LEECHERS] = 0;
    c[CTL.PEERS_V6] = 0;
    const pu8 = this.peers.u8;
    const pdv = this.peers.dv;
    free = NIL;
    live = 0;
    for (let p = c[CTL.PEER_HIGH] - 1; p >= 0; p--) {
      const at = p * PR.SIZE;
      if (pu8[at + PR.FLAGS] & PF_LIVE) {
        const swarm = pdv.getUint32(at + PR.SWARM, true);
        if (swarm < c[CTL.SWARM_HIGH] && su8[swarm * SW.SIZE + SW.FLAGS] & SWF_LIVE) {
          live++;
          this.link(p);
          continue;
        }
        pu8[at + PR.FLAGS] = 0;
      }
      pdv.setInt32(at + PR.NEXT, free, true);
      free = p;
    }
    c[CTL.PEER_FREE] = free;
    c[CTL.PEER_LIVE] = live;
    this.rebuildPeerIndex(this.peerIndex.capacity);
  }
}

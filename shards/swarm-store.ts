import { PeerArena } from './arena.js';
import { hash20, equal20 } from './hash.js';
import { ADDR4, ADDR6, ADDRW, ShardControl, GlobalBlock, INITIAL_ARENA_ENTRIES, INITIAL_PEERS, INITIAL_SWARMS, NIL, PF2_REMOTE, PF_LIVE, PF_SEEDER, PeerRecord, SwarmRecord, SWF_LIVE } from './memory-layout.js';
import { recover } from './recovery.js';
import { SwarmArrays } from './swarm-arrays.js';
import { HashIndex, Slab, type KeyMatcher } from './table.js';

/** The shared buffers that hold one shard's swarms. Owned by the acceptor, written by the shard. */
export interface SwarmBuffers {
  ctl: SharedArrayBuffer;
  global: SharedArrayBuffer;
  swarms: SharedArrayBuffer;
  swarmIndex: SharedArrayBuffer;
  peers: SharedArrayBuffer;
  peerIndex: SharedArrayBuffer;
  addr4: SharedArrayBuffer;
  slots4: SharedArrayBuffer;
  marks4: SharedArrayBuffer;
  addr6: SharedArrayBuffer;
  slots6: SharedArrayBuffer;
  marks6: SharedArrayBuffer;
  addrW: SharedArrayBuffer;
  slotsW: SharedArrayBuffer;
  marksW: SharedArrayBuffer;
}

/** Twice an index's capacity, or 0 when its reservation cannot hold that many entries. */
function doubled(index: HashIndex): number {
  const next = index.capacity * 2;
  return next > index.maxEntries ? 0 : next;
}

/**
 * Swarms and peers of one shard, with no JS object per swarm or peer.
 *
 * - swarm slab: SwarmRecord records; index info_hash → swarm slot.
 * - peer slab: PeerRecord records (identity, accounting state); index (swarm, peer_id) → slot.
 * - each swarm's peers' addresses in contiguous per-family arrays (`arrays`, swarm-arrays.ts).
 * - slabs and indexes double when full (indexes are rebuilt from the slabs, keeping their
 *   load ≤ 1/2).
 *
 * Only the owning shard thread writes. Table headers live in the control block so a
 * respawned shard resumes on the same memory, after recover() (recovery.ts) re-derives
 * what a crash in the middle of an update could have left inconsistent.
 */
export class SwarmStore {
  readonly ctl: Int32Array;
  readonly global: Int32Array;
  readonly swarms: Slab;
  readonly swarmIndex: HashIndex;
  readonly peers: Slab;
  readonly peerIndex: HashIndex;
  readonly arena4: PeerArena;
  readonly arena6: PeerArena;
  readonly arenaW: PeerArena;
  /** The swarms' peer arrays: place, displace, copy out. */
  readonly arrays: SwarmArrays;
  private readonly seed: number;
  private readonly swarmKeys: KeyMatcher;
  private readonly peerKeys: KeyMatcher;

  /**
   * `observer`: a reader on another thread (the admin API) that must never initialise the
   * tables, even when it looks before their shard has: the shard alone writes them.
   */
  constructor(bufs: SwarmBuffers, observer = false) {
    this.ctl = new Int32Array(bufs.ctl);
    this.global = new Int32Array(bufs.global);
    this.swarms = new Slab(bufs.swarms, SwarmRecord.SIZE);
    this.swarmIndex = new HashIndex(bufs.swarmIndex);
    this.peers = new Slab(bufs.peers, PeerRecord.SIZE);
    this.peerIndex = new HashIndex(bufs.peerIndex);
    this.arena4 = new PeerArena(bufs.addr4, bufs.slots4, bufs.marks4, ADDR4, this.ctl, ShardControl.ARENA4_TOP, ShardControl.FREE4);
    this.arena6 = new PeerArena(bufs.addr6, bufs.slots6, bufs.marks6, ADDR6, this.ctl, ShardControl.ARENA6_TOP, ShardControl.FREE6);
    this.arenaW = new PeerArena(bufs.addrW, bufs.slotsW, bufs.marksW, ADDRW, this.ctl, ShardControl.ARENAW_TOP, ShardControl.FREEW);
    this.arrays = new SwarmArrays(this.ctl, this.swarms, this.peers, this.arena4, this.arena6, this.arenaW);
    this.seed = Atomics.load(this.global, GlobalBlock.HASH_SEED);
    const swarms = this.swarms;
    const peers = this.peers;
    this.swarmKeys = {
      matches: (slot, key, off) => equal20(swarms.u8, slot * SwarmRecord.SIZE + SwarmRecord.INFO_HASH, key, off),
    };
    this.peerKeys = {
      matches: (slot, key, off, swarm) =>
        peers.dv.getUint32(slot * PeerRecord.SIZE + PeerRecord.SWARM, true) === swarm && equal20(peers.u8, slot * PeerRecord.SIZE + PeerRecord.PEER_ID, key, off),
    };
    if (!observer && this.ctl[ShardControl.SWARM_INDEX_CAP] === 0) this.init();
  }

  /** Sizes of the buffers for a fresh shard. */
  static initialBytes(): Record<'swarms' | 'swarmIndex' | 'peers' | 'peerIndex' | 'addr4' | 'slots4' | 'marks4' | 'addr6' | 'slots6' | 'marks6' | 'addrW' | 'slotsW' | 'marksW', number> {
    return {
      swarms: INITIAL_SWARMS * SwarmRecord.SIZE,
      swarmIndex: HashIndex.bytesFor(INITIAL_SWARMS * 2),
      peers: INITIAL_PEERS * PeerRecord.SIZE,
      peerIndex: HashIndex.bytesFor(INITIAL_PEERS * 2),
      addr4: INITIAL_ARENA_ENTRIES * ADDR4,
      slots4: INITIAL_ARENA_ENTRIES * 4,
      marks4: INITIAL_ARENA_ENTRIES,
      addr6: 1024 * ADDR6,
      slots6: 1024 * 4,
      marks6: 1024,
      addrW: 1024 * ADDRW,
      slotsW: 1024 * 4,
      marksW: 1024,
    };
  }

  private init(): void {
    const c = this.ctl;
    c[ShardControl.SWARM_CAP] = this.swarms.capacity;
    c[ShardControl.SWARM_HIGH] = 0;
    c[ShardControl.SWARM_FREE] = NIL;
    c[ShardControl.SWARM_LIVE] = 0;
    c[ShardControl.SWARM_INDEX_CAP] = this.swarmIndex.capacity;
    c[ShardControl.PEER_CAP] = this.peers.capacity;
    c[ShardControl.PEER_HIGH] = 0;
    c[ShardControl.PEER_FREE] = NIL;
    c[ShardControl.PEER_LIVE] = 0;
    c[ShardControl.PEER_INDEX_CAP] = this.peerIndex.capacity;
    this.arena4.init();
    this.arena6.init();
    this.arenaW.init();
  }

  /**
   * A free record of `slab`: the head of its free list (linked through the i32 field at
   * `link`), else the next never-used one, growing the slab when needed. -1 at the bound.
   */
  private takeSlot(slab: Slab, freeWord: number, highWord: number, capWord: number, link: number): number {
    const c = this.ctl;
    const free = c[freeWord];
    if (free !== NIL) {
      c[freeWord] = slab.dv.getInt32(free * slab.recordSize + link, true);
      return free;
    }
    if (c[highWord] >= slab.capacity) {
      if (!slab.grow()) return -1;
      c[capWord] = slab.capacity;
    }
    return c[highWord]++;
  }

  // ------------------------------------------------------------------ swarms

  findSwarm(key: Uint8Array, off: number): number {
    return this.swarmIndex.find(hash20(key, off, this.seed), key, off, 0, this.swarmKeys);
  }

  /** Create the swarm of an info_hash. Returns -1 when the table is at its configured bound. */
  addSwarm(key: Uint8Array, off: number, now: number): number {
    const c = this.ctl;
    if (c[ShardControl.SWARM_LIVE] + 1 > this.swarmIndex.capacity >> 1) {
      const next = doubled(this.swarmIndex);
      if (next === 0) return -1;
      this.rebuildSwarmIndex(next);
    }
    const slot = this.takeSlot(this.swarms, ShardControl.SWARM_FREE, ShardControl.SWARM_HIGH, ShardControl.SWARM_CAP, SwarmRecord.LAST_ACTIVE);
    if (slot < 0) return -1;
    const u8 = this.swarms.u8;
    const at = slot * SwarmRecord.SIZE;
    u8.fill(0, at, at + SwarmRecord.SIZE);
    u8.set(key.subarray(off, off + 20), at + SwarmRecord.INFO_HASH);
    u8[at + SwarmRecord.FLAGS] = SWF_LIVE;
    this.swarms.dv.setUint32(at + SwarmRecord.LAST_ACTIVE, now, true);
    this.swarmIndex.insert(hash20(key, off, this.seed), slot);
    c[ShardControl.SWARM_LIVE]++;
    return slot;
  }

  /** Free a swarm that has no peers left. */
  removeSwarm(slot: number): void {
    const u8 = this.swarms.u8;
    const at = slot * SwarmRecord.SIZE;
    this.swarmIndex.remove(hash20(u8, at + SwarmRecord.INFO_HASH, this.seed), slot);
    this.arrays.freeBlock(at, this.arrays.fam4);
    this.arrays.freeBlock(at, this.arrays.fam6);
    this.arrays.freeBlock(at, this.arrays.famW);
    u8[at + SwarmRecord.FLAGS] = 0;
    this.swarms.dv.setInt32(at + SwarmRecord.LAST_ACTIVE, this.ctl[ShardControl.SWARM_FREE], true);
    this.ctl[ShardControl.SWARM_FREE] = slot;
    this.ctl[ShardControl.SWARM_LIVE]--;
  }

  seeders(swarm: number): number {
    const dv = this.swarms.dv;
    const at = swarm * SwarmRecord.SIZE;
    return dv.getUint32(at + SwarmRecord.SEED4, true) + dv.getUint32(at + SwarmRecord.SEED6, true) + dv.getUint32(at + SwarmRecord.SEEDW, true);
  }

  leechers(swarm: number): number {
    const dv = this.swarms.dv;
    const at = swarm * SwarmRecord.SIZE;
    return dv.getUint32(at + SwarmRecord.LEECH4, true) + dv.getUint32(at + SwarmRecord.LEECH6, true) + dv.getUint32(at + SwarmRecord.LEECHW, true);
  }

  /** Rebuild the swarm index from the slab with room for `entries` (recovery uses it too). */
  rebuildSwarmIndex(entries: number): void {
    this.swarmIndex.reset(entries);
    this.ctl[ShardControl.SWARM_INDEX_CAP] = this.swarmIndex.capacity;
    const u8 = this.swarms.u8;
    const high = this.ctl[ShardControl.SWARM_HIGH];
    for (let s = 0; s < high; s++) {
      const at = s * SwarmRecord.SIZE;
      if (u8[at + SwarmRecord.FLAGS] & SWF_LIVE) this.swarmIndex.insert(hash20(u8, at + SwarmRecord.INFO_HASH, this.seed), s);
    }
  }

  // ------------------------------------------------------------------ peers

  findPeer(swarm: number, peerId: Uint8Array, off: number): number {
    return this.peerIndex.find(hash20(peerId, off, this.seed, swarm), peerId, off, swarm, this.peerKeys);
  }

  /**
   * Take a peer slot for (swarm, peer_id) and index it. The caller sets its flags and then
   * puts it in its swarm's array with place(). Returns -1 at the configured bound.
   */
  allocPeer(swarm: number, peerId: Uint8Array, off: number): number {
    const c = this.ctl;
    if (c[ShardControl.PEER_LIVE] + 1 > this.peerIndex.capacity >> 1) {
      const next = doubled(this.peerIndex);
      if (next === 0) return -1;
      this.rebuildPeerIndex(next);
    }
    const slot = this.takeSlot(this.peers, ShardControl.PEER_FREE, ShardControl.PEER_HIGH, ShardControl.PEER_CAP, PeerRecord.POS);
    if (slot < 0) return -1;
    const at = slot * PeerRecord.SIZE;
    this.peers.u8.fill(0, at, at + PeerRecord.SIZE);
    this.peers.dv.setUint32(at + PeerRecord.SWARM, swarm, true);
    this.peers.u8.set(peerId.subarray(off, off + 20), at + PeerRecord.PEER_ID);
    this.peerIndex.insert(hash20(peerId, off, this.seed, swarm), slot);
    c[ShardControl.PEER_LIVE]++;
    return slot;
  }

  /** Told of every peer slot about to be freed (ShardLogic keeps its owner counts with it). */
  onFree: ((slot: number) => void) | null = null;

  /** Unindex and free a peer slot that is not (or no longer) in its swarm's array. */
  freePeer(slot: number): void {
    this.onFree?.(slot);
    const u8 = this.peers.u8;
    const at = slot * PeerRecord.SIZE;
    const swarm = this.peers.dv.getUint32(at + PeerRecord.SWARM, true);
    this.peerIndex.remove(hash20(u8, at + PeerRecord.PEER_ID, this.seed, swarm), slot);
    u8[at + PeerRecord.FLAGS] = 0;
    this.peers.dv.setInt32(at + PeerRecord.POS, this.ctl[ShardControl.PEER_FREE], true);
    this.ctl[ShardControl.PEER_FREE] = slot;
    this.ctl[ShardControl.PEER_LIVE]--;
  }

  /** Take a placed peer out of its swarm and free it. */
  removePeer(slot: number): void {
    this.arrays.displace(slot);
    this.freePeer(slot);
  }

  /** A peer leaves its swarm at `now` (stopped, expired): removed, and if a leecher, remembered as one that left. */
  departPeer(slot: number, now: number): void {
    if (!(this.peers.u8[slot * PeerRecord.SIZE + PeerRecord.FLAGS] & PF_SEEDER)) this.leecherLeft(slot, now);
    this.removePeer(slot);
  }

  /** A leecher leaves its swarm (or becomes a seeder) at `now`: the no-leechers rule remembers when and whose. */
  leecherLeft(peer: number, now: number): void {
    const pat = peer * PeerRecord.SIZE;
    const sdv = this.swarms.dv;
    const sat = this.peers.dv.getUint32(pat + PeerRecord.SWARM, true) * SwarmRecord.SIZE;
    const user = this.peers.dv.getUint32(pat + PeerRecord.USER, true);
    // (a departure may come late, as of when another node received it: keep the two latest
    // of two different users in order, never moving one back in time)
    const at1 = sdv.getUint32(sat + SwarmRecord.LEECHER_AT, true);
    if (sdv.getUint32(sat + SwarmRecord.LEECHER_USER, true) === user) {
      sdv.setUint32(sat + SwarmRecord.LEECHER_AT, Math.max(at1, now), true);
    } else if (now >= at1) {
      // another user's departure moves to second place
      sdv.setUint32(sat + SwarmRecord.LEECHER_AT2, at1, true);
      sdv.setUint32(sat + SwarmRecord.LEECHER_USER2, sdv.getUint32(sat + SwarmRecord.LEECHER_USER, true), true);
      sdv.setUint32(sat + SwarmRecord.LEECHER_USER, user, true);
      sdv.setUint32(sat + SwarmRecord.LEECHER_AT, now, true);
    } else if (sdv.getUint32(sat + SwarmRecord.LEECHER_USER2, true) === user || now > sdv.getUint32(sat + SwarmRecord.LEECHER_AT2, true)) {
      sdv.setUint32(sat + SwarmRecord.LEECHER_USER2, user, true);
      sdv.setUint32(sat + SwarmRecord.LEECHER_AT2, Math.max(now, sdv.getUint32(sat + SwarmRecord.LEECHER_AT2, true)), true);
    }
  }

  /** After a thread died on these tables: put them back in order (recovery.ts). */
  recover(): void {
    recover(this);
  }

  /** Rebuild the peer index from the slab with room for `entries` (recovery uses it too). */
  rebuildPeerIndex(entries: number): void {
    this.peerIndex.reset(entries);
    this.ctl[ShardControl.PEER_INDEX_CAP] = this.peerIndex.capacity;
    const u8 = this.peers.u8;
    const dv = this.peers.dv;
    const high = this.ctl[ShardControl.PEER_HIGH];
    for (let p = 0; p < high; p++) {
      const at = p * PeerRecord.SIZE;
      if (u8[at + PeerRecord.FLAGS] & PF_LIVE) {
        this.peerIndex.insert(hash20(u8, at + PeerRecord.PEER_ID, this.seed, dv.getUint32(at + PeerRecord.SWARM, true)), p);
      }
    }
  }

  // ------------------------------------------------------------------ maintenance

  /**
   * Expire peers not seen for `timeout` seconds and free swarms that have had no peer for
   * as long. Visits at most `budget` slots of each slab, continuing where the last call
   * stopped, so one call never stalls the shard.
   */
  expire(now: number, timeout: number, budget: number, cutOffSince = 0): number {
    const c = this.ctl;
    const pu8 = this.peers.u8;
    const pdv = this.peers.dv;
    let removed = 0;
    let high = c[ShardControl.PEER_HIGH];
    let p = c[ShardControl.SWEEP_PEER];
    for (let n = 0; n < budget && high > 0; n++) {
      if (p >= high) p = 0;
      const at = p * PeerRecord.SIZE;
      // (another node's peer leaves when its node says so, or when that node's lease lapses;
      // with replication cut off since `cutOffSince`, a timeout after that at the earliest:
      // its last announce may be later than its last published change)
      const remote = (pu8[at + PeerRecord.FLAGS2] & PF2_REMOTE) !== 0;
      if (pu8[at + PeerRecord.FLAGS] & PF_LIVE && (!remote || cutOffSince > 0) && now - Math.max(pdv.getUint32(at + PeerRecord.LAST_SEEN, true), remote ? cutOffSince : 0) > timeout) {
        this.departPeer(p, now);
        removed++;
      }
      p++;
    }
    c[ShardControl.SWEEP_PEER] = p;
    const su8 = this.swarms.u8;
    const sdv = this.swarms.dv;
    high = c[ShardControl.SWARM_HIGH];
    let s = c[ShardControl.SWEEP_SWARM];
    for (let n = 0; n < budget && high > 0; n++) {
      if (s >= high) s = 0;
      const at = s * SwarmRecord.SIZE;
      if (su8[at + SwarmRecord.FLAGS] & SWF_LIVE && this.seeders(s) + this.leechers(s) === 0 && now - sdv.getUint32(at + SwarmRecord.LAST_ACTIVE, true) > timeout) {
        this.removeSwarm(s);
      }
      s++;
    }
    c[ShardControl.SWEEP_SWARM] = s;
    return removed;
  }
}

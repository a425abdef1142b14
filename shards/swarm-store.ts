import { MIN_CLASS, PeerArena, classEntries } from './arena.js';
import { hash20, equal20 } from './hash.js';
import {
  ADDR4, ADDR6, CTL, ENTRY_FULL, GLOBAL, INITIAL_ARENA_ENTRIES, INITIAL_PEERS, INITIAL_SWARMS, NIL, PF_LIVE, PF_SEEDER, PF_V6, PR, SW, SWF_LIVE,
} from './layout.js';
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
}

/** Twice an index's capacity, or 0 when its reservation cannot hold that many entries. */
function doubled(index: HashIndex): number {
  const next = index.capacity * 2;
  return next > index.maxEntries ? 0 : next;
}

/** Field offsets of one family's array in a swarm record. */
interface Family {
  arena: PeerArena;
  seed: number;
  leech: number;
  block: number;
  cls: number;
  bytes: number;
}

/**
 * Swarms and peers of one shard, with no JS object per swarm or peer.
 *
 * - swarm slab: SW records; index info_hash → swarm slot.
 * - peer slab: PR records (identity, accounting state); index (swarm, peer_id) → slot.
 * - each swarm keeps, per address family, one contiguous array of wire-form addresses
 *   partitioned [seeders | leechers] in a peer arena, with the owning peer slot of every
 *   entry alongside. A peer's record knows its position (PR.POS); moves keep it current.
 *   Answers copy runs of consecutive entries: no pointer chasing through scattered records.
 * - slabs and indexes double when full (indexes are rebuilt from the slabs, keeping their
 *   load ≤ 1/2); arrays move to the next power-of-two block when full and to a smaller one
 *   when a quarter full.
 *
 * Only the owning shard thread writes. Table headers live in the control block so a
 * respawned shard resumes on the same memory, after recover() re-derives what a crash in
 * the middle of an update could have left inconsistent.
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
  private readonly fam4: Family;
  private readonly fam6: Family;
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
    this.swarms = new Slab(bufs.swarms, SW.SIZE);
    this.swarmIndex = new HashIndex(bufs.swarmIndex);
    this.peers = new Slab(bufs.peers, PR.SIZE);
    this.peerIndex = new HashIndex(bufs.peerIndex);
    this.arena4 = new PeerArena(bufs.addr4, bufs.slots4, bufs.marks4, ADDR4, this.ctl, CTL.ARENA4_TOP, CTL.FREE4);
    this.arena6 = new PeerArena(bufs.addr6, bufs.slots6, bufs.marks6, ADDR6, this.ctl, CTL.ARENA6_TOP, CTL.FREE6);
    this.fam4 = { arena: this.arena4, seed: SW.SEED4, leech: SW.LEECH4, block: SW.BLOCK4, cls: SW.CLASS4, bytes: ADDR4 };
    this.fam6 = { arena: this.arena6, seed: SW.SEED6, leech: SW.LEECH6, block: SW.BLOCK6, cls: SW.CLASS6, bytes: ADDR6 };
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
    if (!observer && this.ctl[CTL.SWARM_INDEX_CAP] === 0) this.init();
  }

  /** Sizes of the buffers for a fresh shard. */
  static initialBytes(): Record<'swarms' | 'swarmIndex' | 'peers' | 'peerIndex' | 'addr4' | 'slots4' | 'marks4' | 'addr6' | 'slots6' | 'marks6', number> {
    return {
      swarms: INITIAL_SWARMS * SW.SIZE,
      swarmIndex: HashIndex.bytesFor(INITIAL_SWARMS * 2),
      peers: INITIAL_PEERS * PR.SIZE,
      peerIndex: HashIndex.bytesFor(INITIAL_PEERS * 2),
      addr4: INITIAL_ARENA_ENTRIES * ADDR4,
      slots4: INITIAL_ARENA_ENTRIES * 4,
      marks4: INITIAL_ARENA_ENTRIES,
      addr6: 1024 * ADDR6,
      slots6: 1024 * 4,
      marks6: 1024,
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
    this.arena4.init();
    this.arena6.init();
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
    if (c[CTL.SWARM_LIVE] + 1 > this.swarmIndex.capacity >> 1) {
      const next = doubled(this.swarmIndex);
      if (next === 0) return -1;
      this.rebuildSwarmIndex(next);
    }
    const slot = this.takeSlot(this.swarms, CTL.SWARM_FREE, CTL.SWARM_HIGH, CTL.SWARM_CAP, SW.LAST_ACTIVE);
    if (slot < 0) return -1;
    const u8 = this.swarms.u8;
    const at = slot * SW.SIZE;
    u8.fill(0, at, at + SW.SIZE);
    u8.set(key.subarray(off, off + 20), at + SW.INFO_HASH);
    u8[at + SW.FLAGS] = SWF_LIVE;
    this.swarms.dv.setUint32(at + SW.LAST_ACTIVE, now, true);
    this.swarmIndex.insert(hash20(key, off, this.seed), slot);
    c[CTL.SWARM_LIVE]++;
    return slot;
  }

  /** Free a swarm that has no peers left. */
  removeSwarm(slot: number): void {
    const u8 = this.swarms.u8;
    const at = slot * SW.SIZE;
    this.swarmIndex.remove(hash20(u8, at + SW.INFO_HASH, this.seed), slot);
    this.freeBlock(at, this.fam4);
    this.freeBlock(at, this.fam6);
    u8[at + SW.FLAGS] = 0;
    this.swarms.dv.setInt32(at + SW.LAST_ACTIVE, this.ctl[CTL.SWARM_FREE], true);
    this.ctl[CTL.SWARM_FREE] = slot;
    this.ctl[CTL.SWARM_LIVE]--;
  }

  seeders(swarm: number): number {
    const dv = this.swarms.dv;
    const at = swarm * SW.SIZE;
    return dv.getUint32(at + SW.SEED4, true) + dv.getUint32(at + SW.SEED6, true);
  }

  leechers(swarm: number): number {
    const dv = this.swarms.dv;
    const at = swarm * SW.SIZE;
    return dv.getUint32(at + SW.LEECH4, true) + dv.getUint32(at + SW.LEECH6, true);
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
   * Take a peer slot for (swarm, peer_id) and index it. The caller sets its flags and then
   * puts it in its swarm's array with place(). Returns -1 at the configured bound.
   */
  allocPeer(swarm: number, peerId: Uint8Array, off: number): number {
    const c = this.ctl;
    if (c[CTL.PEER_LIVE] + 1 > this.peerIndex.capacity >> 1) {
      const next = doubled(this.peerIndex);
      if (next === 0) return -1;
      this.rebuildPeerIndex(next);
    }
    const slot = this.takeSlot(this.peers, CTL.PEER_FREE, CTL.PEER_HIGH, CTL.PEER_CAP, PR.POS);
    if (slot < 0) return -1;
    const at = slot * PR.SIZE;
    this.peers.u8.fill(0, at, at + PR.SIZE);
    this.peers.dv.setUint32(at + PR.SWARM, swarm, true);
    this.peers.u8.set(peerId.subarray(off, off + 20), at + PR.PEER_ID);
    this.peerIndex.insert(hash20(peerId, off, this.seed, swarm), slot);
    c[CTL.PEER_LIVE]++;
    return slot;
  }

  /** Unindex and free a peer slot that is not (or no longer) in its swarm's array. */
  freePeer(slot: number): void {
    const u8 = this.peers.u8;
    const at = slot * PR.SIZE;
    const swarm = this.peers.dv.getUint32(at + PR.SWARM, true);
    this.peerIndex.remove(hash20(u8, at + PR.PEER_ID, this.seed, swarm), slot);
    u8[at + PR.FLAGS] = 0;
    this.peers.dv.setInt32(at + PR.POS, this.ctl[CTL.PEER_FREE], true);
    this.ctl[CTL.PEER_FREE] = slot;
    this.ctl[CTL.PEER_LIVE]--;
  }

  /** Take a placed peer out of its swarm and free it. */
  removePeer(slot: number): void {
    this.displace(slot);
    this.freePeer(slot);
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

  // ------------------------------------------------------------------ swarm arrays

  private famOf(flags: number): Family {
    return flags & PF_V6 ? this.fam6 : this.fam4;
  }

  /**
   * Put a live peer (PF_V6 and PF_SEEDER already set in its flags) into its swarm's array
   * with the wire-form address at src[off] (6 or 18 bytes). Returns false when the arena
   * reservation is exhausted (the caller frees the peer).
   */
  place(slot: number, src: Uint8Array, off: number): boolean {
    const pdv = this.peers.dv;
    const pat = slot * PR.SIZE;
    const flags = this.peers.u8[pat + PR.FLAGS];
    const f = this.famOf(flags);
    const sdv = this.swarms.dv;
    const sat = pdv.getUint32(pat + PR.SWARM, true) * SW.SIZE;
    const S = sdv.getUint32(sat + f.seed, true);
    const L = sdv.getUint32(sat + f.leech, true);
    const cls = this.swarms.u8[sat + f.cls];
    if (S + L + 1 > classEntries(cls) && !this.resize(sat, f, cls === 0 ? MIN_CLASS : cls + 1, S + L)) return false;
    const blk = sdv.getUint32(sat + f.block, true);
    let pos: number;
    if (flags & PF_SEEDER) {
      if (L > 0) this.move(f, blk, S, S + L); // first leecher to the end makes room
      pos = S;
      sdv.setUint32(sat + f.seed, S + 1, true);
      this.ctl[CTL.SEEDERS]++;
    } else {
      pos = S + L;
      sdv.setUint32(sat + f.leech, L + 1, true);
      this.ctl[CTL.LEECHERS]++;
    }
    if (flags & PF_V6) this.ctl[CTL.PEERS_V6]++;
    this.writeEntry(f, blk + pos, slot, src, off);
    pdv.setUint32(pat + PR.POS, pos, true);
    return true;
  }

  /** Take a peer out of its swarm's array (inverse of place). */
  displace(slot: number): void {
    const pdv = this.peers.dv;
    const pat = slot * PR.SIZE;
    const flags = this.peers.u8[pat + PR.FLAGS];
    const f = this.famOf(flags);
    const sdv = this.swarms.dv;
    const sat = pdv.getUint32(pat + PR.SWARM, true) * SW.SIZE;
    const S = sdv.getUint32(sat + f.seed, true);
    const L = sdv.getUint32(sat + f.leech, true);
    const blk = sdv.getUint32(sat + f.block, true);
    const pos = pdv.getUint32(pat + PR.POS, true);
    if (flags & PF_SEEDER) {
      // last seeder fills the hole, last leecher fills the last seeder's place
      if (pos !== S - 1) this.move(f, blk, S - 1, pos);
      if (L > 0) this.move(f, blk, S + L - 1, S - 1);
      sdv.setUint32(sat + f.seed, S - 1, true);
      this.ctl[CTL.SEEDERS]--;
    } else {
      if (pos !== S + L - 1) this.move(f, blk, S + L - 1, pos);
      sdv.setUint32(sat + f.leech, L - 1, true);
      this.ctl[CTL.LEECHERS]--;
    }
    if (flags & PF_V6) this.ctl[CTL.PEERS_V6]--;
    const n = S + L - 1;
    const cls = this.swarms.u8[sat + f.cls];
    if (n === 0) this.freeBlock(sat, f);
    else if (cls > MIN_CLASS && n <= classEntries(cls) >> 2) this.resize(sat, f, cls - 1, n);
  }

  /** Overwrite a placed peer's address (same family). */
  setAddress(slot: number, src: Uint8Array, off: number): void {
    const pat = slot * PR.SIZE;
    const flags = this.peers.u8[pat + PR.FLAGS];
    const f = this.famOf(flags);
    const sat = this.peers.dv.getUint32(pat + PR.SWARM, true) * SW.SIZE;
    const e = (this.swarms.dv.getUint32(sat + f.block, true) + this.peers.dv.getUint32(pat + PR.POS, true)) * f.bytes;
    const a = f.arena.addr.u8;
    for (let i = 0; i < f.bytes; i++) a[e + i] = src[off + i];
  }

  private writeEntry(f: Family, entry: number, slot: number, src: Uint8Array, off: number): void {
    const a = f.arena.addr.u8;
    const e = entry * f.bytes;
    for (let i = 0; i < f.bytes; i++) a[e + i] = src[off + i];
    f.arena.slots.i32[entry] = slot;
  }

  /** Move the entry at relative index `from` to `to` and tell its peer. */
  private move(f: Family, blk: number, from: number, to: number): void {
    const a = f.arena.addr.u8;
    const b = f.bytes;
    a.copyWithin((blk + to) * b, (blk + from) * b, (blk + from + 1) * b);
    const slots = f.arena.slots.i32;
    const slot = slots[blk + from];
    slots[blk + to] = slot;
    this.peers.dv.setUint32(slot * PR.SIZE + PR.POS, to, true);
  }

  /** Move a swarm's array of `n` entries into a block of class `cls`. */
  private resize(sat: number, f: Family, cls: number, n: number): boolean {
    const nb = f.arena.alloc(cls);
    if (nb < 0) return false;
    const su8 = this.swarms.u8;
    const sdv = this.swarms.dv;
    const old = su8[sat + f.cls];
    if (old !== 0) {
      const ob = sdv.getUint32(sat + f.block, true);
      f.arena.addr.u8.copyWithin(nb * f.bytes, ob * f.bytes, (ob + n) * f.bytes);
      f.arena.slots.i32.copyWithin(nb, ob, ob + n);
      f.arena.free(ob, old);
    }
    sdv.setUint32(sat + f.block, nb, true);
    su8[sat + f.cls] = cls;
    return true;
  }

  private freeBlock(sat: number, f: Family): void {
    const cls = this.swarms.u8[sat + f.cls];
    if (cls === 0) return;
    f.arena.free(this.swarms.dv.getUint32(sat + f.block, true), cls);
    this.swarms.u8[sat + f.cls] = 0;
  }

  // ------------------------------------------------------------------ answers

  /**
   * Visit up to `max` peers of a swarm, seeders first, IPv4 then IPv6: the peer slot and
   * its wire-form address (`bytes` long at addr[at]). Read-only, for inspection from
   * another thread (the admin API), which may catch a peer mid-move: slots out of range
   * are skipped, nothing is written.
   */
  forEachPeer(swarm: number, max: number, visit: (peer: number, addr: Uint8Array, at: number, bytes: number, seeder: boolean) => void): number {
    const sdv = this.swarms.dv;
    const sat = swarm * SW.SIZE;
    // bounded by the views this store was built with, whatever torn values it reads
    const high = Math.min(this.ctl[CTL.PEER_HIGH], Math.floor(this.peers.u8.length / PR.SIZE));
    let n = 0;
    for (const f of [this.fam4, this.fam6]) {
      const S = sdv.getUint32(sat + f.seed, true);
      const L = sdv.getUint32(sat + f.leech, true);
      const blk = sdv.getUint32(sat + f.block, true);
      const slots = f.arena.slots.i32;
      const a = f.arena.addr.u8;
      for (let i = 0; i < S + L && n < max; i++) {
        const e = blk + i;
        if (e >= slots.length || (e + 1) * f.bytes > a.length) break;
        const slot = slots[e];
        if (slot < 0 || slot >= high) continue;
        visit(slot, a, e * f.bytes, f.bytes, i < S);
        n++;
      }
    }
    return n;
  }

  /**
   * Copy up to `max` peers of one segment (seeders or leechers) of the swarm's array for
   * the family `v6` into `out` at `to`, never `self`. Entries are `entry` bytes: the
   * compact form (6 or 18) or ENTRY_FULL (ip16, port, peer_id). Starts at the swarm's
   * rotation counter, so successive answers walk the whole segment.
   */
  copyPeers(swarm: number, v6: boolean, seeders: boolean, self: number, max: number, out: Uint8Array, to: number, entry: number): number {
    const f = v6 ? this.fam6 : this.fam4;
    const sdv = this.swarms.dv;
    const sat = swarm * SW.SIZE;
    const S = sdv.getUint32(sat + f.seed, true);
    const first = seeders ? 0 : S;
    const len = seeders ? S : sdv.getUint32(sat + f.leech, true);
    if (len === 0 || max === 0) return 0;
    const blk = sdv.getUint32(sat + f.block, true);
    const slots = f.arena.slots.i32;
    const a = f.arena.addr.u8;
    const b = f.bytes;
    // Each segment rotates on its own counter: handing out one segment (or a segment
    // changing size) must not skip peers of the other.
    const rotField = sat + (seeders ? SW.ROT_SEED : SW.ROT_LEECH);
    const rot = sdv.getUint32(rotField, true);
    let i = rot % len;
    let n = 0;
    for (let visited = 0; visited < len && n < max; visited++, i = i + 1 === len ? 0 : i + 1) {
      const e = blk + first + i;
      const slot = slots[e];
      if (slot === self) continue;
      const src = e * b;
      let dst = to + n * entry;
      if (entry === ENTRY_FULL) {
        if (!v6) {
          for (let k = 0; k < 10; k++) out[dst + k] = 0;
          out[dst + 10] = 0xff;
          out[dst + 11] = 0xff;
          dst += 12;
        }
        for (let k = 0; k < b; k++) out[dst + k] = a[src + k];
        const pid = slot * PR.SIZE + PR.PEER_ID;
        const pu8 = this.peers.u8;
        const d = to + n * entry + 18;
        for (let k = 0; k < 20; k++) out[d + k] = pu8[pid + k];
      } else {
        for (let k = 0; k < b; k++) out[dst + k] = a[src + k];
      }
      n++;
    }
    sdv.setUint32(rotField, (rot + n) >>> 0, true);
    return n;
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
      if (su8[at + SW.FLAGS] & SWF_LIVE && this.seeders(s) + this.leechers(s) === 0 && now - sdv.getUint32(at + SW.LAST_ACTIVE, true) > timeout) {
        this.removeSwarm(s);
      }
      s++;
    }
    c[CTL.SWEEP_SWARM] = s;
    return removed;
  }

  /**
   * Re-derive everything a thread that died mid-update could have left torn, from the
   * swarm arrays (which peers are where, at which address) and the peer records (who they
   * are): array entries whose peer is not live, not of this swarm or seen twice are
   * dropped; live peers found in no array are freed (they lost their address and will
   * announce again); positions, seeder flags, counters, free lists and both indexes are
   * rebuilt.
   */
  recover(): void {
    this.swarms.refresh();
    this.peers.refresh();
    this.swarmIndex.refresh();
    this.peerIndex.refresh();
    this.arena4.refresh();
    this.arena6.refresh();
    const c = this.ctl;
    const su8 = this.swarms.u8;
    const sdv = this.swarms.dv;
    const pu8 = this.peers.u8;
    const pdv = this.peers.dv;
    const peerHigh = c[CTL.PEER_HIGH];
    const seen = new Uint8Array(peerHigh);
    const used4: Array<{ start: number; cls: number }> = [];
    const used6: Array<{ start: number; cls: number }> = [];
    let swarmFree = NIL;
    let swarmLive = 0;
    c[CTL.SEEDERS] = 0;
    c[CTL.LEECHERS] = 0;
    c[CTL.PEERS_V6] = 0;
    for (let s = c[CTL.SWARM_HIGH] - 1; s >= 0; s--) {
      const sat = s * SW.SIZE;
      if (!(su8[sat + SW.FLAGS] & SWF_LIVE)) {
        sdv.setInt32(sat + SW.LAST_ACTIVE, swarmFree, true);
        swarmFree = s;
        continue;
      }
      swarmLive++;
      for (const f of [this.fam4, this.fam6]) {
        const cls = su8[sat + f.cls];
        if (cls === 0) {
          sdv.setUint32(sat + f.seed, 0, true);
          sdv.setUint32(sat + f.leech, 0, true);
          continue;
        }
        const blk = sdv.getUint32(sat + f.block, true);
        const S = Math.min(sdv.getUint32(sat + f.seed, true), classEntries(cls));
        const n = Math.min(S + sdv.getUint32(sat + f.leech, true), classEntries(cls));
        const slots = f.arena.slots.i32;
        const a = f.arena.addr.u8;
        // compact the valid entries of each segment to its front, in order
        let kept = 0;
        let keptSeeders = 0;
        for (let i = 0; i < n; i++) {
          const slot = slots[blk + i];
          if (slot < 0 || slot >= peerHigh || seen[slot] || !(pu8[slot * PR.SIZE + PR.FLAGS] & PF_LIVE)) continue;
          if (pdv.getUint32(slot * PR.SIZE + PR.SWARM, true) !== s) continue;
          seen[slot] = 1;
          if (kept !== i) {
            a.copyWithin((blk + kept) * f.bytes, (blk + i) * f.bytes, (blk + i + 1) * f.bytes);
            slots[blk + kept] = slot;
          }
          const pat = slot * PR.SIZE;
          let flags = (pu8[pat + PR.FLAGS] & ~(PF_SEEDER | PF_V6)) | (f === this.fam6 ? PF_V6 : 0);
          if (i < S) {
            flags |= PF_SEEDER;
            keptSeeders++;
          }
          pu8[pat + PR.FLAGS] = flags;
          pdv.setUint32(pat + PR.POS, kept, true);
          kept++;
        }
        sdv.setUint32(sat + f.seed, keptSeeders, true);
        sdv.setUint32(sat + f.leech, kept - keptSeeders, true);
        c[CTL.SEEDERS] += keptSeeders;
        c[CTL.LEECHERS] += kept - keptSeeders;
        if (f === this.fam6) c[CTL.PEERS_V6] += kept;
        if (kept === 0) su8[sat + f.cls] = 0;
        else (f === this.fam4 ? used4 : used6).push({ start: blk, cls });
      }
    }
    c[CTL.SWARM_FREE] = swarmFree;
    c[CTL.SWARM_LIVE] = swarmLive;
    // Free lists of the arenas: everything but the blocks of non-empty arrays.
    this.arena4.rebuildFreeLists(used4);
    this.arena6.rebuildFreeLists(used6);
    this.rebuildSwarmIndex(this.swarmIndex.capacity);
    // peers: free live records no array holds, rebuild the free list
    let free = NIL;
    let live = 0;
    for (let p = peerHigh - 1; p >= 0; p--) {
      const at = p * PR.SIZE;
      if (pu8[at + PR.FLAGS] & PF_LIVE && seen[p]) {
        live++;
        continue;
      }
      pu8[at + PR.FLAGS] = 0;
      pdv.setInt32(at + PR.POS, free, true);
      free = p;
    }
    c[CTL.PEER_FREE] = free;
    c[CTL.PEER_LIVE] = live;
    this.rebuildPeerIndex(this.peerIndex.capacity);
  }
}

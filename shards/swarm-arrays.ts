import { MIN_CLASS, PeerArena, classEntries } from './arena.js';
import { ADDR4, ADDR6, ADDRW, PF_SEEDER, PF_V6, PF2_WS, PeerRecord, ShardControl, SwarmRecord } from './memory-layout.js';
import { ENTRY_FULL, readSocketEntry } from '../contract/requests.js';
import type { Slab } from './table.js';

// Each swarm keeps, per address family, one contiguous array of wire-form addresses
// partitioned [seeders | leechers] in a peer arena (arena.ts), with the owning peer slot of
// every entry alongside. WebSocket peers (PF2_WS) are a third family, W, whose entry is the
// acceptor's socket id: they are answered only to one another. A peer's record knows its position (PeerRecord.POS); moves keep it
// current. Answers copy runs of consecutive entries: no pointer chasing through scattered
// records. An array moves to the next power-of-two block when full and to a smaller one
// when a quarter full.

/** Field offsets of one family's array in a swarm record. */
export interface Family {
  arena: PeerArena;
  seed: number;
  leech: number;
  block: number;
  cls: number;
  bytes: number;
}

export class SwarmArrays {
  readonly fam4: Family;
  readonly fam6: Family;
  readonly famW: Family;
  /** The families of peers with an address (in checkpoints, in HTTP and UDP answers). */
  readonly addressed: Family[];

  constructor(
    private readonly ctl: Int32Array,
    private readonly swarms: Slab,
    private readonly peers: Slab,
    arena4: PeerArena,
    arena6: PeerArena,
    arenaW: PeerArena,
  ) {
    this.fam4 = { arena: arena4, seed: SwarmRecord.SEED4, leech: SwarmRecord.LEECH4, block: SwarmRecord.BLOCK4, cls: SwarmRecord.CLASS4, bytes: ADDR4 };
    this.fam6 = { arena: arena6, seed: SwarmRecord.SEED6, leech: SwarmRecord.LEECH6, block: SwarmRecord.BLOCK6, cls: SwarmRecord.CLASS6, bytes: ADDR6 };
    this.famW = { arena: arenaW, seed: SwarmRecord.SEEDW, leech: SwarmRecord.LEECHW, block: SwarmRecord.BLOCKW, cls: SwarmRecord.CLASSW, bytes: ADDRW };
    this.addressed = [this.fam4, this.fam6];
  }

  /** The family of the peer record at `pat`. */
  private famOf(pat: number): Family {
    const u8 = this.peers.u8;
    if (u8[pat + PeerRecord.FLAGS2] & PF2_WS) return this.famW;
    return u8[pat + PeerRecord.FLAGS] & PF_V6 ? this.fam6 : this.fam4;
  }

  /** A family by kind: 0 IPv4, 1 IPv6, 2 WebSocket. */
  family(kind: number): Family {
    return kind === 2 ? this.famW : kind === 1 ? this.fam6 : this.fam4;
  }

  /**
   * Put a live peer (PF_V6 or PF2_WS, and PF_SEEDER, already set in its flags) into its
   * swarm's array with the wire-form entry at src[off] (6 or 18 bytes). Returns false when the arena
   * reservation is exhausted (the caller frees the peer).
   */
  place(slot: number, src: Uint8Array, off: number): boolean {
    const pdv = this.peers.dv;
    const pat = slot * PeerRecord.SIZE;
    const flags = this.peers.u8[pat + PeerRecord.FLAGS];
    const f = this.famOf(pat);
    const sdv = this.swarms.dv;
    const sat = pdv.getUint32(pat + PeerRecord.SWARM, true) * SwarmRecord.SIZE;
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
      this.ctl[ShardControl.SEEDERS]++;
    } else {
      pos = S + L;
      sdv.setUint32(sat + f.leech, L + 1, true);
      this.ctl[ShardControl.LEECHERS]++;
    }
    if (f === this.fam6) this.ctl[ShardControl.PEERS_V6]++;
    else if (f === this.famW) this.ctl[ShardControl.PEERS_WS]++;
    this.writeEntry(f, blk + pos, slot, src, off);
    pdv.setUint32(pat + PeerRecord.POS, pos, true);
    return true;
  }

  /** Take a peer out of its swarm's array (inverse of place). */
  displace(slot: number): void {
    const pdv = this.peers.dv;
    const pat = slot * PeerRecord.SIZE;
    const flags = this.peers.u8[pat + PeerRecord.FLAGS];
    const f = this.famOf(pat);
    const sdv = this.swarms.dv;
    const sat = pdv.getUint32(pat + PeerRecord.SWARM, true) * SwarmRecord.SIZE;
    const S = sdv.getUint32(sat + f.seed, true);
    const L = sdv.getUint32(sat + f.leech, true);
    const blk = sdv.getUint32(sat + f.block, true);
    const pos = pdv.getUint32(pat + PeerRecord.POS, true);
    if (flags & PF_SEEDER) {
      // last seeder fills the hole, last leecher fills the last seeder's place
      if (pos !== S - 1) this.move(f, blk, S - 1, pos);
      if (L > 0) this.move(f, blk, S + L - 1, S - 1);
      sdv.setUint32(sat + f.seed, S - 1, true);
      this.ctl[ShardControl.SEEDERS]--;
    } else {
      if (pos !== S + L - 1) this.move(f, blk, S + L - 1, pos);
      sdv.setUint32(sat + f.leech, L - 1, true);
      this.ctl[ShardControl.LEECHERS]--;
    }
    if (f === this.fam6) this.ctl[ShardControl.PEERS_V6]--;
    else if (f === this.famW) this.ctl[ShardControl.PEERS_WS]--;
    const n = S + L - 1;
    const cls = this.swarms.u8[sat + f.cls];
    if (n === 0) this.freeBlock(sat, f);
    else if (cls > MIN_CLASS && n <= classEntries(cls) >> 2) this.resize(sat, f, cls - 1, n);
  }

  /** Is the peer in `slot` a WebSocket peer on socket `id` (its W entry)? */
  isSocket(slot: number, id: number): boolean {
    const pat = slot * PeerRecord.SIZE;
    if (!(this.peers.u8[pat + PeerRecord.FLAGS2] & PF2_WS)) return false;
    const f = this.famW;
    const sat = this.peers.dv.getUint32(pat + PeerRecord.SWARM, true) * SwarmRecord.SIZE;
    const e = (this.swarms.dv.getUint32(sat + f.block, true) + this.peers.dv.getUint32(pat + PeerRecord.POS, true)) * f.bytes;
    return readSocketEntry(f.arena.addr.u8, e) === id;
  }

  /** Overwrite a placed peer's address (same family). Returns whether it changed. */
  setAddress(slot: number, src: Uint8Array, off: number): boolean {
    const f = this.famOf(slot * PeerRecord.SIZE);
    const e = this.addressAt(slot);
    const a = f.arena.addr.u8;
    let changed = false;
    for (let i = 0; i < f.bytes; i++) {
      if (a[e + i] !== src[off + i]) {
        a[e + i] = src[off + i];
        changed = true;
      }
    }
    return changed;
  }

  /** Byte offset of a placed peer's entry in its family's arena (arenaOf). */
  addressAt(slot: number): number {
    const pat = slot * PeerRecord.SIZE;
    const f = this.famOf(pat);
    const sat = this.peers.dv.getUint32(pat + PeerRecord.SWARM, true) * SwarmRecord.SIZE;
    return (this.swarms.dv.getUint32(sat + f.block, true) + this.peers.dv.getUint32(pat + PeerRecord.POS, true)) * f.bytes;
  }

  /** The arena bytes a placed peer's entry is in (at addressAt(slot)). */
  arenaOf(slot: number): Uint8Array {
    return this.famOf(slot * PeerRecord.SIZE).arena.addr.u8;
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
    this.peers.dv.setUint32(slot * PeerRecord.SIZE + PeerRecord.POS, to, true);
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

  /** Give back the block of a swarm's array (at swarm record offset `sat`). */
  freeBlock(sat: number, f: Family): void {
    const cls = this.swarms.u8[sat + f.cls];
    if (cls === 0) return;
    f.arena.free(this.swarms.dv.getUint32(sat + f.block, true), cls);
    this.swarms.u8[sat + f.cls] = 0;
  }

  /**
   * Is a leecher of a user other than `user` in the swarm? Stops at the first one: with at
   * most tracker.max_peers_per_user_torrent peers of one user, a few entries at most.
   */
  hasLeecherOf(swarm: number, notUser: number): boolean {
    const sdv = this.swarms.dv;
    const pdv = this.peers.dv;
    const sat = swarm * SwarmRecord.SIZE;
    for (let k = 0; k < 3; k++) {
      const f = this.family(k);
      const S = sdv.getUint32(sat + f.seed, true);
      const L = sdv.getUint32(sat + f.leech, true);
      const slots = f.arena.slots.i32;
      const blk = sdv.getUint32(sat + f.block, true);
      for (let i = S; i < S + L; i++) {
        if (pdv.getUint32(slots[blk + i] * PeerRecord.SIZE + PeerRecord.USER, true) !== notUser) return true;
      }
    }
    return false;
  }

  /**
   * Visit up to `max` peers of a swarm that have an address (not WebSocket peers), seeders
   * first, IPv4 then IPv6: the peer slot and
   * its wire-form address (`bytes` long at addr[at]). Read-only, for inspection from
   * another thread (the admin API), which may catch a peer mid-move: slots out of range
   * are skipped, nothing is written.
   */
  forEachPeer(swarm: number, max: number, visit: (peer: number, addr: Uint8Array, at: number, bytes: number, seeder: boolean) => void): number {
    const sdv = this.swarms.dv;
    const sat = swarm * SwarmRecord.SIZE;
    // bounded by the views this store was built with, whatever torn values it reads
    const high = Math.min(this.ctl[ShardControl.PEER_HIGH], Math.floor(this.peers.u8.length / PeerRecord.SIZE));
    let n = 0;
    for (const f of this.addressed) {
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
   * Copy up to `max` peers of one segment (seeders or leechers) of the swarm's array of
   * family `f` into `out` at `to`, never `self`. Entries are `entry` bytes: the compact form
   * (6 or 18; a WebSocket peer's socket id) or ENTRY_FULL (ip16, port, peer_id). Starts at the swarm's
   * rotation counter, so successive answers walk the whole segment.
   */
  copyPeers(swarm: number, f: Family, seeders: boolean, self: number, max: number, out: Uint8Array, to: number, entry: number): number {
    const sdv = this.swarms.dv;
    const sat = swarm * SwarmRecord.SIZE;
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
    const rotField = sat + (seeders ? SwarmRecord.ROT_SEED : SwarmRecord.ROT_LEECH);
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
        if (f !== this.fam6) {
          for (let k = 0; k < 10; k++) out[dst + k] = 0;
          out[dst + 10] = 0xff;
          out[dst + 11] = 0xff;
          dst += 12;
        }
        for (let k = 0; k < b; k++) out[dst + k] = a[src + k];
        const pid = slot * PeerRecord.SIZE + PeerRecord.PEER_ID;
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

}

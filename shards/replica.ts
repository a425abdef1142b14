import { AF_FORWARDED, AF_GONE, AF_RESTORE, AF_WS, AnnounceRequest, KIND_ANNOUNCE } from '../contract/requests.js';
import { ALL_NODES, REMOTE_ANNOUNCE, RemoteRecord, RF_PAUSED, RF_SEEDER, RF_V6, RF_WINS_TIE, RM_ANNOUNCE, RM_DUMP, RM_REMOVE, RM_SWEEP, RM_UPSERT } from '../contract/replication.js';
import type { ByteRing } from '../contract/ring.js';
import type { ChangeWriter } from './changes.js';
import { PF2_REMOTE, PF2_WS, PF_LIVE, PF_PAUSED, PF_SEEDER, PF_V6, PeerRecord, REMOTE_EPOCH, REMOTE_FORWARDED, REMOTE_NODE, ShardControl } from './memory-layout.js';
import type { ShardLogic } from './shard.js';
import type { SwarmStore } from './swarm-store.js';

/** Seconds a forwarded announce may date back (when its node received it), at most. */
const FORWARD_AGE_MAX = 60;

/** Local peers a dump writes per turn of the shard's loop, at most. */
const DUMP_TURN = 4096;

/**
 * Other nodes' peers in this shard's swarms (remote peers, PF2_REMOTE), from the remote ring
 * the replication thread fills (contract/replication.ts), and the dumps it asks for.
 *
 * One record per (swarm, peer_id) across the cluster: when another node's copy of a peer
 * this shard holds locally is newer (its last announce later), the peer moved there and the
 * local one goes; when ours is newer it stays, and is published again so the other node
 * lets go of its own.
 */
export class Replica {
  private dumpSeq = 0;
  private dumpCursor = 0;

  constructor(
    private readonly store: SwarmStore,
    private readonly logic: ShardLogic,
    private readonly changes: ChangeWriter,
    private readonly remote: ByteRing,
    /** Where answers to forwarded announces go, never read (nobody waits for them). */
    private readonly scratch: ByteRing,
  ) {}

  /** Nothing to apply and no dump under way: the shard may sleep. */
  get idle(): boolean {
    return this.dumpSeq === 0 && this.remote.isEmpty();
  }

  /**
   * Apply up to `budget` remote records. Stops early while `room()` says a forwarded
   * announce could not write its accounting record. Returns how many were applied.
   */
  turn(now: number, budget: number, room: () => boolean): number {
    let n = 0;
    const q = this.remote.u8;
    const qdv = this.remote.dv;
    // (room for the changes a record may cause, unless nothing is written now: replication cut off)
    while (n < budget && room() && (this.changes.hasRoom(2) || !this.changes.on)) {
      const off = this.remote.next();
      if (off < 0) break;
      switch (q[off + RemoteRecord.OP]) {
        case RM_UPSERT:
          this.upsert(q, qdv, off, now);
          break;
        case RM_REMOVE: {
          const peer = this.find(q, off);
          if (peer >= 0 && this.isRemoteOf(peer, qdv.getUint32(off + RemoteRecord.NODE, true))) this.store.departPeer(peer, now);
          break;
        }
        case RM_SWEEP:
          this.sweep(qdv.getUint32(off + RemoteRecord.NODE, true), qdv.getUint32(off + RemoteRecord.EPOCH, true));
          break;
        case RM_DUMP:
          this.dumpSeq = qdv.getUint32(off + RemoteRecord.SEEN, true);
          this.dumpCursor = 0;
          break;
        case RM_ANNOUNCE: {
          const a = off + REMOTE_ANNOUNCE;
          if (q[a + AnnounceRequest.KIND] !== KIND_ANNOUNCE) break;
          q[a + AnnounceRequest.FLAGS] = (q[a + AnnounceRequest.FLAGS] & ~(AF_WS | AF_GONE | AF_RESTORE)) | AF_FORWARDED;
          qdv.setUint16(a + AnnounceRequest.NUMWANT, 0, true); // (its answer went from the other node)
          // it happened when the other node received it (its interval, its place among the
          // peer's direct announces here), within reason
          const when = Math.max(now - FORWARD_AGE_MAX, Math.min(now, qdv.getUint32(a + AnnounceRequest.FORWARDED_AT, true)));
          const mark = this.scratch.mark();
          this.logic.handle(q, qdv, a, this.scratch, when);
          this.scratch.rewind(mark);
          break;
        }
      }
      n++;
    }
    if (n > 0) this.remote.release();
    if (this.dumpSeq !== 0) this.dumpTurn();
    return n;
  }

  private find(q: Uint8Array, off: number): number {
    const swarm = this.store.findSwarm(q, off + RemoteRecord.INFO_HASH);
    return swarm < 0 ? -1 : this.store.findPeer(swarm, q, off + RemoteRecord.PEER_ID);
  }

  private isRemoteOf(peer: number, node: number): boolean {
    const pat = peer * PeerRecord.SIZE;
    return (this.store.peers.u8[pat + PeerRecord.FLAGS2] & PF2_REMOTE) !== 0 && this.store.peers.dv.getUint32(pat + REMOTE_NODE, true) === node;
  }

  private upsert(q: Uint8Array, qdv: DataView, off: number, now: number): void {
    const store = this.store;
    let swarm = store.findSwarm(q, off + RemoteRecord.INFO_HASH);
    if (swarm < 0) swarm = store.addSwarm(q, off + RemoteRecord.INFO_HASH, now);
    if (swarm < 0) {
      store.ctl[ShardControl.REMOTE_FULL]++;
      return;
    }
    const rflags = q[off + RemoteRecord.FLAGS];
    const seen = qdv.getUint32(off + RemoteRecord.SEEN, true);
    let peer = store.findPeer(swarm, q, off + RemoteRecord.PEER_ID);
    let forwarded = 0; // (min interval of the announces this node forwards: kept across updates)
    if (peer >= 0) {
      const pat = peer * PeerRecord.SIZE;
      const f2 = store.peers.u8[pat + PeerRecord.FLAGS2];
      if (f2 & PF2_WS) return; // a browser on its socket here: it stays
      const held = store.peers.dv.getUint32(pat + PeerRecord.LAST_SEEN, true);
      if (!(f2 & PF2_REMOTE)) {
        if (held > seen || (held === seen && !(rflags & RF_WINS_TIE))) {
          this.changes.upsert(peer); // ours is newer: the other node learns it and lets go
          return;
        }
      } else if (store.peers.dv.getUint32(pat + REMOTE_NODE, true) !== qdv.getUint32(off + RemoteRecord.NODE, true) && held > seen && store.peers.dv.getUint32(pat + REMOTE_EPOCH, true) >= qdv.getUint32(off + RemoteRecord.EPOCH, true)) {
        return; // a third node's copy, newer and as confirmed: this one is stale (its node lets go when it sees that one)
      }
      // the other node's copy replaces ours (the peer moved there: not a departure), or an
      // older remote one, placed afresh below (its user, family and segment may all differ);
      // a remote leecher turned seeder is a leecher that left (the no-leechers rule)
      if (f2 & PF2_REMOTE) forwarded = store.peers.dv.getUint32(pat + REMOTE_FORWARDED, true);
      if (f2 & PF2_REMOTE && !(store.peers.u8[pat + PeerRecord.FLAGS] & PF_SEEDER) && rflags & RF_SEEDER) store.departPeer(peer, now);
      else store.removePeer(peer);
    }
    peer = store.allocPeer(swarm, q, off + RemoteRecord.PEER_ID);
    if (peer < 0) {
      store.ctl[ShardControl.REMOTE_FULL]++;
      return;
    }
    const pu8 = store.peers.u8;
    const pdv = store.peers.dv;
    const pat = peer * PeerRecord.SIZE;
    pdv.setUint32(pat + PeerRecord.USER, qdv.getUint32(off + RemoteRecord.USER, true), true);
    pdv.setUint32(pat + REMOTE_NODE, qdv.getUint32(off + RemoteRecord.NODE, true), true);
    pdv.setUint32(pat + REMOTE_EPOCH, qdv.getUint32(off + RemoteRecord.EPOCH, true), true);
    pdv.setUint32(pat + REMOTE_FORWARDED, forwarded, true);
    pdv.setUint32(pat + PeerRecord.LAST_SEEN, seen, true);
    pu8[pat + PeerRecord.FLAGS] = PF_LIVE | (rflags & RF_SEEDER ? PF_SEEDER : 0) | (rflags & RF_V6 ? PF_V6 : 0) | (rflags & RF_PAUSED ? PF_PAUSED : 0);
    pu8[pat + PeerRecord.FLAGS2] = PF2_REMOTE;
    // counted before placing: a slot freed from here on is uncounted as it was counted
    this.logic.count(peer, 1);
    store.ctl[ShardControl.REMOTE_PEERS]++;
    if (!store.arrays.place(peer, q, off + RemoteRecord.ADDR)) {
      store.freePeer(peer);
      store.ctl[ShardControl.REMOTE_FULL]++;
    }
  }

  /** Remove the remote peers of `node` (or of every node) last confirmed by a sync before `epoch`. */
  private sweep(node: number, epoch: number): void {
    const store = this.store;
    const high = store.ctl[ShardControl.PEER_HIGH];
    for (let p = 0; p < high; p++) {
      const pat = p * PeerRecord.SIZE;
      if (!(store.peers.u8[pat + PeerRecord.FLAGS] & PF_LIVE) || !(store.peers.u8[pat + PeerRecord.FLAGS2] & PF2_REMOTE)) continue;
      if (node !== ALL_NODES && store.peers.dv.getUint32(pat + REMOTE_NODE, true) !== node) continue;
      // (gone with their node, or not confirmed by a resync: not departures a seeder's upload could lean on)
      if (store.peers.dv.getUint32(pat + REMOTE_EPOCH, true) < epoch) store.removePeer(p);
    }
  }

  /** The next local peers of the dump asked for, as much as the changes ring takes. */
  private dumpTurn(): void {
    if (!this.changes.on) {
      this.dumpSeq = 0; // replication cut off: the next reset asks again
      return;
    }
    const store = this.store;
    const high = store.ctl[ShardControl.PEER_HIGH];
    let p = this.dumpCursor;
    for (const end = Math.min(high, p + DUMP_TURN); p < end && this.changes.hasRoom(2); p++) {
      if (store.peers.u8[p * PeerRecord.SIZE + PeerRecord.FLAGS] & PF_LIVE) this.changes.upsert(p);
    }
    this.dumpCursor = p;
    if (p >= high && this.changes.dumpEnd(this.dumpSeq)) this.dumpSeq = 0;
  }
}

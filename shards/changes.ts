import { AnnounceRequest } from '../contract/requests.js';
import { CH_DUMP_END, CH_FORWARD, CH_REMOVE, CH_UPSERT, ChangeRecord, FORWARD_ANNOUNCE, RF_PAUSED, RF_SEEDER, RF_V6 } from '../contract/replication.js';
import type { ByteRing } from '../contract/ring.js';
import { PF2_REMOTE, PF2_WS, PF_PAUSED, PF_SEEDER, PF_V6, PeerRecord, ShardControl, SwarmRecord } from './memory-layout.js';
import type { SwarmStore } from './swarm-store.js';

/** The peer flags other nodes see, as RF_* bits. */
export function visibleFlags(pflags: number): number {
  return (pflags & PF_SEEDER ? RF_SEEDER : 0) | (pflags & PF_V6 ? RF_V6 : 0) | (pflags & PF_PAUSED ? RF_PAUSED : 0);
}

/**
 * A shard's side of the changes ring (contract/replication.ts): what other nodes must learn
 * of its local peers. Written only while the replication thread reads the ring (REPL_ON);
 * a record that finds it full is counted lost (CHANGES_LOST), and the replication thread
 * then republishes every local peer. Records become visible at commit(), once per batch.
 * WebSocket peers stay on their node (their offers are relayed by the socket that holds them).
 */
export class ChangeWriter {
  constructor(
    private readonly store: SwarmStore,
    private readonly ring: ByteRing,
  ) {}

  get on(): boolean {
    return Atomics.load(this.store.ctl, ShardControl.REPL_ON) === 1;
  }

  /** Does `peer` belong to what this node publishes (a local peer with an address)? */
  private published(peer: number): boolean {
    return (this.store.peers.u8[peer * PeerRecord.SIZE + PeerRecord.FLAGS2] & (PF2_WS | PF2_REMOTE)) === 0;
  }

  private reserve(bytes: number): number {
    const at = this.ring.reserve(bytes);
    if (at < 0) this.store.ctl[ShardControl.CHANGES_LOST]++;
    return at;
  }

  /** A placed local peer's current state (added, moved, seeder or paused changed). */
  upsert(peer: number): void {
    if (this.on && this.published(peer)) this.write(CH_UPSERT, peer);
  }

  /** A local peer about to be freed (stopped, expired, moved to another node). */
  remove(peer: number): void {
    if (this.on && this.published(peer)) this.write(CH_REMOVE, peer);
  }

  private write(op: number, peer: number): void {
    const at = this.reserve(ChangeRecord.SIZE);
    if (at < 0) return;
    const store = this.store;
    const u8 = this.ring.u8;
    const dv = this.ring.dv;
    const pat = peer * PeerRecord.SIZE;
    const pu8 = store.peers.u8;
    const pdv = store.peers.dv;
    const sat = pdv.getUint32(pat + PeerRecord.SWARM, true) * SwarmRecord.SIZE;
    u8[at + ChangeRecord.OP] = op;
    u8[at + ChangeRecord.FLAGS] = visibleFlags(pu8[pat + PeerRecord.FLAGS]);
    dv.setUint32(at + ChangeRecord.USER, pdv.getUint32(pat + PeerRecord.USER, true), true);
    u8.set(store.swarms.u8.subarray(sat + SwarmRecord.INFO_HASH, sat + SwarmRecord.INFO_HASH + 20), at + ChangeRecord.INFO_HASH);
    u8.set(pu8.subarray(pat + PeerRecord.PEER_ID, pat + PeerRecord.PEER_ID + 20), at + ChangeRecord.PEER_ID);
    if (op === CH_UPSERT) {
      const a = store.arrays.arenaOf(peer);
      const e = store.arrays.addressAt(peer);
      const n = pu8[pat + PeerRecord.FLAGS] & PF_V6 ? 18 : 6;
      for (let i = 0; i < n; i++) u8[at + ChangeRecord.ADDR + i] = a[e + i];
      dv.setUint32(at + ChangeRecord.SEQ, pdv.getUint32(pat + PeerRecord.LAST_SEEN, true), true);
    }
  }

  /**
   * An announce of another node's peer (the request record at `off` of `q`), for that node
   * to account. False when the ring is full (the replication thread is behind): the
   * announce is refused (try again), never dropped after being answered.
   */
  forward(q: Uint8Array, off: number, node: number): boolean {
    const at = this.ring.reserve(FORWARD_ANNOUNCE + AnnounceRequest.SIZE);
    if (at < 0) return false;
    this.ring.u8[at + ChangeRecord.OP] = CH_FORWARD;
    this.ring.dv.setUint32(at + ChangeRecord.NODE, node, true);
    this.ring.u8.set(q.subarray(off, off + AnnounceRequest.SIZE), at + FORWARD_ANNOUNCE);
    return true;
  }

  /** Every local peer of dump `seq` has been written. */
  dumpEnd(seq: number): boolean {
    const at = this.ring.reserve(ChangeRecord.SIZE);
    if (at < 0) return false;
    this.ring.u8[at + ChangeRecord.OP] = CH_DUMP_END;
    this.ring.dv.setUint32(at + ChangeRecord.SEQ, seq, true);
    return true;
  }

  hasRoom(records: number): boolean {
    return this.ring.hasRoom(records * ChangeRecord.SIZE);
  }

  commit(): void {
    this.ring.commit();
  }
}

import { AF_COMPACT, AF_HAS_KEY, AF_RESTORE, AF_V6, AnnounceRequest, EVENT_NONE, EVENT_PAUSED, KIND_ANNOUNCE } from '../contract/requests.js';
import { CHECKPOINT_RECORD, CheckpointRecord } from '../contract/checkpoint.js';
import { PF2_REMOTE, PF_HAS_KEY, PF_LIVE, PF_PAUSED, PF_V6, PeerRecord, ShardControl, SwarmRecord, SWF_LIVE } from './memory-layout.js';
import type { SwarmStore } from './swarm-store.js';

// A shard writes its peers out for a checkpoint (contract/checkpoint.ts) from its own
// thread, a few swarms per turn of its loop between batches of requests, so announces wait
// a few milliseconds at most. Each peer becomes the announce record that puts it back
// (AF_RESTORE) after the time it last announced. Between turns the swarms go on changing:
// a checkpoint taken while serving is a fuzzy picture (a peer that joined a swarm already
// written is missing until the next one); taken at shutdown, with the listeners closed, it
// is exact.

/** Peers written per turn of the loop, at most (a bigger swarm goes whole). */
const TURN_PEERS = 16_384;

export class Snapshotter {
  private seq = 0; // the checkpoint being written (0: none)
  private cursor = 0; // next swarm slot

  constructor(
    private readonly store: SwarmStore,
    /** Hands a chunk of CheckpointRecords over (the buffer is given away), and says when the last one went. */
    private readonly emit: (seq: number, chunk: ArrayBuffer, peers: number, last: boolean) => void,
  ) {}

  /** A checkpoint is being written out: the loop must not sleep between turns. */
  get writing(): boolean {
    return this.seq !== 0;
  }

  /** One turn: start a checkpoint the acceptor asked for, or go on with the one being written. */
  turn(): void {
    const asked = Atomics.load(this.store.ctl, ShardControl.CHECKPOINT);
    if (this.seq === 0) {
      if (asked === 0 || asked === this.store.ctl[ShardControl.CHECKPOINT_DONE]) return;
      this.seq = asked;
      this.cursor = 0;
    }
    const high = this.store.ctl[ShardControl.SWARM_HIGH];
    // this turn's swarms, as many as TURN_PEERS allows, sized first: one buffer, written in place
    const from = this.cursor;
    let to = from;
    let peers = 0;
    while (to < high && peers < TURN_PEERS) peers += this.peersOf(to++);
    const out = new Uint8Array(peers * CHECKPOINT_RECORD);
    let written = 0;
    for (let s = from; s < to; s++) {
      const n = this.peersOf(s);
      if (n > 0) written += this.writeSwarm(s, out, written, n);
    }
    this.cursor = to;
    const last = to >= high;
    this.emit(this.seq, written === peers ? out.buffer : out.slice(0, written * CHECKPOINT_RECORD).buffer, written, last);
    if (last) {
      Atomics.store(this.store.ctl, ShardControl.CHECKPOINT_DONE, this.seq);
      this.seq = 0;
    }
  }

  /** Peers of swarm slot `s` (0 when the slot is free). */
  private peersOf(s: number): number {
    const store = this.store;
    return store.swarms.u8[s * SwarmRecord.SIZE + SwarmRecord.FLAGS] & SWF_LIVE ? store.seeders(s) + store.leechers(s) : 0;
  }

  /** The peers of swarm `s` into `buf` as CheckpointRecords from record `first` on; returns how many. */
  private writeSwarm(s: number, buf: Uint8Array, first: number, max: number): number {
    const store = this.store;
    const dv = new DataView(buf.buffer);
    const pu8 = store.peers.u8;
    const pdv = store.peers.dv;
    const sat = s * SwarmRecord.SIZE;
    let i = 0;
    store.arrays.forEachPeer(s, max, (p, addr, a, bytes) => {
      const pat = p * PeerRecord.SIZE;
      const flags = pu8[pat + PeerRecord.FLAGS];
      if (!(flags & PF_LIVE) || pu8[pat + PeerRecord.FLAGS2] & PF2_REMOTE) return; // other nodes' peers are theirs to keep
      const r = (first + i) * CHECKPOINT_RECORD;
      const q = r + CheckpointRecord.ANNOUNCE;
      dv.setUint32(r + CheckpointRecord.LAST_SEEN, pdv.getUint32(pat + PeerRecord.LAST_SEEN, true), true);
      buf[q + AnnounceRequest.KIND] = KIND_ANNOUNCE;
      buf[q + AnnounceRequest.EVENT] = flags & PF_PAUSED ? EVENT_PAUSED : EVENT_NONE;
      buf[q + AnnounceRequest.FLAGS] = AF_RESTORE | AF_COMPACT | (flags & PF_V6 ? AF_V6 : 0) | (flags & PF_HAS_KEY ? AF_HAS_KEY : 0);
      dv.setUint32(q + AnnounceRequest.USER, pdv.getUint32(pat + PeerRecord.USER, true), true);
      buf.set(store.swarms.u8.subarray(sat + SwarmRecord.INFO_HASH, sat + SwarmRecord.INFO_HASH + 20), q + AnnounceRequest.INFO_HASH);
      buf.set(pu8.subarray(pat + PeerRecord.PEER_ID, pat + PeerRecord.PEER_ID + 20), q + AnnounceRequest.PEER_ID);
      // the address entry: ip4 or ip16, then the port big-endian; IPv4 as IPv4-mapped
      const ip = q + AnnounceRequest.IP;
      if (bytes === 6) {
        buf[ip + 10] = 0xff;
        buf[ip + 11] = 0xff;
        buf.set(addr.subarray(a, a + 4), ip + 12);
      } else buf.set(addr.subarray(a, a + 16), ip);
      dv.setUint16(q + AnnounceRequest.PORT, (addr[a + bytes - 2] << 8) | addr[a + bytes - 1], true);
      dv.setUint32(q + AnnounceRequest.KEY, pdv.getUint32(pat + PeerRecord.KEY, true), true);
      dv.setFloat64(q + AnnounceRequest.UPLOADED, pdv.getFloat64(pat + PeerRecord.UPLOADED, true), true);
      dv.setFloat64(q + AnnounceRequest.DOWNLOADED, pdv.getFloat64(pat + PeerRecord.DOWNLOADED, true), true);
      dv.setFloat64(q + AnnounceRequest.LEFT, pdv.getFloat64(pat + PeerRecord.LEFT, true), true);
      i++;
    });
    return i;
  }
}

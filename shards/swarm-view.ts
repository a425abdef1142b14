import { PeerRecord, SwarmRecord } from './memory-layout.js';
import type { ShardMemory } from './memory.js';
import { SwarmStore } from './swarm-store.js';

// A live swarm as its shard holds it, read from another thread (the admin API) straight
// from the shard's shared memory: no message to the shard, no effect on announces. The
// shard keeps writing meanwhile, so a peer in the middle of a move may be missing or shown
// twice, and every read is bounded by the views taken at the start: a view for people.

export interface PeerSnapshot {
  peerId: Uint8Array;
  /** dotted IPv4 or full-form IPv6 */
  ip: string;
  port: number;
  seeder: boolean;
  /** 0 in open mode */
  user: number;
  uploaded: number;
  downloaded: number;
  left: number;
  secondsSinceAnnounce: number;
}

export interface SwarmSnapshot {
  seeders: number;
  leechers: number;
  completed: number;
  /** seeders first, at most the limit asked for */
  peers: PeerSnapshot[];
}

function ipText(a: Uint8Array, at: number, bytes: number): string {
  if (bytes === 6) return `${a[at]}.${a[at + 1]}.${a[at + 2]}.${a[at + 3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((a[at + i] << 8) | a[at + i + 1]).toString(16));
  return groups.join(':');
}

/** The swarm of `infoHash` (20 bytes) in `memory`, or undefined; `now` is the tracker clock. */
export function readSwarm(memory: ShardMemory, infoHash: Uint8Array, limit: number, now: number): SwarmSnapshot | undefined {
  // views over the buffers as they are now (tables grow by replacing their views); an
  // observer never initialises tables its shard has not yet
  const store = new SwarmStore(memory, true);
  const swarm = store.findSwarm(infoHash, 0);
  if (swarm < 0) return undefined;
  const pu8 = store.peers.u8;
  const pdv = store.peers.dv;
  const peers: PeerSnapshot[] = [];
  store.arrays.forEachPeer(swarm, limit, (p, addr, at, bytes, seeder) => {
    const r = p * PeerRecord.SIZE;
    peers.push({
      peerId: pu8.slice(r + PeerRecord.PEER_ID, r + PeerRecord.PEER_ID + 20),
      ip: ipText(addr, at, bytes),
      port: (addr[at + bytes - 2] << 8) | addr[at + bytes - 1],
      seeder,
      user: pdv.getUint32(r + PeerRecord.USER, true),
      uploaded: pdv.getFloat64(r + PeerRecord.UPLOADED, true),
      downloaded: pdv.getFloat64(r + PeerRecord.DOWNLOADED, true),
      left: pdv.getFloat64(r + PeerRecord.LEFT, true),
      secondsSinceAnnounce: Math.max(0, now - pdv.getUint32(r + PeerRecord.LAST_SEEN, true)),
    });
  });
  return {
    seeders: store.seeders(swarm),
    leechers: store.leechers(swarm),
    completed: store.swarms.dv.getUint32(swarm * SwarmRecord.SIZE + SwarmRecord.COMPLETED, true),
    peers,
  };
}

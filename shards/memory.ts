import { randomInt } from 'node:crypto';
import { ADDR4, ADDR6, ADDRW, SHARD_CONTROL_WORDS, GlobalBlock, GLOBAL_BLOCK_WORDS, PeerRecord, SwarmRecord } from './memory-layout.js';
import { ringBytes } from '../contract/ring.js';
import { SwarmStore, type SwarmBuffers } from './swarm-store.js';
import { HashIndex, growableBuffer } from './table.js';

/** Everything a shard thread works on. Allocated and kept by the acceptor, so a shard that
 * dies is respawned on the same memory. */
export interface ShardMemory extends SwarmBuffers {
  requests: SharedArrayBuffer; // acceptor → shard ring
  answers: SharedArrayBuffer; // shard → acceptor ring
  accounting: SharedArrayBuffer; // shard → persistence ring (AccountingRecord records)
  changes: SharedArrayBuffer; // shard → replication ring (contract/replication.ts)
  remote: SharedArrayBuffer; // replication → shard ring
}

export interface ShardLimits {
  maxPeers: number;
  maxSwarms: number;
  requestRingBytes: number; // power of two
  answerRingBytes: number; // power of two
  accountingRingBytes?: number; // power of two; default a minimal ring (accounting off)
  replicationRingBytes?: number; // power of two, each way; default a minimal ring (replication off)
}

function pow2AtLeast(n: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(2, n)));
}

/** The block shared by the acceptor and all shards: clock, hash seed, the acceptor's doorbell. */
export function allocateGlobal(): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(GLOBAL_BLOCK_WORDS * 4);
  new Int32Array(sab)[GlobalBlock.HASH_SEED] = randomInt(0, 2 ** 31 - 1) | 0;
  return sab;
}

/**
 * Reserve a shard's tables. Growable buffers reserve address space for the configured bound
 * (capped by V8's 4 GiB per buffer) and commit memory only as the tables grow; indexes are
 * sized for a load of at most 1/2.
 */
export function allocateShardMemory(global: SharedArrayBuffer, limits: ShardLimits): ShardMemory {
  const init = SwarmStore.initialBytes();
  return {
    ctl: new SharedArrayBuffer(SHARD_CONTROL_WORDS * 4),
    global,
    swarms: growableBuffer(init.swarms, limits.maxSwarms * SwarmRecord.SIZE),
    swarmIndex: growableBuffer(init.swarmIndex, HashIndex.bytesFor(pow2AtLeast(limits.maxSwarms * 2))),
    peers: growableBuffer(init.peers, limits.maxPeers * PeerRecord.SIZE),
    peerIndex: growableBuffer(init.peerIndex, HashIndex.bytesFor(pow2AtLeast(limits.maxPeers * 2))),
    // Peer arrays: a swarm's block is at most twice its peers, and freed blocks wait on
    // free lists, so reserve four entries per peer (address space only).
    addr4: growableBuffer(init.addr4, limits.maxPeers * 4 * ADDR4),
    slots4: growableBuffer(init.slots4, limits.maxPeers * 4 * 4),
    marks4: growableBuffer(init.marks4, limits.maxPeers * 4),
    addr6: growableBuffer(init.addr6, limits.maxPeers * 4 * ADDR6),
    slots6: growableBuffer(init.slots6, limits.maxPeers * 4 * 4),
    marks6: growableBuffer(init.marks6, limits.maxPeers * 4),
    addrW: growableBuffer(init.addrW, limits.maxPeers * 4 * ADDRW),
    slotsW: growableBuffer(init.slotsW, limits.maxPeers * 4 * 4),
    marksW: growableBuffer(init.marksW, limits.maxPeers * 4),
    requests: committed(new SharedArrayBuffer(ringBytes(limits.requestRingBytes))),
    answers: committed(new SharedArrayBuffer(ringBytes(limits.answerRingBytes))),
    accounting: committed(new SharedArrayBuffer(ringBytes(limits.accountingRingBytes ?? 4096))),
    changes: committed(new SharedArrayBuffer(ringBytes(limits.replicationRingBytes ?? 4096))),
    remote: committed(new SharedArrayBuffer(ringBytes(limits.replicationRingBytes ?? 4096))),
  };
}

/**
 * Touch every page of a fixed buffer now. The rings are walked end to end within minutes of
 * any load, so their memory is part of the tracker's baseline, not something that grows with
 * peers; committing it at start makes the process's footprint what it will be.
 */
function committed(sab: SharedArrayBuffer): SharedArrayBuffer {
  new Uint8Array(sab).fill(0);
  return sab;
}

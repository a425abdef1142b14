import { classEntries } from './arena.js';
import { NIL, PF_LIVE, PF_SEEDER, PF_V6, PF2_REMOTE, PF2_WS, PeerRecord, ShardControl, SwarmRecord, SWF_LIVE } from './memory-layout.js';
import type { SwarmStore } from './swarm-store.js';

// A shard thread that dies is respawned on the same memory: its tables survive, but the
// thread may have died in the middle of an update. recover() puts them back in order
// before the new thread serves.

/**
 * Re-derive everything a thread that died mid-update could have left torn, from the
 * swarm arrays (which peers are where, at which address) and the peer records (who they
 * are): array entries whose peer is not live, not of this swarm or seen twice are
 * dropped; live peers found in no array are freed (they lost their address and will
 * announce again); positions, seeder flags, counters, free lists and both indexes are
 * rebuilt.
 */
export function recover(store: SwarmStore): void {
  store.swarms.refresh();
  store.peers.refresh();
  store.swarmIndex.refresh();
  store.peerIndex.refresh();
  store.arena4.refresh();
  store.arena6.refresh();
  store.arenaW.refresh();
  const c = store.ctl;
  const su8 = store.swarms.u8;
  const sdv = store.swarms.dv;
  const pu8 = store.peers.u8;
  const pdv = store.peers.dv;
  const peerHigh = c[ShardControl.PEER_HIGH];
  const seen = new Uint8Array(peerHigh);
  const used4: Array<{ start: number; cls: number }> = [];
  const used6: Array<{ start: number; cls: number }> = [];
  const usedW: Array<{ start: number; cls: number }> = [];
  let swarmFree = NIL;
  let swarmLive = 0;
  c[ShardControl.SEEDERS] = 0;
  c[ShardControl.LEECHERS] = 0;
  c[ShardControl.PEERS_V6] = 0;
  c[ShardControl.PEERS_WS] = 0;
  c[ShardControl.REMOTE_PEERS] = 0;
  for (let s = c[ShardControl.SWARM_HIGH] - 1; s >= 0; s--) {
    const sat = s * SwarmRecord.SIZE;
    if (!(su8[sat + SwarmRecord.FLAGS] & SWF_LIVE)) {
      sdv.setInt32(sat + SwarmRecord.LAST_ACTIVE, swarmFree, true);
      swarmFree = s;
      continue;
    }
    swarmLive++;
    for (const f of [store.arrays.fam4, store.arrays.fam6, store.arrays.famW]) {
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
        if (slot < 0 || slot >= peerHigh || seen[slot] || !(pu8[slot * PeerRecord.SIZE + PeerRecord.FLAGS] & PF_LIVE)) continue;
        if (pdv.getUint32(slot * PeerRecord.SIZE + PeerRecord.SWARM, true) !== s) continue;
        seen[slot] = 1;
        if (kept !== i) {
          a.copyWithin((blk + kept) * f.bytes, (blk + i) * f.bytes, (blk + i + 1) * f.bytes);
          slots[blk + kept] = slot;
        }
        const pat = slot * PeerRecord.SIZE;
        let flags = (pu8[pat + PeerRecord.FLAGS] & ~(PF_SEEDER | PF_V6)) | (f === store.arrays.fam6 ? PF_V6 : 0);
        pu8[pat + PeerRecord.FLAGS2] = (pu8[pat + PeerRecord.FLAGS2] & ~PF2_WS) | (f === store.arrays.famW ? PF2_WS : 0);
        if (i < S) {
          flags |= PF_SEEDER;
          keptSeeders++;
        }
        pu8[pat + PeerRecord.FLAGS] = flags;
        pdv.setUint32(pat + PeerRecord.POS, kept, true);
        if (pu8[pat + PeerRecord.FLAGS2] & PF2_REMOTE) c[ShardControl.REMOTE_PEERS]++;
        kept++;
      }
      sdv.setUint32(sat + f.seed, keptSeeders, true);
      sdv.setUint32(sat + f.leech, kept - keptSeeders, true);
      c[ShardControl.SEEDERS] += keptSeeders;
      c[ShardControl.LEECHERS] += kept - keptSeeders;
      if (f === store.arrays.fam6) c[ShardControl.PEERS_V6] += kept;
      if (f === store.arrays.famW) c[ShardControl.PEERS_WS] += kept;
      if (kept === 0) su8[sat + f.cls] = 0;
      else (f === store.arrays.fam4 ? used4 : f === store.arrays.fam6 ? used6 : usedW).push({ start: blk, cls });
    }
  }
  c[ShardControl.SWARM_FREE] = swarmFree;
  c[ShardControl.SWARM_LIVE] = swarmLive;
  // Free lists of the arenas: everything but the blocks of non-empty arrays.
  store.arena4.rebuildFreeLists(used4);
  store.arena6.rebuildFreeLists(used6);
  store.arenaW.rebuildFreeLists(usedW);
  store.rebuildSwarmIndex(store.swarmIndex.capacity);
  // peers: free live records no array holds, rebuild the free list
  let free = NIL;
  let live = 0;
  for (let p = peerHigh - 1; p >= 0; p--) {
    const at = p * PeerRecord.SIZE;
    if (pu8[at + PeerRecord.FLAGS] & PF_LIVE && seen[p]) {
      live++;
      continue;
    }
    pu8[at + PeerRecord.FLAGS] = 0;
    pdv.setInt32(at + PeerRecord.POS, free, true);
    free = p;
  }
  c[ShardControl.PEER_FREE] = free;
  c[ShardControl.PEER_LIVE] = live;
  store.rebuildPeerIndex(store.peerIndex.capacity);
}

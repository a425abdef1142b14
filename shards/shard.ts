import { AnnounceAnswer, writeSocketEntry, AF_COMPACT, AF_FORWARDED, AF_GONE, AF_HAS_KEY, AF_RESTORE, AF_V6, AF_WS, AnnounceRequest, ENTRY_FULL, ENTRY_V4, ENTRY_V6, EVENT_COMPLETED, EVENT_PAUSED, EVENT_STARTED, EVENT_STOPPED, KIND_ANNOUNCE, KIND_SCRAPE, ScrapeAnswer, SCRAPE_ENTRY, ScrapeRequest, ST_BUSY, ST_OK, ST_PEER_ID_IN_USE, ST_TABLE_FULL, ST_TOO_MANY_PEERS, ST_TOO_MANY_SWARMS, ST_TOO_SOON } from '../contract/requests.js';
import { AccountingRecord, ACF2_WS, ACF_COMPLETED, ACF_HAS_KEY, ACF_PAUSED, ACF_REFUSED, ACF_SEEDER, ACF_STATE, ACF_STOPPED, ACF_V6, CHEAT_BACKWARDS, CHEAT_NO_LEECHERS, CHEAT_OVER_RATE, CHEAT_TOO_MANY_PEERS } from '../contract/accounting.js';
import { OwnerCounts } from './owner-counts.js';
import type { ChangeWriter } from './changes.js';
import { PF2_REMOTE, PF2_REPEATED, PF2_WS, REMOTE_FORWARDED, REMOTE_NODE, PF_COMPLETED, PF_FRESH, PF_HAS_KEY, PF_LIVE, PF_PAUSED, PF_RESTORED, PF_SEEDER, PF_V6, PeerRecord, SwarmRecord, ShardControl } from './memory-layout.js';
import type { ByteRing } from '../contract/ring.js';
import type { SwarmStore } from './swarm-store.js';

/** Largest answer record a request can produce, for backpressure checks. */
export function maxAnswerBytes(numwantMax: number, scrapeMaxHashes: number): number {
  return Math.max(AnnounceAnswer.PEERS + numwantMax * ENTRY_FULL, ScrapeAnswer.FILES + scrapeMaxHashes * SCRAPE_ENTRY);
}

/** What a shard enforces; configuration resolved by the engine (tracker.*, accounting.*). */
export interface ShardRules {
  /** Seconds: caps the seed/leech time and the upload interval one announce can credit (a longer gap means the peer was gone). */
  peerTimeout: number;
  /** Bytes a second: the most upload an announce can credit per second since the peer's previous one. */
  maxUploadRate: number;
  /** Seconds: a peer's announce sooner than this after its previous one is refused (0 = not enforced). */
  minInterval: number;
  /** Private mode: most peers of one user in one swarm (0 = no cap). */
  maxPeersPerUser: number;
  /** Open mode: most peers of one source address in this shard (0 = no cap). */
  maxPeersPerAddress: number;
  /** A database credits the records: users' peers on registered torrents are accounted. False: every record is state only (ACF_STATE). */
  ledger: boolean;
  /** Checkpoints are kept: announces without accounting leave their state (ACF_STATE) for the checkpoints' tails. */
  states: boolean;
}

/** remoteTarget's answers besides a node to forward to (> 0) or 0 (answer only). */
const REMOTE_TAKE = -1;
const REMOTE_DROP = -2;
const REMOTE_IN_USE = -3;

/** Seconds of leeway on min interval: the clock ticks whole seconds and clients round. */
export const MIN_INTERVAL_SLACK = 2;

/** A peer whose announces all came within this many seconds of each other is fresh (PF_FRESH). */
export const FRESH_SECONDS = 2;

/** Seconds a leecher's departure still counts before a seeder's previous announce (clock granularity, racing announces). */
export const LEECHER_GRACE = 5;

/**
 * Turns request records into answer records against one shard's swarms. Pure logic over
 * shared memory: no sockets, no timers; the clock comes in with each call.
 */
export class ShardLogic {
  private readonly wire = new Uint8Array(18);
  private readonly rules: ShardRules;
  /** Set per announce before the peer changes: another leecher was there since its previous announce. */
  private hadLeechers = false;
  /** Peers per (user, swarm), or per (0, source address) in open mode: the caps. */
  readonly owners = new OwnerCounts();
  /** With replication: where local peers' changes and forwarded announces go (shards/changes.ts). */
  private changes: ChangeWriter | null = null;

  /**
   * `accounting` receives one AccountingRecord per announce that changes a swarm (the drain
   * loop keeps room for one per request): accounted, or its state only (ACF_STATE).
   */
  constructor(
    private readonly store: SwarmStore,
    private readonly accounting: ByteRing | null = null,
    rules: Partial<ShardRules> = {},
  ) {
    this.rules = { peerTimeout: 0, maxUploadRate: Number.MAX_VALUE, minInterval: 0, maxPeersPerUser: 0, maxPeersPerAddress: 0, ledger: true, states: true, ...rules };
    store.onFree = (slot) => {
      this.count(slot, -1);
      if (store.peers.u8[slot * PeerRecord.SIZE + PeerRecord.FLAGS2] & PF2_REMOTE) store.ctl[ShardControl.REMOTE_PEERS]--;
      else this.changes?.remove(slot);
    };
    this.recount();
  }

  /** Replicate: local peers' changes, and announces of other nodes' peers, to `changes`. */
  replicate(changes: ChangeWriter): void {
    this.changes = changes;
  }

  /** The owner key of a peer: (user, swarm) for a user's peer, (0, source address) in open mode. */
  private ownerB(user: number, swarm: number, source: number): number {
    return user !== 0 ? swarm : source;
  }

  /**
   * Count the peer in `slot` for its owner (+1) or no longer (-1), from its record. Another
   * node's peer counts for its user (the cap is cluster-wide), not for an address (whose
   * tags are this process's own).
   */
  count(slot: number, by: 1 | -1): void {
    const pdv = this.store.peers.dv;
    const at = slot * PeerRecord.SIZE;
    const user = pdv.getUint32(at + PeerRecord.USER, true);
    if (user === 0 && this.store.peers.u8[at + PeerRecord.FLAGS2] & PF2_REMOTE) return;
    const b = this.ownerB(user, pdv.getUint32(at + PeerRecord.SWARM, true), pdv.getUint32(at + PeerRecord.SOURCE, true));
    if (by > 0) this.owners.add(user, b);
    else this.owners.remove(user, b);
  }

  /** Count every live peer's owner (a thread starting on tables a previous one filled). */
  recount(): void {
    this.owners.clear();
    const u8 = this.store.peers.u8;
    const high = this.store.ctl[ShardControl.PEER_HIGH];
    for (let p = 0; p < high; p++) if (u8[p * PeerRecord.SIZE + PeerRecord.FLAGS] & PF_LIVE) this.count(p, 1);
  }

  /** Handle one request record at `off` of `q`, appending its answer to `out`. */
  handle(q: Uint8Array, qdv: DataView, off: number, out: ByteRing, now: number): void {
    const kind = q[off];
    if (kind === KIND_ANNOUNCE) this.announce(q, qdv, off, out, now);
    else if (kind === KIND_SCRAPE) this.scrape(q, qdv, off, out);
  }

  private announce(q: Uint8Array, qdv: DataView, off: number, out: ByteRing, now: number): void {
    const store = this.store;
    const flags = q[off + AnnounceRequest.FLAGS];
    const event = q[off + AnnounceRequest.EVENT];
    // a WebSocket peer's entry is its socket id, answered to WebSocket peers only (always 6 bytes)
    const ws = (flags & AF_WS) !== 0;
    const v6 = (flags & AF_V6) !== 0 && !ws;
    const entry = ws ? ENTRY_V4 : flags & AF_COMPACT ? (v6 ? ENTRY_V6 : ENTRY_V4) : ENTRY_FULL;
    const numwant = event === EVENT_STOPPED ? 0 : qdv.getUint16(off + AnnounceRequest.NUMWANT, true);
    const at = out.reserve(AnnounceAnswer.PEERS + numwant * entry);
    if (at < 0) throw new Error('answer ring full: the drain loop checks hasRoom(maxAnswerBytes) first');
    const a = out.u8;
    const adv = out.dv;
    a[at + AnnounceAnswer.KIND] = KIND_ANNOUNCE;
    a[at + AnnounceAnswer.STATUS] = ST_OK;
    adv.setUint32(at + AnnounceAnswer.REQ_ID, qdv.getUint32(off + AnnounceRequest.REQ_ID, true), true);

    let swarm = store.findSwarm(q, off + AnnounceRequest.INFO_HASH);
    if (swarm < 0 && event !== EVENT_STOPPED) swarm = store.addSwarm(q, off + AnnounceRequest.INFO_HASH, now);
    if (swarm < 0) {
      if (event !== EVENT_STOPPED) this.tableFull(at, out); // max_swarms refusals count too
      else this.counts(at, adv, -1, 0);
      return;
    }
    const user = qdv.getUint32(off + AnnounceRequest.USER, true);
    const key = qdv.getUint32(off + AnnounceRequest.KEY, true);
    const source = qdv.getUint32(off + AnnounceRequest.SOURCE, true);
    let peer = store.findPeer(swarm, q, off + AnnounceRequest.PEER_ID);
    // Another node's peer (shards/replica.ts): answered here, handed to its node, taken
    // over, or refused (remoteTarget).
    if (peer >= 0 && store.peers.u8[peer * PeerRecord.SIZE + PeerRecord.FLAGS2] & PF2_REMOTE) {
      const to = this.remoteTarget(peer, qdv, off, user, flags);
      if (to === REMOTE_IN_USE) return this.fail(at, out, ST_PEER_ID_IN_USE);
      if (to === REMOTE_DROP) return this.fail(at, out, ST_TOO_SOON);
      if (to === REMOTE_TAKE) {
        store.removePeer(peer);
        peer = -1;
      } else {
        if (to > 0) {
          // min interval here too: a client going from node to node is held to it as well
          const pdv = store.peers.dv;
          const last = pdv.getUint32(peer * PeerRecord.SIZE + REMOTE_FORWARDED, true);
          const exempt = event === EVENT_STOPPED || (event === EVENT_COMPLETED && qdv.getFloat64(off + AnnounceRequest.LEFT, true) === 0);
          if (this.rules.minInterval > 0 && !exempt && last !== 0 && now - last + MIN_INTERVAL_SLACK < this.rules.minInterval) {
            this.fail(at, out, ST_TOO_SOON);
            adv.setUint32(at + AnnounceAnswer.WAIT, this.rules.minInterval - (now - last), true);
            return;
          }
          // (the replication thread stamps FORWARDED_AT, to the millisecond)
          if (!this.changes!.forward(q, off, to)) return this.fail(at, out, ST_BUSY);
          pdv.setUint32(peer * PeerRecord.SIZE + REMOTE_FORWARDED, now, true);
        }
        store.swarms.dv.setUint32(swarm * SwarmRecord.SIZE + SwarmRecord.LAST_ACTIVE, now, true);
        const n = this.answerPeers(swarm, peer, ws, v6, qdv.getFloat64(off + AnnounceRequest.LEFT, true) === 0 || event === EVENT_PAUSED, numwant, a, at, entry);
        this.counts(at, adv, swarm, n);
        out.shrinkLast(AnnounceAnswer.PEERS + n * entry);
        return;
      }
    } else if (flags & AF_FORWARDED && (peer >= 0 ? this.staleForward(peer, q, qdv, off) : user === 0 || event !== EVENT_STARTED)) {
      // older than what the peer announced here since; or a peer that left this node
      // already (stopped or expired: a late announce must not bring it back; in open mode
      // nothing here proves who sent it); a new session (`started`) is one
      return this.fail(at, out, ST_TOO_SOON);
    }
    if (peer >= 0 && !this.ownsPeer(peer, user, key, (flags & AF_HAS_KEY) !== 0, flags & AF_FORWARDED ? -1 : source)) {
      this.fail(at, out, ST_PEER_ID_IN_USE);
      return;
    }
    // (not WebSocket peers: ws.interval is shorter, and their socket's message rate bounds them)
    if (peer >= 0 && this.rules.minInterval > 0 && (flags & (AF_RESTORE | AF_WS)) === 0) {
      const pat = peer * PeerRecord.SIZE;
      const pdv = store.peers.dv;
      const pflags = store.peers.u8[pat + PeerRecord.FLAGS];
      // Stopped always passes, and a completed that is the peer's snatch; a peer reloaded at
      // start has no known interval. A repeat of what the peer last said (a retry after a
      // lost answer, the IPv6 twin of a dual-stack client's IPv4 announce) changes nothing
      // and is answered.
      const exempt =
        event === EVENT_STOPPED ||
        (store.peers.u8[pat + PeerRecord.FLAGS2] & PF2_WS) !== 0 || // a browser's peer_id now announced over HTTP: not a repeat
        (event === EVENT_COMPLETED && !(pflags & (PF_COMPLETED | PF_SEEDER)) && qdv.getFloat64(off + AnnounceRequest.LEFT, true) === 0) ||
        (pflags & PF_RESTORED) !== 0;
      const elapsed = now - pdv.getUint32(pat + PeerRecord.LAST_SEEN, true);
      if (!exempt && elapsed + MIN_INTERVAL_SLACK < this.rules.minInterval) {
        // one repeat a min interval (retry, dual-stack twin) passes; an idle bot's stream does not
        const repeat =
          !(store.peers.u8[pat + PeerRecord.FLAGS2] & PF2_REPEATED) &&
          qdv.getFloat64(off + AnnounceRequest.UPLOADED, true) === pdv.getFloat64(pat + PeerRecord.UPLOADED, true) &&
          qdv.getFloat64(off + AnnounceRequest.DOWNLOADED, true) === pdv.getFloat64(pat + PeerRecord.DOWNLOADED, true) &&
          qdv.getFloat64(off + AnnounceRequest.LEFT, true) === pdv.getFloat64(pat + PeerRecord.LEFT, true);
        if (!repeat) {
          this.fail(at, out, ST_TOO_SOON);
          adv.setUint32(at + AnnounceAnswer.WAIT, this.rules.minInterval - elapsed, true);
          return;
        }
        store.peers.u8[pat + PeerRecord.FLAGS2] |= PF2_REPEATED;
      } else {
        store.peers.u8[pat + PeerRecord.FLAGS2] &= ~PF2_REPEATED;
      }
    }
    store.swarms.dv.setUint32(swarm * SwarmRecord.SIZE + SwarmRecord.LAST_ACTIVE, now, true);

    // Accounting only where it can be accounted (a user's peer on a registered torrent, with
    // a ledger); every other change as a peer's state, where checkpoints are kept.
    const accounted = this.accounting !== null && (flags & AF_RESTORE) === 0 && this.rules.ledger && user !== 0 && qdv.getUint32(off + AnnounceRequest.TORRENT, true) !== 0;
    // (a WebSocket peer's too: replayed as its departure, its socket not outliving the process,
    // which removes an older copy of its peer_id a checkpoint may hold)
    const journalled = accounted || (this.accounting !== null && (flags & AF_RESTORE) === 0 && this.rules.states);
    const stateOnly = accounted ? 0 : ACF_STATE;
    if (accounted && peer >= 0) this.hadLeechers = this.otherLeechers(swarm, peer, user);
    // the peer's flags before this announce (0 for a new one)
    const oldFlags = peer >= 0 ? store.peers.u8[peer * PeerRecord.SIZE + PeerRecord.FLAGS] : 0;
    const wasLeecher = peer >= 0 && (oldFlags & PF_SEEDER) === 0;
    if (event === EVENT_STOPPED) {
      if (flags & AF_GONE) {
        if (peer < 0 || !store.arrays.isSocket(peer, qdv.getUint32(off + AnnounceRequest.SOCKET, true))) {
          // that socket no longer holds the peer (gone already, or its peer_id announced since
          // over HTTP or on another socket): nothing to stop, nothing to record
          this.counts(at, adv, swarm, 0);
          return;
        }
        // its socket closed: the stop carries the totals it last reported (nothing more to count)
        const pat = peer * PeerRecord.SIZE;
        qdv.setFloat64(off + AnnounceRequest.UPLOADED, store.peers.dv.getFloat64(pat + PeerRecord.UPLOADED, true), true);
        qdv.setFloat64(off + AnnounceRequest.DOWNLOADED, store.peers.dv.getFloat64(pat + PeerRecord.DOWNLOADED, true), true);
        qdv.setFloat64(off + AnnounceRequest.LEFT, store.peers.dv.getFloat64(pat + PeerRecord.LEFT, true), true);
      }
      if (journalled && (accounted || peer >= 0)) this.account(q, qdv, off, peer, ACF_STOPPED | stateOnly, now, oldFlags);
      if (peer >= 0) store.departPeer(peer, now);
      this.counts(at, adv, swarm, 0);
      return;
    }

    const left = qdv.getFloat64(off + AnnounceRequest.LEFT, true);
    const seeder = left === 0;
    // Build the answer before touching the asking peer: it is skipped by slot if known,
    // and a new peer is not in the arrays yet.
    const n = this.answerPeers(swarm, peer, ws, v6, seeder || event === EVENT_PAUSED, numwant, a, at, entry);

    // The peer's entry in wire form (compact: ip4 or ip16, then the port big-endian; a
    // WebSocket peer's socket id, big-endian, then two zero bytes).
    const w = this.wire;
    if (ws) writeSocketEntry(qdv.getUint32(off + AnnounceRequest.SOCKET, true), w, 0);
    else {
      const ipAt = off + AnnounceRequest.IP;
      const port = qdv.getUint16(off + AnnounceRequest.PORT, true);
      let wlen = 0;
      if (v6) for (; wlen < 16; wlen++) w[wlen] = q[ipAt + wlen];
      else for (; wlen < 4; wlen++) w[wlen] = q[ipAt + 12 + wlen];
      w[wlen] = port >>> 8;
      w[wlen + 1] = port & 0xff;
    }

    const isNew = peer < 0;
    if (isNew) {
      const ownerB = this.ownerB(user, swarm, source);
      if (user !== 0 && this.rules.maxPeersPerUser > 0 && this.owners.get(user, ownerB) >= this.rules.maxPeersPerUser) {
        // evidence: a user running more clients than allowed in one swarm (never accounted)
        if (accounted) this.account(q, qdv, off, -1, ACF_REFUSED, now, 0, CHEAT_TOO_MANY_PEERS);
        return this.fail(at, out, ST_TOO_MANY_PEERS);
      }
      if (user === 0 && this.rules.maxPeersPerAddress > 0 && this.owners.get(0, ownerB) >= this.rules.maxPeersPerAddress) {
        return this.fail(at, out, ST_TOO_MANY_SWARMS);
      }
      peer = store.allocPeer(swarm, q, off + AnnounceRequest.PEER_ID);
      if (peer < 0) return this.tableFull(at, out);
      // owner fields first: a slot freed from here on (table full) is uncounted as it was counted
      store.peers.dv.setUint32(peer * PeerRecord.SIZE + PeerRecord.USER, user, true);
      store.peers.dv.setUint32(peer * PeerRecord.SIZE + PeerRecord.SOURCE, source, true);
      this.owners.add(user, ownerB);
    } else if (user === 0 && !(flags & AF_FORWARDED) && store.peers.dv.getUint32(peer * PeerRecord.SIZE + PeerRecord.SOURCE, true) !== source) {
      // open mode: the peer moved address (it proved its key): its count moves with it
      this.count(peer, -1);
      store.peers.dv.setUint32(peer * PeerRecord.SIZE + PeerRecord.SOURCE, source, true);
      this.owners.add(0, source);
    }
    // Views after allocPeer: a grown slab has new ones.
    const pu8 = store.peers.u8;
    const pdv = store.peers.dv;
    const pat = peer * PeerRecord.SIZE;
    let newFlags = PF_LIVE | (oldFlags & PF_COMPLETED);
    if (seeder) newFlags |= PF_SEEDER;
    if (v6) newFlags |= PF_V6;
    if (event === EVENT_PAUSED) newFlags |= PF_PAUSED;
    if (flags & AF_HAS_KEY) newFlags |= PF_HAS_KEY;
    if (flags & AF_RESTORE) newFlags |= PF_RESTORED;
    // fresh until an interval of FRESH_SECONDS: a peer_id living a second or two gains no extra second at its stop
    if ((isNew && !(flags & AF_RESTORE)) || (oldFlags & PF_FRESH && now - pdv.getUint32(pat + PeerRecord.LAST_SEEN, true) < FRESH_SECONDS)) newFlags |= PF_FRESH;
    let acFlags = 0;
    if (wasLeecher && seeder) store.leecherLeft(peer, now);
    // A snatch is a download the tracker saw: the peer was a leecher here before and reports
    // a download (a peer that starts as a seeder, is first seen completing, or downloaded
    // nothing, snatched nothing we know of).
    if (event === EVENT_COMPLETED && !(oldFlags & PF_COMPLETED) && wasLeecher && seeder && qdv.getFloat64(off + AnnounceRequest.DOWNLOADED, true) > 0) {
      newFlags |= PF_COMPLETED;
      acFlags = ACF_COMPLETED;
      const c = swarm * SwarmRecord.SIZE + SwarmRecord.COMPLETED;
      store.swarms.dv.setUint32(c, store.swarms.dv.getUint32(c, true) + 1, true);
    }
    // Same segment and family: rewrite the address in place. Otherwise move the peer to its
    // new segment or family array, which keeps the counts right.
    const wasWs = !isNew && (pu8[pat + PeerRecord.FLAGS2] & PF2_WS) !== 0;
    // (other nodes learn of it when what they see changes: address, family, segment, paused)
    let changed = true;
    if (!isNew && (oldFlags & (PF_SEEDER | PF_V6)) === (newFlags & (PF_SEEDER | PF_V6)) && wasWs === ws) {
      pu8[pat + PeerRecord.FLAGS] = newFlags;
      changed = store.arrays.setAddress(peer, w, 0) || (oldFlags & PF_PAUSED) !== (newFlags & PF_PAUSED);
    } else {
      if (!isNew && ws && !wasWs) this.changes?.remove(peer); // now a browser: other nodes no longer list it
      if (!isNew) store.arrays.displace(peer); // reads the old flags
      pu8[pat + PeerRecord.FLAGS] = newFlags;
      pu8[pat + PeerRecord.FLAGS2] = ws ? pu8[pat + PeerRecord.FLAGS2] | PF2_WS : pu8[pat + PeerRecord.FLAGS2] & ~PF2_WS;
      if (!store.arrays.place(peer, w, 0)) {
        store.freePeer(peer);
        return this.tableFull(at, out);
      }
    }
    // Deltas are taken against the previous announce's totals, before they are replaced
    // (unless the announce came in the same second: then they wait for the next one).
    const rebase = journalled ? this.account(q, qdv, off, isNew ? -1 : peer, acFlags | stateOnly, now, oldFlags) : true;
    pdv.setUint32(pat + PeerRecord.USER, user, true);
    pdv.setUint32(pat + PeerRecord.KEY, key, true);
    if (!(flags & AF_FORWARDED)) pdv.setUint32(pat + PeerRecord.SOURCE, source, true); // (the other node's tag means nothing here)
    if (rebase) {
      // a peer put back after a restart keeps the time of its last announce (it expires on time)
      const age = flags & AF_RESTORE ? Math.min(qdv.getUint32(off + AnnounceRequest.RESTORE_AGE, true), now) : 0;
      pdv.setUint32(pat + PeerRecord.LAST_SEEN, now - age, true);
      pdv.setFloat64(pat + PeerRecord.UPLOADED, qdv.getFloat64(off + AnnounceRequest.UPLOADED, true), true);
      pdv.setFloat64(pat + PeerRecord.DOWNLOADED, qdv.getFloat64(off + AnnounceRequest.DOWNLOADED, true), true);
    }
    pdv.setFloat64(pat + PeerRecord.LEFT, left, true);
    if (changed) this.changes?.upsert(peer);

    this.counts(at, adv, swarm, n);
    out.shrinkLast(AnnounceAnswer.PEERS + n * entry);
  }

  /**
   * What an announce does with another node's copy of its peer: REMOTE_IN_USE (another
   * user's), REMOTE_DROP, REMOTE_TAKE (the peer becomes local here), or a node to forward
   * it to (answered here, accounted there from the peer's baseline), 0 to answer it only.
   * - Forwarded to us while we hold a third node's copy: a copy newer than the announce
   *   stays (dropped); in open mode nothing here proves it is the same client (dropped).
   * - Put back at start: ours again (the other copy, if newer, wins when it is published).
   * - Replication on: forwarded (never a browser's: WebSocket peers stay where they are).
   * - A browser, or replication cut off: answered only (its node keeps accounting it: two
   *   nodes crediting one client from two baselines would count bytes twice; in open mode
   *   nothing here proves it is the same client). Once its node has let it go (or, cut
   *   off, when its node would have expired it), it becomes local here.
   */
  private remoteTarget(peer: number, qdv: DataView, off: number, user: number, flags: number): number {
    const pdv = this.store.peers.dv;
    const pat = peer * PeerRecord.SIZE;
    if (user !== 0 && pdv.getUint32(pat + PeerRecord.USER, true) !== user) return REMOTE_IN_USE;
    if (flags & AF_FORWARDED) return user === 0 || pdv.getUint32(pat + PeerRecord.LAST_SEEN, true) > qdv.getUint32(off + AnnounceRequest.FORWARDED_AT, true) ? REMOTE_DROP : REMOTE_TAKE;
    if (flags & AF_RESTORE) return REMOTE_TAKE;
    if (this.changes !== null && this.changes.on && !(flags & AF_WS)) return pdv.getUint32(pat + REMOTE_NODE, true);
    return 0;
  }

  /**
   * Is this announce, received by another node and forwarded here, older than what the peer
   * announced here directly since? Then it would undo that (a late `stopped` ending a newer
   * session, totals going backwards): its bytes are in the newer totals already. Received
   * before the peer's last announce here (or in the same second), or reporting less upload
   * than its baseline (a client that restarted says `started`).
   */
  private staleForward(peer: number, q: Uint8Array, qdv: DataView, off: number): boolean {
    const pdv = this.store.peers.dv;
    const pat = peer * PeerRecord.SIZE;
    // (a tie is stale too: the clocks tick whole seconds, and a client announcing at two nodes
    // within one second gains nothing from the second but what its next announce carries)
    if (pdv.getUint32(pat + PeerRecord.LAST_SEEN, true) >= qdv.getUint32(off + AnnounceRequest.FORWARDED_AT, true)) return true;
    // (upload only: libtorrent lowers `downloaded` by pieces that failed their hash check)
    return q[off + AnnounceRequest.EVENT] !== EVENT_STARTED && qdv.getFloat64(off + AnnounceRequest.UPLOADED, true) < pdv.getFloat64(pat + PeerRecord.UPLOADED, true);
  }

  /**
   * Copy up to `numwant` peers of the asker's family into the answer at `at`: seeders first
   * unless it is one (or paused), skipping the asker's own slot (`peer`, -1 when new).
   */
  private answerPeers(swarm: number, peer: number, ws: boolean, v6: boolean, noSeeders: boolean, numwant: number, a: Uint8Array, at: number, entry: number): number {
    if (numwant === 0) return 0;
    const arrays = this.store.arrays;
    const fam = arrays.family(ws ? 2 : v6 ? 1 : 0);
    const peersAt = at + AnnounceAnswer.PEERS;
    let n = noSeeders ? 0 : arrays.copyPeers(swarm, fam, true, peer, numwant, a, peersAt, entry);
    if (n < numwant) n += arrays.copyPeers(swarm, fam, false, peer, numwant - n, a, peersAt + n * entry, entry);
    return n;
  }

  /**
   * May this announce update (or stop) the peer already holding its peer_id in the swarm?
   * In private mode (a user) the passkey decides: the same user, whatever the key and
   * address, and never another user. In open mode (user 0) either proof will do: the request
   * comes from the address the peer last announced from (a TCP connection, or a UDP packet
   * whose connection id was issued to that address, so it cannot be forged from elsewhere),
   * or both sent a `key` and it is the same (a client that moved address keeps its peer).
   * Address or key alone: aria2 sends a new random key in every UDP announce, and a client
   * on the move changes address.
   */
  private ownsPeer(peer: number, user: number, key: number, hasKey: boolean, source: number): boolean {
    // (source -1: an announce another node received, whose address tag is that node's: the key alone can prove it)
    const pdv = this.store.peers.dv;
    const pat = peer * PeerRecord.SIZE;
    if (pdv.getUint32(pat + PeerRecord.USER, true) !== user) return false;
    if (user !== 0) return true;
    if (source >= 0 && pdv.getUint32(pat + PeerRecord.SOURCE, true) === source) return true;
    return hasKey && (this.store.peers.u8[pat + PeerRecord.FLAGS] & PF_HAS_KEY) !== 0 && pdv.getUint32(pat + PeerRecord.KEY, true) === key;
  }

  /**
   * Was another user's leecher in the swarm since `peer`'s previous announce? One is there
   * now, or one left (stopped, completed, expired) at or after that announce. (A user's own
   * leecher does not justify its upload.)
   */
  private otherLeechers(swarm: number, peer: number, user: number): boolean {
    const store = this.store;
    const pat = peer * PeerRecord.SIZE;
    const pflags = store.peers.u8[pat + PeerRecord.FLAGS];
    if (pflags & PF_RESTORED) return true; // its interval began before the restart: unknown
    if (store.leechers(swarm) > 0 && store.arrays.hasLeecherOf(swarm, user)) return true;
    const sdv = store.swarms.dv;
    const sat = swarm * SwarmRecord.SIZE;
    const since = store.peers.dv.getUint32(pat + PeerRecord.LAST_SEEN, true);
    // of the two latest departures (two different users), another user's one at or after `since`
    const at = sdv.getUint32(sat + (sdv.getUint32(sat + SwarmRecord.LEECHER_USER, true) !== user ? SwarmRecord.LEECHER_AT : SwarmRecord.LEECHER_AT2), true);
    return at !== 0 && at + LEECHER_GRACE >= since;
  }

  /**
   * Append the accounting record of this announce: the claimed deltas since the peer's
   * previous announce and what of them is credited. A peer seen for the first time (or
   * whose counters went backwards: its client restarted) is a baseline: nothing is
   * credited until its next announce, so bytes are never counted twice. Its record still
   * carries the totals: replayed from the journal, they are the baseline across restarts.
   *
   * Upload is credited only when physically possible: at most max_upload_rate × the seconds
   * since the previous announce (capped at peer_timeout), and nothing when no other user's
   * leecher was in the swarm meanwhile. What a bound cuts is evidence (CHEATS bits). An
   * announce in the same second as the previous one defers its deltas to the next announce
   * (returns false: keep the baselines), so many announces cannot multiply the allowance.
   * `oldFlags`: the peer's flags before this announce (PF_RESTORED). With ACF_STATE in
   * `acFlags` only the peer's state is written (deltas 0).
   */
  private account(q: Uint8Array, qdv: DataView, off: number, peer: number, acFlags: number, now: number, oldFlags = 0, cheatsIn = 0): boolean {
    const ring = this.accounting!;
    const r = ring.reserve(AccountingRecord.SIZE);
    if (r < 0) throw new Error('accounting ring full: the drain loop checks hasRoom(AccountingRecord.SIZE) first');
    const u8 = ring.u8;
    const dv = ring.dv;
    const event = q[off + AnnounceRequest.EVENT];
    let up = qdv.getFloat64(off + AnnounceRequest.UPLOADED, true);
    let down = qdv.getFloat64(off + AnnounceRequest.DOWNLOADED, true);
    const left = qdv.getFloat64(off + AnnounceRequest.LEFT, true);
    let dUp = 0;
    let dDown = 0;
    let upCredit = 0;
    let seedTime = 0;
    let leechTime = 0;
    let cheats = cheatsIn;
    let rebase = true;
    if (peer >= 0 && !(acFlags & ACF_STATE)) {
      const pdv = this.store.peers.dv;
      const pat = peer * PeerRecord.SIZE;
      const oldUp = pdv.getFloat64(pat + PeerRecord.UPLOADED, true);
      const oldDown = pdv.getFloat64(pat + PeerRecord.DOWNLOADED, true);
      const elapsed = now - pdv.getUint32(pat + PeerRecord.LAST_SEEN, true);
      // (a peer put back after a restart kept the time of its last announce: dt spans the downtime)
      const dt = Math.min(elapsed, this.rules.peerTimeout);
      if (up < oldUp) {
        if (event !== EVENT_STARTED) cheats |= CHEAT_BACKWARDS; // a client restart sends started
      } else if (elapsed <= 0 && event !== EVENT_STOPPED && !(oldFlags & PF_RESTORED)) {
        rebase = false; // same second: the deltas wait for the next announce
        up = oldUp;
        down = oldDown;
      } else {
        dUp = up - oldUp;
        // libtorrent subtracts pieces that failed their hash check from `downloaded`: a
        // lower download is a new download baseline, not a lie about upload
        dDown = down >= oldDown ? down - oldDown : 0;
        // A stop in the same second as the previous announce gets one second's worth,
        // unless the peer appeared in that very second: started/stopped pairs of new
        // peer_ids would otherwise each earn a second's worth.
        const allowance = this.rules.maxUploadRate * (dt > 0 ? dt : oldFlags & PF_FRESH ? 0 : 1);
        upCredit = dUp;
        if (dUp > 0 && !this.hadLeechers) {
          upCredit = 0;
          cheats |= CHEAT_NO_LEECHERS;
        } else if (dUp > allowance) {
          upCredit = allowance;
          cheats |= CHEAT_OVER_RATE;
        }
      }
      if (dt > 0 && rebase) {
        if (oldFlags & PF_SEEDER) seedTime = dt; // what it was during the interval, not what it says now
        else leechTime = dt;
      }
    }
    const flags = q[off + AnnounceRequest.FLAGS];
    if (left === 0) acFlags |= ACF_SEEDER;
    if (flags & AF_V6) acFlags |= ACF_V6;
    if (flags & AF_HAS_KEY) acFlags |= ACF_HAS_KEY;
    if (event === EVENT_PAUSED) acFlags |= ACF_PAUSED;
    u8[r + AccountingRecord.FLAGS] = acFlags;
    u8[r + AccountingRecord.CHEATS] = cheats;
    // (a stop is replayed as one whatever it came over: it only ever removes the peer)
    u8[r + AccountingRecord.FLAGS2] = flags & AF_WS && !(acFlags & ACF_STOPPED) ? ACF2_WS : 0;
    dv.setUint16(r + AccountingRecord.PORT, qdv.getUint16(off + AnnounceRequest.PORT, true), true);
    dv.setUint32(r + AccountingRecord.USER, qdv.getUint32(off + AnnounceRequest.USER, true), true);
    dv.setUint32(r + AccountingRecord.TORRENT, qdv.getUint32(off + AnnounceRequest.TORRENT, true), true);
    dv.setUint32(r + AccountingRecord.AT, now, true);
    dv.setFloat64(r + AccountingRecord.UPLOADED, dUp, true);
    dv.setFloat64(r + AccountingRecord.DOWNLOADED, dDown, true);
    dv.setFloat64(r + AccountingRecord.UP_CREDITED, upCredit, true);
    dv.setFloat64(r + AccountingRecord.DOWN_CREDITED, dDown, true);
    dv.setUint32(r + AccountingRecord.SEED_TIME, seedTime, true);
    dv.setUint32(r + AccountingRecord.LEECH_TIME, leechTime, true);
    dv.setFloat64(r + AccountingRecord.TOTAL_UP, up, true);
    dv.setFloat64(r + AccountingRecord.TOTAL_DOWN, down, true);
    dv.setFloat64(r + AccountingRecord.LEFT, left, true);
    dv.setUint32(r + AccountingRecord.KEY, qdv.getUint32(off + AnnounceRequest.KEY, true), true);
    for (let i = 0; i < 20; i++) u8[r + AccountingRecord.PEER_ID + i] = q[off + AnnounceRequest.PEER_ID + i];
    for (let i = 0; i < 16; i++) u8[r + AccountingRecord.IP + i] = q[off + AnnounceRequest.IP + i];
    for (let i = 0; i < 20; i++) u8[r + AccountingRecord.INFO_HASH + i] = q[off + AnnounceRequest.INFO_HASH + i];
    return rebase;
  }

  private tableFull(at: number, out: ByteRing): void {
    this.store.ctl[ShardControl.TABLE_FULL]++;
    this.fail(at, out, ST_TABLE_FULL);
  }

  private counts(at: number, adv: DataView, swarm: number, n: number): void {
    adv.setUint16(at + AnnounceAnswer.COUNT, n, true);
    if (swarm < 0) {
      adv.setUint32(at + AnnounceAnswer.SEEDERS, 0, true);
      adv.setUint32(at + AnnounceAnswer.LEECHERS, 0, true);
      adv.setUint32(at + AnnounceAnswer.COMPLETED, 0, true);
      return;
    }
    adv.setUint32(at + AnnounceAnswer.SEEDERS, this.store.seeders(swarm), true);
    adv.setUint32(at + AnnounceAnswer.LEECHERS, this.store.leechers(swarm), true);
    adv.setUint32(at + AnnounceAnswer.COMPLETED, this.store.swarms.dv.getUint32(swarm * SwarmRecord.SIZE + SwarmRecord.COMPLETED, true), true);
  }

  private fail(at: number, out: ByteRing, status: number): void {
    out.u8[at + AnnounceAnswer.STATUS] = status;
    out.dv.setUint32(at + AnnounceAnswer.WAIT, 0, true);
    this.counts(at, out.dv, -1, 0);
    out.shrinkLast(AnnounceAnswer.PEERS);
  }

  private scrape(q: Uint8Array, qdv: DataView, off: number, out: ByteRing): void {
    const count = qdv.getUint16(off + ScrapeRequest.COUNT, true);
    const at = out.reserve(ScrapeAnswer.FILES + count * SCRAPE_ENTRY);
    if (at < 0) throw new Error('answer ring full: the drain loop checks hasRoom(maxAnswerBytes) first');
    const adv = out.dv;
    out.u8[at + ScrapeAnswer.KIND] = KIND_SCRAPE;
    adv.setUint16(at + ScrapeAnswer.COUNT, count, true);
    adv.setUint32(at + ScrapeAnswer.REQ_ID, qdv.getUint32(off + ScrapeRequest.REQ_ID, true), true);
    const sdv = this.store.swarms.dv;
    for (let i = 0; i < count; i++) {
      const swarm = this.store.findSwarm(q, off + ScrapeRequest.HASHES + i * 20);
      const e = at + ScrapeAnswer.FILES + i * SCRAPE_ENTRY;
      adv.setUint32(e, swarm < 0 ? 0 : this.store.seeders(swarm), true);
      adv.setUint32(e + 4, swarm < 0 ? 0 : sdv.getUint32(swarm * SwarmRecord.SIZE + SwarmRecord.COMPLETED, true), true);
      adv.setUint32(e + 8, swarm < 0 ? 0 : this.store.leechers(swarm), true);
    }
  }
}

import {
  AA, AC, ACF_COMPLETED, ACF_HAS_KEY, ACF_PAUSED, ACF_SEEDER, ACF_STOPPED, ACF_V6, AF_COMPACT, AF_HAS_KEY, AF_RESTORE, AF_V6, AQ, ENTRY_FULL, ENTRY_V4, ENTRY_V6, EVENT_COMPLETED, EVENT_PAUSED, EVENT_STOPPED,
  KIND_ANNOUNCE, KIND_SCRAPE, PF_COMPLETED, PF_HAS_KEY, PF_LIVE, PF_PAUSED, PF_SEEDER, PF_V6, PR, SA, SCRAPE_ENTRY, SQ,
  ST_OK, ST_PEER_ID_IN_USE, ST_TABLE_FULL, SW, CTL,
} from './layout.js';
import type { ByteRing } from './ring.js';
import type { SwarmStore } from './swarm-store.js';

/** Largest answer record a request can produce, for backpressure checks. */
export function maxAnswerBytes(numwantMax: number, scrapeMaxHashes: number): number {
  return Math.max(AA.PEERS + numwantMax * ENTRY_FULL, SA.FILES + scrapeMaxHashes * SCRAPE_ENTRY);
}

/**
 * Turns request records into answer records against one shard's swarms. Pure logic over
 * shared memory: no sockets, no timers; the clock comes in with each call.
 */
export class ShardLogic {
  private readonly wire = new Uint8Array(18);

  /**
   * `accounting` receives one AC record per announce of a user's peer on a registered
   * torrent (the drain loop keeps room for one per request); `peerTimeout` caps the seed and
   * leech time one announce can credit (a longer gap means the peer was gone).
   */
  constructor(
    private readonly store: SwarmStore,
    private readonly accounting: ByteRing | null = null,
    private readonly peerTimeout = 0,
  ) {}

  /** Handle one request record at `off` of `q`, appending its answer to `out`. */
  handle(q: Uint8Array, qdv: DataView, off: number, out: ByteRing, now: number): void {
    const kind = q[off];
    if (kind === KIND_ANNOUNCE) this.announce(q, qdv, off, out, now);
    else if (kind === KIND_SCRAPE) this.scrape(q, qdv, off, out);
  }

  private announce(q: Uint8Array, qdv: DataView, off: number, out: ByteRing, now: number): void {
    const store = this.store;
    const flags = q[off + AQ.FLAGS];
    const event = q[off + AQ.EVENT];
    const v6 = (flags & AF_V6) !== 0;
    const entry = flags & AF_COMPACT ? (v6 ? ENTRY_V6 : ENTRY_V4) : ENTRY_FULL;
    const numwant = event === EVENT_STOPPED ? 0 : qdv.getUint16(off + AQ.NUMWANT, true);
    const at = out.reserve(AA.PEERS + numwant * entry);
    if (at < 0) throw new Error('answer ring full: the drain loop checks hasRoom(maxAnswerBytes) first');
    const a = out.u8;
    const adv = out.dv;
    a[at + AA.KIND] = KIND_ANNOUNCE;
    a[at + AA.STATUS] = ST_OK;
    adv.setUint32(at + AA.REQ_ID, qdv.getUint32(off + AQ.REQ_ID, true), true);

    let swarm = store.findSwarm(q, off + AQ.INFO_HASH);
    if (swarm < 0 && event !== EVENT_STOPPED) swarm = store.addSwarm(q, off + AQ.INFO_HASH, now);
    if (swarm < 0) {
      if (event !== EVENT_STOPPED) this.tableFull(at, out); // max_swarms refusals count too
      else this.counts(at, adv, -1, 0);
      return;
    }
    const user = qdv.getUint32(off + AQ.USER, true);
    const key = qdv.getUint32(off + AQ.KEY, true);
    const source = qdv.getUint32(off + AQ.SOURCE, true);
    let peer = store.findPeer(swarm, q, off + AQ.PEER_ID);
    if (peer >= 0 && !this.ownsPeer(peer, user, key, (flags & AF_HAS_KEY) !== 0, source)) {
      this.fail(at, out, ST_PEER_ID_IN_USE);
      return;
    }
    store.swarms.dv.setUint32(swarm * SW.SIZE + SW.LAST_ACTIVE, now, true);

    const accounted = this.accounting !== null && (flags & AF_RESTORE) === 0;
    if (event === EVENT_STOPPED) {
      if (accounted) this.account(q, qdv, off, peer, ACF_STOPPED, now);
      if (peer >= 0) store.removePeer(peer);
      this.counts(at, adv, swarm, 0);
      return;
    }

    const left = qdv.getFloat64(off + AQ.LEFT, true);
    const seeder = left === 0;
    // Build the answer before touching the asking peer: it is skipped by slot if known,
    // and a new peer is not in the arrays yet.
    const wantsSeeders = !seeder && event !== EVENT_PAUSED;
    let n = 0;
    if (numwant > 0) {
      const peersAt = at + AA.PEERS;
      if (wantsSeeders) n = store.copyPeers(swarm, v6, true, peer, numwant, a, peersAt, entry);
      if (n < numwant) n += store.copyPeers(swarm, v6, false, peer, numwant - n, a, peersAt + n * entry, entry);
    }

    // The peer's address in wire form (compact: ip4 or ip16, then the port big-endian).
    const w = this.wire;
    const ipAt = off + AQ.IP;
    const port = qdv.getUint16(off + AQ.PORT, true);
    let wlen = 0;
    if (v6) for (; wlen < 16; wlen++) w[wlen] = q[ipAt + wlen];
    else for (; wlen < 4; wlen++) w[wlen] = q[ipAt + 12 + wlen];
    w[wlen] = port >>> 8;
    w[wlen + 1] = port & 0xff;

    const isNew = peer < 0;
    if (isNew) {
      peer = store.allocPeer(swarm, q, off + AQ.PEER_ID);
      if (peer < 0) return this.tableFull(at, out);
    }
    // Views after allocPeer: a grown slab has new ones.
    const pu8 = store.peers.u8;
    const pdv = store.peers.dv;
    const pat = peer * PR.SIZE;
    const oldFlags = isNew ? 0 : pu8[pat + PR.FLAGS];
    let newFlags = PF_LIVE | (oldFlags & PF_COMPLETED);
    if (seeder) newFlags |= PF_SEEDER;
    if (v6) newFlags |= PF_V6;
    if (event === EVENT_PAUSED) newFlags |= PF_PAUSED;
    if (flags & AF_HAS_KEY) newFlags |= PF_HAS_KEY;
    let acFlags = 0;
    if (event === EVENT_COMPLETED && !(oldFlags & PF_COMPLETED)) {
      newFlags |= PF_COMPLETED;
      acFlags = ACF_COMPLETED;
      const c = swarm * SW.SIZE + SW.COMPLETED;
      store.swarms.dv.setUint32(c, store.swarms.dv.getUint32(c, true) + 1, true);
    }
    // Same segment and family: rewrite the address in place. Otherwise move the peer to its
    // new segment or family array, which keeps the counts right.
    if (!isNew && (oldFlags & (PF_SEEDER | PF_V6)) === (newFlags & (PF_SEEDER | PF_V6))) {
      pu8[pat + PR.FLAGS] = newFlags;
      store.setAddress(peer, w, 0);
    } else {
      if (!isNew) store.displace(peer); // reads the old flags
      pu8[pat + PR.FLAGS] = newFlags;
      if (!store.place(peer, w, 0)) {
        store.freePeer(peer);
        return this.tableFull(at, out);
      }
    }
    // Deltas are taken against the previous announce's totals, before they are replaced.
    if (accounted) this.account(q, qdv, off, isNew ? -1 : peer, acFlags, now);
    pdv.setUint32(pat + PR.USER, user, true);
    pdv.setUint32(pat + PR.LAST_SEEN, now, true);
    pdv.setUint32(pat + PR.KEY, key, true);
    pdv.setUint32(pat + PR.SOURCE, source, true);
    pdv.setFloat64(pat + PR.UPLOADED, qdv.getFloat64(off + AQ.UPLOADED, true), true);
    pdv.setFloat64(pat + PR.DOWNLOADED, qdv.getFloat64(off + AQ.DOWNLOADED, true), true);
    pdv.setFloat64(pat + PR.LEFT, left, true);

    this.counts(at, adv, swarm, n);
    out.shrinkLast(AA.PEERS + n * entry);
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
    const pdv = this.store.peers.dv;
    const pat = peer * PR.SIZE;
    if (pdv.getUint32(pat + PR.USER, true) !== user) return false;
    if (user !== 0) return true;
    if (pdv.getUint32(pat + PR.SOURCE, true) === source) return true;
    return hasKey && (this.store.peers.u8[pat + PR.FLAGS] & PF_HAS_KEY) !== 0 && pdv.getUint32(pat + PR.KEY, true) === key;
  }

  /**
   * Append the accounting record of this announce. A peer seen for the first time (or
   * whose counters went backwards: its client restarted) is a baseline: nothing is
   * credited until its next announce, so bytes are never counted twice. Its record still
   * carries the totals, which the peers table keeps as the baseline across restarts.
   */
  private account(q: Uint8Array, qdv: DataView, off: number, peer: number, acFlags: number, now: number): void {
    const ring = this.accounting!;
    const r = ring.reserve(AC.SIZE);
    if (r < 0) throw new Error('accounting ring full: the drain loop checks hasRoom(AC.SIZE) first');
    const u8 = ring.u8;
    const dv = ring.dv;
    const up = qdv.getFloat64(off + AQ.UPLOADED, true);
    const down = qdv.getFloat64(off + AQ.DOWNLOADED, true);
    const left = qdv.getFloat64(off + AQ.LEFT, true);
    let dUp = 0;
    let dDown = 0;
    let seedTime = 0;
    let leechTime = 0;
    if (peer >= 0) {
      const pdv = this.store.peers.dv;
      const pat = peer * PR.SIZE;
      const oldUp = pdv.getFloat64(pat + PR.UPLOADED, true);
      const oldDown = pdv.getFloat64(pat + PR.DOWNLOADED, true);
      if (up >= oldUp && down >= oldDown) {
        dUp = up - oldUp;
        dDown = down - oldDown;
      }
      const dt = Math.min(now - pdv.getUint32(pat + PR.LAST_SEEN, true), this.peerTimeout);
      if (dt > 0) {
        if (this.store.peers.u8[pat + PR.FLAGS] & PF_SEEDER) seedTime = dt;
        else leechTime = dt;
      }
    }
    const flags = q[off + AQ.FLAGS];
    if (left === 0) acFlags |= ACF_SEEDER;
    if (flags & AF_V6) acFlags |= ACF_V6;
    if (flags & AF_HAS_KEY) acFlags |= ACF_HAS_KEY;
    if (q[off + AQ.EVENT] === EVENT_PAUSED) acFlags |= ACF_PAUSED;
    u8[r + AC.FLAGS] = acFlags;
    dv.setUint16(r + AC.PORT, qdv.getUint16(off + AQ.PORT, true), true);
    dv.setUint32(r + AC.USER, qdv.getUint32(off + AQ.USER, true), true);
    dv.setUint32(r + AC.TORRENT, qdv.getUint32(off + AQ.TORRENT, true), true);
    dv.setUint32(r + AC.AT, now, true);
    dv.setFloat64(r + AC.UPLOADED, dUp, true);
    dv.setFloat64(r + AC.DOWNLOADED, dDown, true);
    dv.setFloat64(r + AC.UP_CREDITED, 0, true);
    dv.setFloat64(r + AC.DOWN_CREDITED, 0, true);
    dv.setUint32(r + AC.SEED_TIME, seedTime, true);
    dv.setUint32(r + AC.LEECH_TIME, leechTime, true);
    dv.setFloat64(r + AC.TOTAL_UP, up, true);
    dv.setFloat64(r + AC.TOTAL_DOWN, down, true);
    dv.setFloat64(r + AC.LEFT, left, true);
    dv.setUint32(r + AC.KEY, qdv.getUint32(off + AQ.KEY, true), true);
    for (let i = 0; i < 20; i++) u8[r + AC.PEER_ID + i] = q[off + AQ.PEER_ID + i];
    for (let i = 0; i < 16; i++) u8[r + AC.IP + i] = q[off + AQ.IP + i];
    for (let i = 0; i < 20; i++) u8[r + AC.INFO_HASH + i] = q[off + AQ.INFO_HASH + i];
  }

  private tableFull(at: number, out: ByteRing): void {
    this.store.ctl[CTL.TABLE_FULL]++;
    this.fail(at, out, ST_TABLE_FULL);
  }

  private counts(at: number, adv: DataView, swarm: number, n: number): void {
    adv.setUint16(at + AA.COUNT, n, true);
    if (swarm < 0) {
      adv.setUint32(at + AA.SEEDERS, 0, true);
      adv.setUint32(at + AA.LEECHERS, 0, true);
      adv.setUint32(at + AA.COMPLETED, 0, true);
      return;
    }
    adv.setUint32(at + AA.SEEDERS, this.store.seeders(swarm), true);
    adv.setUint32(at + AA.LEECHERS, this.store.leechers(swarm), true);
    adv.setUint32(at + AA.COMPLETED, this.store.swarms.dv.getUint32(swarm * SW.SIZE + SW.COMPLETED, true), true);
  }

  private fail(at: number, out: ByteRing, status: number): void {
    out.u8[at + AA.STATUS] = status;
    this.counts(at, out.dv, -1, 0);
    out.shrinkLast(AA.PEERS);
  }

  private scrape(q: Uint8Array, qdv: DataView, off: number, out: ByteRing): void {
    const count = qdv.getUint16(off + SQ.COUNT, true);
    const at = out.reserve(SA.FILES + count * SCRAPE_ENTRY);
    if (at < 0) throw new Error('answer ring full: the drain loop checks hasRoom(maxAnswerBytes) first');
    const adv = out.dv;
    out.u8[at + SA.KIND] = KIND_SCRAPE;
    adv.setUint16(at + SA.COUNT, count, true);
    adv.setUint32(at + SA.REQ_ID, qdv.getUint32(off + SQ.REQ_ID, true), true);
    const sdv = this.store.swarms.dv;
    for (let i = 0; i < count; i++) {
      const swarm = this.store.findSwarm(q, off + SQ.HASHES + i * 20);
      const e = at + SA.FILES + i * SCRAPE_ENTRY;
      adv.setUint32(e, swarm < 0 ? 0 : this.store.seeders(swarm), true);
      adv.setUint32(e + 4, swarm < 0 ? 0 : sdv.getUint32(swarm * SW.SIZE + SW.COMPLETED, true), true);
      adv.setUint32(e + 8, swarm < 0 ? 0 : this.store.leechers(swarm), true);
    }
  }
}

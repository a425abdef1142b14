import type { HttpRequest, HttpResponse, TemplatedApp, us_socket_context_t, WebSocket } from 'uWebSockets.js';
import { AF_COMPACT, AF_GONE, AF_WS, readSocketEntry, AnnounceAnswer, AnnounceRequest, ENTRY_V4, EVENT_COMPLETED, EVENT_NONE, EVENT_PAUSED, EVENT_STARTED, EVENT_STOPPED, KIND_ANNOUNCE } from '../../contract/requests.js';
import type { ByteRing } from '../../contract/ring.js';
import { announceFailure, failureDetail } from '../answer-status.js';
import type { Config } from '../config.js';
import { PROTO_WS, type TrackerCounters } from '../counters.js';
import { SCRAPE_TAG, type Dispatch, type Frontend, type ScrapeJob } from '../dispatch.js';
import { failureText, type FailureCode } from '../errors.js';
import { clientAddress } from '../http/client-address.js';
import { CidrList } from '../net/ip.js';
import { Admission } from '../policy/admission.js';
import type { Registry } from '../policy/registry.js';

// The WebSocket tracker (WebTorrent's protocol, as the `bittorrent-tracker` client speaks
// it) on the HTTP port: /announce and /<passkey>/announce upgrade. JSON is the protocol, so
// it is parsed here; what crosses to the shards is the same binary announce record as HTTP
// and UDP (AF_WS, the socket's id as the peer's entry). The shards keep swarm membership,
// peer choice and counts; this side keeps only the sockets (id → socket, and which socket
// holds which (info_hash, peer_id)) and relays offers and answers, opaque: SDP is never
// read or kept. A socket that closes stops all its peers.

/** What each socket carries (uWS user data). */
interface SocketData {
  id: number;
  /** The client's address (16 bytes, IPv4-mapped): limits, bans, peer ownership. */
  ip: Uint8Array;
  passkey: string | null;
  /** The user its announces were admitted as (0 in open mode): its peers' stops at close. */
  user: number;
  /** (info_hash + peer_id) of the peers announced through it, as binary strings. */
  swarms: string[];
  tokens: number;
  refilled: number;
  strikes: number;
}

interface Offer {
  offer: unknown;
  offer_id: string;
}

/** An announce waiting on its shard. */
interface Pending {
  socket: SocketData;
  infoHash: string;
  peerId: string;
  offers: Offer[] | null;
  stopped: boolean;
  /** A closed socket's stop, answered to nobody. */
  gone: boolean;
}

/** What /metrics shows (admin/metrics.ts). */
export interface WsStats {
  sockets: number;
  offersRelayed: number;
  answersRelayed: number;
  /** Relays not sent: the target's send buffer was full (max_backpressure_bytes). */
  relaysDropped: number;
  /** Relays with nowhere to go: the target had left. */
  relaysUnroutable: number;
  refused: number;
}

/** Refusals this many times in a row close the socket (a client that ignores them). */
const MAX_STRIKES = 50;
const CLOSE_POLICY = 1008;
const CLOSE_UNSUPPORTED = 1003;
const CLOSE_GOING_AWAY = 1001;
const CLOSE_TOO_BIG = 1009;
/** Bytes past ws.max_message_bytes that uWS still reads, so the close can say why. */
const HARD_MARGIN = 65536;

/** A 20-character binary string (each char one byte), as the protocol carries ids. */
function isBin20(s: unknown): s is string {
  if (typeof s !== 'string' || s.length !== 20) return false;
  for (let i = 0; i < 20; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

function putBin(s: string, out: Uint8Array, at: number): void {
  for (let i = 0; i < s.length; i++) out[at + i] = s.charCodeAt(i);
}

/** A 16-byte address as a Map key. */
function addressKey(ip: Uint8Array): string {
  return Buffer.from(ip.buffer, ip.byteOffset, 16).toString('latin1');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A client's byte count: absent is 0; anything but a non-negative safe integer is refused (undefined). */
function count(v: unknown): number | undefined {
  if (v === undefined) return 0;
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

const EVENTS: Record<string, number> = { started: EVENT_STARTED, stopped: EVENT_STOPPED, completed: EVENT_COMPLETED, paused: EVENT_PAUSED, update: EVENT_NONE, '': EVENT_NONE };

export class WsFrontend implements Frontend {
  readonly stats: WsStats = { sockets: 0, offersRelayed: 0, answersRelayed: 0, relaysDropped: 0, relaysUnroutable: 0, refused: 0 };
  private readonly owner: number;
  private readonly admission: Admission;
  private readonly trusted: CidrList;
  private readonly decoder = new TextDecoder();
  private readonly rec = new Uint8Array(AnnounceRequest.SIZE);
  private readonly dv = new DataView(this.rec.buffer);
  private readonly sockets = new Map<number, WebSocket<SocketData>>();
  /** (info_hash + peer_id) → the socket id that announced it last. */
  private readonly peers = new Map<string, number>();
  /** Open sockets per client address (its 16 bytes as a latin1 key): ws.max_sockets_per_address. */
  private readonly perAddress = new Map<string, number>();
  private nextId = 0;
  private closing = false;

  constructor(
    private readonly cfg: Config,
    private readonly dispatch: Dispatch,
    private readonly registry: Registry,
    private readonly counters: TrackerCounters,
    app: TemplatedApp,
  ) {
    this.owner = dispatch.register(this);
    this.admission = new Admission(cfg, registry, dispatch.limits);
    this.trusted = new CidrList(cfg.net.trusted_proxies);
    const w = cfg.ws;
    const behavior = (keyed: boolean) => ({
      compression: 0,
      // (longer messages than max_message_bytes are closed with 1009 below; past this uWS
      // closes the connection itself, without reading them whole)
      maxPayloadLength: w.max_message_bytes + HARD_MARGIN,
      idleTimeout: w.idle_timeout_seconds,
      sendPingsAutomatically: true,
      // beyond this uWS drops what is sent; relays stop well before (max_backpressure_bytes)
      maxBackpressure: w.max_backpressure_bytes * 2,
      closeOnBackpressureLimit: false,
      upgrade: (res: HttpResponse, req: HttpRequest, ctx: us_socket_context_t) => this.upgrade(res, req, ctx, keyed),
      open: (ws: WebSocket<SocketData>) => {
        const d = ws.getUserData();
        this.sockets.set(d.id, ws);
        this.stats.sockets++;
        const addr = addressKey(d.ip);
        this.perAddress.set(addr, (this.perAddress.get(addr) ?? 0) + 1);
      },
      message: (ws: WebSocket<SocketData>, msg: ArrayBuffer, isBinary: boolean) => this.message(ws, msg, isBinary),
      close: (ws: WebSocket<SocketData>) => this.closed(ws.getUserData()),
    });
    app.ws('/announce', behavior(false));
    app.ws('/:passkey/announce', behavior(true));
  }

  /** Close every socket (their peers are stopped): before the tracker stops serving. */
  close(): void {
    this.closing = true;
    for (const ws of [...this.sockets.values()]) ws.end(CLOSE_GOING_AWAY, 'tracker shutting down');
  }

  // ------------------------------------------------------------------ sockets

  /** Admission before the upgrade completes: a refused client never gets a socket. */
  private upgrade(res: HttpResponse, req: HttpRequest, ctx: us_socket_context_t, keyed: boolean): void {
    const ip = new Uint8Array(16);
    clientAddress(res, req, this.trusted, ip, 0);
    const passkey = keyed ? (req.getParameter(0) ?? null) : null;
    const open = this.perAddress.get(addressKey(ip)) ?? 0;
    const err = this.closing
      ? 'tracker_busy'
      : (this.admission.client(ip, 0) ?? this.admission.scrape(passkey, ip, 0) ?? (open >= this.cfg.ws.max_sockets_per_address ? 'ws_too_many_sockets' : null));
    if (err !== null) {
      this.admission.refused(err);
      this.stats.refused++;
      res.writeStatus(err === 'banned' || err === 'unknown_passkey' || err === 'passkey_required' ? '403 Forbidden' : '429 Too Many Requests');
      res.writeHeader('Content-Type', 'text/plain').end(failureText(err, this.admission.detail));
      return;
    }
    this.nextId = this.nextId === 0xffffffff ? 1 : this.nextId + 1;
    const data: SocketData = { id: this.nextId, ip, passkey, user: 0, swarms: [], tokens: 2 * this.cfg.ws.messages_per_second, refilled: Date.now(), strikes: 0 };
    res.upgrade(data, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), ctx);
  }

  /** A socket closed (by either side): its peers leave their swarms now. */
  private closed(d: SocketData): void {
    this.sockets.delete(d.id);
    this.stats.sockets--;
    const addr = addressKey(d.ip);
    const n = (this.perAddress.get(addr) ?? 1) - 1;
    if (n > 0) this.perAddress.set(addr, n);
    else this.perAddress.delete(addr);
    for (const key of d.swarms) {
      if (this.peers.get(key) !== d.id) continue; // (another socket took that peer_id over)
      this.peers.delete(key);
      this.submit(d, key.slice(0, 20), key.slice(20), EVENT_STOPPED, 0, 0, 0, null, true);
    }
    d.swarms.length = 0;
  }

  /** The socket of `d`, unless it has closed (an id is only reused after 2^32 sockets: checked anyway). */
  private openSocket(d: SocketData): WebSocket<SocketData> | undefined {
    const ws = this.sockets.get(d.id);
    return ws !== undefined && ws.getUserData() === d ? ws : undefined;
  }

  /** The peer `key` (info_hash + peer_id) is socket `d`'s: relays to it go there, its close stops it. */
  private track(d: SocketData, key: string): void {
    this.peers.set(key, d.id);
    if (!d.swarms.includes(key)) d.swarms.push(key);
  }

  /** One message allowed by the socket's budget (messages_per_second, a burst of twice that)? */
  private allowed(d: SocketData): boolean {
    const now = Date.now();
    const rate = this.cfg.ws.messages_per_second;
    d.tokens = Math.min(2 * rate, d.tokens + ((now - d.refilled) * rate) / 1000);
    d.refilled = now;
    if (d.tokens < 1) return false;
    d.tokens--;
    return true;
  }

  private message(ws: WebSocket<SocketData>, msg: ArrayBuffer, isBinary: boolean): void {
    const d = ws.getUserData();
    if (isBinary) return void ws.end(CLOSE_UNSUPPORTED, 'binary frames are not part of the WebSocket tracker protocol');
    if (msg.byteLength > this.cfg.ws.max_message_bytes) return void ws.end(CLOSE_TOO_BIG, `messages are limited to ${this.cfg.ws.max_message_bytes} bytes`);
    if (!this.allowed(d)) return this.refuse(ws, null, 'ws_rate_limited');
    let m: unknown;
    try {
      m = JSON.parse(this.decoder.decode(msg));
    } catch {
      return this.refuse(ws, null, 'ws_invalid_message');
    }
    if (!isObject(m)) return this.refuse(ws, null, 'ws_invalid_message');
    if (m.action === 'announce') return this.announce(ws, d, m);
    if (m.action === 'scrape') return this.scrape(ws, d, m);
    this.refuse(ws, null, 'ws_invalid_action');
  }

  /**
   * A failure reason to the client, with the action and info_hash it answers when known.
   * (Always with an action: the bittorrent-tracker client drops its socket, shared by every
   * torrent of the browser, on a message without one; an announce answer for no info_hash
   * it knows it ignores.)
   */
  private refuse(ws: WebSocket<SocketData>, action: 'announce' | 'scrape' | null, code: FailureCode, infoHash?: string, detail: string | null = null): void {
    const d = ws.getUserData();
    this.stats.refused++;
    if (action === 'announce') this.counters.announceFailed(PROTO_WS, EVENT_NONE, code);
    else if (action === 'scrape') this.counters.scrapeFailed(PROTO_WS, code);
    ws.send(JSON.stringify({ action: action ?? 'announce', 'failure reason': failureText(code, detail), info_hash: infoHash }));
    if (++d.strikes > MAX_STRIKES) ws.end(CLOSE_POLICY, 'too many refused messages');
  }

  // ------------------------------------------------------------------ announce

  private announce(ws: WebSocket<SocketData>, d: SocketData, m: Record<string, unknown>): void {
    const ih = m.info_hash;
    if (ih === undefined) return this.refuse(ws, 'announce', 'missing_info_hash');
    if (!isBin20(ih)) return this.refuse(ws, 'announce', 'invalid_info_hash');
    const pid = m.peer_id;
    if (pid === undefined) return this.refuse(ws, 'announce', 'missing_peer_id', ih);
    if (!isBin20(pid)) return this.refuse(ws, 'announce', 'invalid_peer_id', ih);
    if (m.answer !== undefined) return this.relayAnswer(ws, d, m, ih, pid);
    const up = count(m.uploaded);
    if (up === undefined) return this.refuse(ws, 'announce', 'invalid_uploaded', ih);
    const down = count(m.downloaded);
    if (down === undefined) return this.refuse(ws, 'announce', 'invalid_downloaded', ih);
    // (the client leaves it out while it does not know the torrent's size: a leecher)
    const left = m.left === undefined || m.left === null ? Number.MAX_SAFE_INTEGER : count(m.left);
    if (left === undefined) return this.refuse(ws, 'announce', 'invalid_left', ih);
    const event = m.event === undefined ? EVENT_NONE : typeof m.event === 'string' ? EVENTS[m.event] : undefined;
    if (event === undefined) return this.refuse(ws, 'announce', 'invalid_event', ih);
    let offers: Offer[] | null = null;
    if (m.offers !== undefined && event !== EVENT_STOPPED) {
      if (!Array.isArray(m.offers)) return this.refuse(ws, 'announce', 'ws_invalid_offers', ih);
      if (m.offers.length > this.cfg.ws.max_offers) return this.refuse(ws, 'announce', 'ws_too_many_offers', ih);
      for (const o of m.offers) if (!isObject(o) || !isObject(o.offer) || !isBin20(o.offer_id)) return this.refuse(ws, 'announce', 'ws_invalid_offers', ih);
      offers = m.offers as Offer[];
    }
    const key = ih + pid;
    if (event !== EVENT_STOPPED && d.swarms.length >= this.cfg.ws.max_swarms_per_socket && !d.swarms.includes(key)) {
      return this.refuse(ws, 'announce', 'ws_too_many_swarms', ih);
    }
    this.submit(d, ih, pid, event, up, down, left, offers, false, ws);
  }

  /**
   * Build the announce record and queue it. `gone`: the stop of a closed socket's peer
   * (answered to nobody; its totals stay as last reported).
   */
  private submit(d: SocketData, ih: string, pid: string, event: number, up: number, down: number, left: number, offers: Offer[] | null, gone: boolean, ws?: WebSocket<SocketData>): void {
    const rec = this.rec;
    const dv = this.dv;
    rec.fill(0);
    rec[AnnounceRequest.KIND] = KIND_ANNOUNCE;
    rec[AnnounceRequest.EVENT] = event;
    rec[AnnounceRequest.FLAGS] = AF_WS | AF_COMPACT | (gone ? AF_GONE : 0);
    putBin(ih, rec, AnnounceRequest.INFO_HASH);
    putBin(pid, rec, AnnounceRequest.PEER_ID);
    rec.set(d.ip, AnnounceRequest.IP);
    dv.setUint16(AnnounceRequest.NUMWANT, offers === null ? 0 : Math.min(offers.length, this.cfg.tracker.numwant_max), true);
    dv.setFloat64(AnnounceRequest.UPLOADED, up, true);
    dv.setFloat64(AnnounceRequest.DOWNLOADED, down, true);
    dv.setFloat64(AnnounceRequest.LEFT, left, true);
    dv.setUint32(AnnounceRequest.SOURCE, this.dispatch.addressTags.tag(rec, AnnounceRequest.IP), true);
    dv.setUint32(AnnounceRequest.SOCKET, d.id, true);
    if (gone) {
      // its peer as admitted while the socket was open
      dv.setUint32(AnnounceRequest.USER, d.user, true);
      dv.setUint32(AnnounceRequest.TORRENT, this.registry.torrentId(rec, AnnounceRequest.INFO_HASH), true);
    } else {
      const err = this.admission.client(d.ip, 0) ?? this.admission.announce(d.passkey, rec, dv);
      if (err !== null) {
        this.admission.refused(err);
        return this.refuse(ws!, 'announce', err, ih, this.admission.detail);
      }
      d.user = dv.getUint32(AnnounceRequest.USER, true);
      if (this.admission.busy()) return this.refuse(ws!, 'announce', 'address_busy', ih);
    }
    const item: Pending = { socket: d, infoHash: ih, peerId: pid, offers, stopped: event === EVENT_STOPPED, gone };
    const slot = this.dispatch.submitAnnounce(rec, dv, item, 0, this.owner, gone ? -1 : this.admission.clientEntry);
    if (slot < 0 && !gone) this.refuse(ws!, 'announce', 'tracker_busy', ih);
    // (a closed socket's stop that finds the tracker saturated: the peer times out instead)
  }

  announced(item: unknown, _tag: number, slot: number, ring: ByteRing, off: number): void {
    const failure = announceFailure(ring, off);
    const pending = this.dispatch.pending;
    this.counters.announced(PROTO_WS, pending.events[slot], failure, pending.since[slot]);
    const p = item as Pending;
    if (p.gone) return; // a closed socket's stop
    const d = p.socket;
    const ws = this.openSocket(d);
    if (ws === undefined) {
      // it closed while this was in flight: its close did not know this peer yet
      if (failure === null && !p.stopped) this.submit(d, p.infoHash, p.peerId, EVENT_STOPPED, 0, 0, 0, null, true);
      return;
    }
    if (failure !== null) {
      const text = failureText(failure, failureDetail(ring, off));
      ws.send(JSON.stringify({ action: 'announce', 'failure reason': text, info_hash: p.infoHash }));
      return;
    }
    const key = p.infoHash + p.peerId;
    if (p.stopped) {
      if (this.peers.get(key) === d.id) this.peers.delete(key);
      const i = d.swarms.indexOf(key);
      if (i >= 0) d.swarms.splice(i, 1);
    } else this.track(d, key);
    d.strikes = 0;
    const dv = ring.dv;
    ws.send(
      JSON.stringify({
        action: 'announce',
        interval: this.cfg.ws.interval,
        info_hash: p.infoHash,
        complete: dv.getUint32(off + AnnounceAnswer.SEEDERS, true),
        incomplete: dv.getUint32(off + AnnounceAnswer.LEECHERS, true),
      }),
    );
    const offers = p.offers;
    if (offers === null) return;
    const n = Math.min(dv.getUint16(off + AnnounceAnswer.COUNT, true), offers.length);
    const u8 = ring.u8;
    for (let i = 0; i < n; i++) {
      const id = readSocketEntry(u8, off + AnnounceAnswer.PEERS + i * ENTRY_V4);
      const o = offers[i];
      if (this.relay(id, { action: 'announce', offer: o.offer, offer_id: o.offer_id, peer_id: p.peerId, info_hash: p.infoHash })) this.stats.offersRelayed++;
    }
  }

  /**
   * Send `msg` to socket `id` unless it is gone or has too much unsent. (It may be the
   * sender's: one socket carries every torrent of a browser, and the shard never picks the
   * announcing peer itself.)
   */
  private relay(id: number, msg: object): boolean {
    const to = this.sockets.get(id);
    if (to === undefined) {
      this.stats.relaysUnroutable++;
      return false;
    }
    if (to.getBufferedAmount() > this.cfg.ws.max_backpressure_bytes) {
      this.stats.relaysDropped++;
      return false;
    }
    to.send(JSON.stringify(msg));
    return true;
  }

  /**
   * A WebRTC answer to an offer: relayed to the socket that announced `to_peer_id` in the
   * swarm. Only from a peer of that swarm (it got the offer as one), to a peer of it.
   */
  private relayAnswer(ws: WebSocket<SocketData>, d: SocketData, m: Record<string, unknown>, ih: string, pid: string): void {
    if (!isObject(m.answer) || !isBin20(m.to_peer_id) || !isBin20(m.offer_id)) return this.refuse(ws, 'announce', 'ws_invalid_answer', ih);
    if (this.peers.get(ih + pid) !== d.id) {
      this.stats.relaysUnroutable++;
      return;
    }
    const to = this.peers.get(ih + m.to_peer_id);
    if (to === undefined) {
      this.stats.relaysUnroutable++;
      return;
    }
    if (this.relay(to, { action: 'announce', answer: m.answer, offer_id: m.offer_id, peer_id: pid, info_hash: ih })) this.stats.answersRelayed++;
  }

  // ------------------------------------------------------------------ scrape

  private scrape(ws: WebSocket<SocketData>, d: SocketData, m: Record<string, unknown>): void {
    const list = typeof m.info_hash === 'string' ? [m.info_hash] : m.info_hash;
    if (!Array.isArray(list) || list.length === 0) return this.refuse(ws, 'scrape', 'full_scrape_disabled');
    if (list.length > this.cfg.tracker.scrape_max_hashes) return this.refuse(ws, 'scrape', 'too_many_info_hashes');
    const hashes = new Uint8Array(list.length * 20);
    for (const [i, h] of list.entries()) {
      if (!isBin20(h)) return this.refuse(ws, 'scrape', 'invalid_info_hash');
      putBin(h, hashes, i * 20);
    }
    const err = this.admission.client(d.ip, 0) ?? this.admission.scrape(d.passkey, d.ip, 0);
    if (err !== null) {
      this.admission.refused(err);
      return this.refuse(ws, 'scrape', err, undefined, this.admission.detail);
    }
    if (this.admission.busy()) return this.refuse(ws, 'scrape', 'address_busy');
    if (this.dispatch.submitScrape(hashes, list.length, d, this.owner, this.admission.clientEntry) === null) this.refuse(ws, 'scrape', 'tracker_busy');
  }

  scraped(job: ScrapeJob): void {
    const ws = this.openSocket(job.item as SocketData);
    if (ws === undefined) return;
    const files: Record<string, { complete: number; incomplete: number; downloaded: number }> = {};
    for (let i = 0; i < job.count; i++) {
      const ih = String.fromCharCode(...job.hashes.subarray(i * 20, i * 20 + 20));
      files[ih] = { complete: job.counts[i * 3], incomplete: job.counts[i * 3 + 2], downloaded: job.counts[i * 3 + 1] };
    }
    ws.send(JSON.stringify({ action: 'scrape', files }));
    this.counters.scraped(PROTO_WS);
  }

  lost(item: unknown, tag: number, slot: number): void {
    if (tag === SCRAPE_TAG) {
      this.openSocket(item as SocketData)?.send(JSON.stringify({ action: 'scrape', 'failure reason': failureText('shard_restarted', null) }));
      return this.counters.scrapeFailed(PROTO_WS, 'shard_restarted');
    }
    this.counters.announceFailed(PROTO_WS, this.dispatch.pending.events[slot], 'shard_restarted');
    // The shard died with it, and may have applied it (its tables outlive it): a stop is
    // sent again, a peer kept track of so its socket's close stops it.
    const p = item as Pending;
    const d = p.socket;
    const ws = this.openSocket(d);
    if (p.gone || (ws === undefined && !p.stopped)) return this.submit(d, p.infoHash, p.peerId, EVENT_STOPPED, 0, 0, 0, null, true);
    if (ws === undefined) return;
    const key = p.infoHash + p.peerId;
    if (!p.stopped && !d.swarms.includes(key) && d.swarms.length < this.cfg.ws.max_swarms_per_socket) this.track(d, key);
    ws.send(JSON.stringify({ action: 'announce', 'failure reason': failureText('shard_restarted', null), info_hash: p.infoHash }));
  }
}

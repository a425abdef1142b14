import dgram from 'node:dgram';
import type { ShardPool } from '../../shards/pool.js';
import { AnnounceAnswer, AnnounceRequest, ENTRY_V4, ENTRY_V6, EVENT_NONE } from '../../contract/requests.js';
import type { ByteRing } from '../../contract/ring.js';
import { announceFailure, failureDetail } from '../answer-status.js';
import type { Config } from '../config.js';
import { PROTO_UDP, type TrackerCounters } from '../counters.js';
import { SCRAPE_TAG, type Dispatch, type Frontend, type ScrapeJob } from '../dispatch.js';
import { FAILURES, failureText, type FailureCode } from '../errors.js';
import { isV4Mapped, parseIp } from '../net/ip.js';
import { Admission, announceOptions } from '../policy/admission.js';
import type { Registry } from '../policy/registry.js';
import {
  ACTION_SCRAPE, Kind, SCRAPE_HEADER, SCRAPE_MAX, UdpAnnounceParser, classify, writeAnnounceHeader, writeConnect, writeError,
} from './codec.js';
import { ConnectionIds } from './connection-id.js';

// The UDP acceptor (BEP 15, BEP 41): one dual-stack socket (or an IPv4 one), stateless
// connection ids, announces and scrapes through the same dispatch and shard rings as
// HTTP. Datagrams that are too short or not ours are dropped; an address that has not
// proven itself with a valid connection id never gets more bytes back than it sent.

const MAX_PACKET = 2048; // a 74-hash scrape is 1496 bytes; BEP 41 options add a little
// Answers are written into a ring of preallocated buffers rather than one new Buffer each:
// dgram.send hands loopback and uncongested sends to the kernel at once, and a queued send
// would have to wait 4096 answers before its buffer is reused.
const OUT_RING = 4096;
const OUT_BYTES = 1500; // the largest answer: 20 + 200 × 6 (IPv4) or 20 + 79 × 18 (IPv6)
const TAG_V6 = 1;
/** IPv6 answers are cut to fit one 1500-byte Ethernet frame: 20 + 79 × 18 = 1442 bytes. */
const MAX_PEERS_V6 = 79;

const NOT_CONNECTED = 'invalid or expired connection id: connect again';
const UNKNOWN_ACTION = 'unknown action';
const PRIVATE_SCRAPE = 'scrape over UDP needs no passkey and this tracker is private: scrape over HTTP';

interface ScrapeReply {
  tid: number;
  address: string;
  port: number;
}

export class UdpFrontend implements Frontend {
  private socket: dgram.Socket | undefined;
  private readonly owner: number;
  private readonly admission: Admission;
  private readonly ids: ConnectionIds;
  /** The clock connection ids go by: the wall clock when nodes share them (udp.connection_id_secret). */
  private readonly idClock: () => number;
  private readonly parser: UdpAnnounceParser;
  private readonly packet = new Uint8Array(MAX_PACKET);
  private readonly pdv = new DataView(this.packet.buffer);
  private readonly addr = new Uint8Array(16);
  // per pending slot: where and under which transaction id to answer
  private readonly tids: Uint32Array;
  private readonly addresses: string[];
  private readonly ports: Uint16Array;
  private readonly outBufs: Buffer[] = [];
  private readonly outViews: DataView[] = [];
  private outNext = 0;
  private boundPort = 0;
  /** Datagrams dropped without an answer (too short, not ours, oversized). */
  dropped = 0;

  constructor(
    private readonly cfg: Config,
    private readonly dispatch: Dispatch,
    pool: ShardPool,
    registry: Registry,
    private readonly counters: TrackerCounters,
  ) {
    this.owner = dispatch.register(this);
    this.admission = new Admission(cfg, registry, dispatch.limits);
    const secret = cfg.udp.connection_id_secret;
    this.ids = new ConnectionIds(120, secret);
    this.idClock = secret !== '' ? () => Math.floor(Date.now() / 1000) : () => pool.now();
    this.parser = new UdpAnnounceParser(announceOptions(cfg));
    const n = dispatch.pending.capacity;
    this.tids = new Uint32Array(n);
    this.addresses = new Array<string>(n).fill('');
    this.ports = new Uint16Array(n);
    const space = Buffer.alloc(OUT_RING * OUT_BYTES);
    for (let i = 0; i < OUT_RING; i++) {
      this.outBufs.push(space.subarray(i * OUT_BYTES, (i + 1) * OUT_BYTES));
      this.outViews.push(new DataView(space.buffer, space.byteOffset + i * OUT_BYTES, OUT_BYTES));
    }
  }

  /** Index of the next answer buffer of the ring. */
  private nextOut(): number {
    const i = this.outNext;
    this.outNext = i + 1 === OUT_RING ? 0 : i + 1;
    return i;
  }

  /** Bind the socket; resolves with the port. */
  listen(port = this.cfg.udp.port): Promise<number> {
    const host = this.cfg.udp.host;
    const v4only = host.includes('.');
    const socket = dgram.createSocket({ type: v4only ? 'udp4' : 'udp6', ipv6Only: false, recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
    this.socket = socket;
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo.address, rinfo.port));
    socket.on('error', () => {}); // ICMP-induced errors on sends must not kill the acceptor
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        this.boundPort = socket.address().port;
        resolve(this.boundPort);
      });
    });
  }

  get port(): number {
    return this.boundPort;
  }

  close(): void {
    this.socket?.close();
    this.socket = undefined;
  }

  // ------------------------------------------------------------------ requests

  private onMessage(msg: Buffer, address: string, port: number): void {
    const len = msg.length;
    if (len > MAX_PACKET) {
      this.dropped++;
      return;
    }
    const p = this.packet;
    const dv = this.pdv;
    p.set(msg);
    const kind = classify(dv, len);
    if (kind === Kind.Drop || !parseIp(address, this.addr, 0)) {
      this.dropped++;
      return;
    }
    const tid = dv.getUint32(12, false);
    const now = this.idClock();
    if (kind === Kind.Connect) {
      const o = this.nextOut();
      const len = writeConnect(this.outViews[o], tid);
      this.ids.issue(now, this.addr, 0, this.outViews[o], 8);
      return this.send(this.outBufs[o], len, address, port);
    }
    if (!this.ids.check(now, this.addr, 0, dv, 0)) return this.error(tid, NOT_CONNECTED, len, address, port);
    // Limits only past the connection id: a spoofed source cannot spend another's allowance.
    const limited = this.admission.client(this.addr, 0);
    if (limited !== null) {
      if (kind === Kind.Announce) return this.refuseAnnounce(tid, limited, EVENT_NONE, address, port);
      return this.refuseScrape(tid, limited, address, port);
    }
    if (kind === Kind.BadAction) return this.error(tid, UNKNOWN_ACTION, len, address, port);
    if (kind === Kind.Announce) return this.announce(tid, len, address, port);
    this.scrape(tid, len, address, port);
  }

  private announce(tid: number, len: number, address: string, port: number): void {
    const pr = this.parser;
    pr.rec.set(this.addr, AnnounceRequest.IP);
    pr.dv.setUint32(AnnounceRequest.SOURCE, this.dispatch.addressTags.tag(this.addr, 0), true);
    // A request that did not parse counts under event "none": its event byte is not trustworthy.
    const bad = pr.parse(this.packet, this.pdv, len);
    if (bad !== null) return this.refuseAnnounce(tid, bad, EVENT_NONE, address, port);
    // The passkey string is built only in private mode.
    const err = this.admission.announce(this.cfg.tracker.private ? pr.passkey() : null, pr.rec, pr.dv);
    if (err !== null) return this.refuseAnnounce(tid, err, pr.rec[AnnounceRequest.EVENT], address, port);
    const v6 = !isV4Mapped(this.addr, 0);
    if (v6 && pr.dv.getUint16(AnnounceRequest.NUMWANT, true) > MAX_PEERS_V6) pr.dv.setUint16(AnnounceRequest.NUMWANT, MAX_PEERS_V6, true);
    if (this.admission.busy()) return this.refuseAnnounce(tid, 'address_busy', pr.rec[AnnounceRequest.EVENT], address, port);
    const slot = this.dispatch.submitAnnounce(pr.rec, pr.dv, this, v6 ? TAG_V6 : 0, this.owner, this.admission.clientEntry);
    if (slot < 0) return this.refuseAnnounce(tid, 'tracker_busy', pr.rec[AnnounceRequest.EVENT], address, port);
    this.tids[slot] = tid;
    this.addresses[slot] = address;
    this.ports[slot] = port;
  }

  private scrape(tid: number, len: number, address: string, port: number): void {
    if (this.cfg.tracker.private) {
      this.counters.scrapeFailed(PROTO_UDP, null);
      return this.error(tid, PRIVATE_SCRAPE, Infinity, address, port);
    }
    const err = this.admission.scrape(null, this.addr, 0);
    if (err !== null) return this.refuseScrape(tid, err, address, port);
    const count = Math.min(Math.floor((len - SCRAPE_HEADER) / 20), SCRAPE_MAX, this.cfg.tracker.scrape_max_hashes);
    const reply: ScrapeReply = { tid, address, port };
    if (this.admission.busy()) return this.refuseScrape(tid, 'address_busy', address, port);
    const job = this.dispatch.submitScrape(this.packet.subarray(SCRAPE_HEADER, SCRAPE_HEADER + count * 20), count, reply, this.owner, this.admission.clientEntry);
    if (job === null) this.refuseScrape(tid, 'tracker_busy', address, port);
  }

  // ------------------------------------------------------------------ answers (Frontend)

  announced(_item: unknown, tag: number, slot: number, ring: ByteRing, off: number): void {
    const tid = this.tids[slot];
    const address = this.addresses[slot];
    const port = this.ports[slot];
    const failure = announceFailure(ring, off);
    const pending = this.dispatch.pending;
    if (failure !== null) {
      this.error(tid, failureText(failure, failureDetail(ring, off)), Infinity, address, port);
      return this.counters.announced(PROTO_UDP, pending.events[slot], failure, pending.since[slot]);
    }
    const adv = ring.dv;
    const n = adv.getUint16(off + AnnounceAnswer.COUNT, true);
    const peerBytes = n * (tag & TAG_V6 ? ENTRY_V6 : ENTRY_V4);
    const o = this.nextOut();
    const out = this.outBufs[o];
    const iv = this.cfg.tracker;
    const interval = iv.interval + (iv.interval_jitter > 0 ? Math.floor(Math.random() * (iv.interval_jitter + 1)) : 0);
    writeAnnounceHeader(this.outViews[o], tid, interval, adv.getUint32(off + AnnounceAnswer.LEECHERS, true), adv.getUint32(off + AnnounceAnswer.SEEDERS, true));
    const src = ring.u8;
    const from = off + AnnounceAnswer.PEERS;
    for (let i = 0; i < peerBytes; i++) out[20 + i] = src[from + i];
    this.send(out, 20 + peerBytes, address, port);
    this.counters.announced(PROTO_UDP, pending.events[slot], null, pending.since[slot]);
  }

  scraped(job: ScrapeJob): void {
    const r = job.item as ScrapeReply;
    const out = this.outBufs[this.nextOut()];
    out.writeUInt32BE(ACTION_SCRAPE, 0);
    out.writeUInt32BE(r.tid, 4);
    for (let i = 0; i < job.count; i++) {
      out.writeUInt32BE(job.counts[i * 3], 8 + i * 12);
      out.writeUInt32BE(job.counts[i * 3 + 1], 12 + i * 12);
      out.writeUInt32BE(job.counts[i * 3 + 2], 16 + i * 12);
    }
    this.send(out, 8 + job.count * 12, r.address, r.port);
    this.counters.scraped(PROTO_UDP);
  }

  lost(item: unknown, tag: number, slot: number): void {
    if (tag === SCRAPE_TAG) {
      const r = item as ScrapeReply;
      this.counters.scrapeFailed(PROTO_UDP, 'shard_restarted');
      return this.fail(r.tid, 'shard_restarted', r.address, r.port);
    }
    this.counters.announceFailed(PROTO_UDP, this.dispatch.pending.events[slot], 'shard_restarted');
    this.fail(this.tids[slot], 'shard_restarted', this.addresses[slot], this.ports[slot]);
  }

  // ------------------------------------------------------------------ output

  private refuseAnnounce(tid: number, code: FailureCode, event: number, address: string, port: number): void {
    this.counters.announceFailed(PROTO_UDP, event, code);
    this.refusal(tid, code, address, port);
  }

  private refuseScrape(tid: number, code: FailureCode, address: string, port: number): void {
    this.counters.scrapeFailed(PROTO_UDP, code);
    this.refusal(tid, code, address, port);
  }

  /** A refusal of admission: counted toward the address's ban, told with its detail (a deleted torrent's reason, how long to wait). */
  private refusal(tid: number, code: FailureCode, address: string, port: number): void {
    this.admission.refused(code);
    this.error(tid, failureText(code, this.admission.detail), Infinity, address, port);
  }

  /** An error packet to a client whose connection id checked out. */
  private fail(tid: number, code: FailureCode, address: string, port: number): void {
    this.error(tid, FAILURES[code], Infinity, address, port);
  }

  private error(tid: number, message: string, max: number, address: string, port: number): void {
    const o = this.nextOut();
    const n = writeError(this.outBufs[o], this.outViews[o], tid, message, max);
    if (n > 0) this.send(this.outBufs[o], n, address, port);
  }

  private send(out: Buffer, len: number, address: string, port: number): void {
    this.socket?.send(out, 0, len, port, address);
  }
}


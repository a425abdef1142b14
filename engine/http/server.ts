import HyperExpress from 'hyper-express';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { AA, AF_COMPACT, AF_NO_PEER_ID, AF_V6, AQ, KIND_SCRAPE, SA, SCRAPE_ENTRY, SQ, ST_OK, ST_PEER_ID_IN_USE } from '../../shards/layout.js';
import type { AnswerSink, ShardPool } from '../../shards/channel.js';
import type { ByteRing } from '../../shards/ring.js';
import type { Config } from '../config.js';
import { FAILURE_BODIES, type FailureCode } from '../errors.js';
import { CidrList, clientAddressFromForwarded, fromRemoteAddress, parseIp } from '../net/ip.js';
import { PendingTable } from '../pending.js';
import type { Registry } from '../policy/registry.js';
import { BencodeWriter } from './bencode.js';
import { encodeAnnounce, encodeScrape, maxAnnounceBytes, maxScrapeBytes, sortedOrder, TAG_COMPACT, TAG_NO_PEER_ID, TAG_V6, type Intervals } from './encode.js';
import { AnnounceParser, ScrapeParser } from './query.js';
import { fullScrape } from './full-scrape.js';

// The HTTP acceptor: announce and scrape through uWebSockets.js routes registered directly
// on hyper-express's uWS app (the hot path skips hyper-express's request wrapper), every
// other path through hyper-express (404 today, the admin API later).
//
// An announce is parsed into a request record, checked against the registry, queued into
// its shard's ring, and answered when the shard's answer record comes back. Failures that
// need no shard are answered at once with a pre-encoded bencoded `failure reason`.

/** A scrape fanned out to several shards, answered when every part is back. */
interface ScrapeJob {
  res: HttpResponse;
  aborted: boolean;
  done: boolean;
  hashes: Uint8Array; // unique info_hashes, 20 bytes each
  counts: Uint32Array; // (seeders, completed, leechers) per hash
  parts: number; // shard answers still missing
  partIndex: Map<number, Uint16Array>; // shard → job indexes of the hashes sent to it
}

type Waiting = HttpResponse | ScrapeJob;

const TEXT = 'text/plain';

export class HttpFrontend implements AnswerSink {
  private readonly server: HyperExpress.Server;
  private readonly uws: TemplatedApp;
  private readonly parser: AnnounceParser;
  private readonly scrapeParser: ScrapeParser;
  private readonly pending: PendingTable<Waiting>;
  private readonly abortHandlers: Array<() => void>;
  private readonly writer: BencodeWriter;
  private readonly trusted: CidrList;
  private readonly iv: Intervals;
  private readonly addr = new Uint8Array(16);
  private port = 0;

  constructor(
    private readonly cfg: Config,
    private readonly pool: ShardPool,
    private readonly registry: Registry,
  ) {
    const t = cfg.tracker;
    this.parser = new AnnounceParser({ numwantDefault: t.numwant_default, numwantMax: t.numwant_max, allowClientIp: t.allow_client_ip });
    this.scrapeParser = new ScrapeParser(t.scrape_max_hashes);
    this.pending = new PendingTable<Waiting>(cfg.http.max_inflight);
    this.abortHandlers = Array.from({ length: cfg.http.max_inflight }, (_, slot) => () => this.pending.release(slot));
    this.writer = new BencodeWriter(Math.max(maxAnnounceBytes(t.numwant_max), maxScrapeBytes(t.scrape_max_hashes)));
    this.trusted = new CidrList(cfg.net.trusted_proxies);
    this.iv = { interval: t.interval, minInterval: t.min_interval, jitter: t.interval_jitter };

    this.server = new HyperExpress.Server({ max_body_length: 1024 });
    this.uws = this.server.uws_instance as TemplatedApp;
    const announce = (res: HttpResponse, req: HttpRequest) => this.onAnnounce(res, req, false);
    const announceKey = (res: HttpResponse, req: HttpRequest) => this.onAnnounce(res, req, true);
    const scrape = (res: HttpResponse, req: HttpRequest) => this.onScrape(res, req, false);
    const scrapeKey = (res: HttpResponse, req: HttpRequest) => this.onScrape(res, req, true);
    this.uws.get('/announce', announce);
    this.uws.get('/:passkey/announce', announceKey);
    this.uws.get('/scrape', scrape);
    this.uws.get('/:passkey/scrape', scrapeKey);
    this.server.set_not_found_handler((_req, res) => {
      res.status(404).type('text').send('not found\n');
    });
  }

  async listen(): Promise<number> {
    const sock = await this.server.listen(this.cfg.http.port, this.cfg.http.host);
    this.port = this.server.port ?? this.cfg.http.port;
    void sock;
    return this.port;
  }

  get listeningPort(): number {
    return this.port;
  }

  get inFlight(): number {
    return this.pending.inFlight;
  }

  close(): void {
    this.server.close();
  }

  // ------------------------------------------------------------------ requests

  private fail(res: HttpResponse, code: FailureCode): void {
    res.writeHeader('Content-Type', TEXT).end(FAILURE_BODIES[code]);
  }

  /** The client's address into `out`: the socket's, or a trusted proxy's forwarded one. */
  private clientAddress(res: HttpResponse, req: HttpRequest, out: Uint8Array, off: number): void {
    fromRemoteAddress(res.getRemoteAddress(), out, off);
    if (this.trusted.size === 0 || !this.trusted.has(out, off)) return;
    const xff = req.getHeader('x-forwarded-for');
    if (xff !== '' && clientAddressFromForwarded(xff, this.trusted, out, off)) return;
    const real = req.getHeader('x-real-ip');
    if (real !== '' && parseIp(real.trim(), this.addr, 0)) out.set(this.addr, off);
  }

  /** Passkey check: the user id to account to, -1 after answering a failure. */
  private user(res: HttpResponse, req: HttpRequest, keyed: boolean): { id: number; canLeech: boolean } | null {
    if (!this.cfg.tracker.private) return OPEN_USER;
    if (!keyed) {
      this.fail(res, 'passkey_required');
      return null;
    }
    const u = this.registry.user(req.getParameter(0));
    if (u === undefined) {
      this.fail(res, 'unknown_passkey');
      return null;
    }
    return u;
  }

  private onAnnounce(res: HttpResponse, req: HttpRequest, keyed: boolean): void {
    const query = req.getQuery() ?? '';
    if (query.length > this.cfg.http.max_query_bytes) return this.fail(res, 'query_too_long');
    const user = this.user(res, req, keyed);
    if (user === null) return;
    const p = this.parser;
    const rec = p.rec;
    this.clientAddress(res, req, rec, AQ.IP);
    const err = p.parse(query);
    if (err !== null) return this.fail(res, err);
    if (!user.canLeech && p.dv.getFloat64(AQ.LEFT, true) > 0) return this.fail(res, 'leeching_disabled');
    const torrent = this.registry.torrentId(rec, AQ.INFO_HASH);
    if (torrent === 0 && this.cfg.tracker.private && this.cfg.tracker.require_registered_torrents) {
      return this.fail(res, 'torrent_not_registered');
    }
    p.dv.setUint32(AQ.USER, user.id, true);
    p.dv.setUint32(AQ.TORRENT, torrent, true);

    const flags = rec[AQ.FLAGS];
    const tag = (flags & AF_COMPACT ? TAG_COMPACT : 0) | (flags & AF_NO_PEER_ID ? TAG_NO_PEER_ID : 0) | (flags & AF_V6 ? TAG_V6 : 0);
    const shard = this.pool.shardOf(rec, AQ.INFO_HASH);
    const slot = this.pending.acquire(res, shard, tag);
    if (slot < 0) return this.fail(res, 'tracker_busy');
    const at = this.pool.reserve(shard, AQ.SIZE);
    if (at < 0) {
      this.pending.release(slot);
      return this.fail(res, 'tracker_busy');
    }
    p.dv.setUint32(AQ.REQ_ID, this.pending.idOf(slot), true);
    this.pool.requestRing(shard).u8.set(rec, at);
    this.pool.queued(shard);
    res.onAborted(this.abortHandlers[slot]);
  }

  private onScrape(res: HttpResponse, req: HttpRequest, keyed: boolean): void {
    const query = req.getQuery() ?? '';
    if (query.length > this.cfg.http.max_query_bytes) return this.fail(res, 'query_too_long');
    if (this.user(res, req, keyed) === null) return;
    const sp = this.scrapeParser;
    const err = sp.parse(query);
    if (err !== null) return this.fail(res, err);
    if (sp.count === 0) {
      if (!this.cfg.tracker.full_scrape) return this.fail(res, 'full_scrape_disabled');
      const files = fullScrape(this.pool);
      const body = encodeScrape(new BencodeWriter(maxScrapeBytes(files.count)), files.hashes, files.counts, sortedOrder(files.hashes, files.count), this.iv.minInterval);
      res.writeHeader('Content-Type', TEXT).end(body);
      return;
    }

    // Unique hashes, grouped by shard.
    const hashes = new Uint8Array(sp.count * 20);
    let unique = 0;
    const byShard = new Map<number, number[]>();
    outer: for (let i = 0; i < sp.count; i++) {
      for (let j = 0; j < unique; j++) {
        if (Buffer.compare(sp.hashes.subarray(i * 20, i * 20 + 20), hashes.subarray(j * 20, j * 20 + 20)) === 0) continue outer;
      }
      hashes.set(sp.hashes.subarray(i * 20, i * 20 + 20), unique * 20);
      const shard = this.pool.shardOf(hashes, unique * 20);
      let list = byShard.get(shard);
      if (list === undefined) byShard.set(shard, (list = []));
      list.push(unique);
      unique++;
    }
    const job: ScrapeJob = {
      res,
      aborted: false,
      done: false,
      hashes: hashes.subarray(0, unique * 20),
      counts: new Uint32Array(unique * 3),
      parts: byShard.size,
      partIndex: new Map(),
    };
    const slots: number[] = [];
    for (const [shard, list] of byShard) {
      const slot = this.pending.acquire(job, shard, 0);
      const at = slot < 0 ? -1 : this.pool.reserve(shard, SQ.HASHES + list.length * 20);
      if (at < 0) {
        if (slot >= 0) this.pending.release(slot);
        for (const s of slots) this.pending.release(s); // parts already queued answer into nothing
        return this.fail(res, 'tracker_busy');
      }
      slots.push(slot);
      const ring = this.pool.requestRing(shard);
      ring.u8[at + SQ.KIND] = KIND_SCRAPE;
      ring.dv.setUint16(at + SQ.COUNT, list.length, true);
      ring.dv.setUint32(at + SQ.REQ_ID, this.pending.idOf(slot), true);
      for (let k = 0; k < list.length; k++) ring.u8.set(job.hashes.subarray(list[k] * 20, list[k] * 20 + 20), at + SQ.HASHES + k * 20);
      job.partIndex.set(this.pending.idOf(slot), Uint16Array.from(list));
      this.pool.queued(shard);
    }
    res.onAborted(() => {
      job.aborted = true;
    });
  }

  // ------------------------------------------------------------------ answers (AnswerSink)

  private corkRes: HttpResponse | undefined;
  private corkBody: Uint8Array | undefined;
  private readonly writeCorked = (): void => {
    this.corkRes!.writeHeader('Content-Type', TEXT).end(this.corkBody!);
  };

  private send(res: HttpResponse, body: Uint8Array): void {
    this.corkRes = res;
    this.corkBody = body;
    res.cork(this.writeCorked);
    this.corkRes = undefined;
    this.corkBody = undefined;
  }

  announce(ring: ByteRing, off: number): void {
    const slot = this.pending.slotOf(ring.dv.getUint32(off + AA.REQ_ID, true));
    if (slot < 0) return; // client gone, or the slot was failed and reused
    const res = this.pending.item(slot) as HttpResponse;
    const tag = this.pending.tags[slot];
    this.pending.release(slot);
    const status = ring.u8[off + AA.STATUS];
    if (status !== ST_OK) {
      const body = FAILURE_BODIES[status === ST_PEER_ID_IN_USE ? 'peer_id_in_use' : 'tracker_full'];
      return this.send(res, body);
    }
    this.send(res, encodeAnnounce(this.writer, ring.u8, ring.dv, off, tag, this.iv));
  }

  scrape(ring: ByteRing, off: number): void {
    const id = ring.dv.getUint32(off + SA.REQ_ID, true);
    const slot = this.pending.slotOf(id);
    if (slot < 0) return;
    const job = this.pending.item(slot) as ScrapeJob;
    this.pending.release(slot);
    const list = job.partIndex.get(id)!;
    const n = Math.min(list.length, ring.dv.getUint16(off + SA.COUNT, true));
    for (let k = 0; k < n; k++) {
      const e = off + SA.FILES + k * SCRAPE_ENTRY;
      const i = list[k] * 3;
      job.counts[i] = ring.dv.getUint32(e, true);
      job.counts[i + 1] = ring.dv.getUint32(e + 4, true);
      job.counts[i + 2] = ring.dv.getUint32(e + 8, true);
    }
    if (--job.parts > 0 || job.done) return;
    job.done = true;
    if (job.aborted) return;
    const count = job.hashes.length / 20;
    this.send(job.res, encodeScrape(this.writer, job.hashes, job.counts, sortedOrder(job.hashes, count), this.iv.minInterval));
  }

  shardLost(shard: number): void {
    for (const slot of this.pending.slotsOfShard(shard)) {
      const w = this.pending.item(slot)!;
      this.pending.release(slot);
      if ('hashes' in w) {
        if (w.done) continue;
        w.done = true;
        if (!w.aborted) this.send(w.res, FAILURE_BODIES.shard_restarted);
      } else {
        this.send(w, FAILURE_BODIES.shard_restarted);
      }
    }
  }
}

const OPEN_USER = Object.freeze({ id: 0, canLeech: true });

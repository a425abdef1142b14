import HyperExpress from 'hyper-express';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { AF_COMPACT, AF_NO_PEER_ID, AF_V6, AnnounceRequest, EVENT_NONE } from '../../contract/requests.js';
import type { ShardPool } from '../../shards/pool.js';
import type { ByteRing } from '../../contract/ring.js';
import type { Logger } from '../../contract/log.js';
import type { Config } from '../config.js';
import { PROTO_HTTP, type TrackerCounters } from '../counters.js';
import { FAILURE_BODIES, failureBody, type FailureCode } from '../errors.js';
import { CidrList } from '../net/ip.js';
import { clientAddress } from './client-address.js';
import { assertPortFree } from '../net/port.js';
import { SCRAPE_TAG, type Dispatch, type Frontend, type ScrapeJob } from '../dispatch.js';
import { announceFailure, failureDetail } from '../answer-status.js';
import { Admission, announceOptions } from '../policy/admission.js';
import type { Registry } from '../policy/registry.js';
import { BencodeWriter } from './bencode.js';
import { encodeAnnounce, encodeScrape, maxAnnounceBytes, maxScrapeBytes, TAG_COMPACT, TAG_NO_PEER_ID, TAG_V6, type Intervals } from './encode.js';
import { AnnounceParser, ScrapeParser } from './query.js';
import { FullScrapes } from './full-scrape.js';
import { acceptsGzip } from './accept.js';
import { HashSorter } from './hash-sort.js';

// The HTTP acceptor: announce and scrape through uWebSockets.js routes registered directly
// on hyper-express's uWS app (the hot path skips hyper-express's request wrapper), every
// other path through hyper-express (the admin routes with admin.on_tracker_port, else 404).
//
// An announce is parsed into a request record, checked against the registry, queued into
// its shard's ring, and answered when the shard's answer record comes back. Failures that
// need no shard are answered at once with a pre-encoded bencoded `failure reason`.

/** The HTTP side of a scrape in flight. */
interface ScrapeWaiter {
  res: HttpResponse;
  aborted: boolean;
}

const TEXT = 'text/plain';

export class HttpFrontend implements Frontend {
  private readonly server: HyperExpress.Server;
  /** The hyper-express server: other routes (the admin API with admin.on_tracker_port) go on it. */
  get app(): HyperExpress.Server {
    return this.server;
  }
  /** The uWS app under hyper-express: the WebSocket tracker (engine/ws) registers on it too. */
  readonly uws: TemplatedApp;
  private readonly parser: AnnounceParser;
  private readonly scrapeParser: ScrapeParser;
  private readonly sorter: HashSorter;
  /** undefined unless tracker.full_scrape */
  private readonly fullScrapes: FullScrapes | undefined;
  private readonly owner: number;
  private readonly admission: Admission;
  private readonly abortHandlers: Array<() => void>;
  private readonly writer: BencodeWriter;
  private readonly trusted: CidrList;
  private readonly iv: Intervals;
  private readonly scrapeAddr = new Uint8Array(16);
  private port = 0;

  constructor(
    private readonly cfg: Config,
    private readonly dispatch: Dispatch,
    pool: ShardPool,
    registry: Registry,
    private readonly counters: TrackerCounters,
    log: Logger,
  ) {
    this.owner = dispatch.register(this);
    this.admission = new Admission(cfg, registry, dispatch.limits);
    const t = cfg.tracker;
    this.parser = new AnnounceParser(announceOptions(cfg));
    this.scrapeParser = new ScrapeParser(t.scrape_max_hashes);
    this.sorter = new HashSorter(t.scrape_max_hashes);
    if (t.full_scrape) {
      this.fullScrapes = new FullScrapes(
        { shards: () => pool.shards.map((s) => ({ ctl: s.memory.ctl, swarms: s.memory.swarms })), minInterval: t.min_interval, cacheMs: t.full_scrape_cache_seconds * 1000 },
        (e) => log(`full scrape failed: ${e.stack ?? e}`, 'error'),
      );
    }
    const pending = dispatch.pending;
    this.abortHandlers = Array.from({ length: pending.capacity }, (_, slot) => () => pending.release(slot));
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
    // uWebSockets.js listens with SO_REUSEPORT: a second tracker on the same port would bind
    // without error and the kernel would split connections (and swarms) between the two.
    // A plain socket (no SO_REUSEPORT) cannot bind a port that is held, so probe first.
    if (this.cfg.http.port !== 0) await assertPortFree(this.cfg.http.host, this.cfg.http.port, 'HTTP');
    const sock = await this.server.listen(this.cfg.http.port, this.cfg.http.host);
    this.port = this.server.port ?? this.cfg.http.port;
    void sock;
    return this.port;
  }

  get listeningPort(): number {
    return this.port;
  }

  async close(): Promise<void> {
    this.server.close();
    await this.fullScrapes?.close();
  }

  /** Full scrapes built so far (0 without tracker.full_scrape): tests watch the cache with it. */
  get fullScrapeBuilds(): number {
    return this.fullScrapes?.builds ?? 0;
  }

  // ------------------------------------------------------------------ requests

  private fail(res: HttpResponse, code: FailureCode): void {
    res.writeHeader('Content-Type', TEXT).end(FAILURE_BODIES[code]);
  }

  private refuseAnnounce(res: HttpResponse, code: FailureCode, event: number): void {
    this.counters.announceFailed(PROTO_HTTP, event, code);
    this.refusal(res, code);
  }

  private refuseScrape(res: HttpResponse, code: FailureCode): void {
    this.counters.scrapeFailed(PROTO_HTTP, code);
    this.refusal(res, code);
  }

  /** A refusal of admission: counted toward the address's ban, told with its detail (a deleted torrent's reason, how long to wait). */
  private refusal(res: HttpResponse, code: FailureCode): void {
    this.admission.refused(code);
    res.writeHeader('Content-Type', TEXT).end(failureBody(code, this.admission.detail));
  }

  /** The client's address into `out`: the socket's, or a trusted proxy's forwarded one. */
  private clientAddress(res: HttpResponse, req: HttpRequest, out: Uint8Array, off: number): void {
    clientAddress(res, req, this.trusted, out, off);
  }

  private onAnnounce(res: HttpResponse, req: HttpRequest, keyed: boolean): void {
    const p = this.parser;
    const rec = p.rec;
    this.clientAddress(res, req, rec, AnnounceRequest.IP);
    const limited = this.admission.client(rec, AnnounceRequest.IP);
    if (limited !== null) return this.refuseAnnounce(res, limited, EVENT_NONE);
    const query = req.getQuery() ?? '';
    if (query.length > this.cfg.http.max_query_bytes) return this.refuseAnnounce(res, 'query_too_long', EVENT_NONE);
    p.dv.setUint32(AnnounceRequest.SOURCE, this.dispatch.addressTags.tag(rec, AnnounceRequest.IP), true); // before `ip=` may replace AnnounceRequest.IP
    // a request that did not parse counts under event "none": its event byte is not trustworthy
    const bad = p.parse(query);
    if (bad !== null) return this.refuseAnnounce(res, bad, EVENT_NONE);
    const err = this.admission.announce(keyed ? (req.getParameter(0) ?? null) : null, rec, p.dv);
    if (err !== null) return this.refuseAnnounce(res, err, rec[AnnounceRequest.EVENT]);

    const flags = rec[AnnounceRequest.FLAGS];
    const tag = (flags & AF_COMPACT ? TAG_COMPACT : 0) | (flags & AF_NO_PEER_ID ? TAG_NO_PEER_ID : 0) | (flags & AF_V6 ? TAG_V6 : 0);
    if (this.admission.busy()) return this.refuseAnnounce(res, 'address_busy', rec[AnnounceRequest.EVENT]);
    const slot = this.dispatch.submitAnnounce(rec, p.dv, res, tag, this.owner, this.admission.clientEntry);
    if (slot < 0) return this.refuseAnnounce(res, 'tracker_busy', rec[AnnounceRequest.EVENT]);
    res.onAborted(this.abortHandlers[slot]);
  }

  private onScrape(res: HttpResponse, req: HttpRequest, keyed: boolean): void {
    const sp = this.scrapeParser;
    this.clientAddress(res, req, this.scrapeAddr, 0);
    const limited = this.admission.client(this.scrapeAddr, 0);
    if (limited !== null) return this.refuseScrape(res, limited);
    const query = req.getQuery() ?? '';
    if (query.length > this.cfg.http.max_query_bytes) return this.refuseScrape(res, 'query_too_long');
    const err = this.admission.scrape(keyed ? (req.getParameter(0) ?? null) : null, this.scrapeAddr, 0) ?? sp.parse(query);
    if (err !== null) return this.refuseScrape(res, err);
    if (sp.count === 0) {
      if (this.fullScrapes === undefined) return this.refuseScrape(res, 'full_scrape_disabled');
      return this.fullScrape(res, req);
    }
    // Sorted, each once: the answer is a bencoded dictionary (keys sorted, each once), and
    // the shards answer in this order, so it is encoded as it comes back.
    const unique = this.sorter.sortUnique(sp.hashes, sp.count);
    const waiter: ScrapeWaiter = { res, aborted: false };
    if (this.admission.busy()) return this.refuseScrape(res, 'address_busy');
    if (this.dispatch.submitScrape(sp.hashes, unique, waiter, this.owner, this.admission.clientEntry) === null) return this.refuseScrape(res, 'tracker_busy');
    res.onAborted(() => {
      waiter.aborted = true;
    });
  }

  // ------------------------------------------------------------------ answers (Frontend)

  private corkRes: HttpResponse | undefined;
  private corkBody: Uint8Array | undefined;
  private readonly writeCorked = (): void => {
    this.corkRes!.writeHeader('Content-Type', TEXT).end(this.corkBody!);
  };

  /** A full scrape: the cached answer (gzipped when the client accepts it), built off this loop. */
  private fullScrape(res: HttpResponse, req: HttpRequest): void {
    const gzip = acceptsGzip(req.getHeader('accept-encoding'));
    const waiter: ScrapeWaiter = { res, aborted: false };
    res.onAborted(() => {
      waiter.aborted = true;
    });
    this.fullScrapes!.get((r) => {
      if (waiter.aborted) return;
      if (r === null) {
        this.counters.scrapeFailed(PROTO_HTTP, 'tracker_busy');
        return res.cork(() => this.fail(res, 'tracker_busy'));
      }
      res.cork(() => {
        res.writeHeader('Content-Type', TEXT).writeHeader('Vary', 'Accept-Encoding');
        if (gzip) res.writeHeader('Content-Encoding', 'gzip');
        res.end(gzip ? r.gzip : r.body);
      });
      this.counters.scraped(PROTO_HTTP);
    });
  }

  private send(res: HttpResponse, body: Uint8Array): void {
    this.corkRes = res;
    this.corkBody = body;
    res.cork(this.writeCorked);
    this.corkRes = undefined;
    this.corkBody = undefined;
  }

  announced(item: unknown, tag: number, slot: number, ring: ByteRing, off: number): void {
    const res = item as HttpResponse;
    const failure = announceFailure(ring, off);
    this.send(res, failure !== null ? failureBody(failure, failureDetail(ring, off)) : encodeAnnounce(this.writer, ring.u8, ring.dv, off, tag, this.iv));
    const pending = this.dispatch.pending;
    this.counters.announced(PROTO_HTTP, pending.events[slot], failure, pending.since[slot]);
  }

  scraped(job: ScrapeJob): void {
    const w = job.item as ScrapeWaiter;
    if (w.aborted) return;
    this.send(w.res, encodeScrape(this.writer, job.hashes, job.counts, job.count, this.iv.minInterval));
    this.counters.scraped(PROTO_HTTP);
  }

  lost(item: unknown, tag: number, slot: number): void {
    if (tag !== SCRAPE_TAG) {
      this.send(item as HttpResponse, FAILURE_BODIES.shard_restarted);
      return this.counters.announceFailed(PROTO_HTTP, this.dispatch.pending.events[slot], 'shard_restarted');
    }
    const w = item as ScrapeWaiter;
    if (w.aborted) return;
    this.send(w.res, FAILURE_BODIES.shard_restarted);
    this.counters.scrapeFailed(PROTO_HTTP, 'shard_restarted');
  }
}

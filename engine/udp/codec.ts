import { AF_COMPACT, AF_HAS_KEY, AF_V6, AnnounceRequest, EVENT_COMPLETED, EVENT_NONE, EVENT_STARTED, EVENT_STOPPED, KIND_ANNOUNCE } from '../../contract/requests.js';
import type { FailureCode } from '../errors.js';
import type { AnnounceOptions } from '../http/query.js';
import { isV4Mapped } from '../net/ip.js';
import { PASSKEY_RE } from '../policy/registry.js';

// BEP 15 (UDP tracker protocol) and BEP 41 (URL data options): packets in, request records
// and answer packets out. Pure: no sockets, no clocks. All integers big-endian.

export const ACTION_CONNECT = 0;
export const ACTION_ANNOUNCE = 1;
export const ACTION_SCRAPE = 2;
export const ACTION_ERROR = 3;

const PROTOCOL_ID_HI = 0x417;
const PROTOCOL_ID_LO = 0x27101980;

export const CONNECT_BYTES = 16;
export const ANNOUNCE_BYTES = 98;
export const SCRAPE_HEADER = 16;
/** BEP 15: "up to about 74 torrents can be scraped at once" (a 1500-byte packet). */
export const SCRAPE_MAX = 74;

const TWO32 = 2 ** 32;

/** What a datagram is, decided from its first 16 bytes. */
export const enum Kind {
  Drop, // too short or not ours: no answer at all
  Connect,
  Announce,
  Scrape,
  BadAction, // right shape, unknown action: error answer (once the id is checked)
}

export function classify(dv: DataView, len: number): Kind {
  if (len < 16) return Kind.Drop;
  const action = dv.getUint32(8, false);
  if (action === ACTION_CONNECT) {
    return dv.getUint32(0, false) === PROTOCOL_ID_HI && dv.getUint32(4, false) === PROTOCOL_ID_LO ? Kind.Connect : Kind.Drop;
  }
  if (action === ACTION_ANNOUNCE) return len >= ANNOUNCE_BYTES ? Kind.Announce : Kind.Drop;
  if (action === ACTION_SCRAPE) return len >= SCRAPE_HEADER + 20 ? Kind.Scrape : Kind.Drop;
  return Kind.BadAction;
}

function u64(dv: DataView, at: number): number {
  const hi = dv.getUint32(at, false);
  if (hi >= 0x200000) return -1; // ≥ 2^53
  return hi * TWO32 + dv.getUint32(at + 4, false);
}


/**
 * Parses announce packets into one reusable request record (contract/requests.ts AnnounceRequest), like the
 * HTTP parser. The caller writes the client's address into AnnounceRequest.IP first. BEP 41 URL data
 * is collected into `url` (first `urlLength` bytes) for the passkey.
 */
export class UdpAnnounceParser {
  readonly rec = new Uint8Array(AnnounceRequest.SIZE);
  readonly dv = new DataView(this.rec.buffer);
  readonly url = new Uint8Array(1024);
  urlLength = 0;

  constructor(private readonly opts: AnnounceOptions) {}

  parse(p: Uint8Array, dv: DataView, len: number): FailureCode | null {
    const rec = this.rec;
    const out = this.dv;
    rec[AnnounceRequest.KIND] = KIND_ANNOUNCE;
    rec.set(p.subarray(16, 36), AnnounceRequest.INFO_HASH);
    rec.set(p.subarray(36, 56), AnnounceRequest.PEER_ID);
    const downloaded = u64(dv, 56);
    const left = u64(dv, 64);
    const uploaded = u64(dv, 72);
    if (downloaded < 0) return 'invalid_downloaded';
    if (left < 0) return 'invalid_left';
    if (uploaded < 0) return 'invalid_uploaded';
    out.setFloat64(AnnounceRequest.DOWNLOADED, downloaded, true);
    out.setFloat64(AnnounceRequest.LEFT, left, true);
    out.setFloat64(AnnounceRequest.UPLOADED, uploaded, true);
    const event = dv.getUint32(80, false);
    if (event === 0) rec[AnnounceRequest.EVENT] = EVENT_NONE;
    else if (event === 1) rec[AnnounceRequest.EVENT] = EVENT_COMPLETED;
    else if (event === 2) rec[AnnounceRequest.EVENT] = EVENT_STARTED;
    else if (event === 3) rec[AnnounceRequest.EVENT] = EVENT_STOPPED;
    else return 'invalid_event';
    const v4 = isV4Mapped(rec, AnnounceRequest.IP);
    const ip = dv.getUint32(84, false);
    if (ip !== 0 && this.opts.allowClientIp && v4) {
      // an IPv4 client naming its IPv4 address (the field cannot carry IPv6)
      out.setUint32(AnnounceRequest.IP + 12, ip, false);
    }
    const key = dv.getUint32(88, false);
    out.setUint32(AnnounceRequest.KEY, key, true);
    const numwant = dv.getInt32(92, false);
    const want = numwant < 0 ? this.opts.numwantDefault : numwant;
    out.setUint16(AnnounceRequest.NUMWANT, want > this.opts.numwantMax ? this.opts.numwantMax : want, true);
    const port = dv.getUint16(96, false);
    if (port === 0) return 'invalid_port';
    out.setUint16(AnnounceRequest.PORT, port, true);
    // key 0 is no key (BEP 15 has no way to leave it out): it proves nothing about the client
    rec[AnnounceRequest.FLAGS] = AF_COMPACT | (key !== 0 ? AF_HAS_KEY : 0) | (v4 ? 0 : AF_V6);
    this.parseOptions(p, len);
    return null;
  }

  /**
   * BEP 41 options after byte 98: 0 ends, 1 is a no-op, 2 carries URL data (several
   * concatenate); any other type has a length byte and is skipped. A truncated option ends
   * the list. URL data beyond the buffer is cut (no passkey path is that long).
   */
  private parseOptions(p: Uint8Array, len: number): void {
    this.urlLength = 0;
    let i = ANNOUNCE_BYTES;
    while (i < len) {
      const type = p[i];
      if (type === 0) break;
      if (type === 1) {
        i++;
        continue;
      }
      if (i + 1 >= len) break;
      const n = p[i + 1];
      if (i + 2 + n > len) break;
      if (type === 2) {
        const room = Math.min(n, this.url.length - this.urlLength);
        this.url.set(p.subarray(i + 2, i + 2 + room), this.urlLength);
        this.urlLength += room;
      }
      i += 2 + n;
    }
  }

  /**
   * The passkey in the URL data (`/<passkey>/announce`, or `/<passkey>` alone), or null.
   * Only private mode calls this, so the string it builds is off the open-mode path.
   */
  passkey(): string | null {
    const u = this.url;
    const n = this.urlLength;
    if (n < 2 || u[0] !== 0x2f) return null;
    let end = 1;
    while (end < n && u[end] !== 0x2f && u[end] !== 0x3f) end++;
    const pk = Buffer.from(u.buffer, u.byteOffset + 1, end - 1).toString('latin1');
    return PASSKEY_RE.test(pk) ? pk : null;
  }
}

// ----------------------------------------------------------------------------- answers

/** Connect answer: action, transaction id; the caller writes the connection id at 8..16. */
export function writeConnect(dv: DataView, tid: number): number {
  dv.setUint32(0, ACTION_CONNECT, false);
  dv.setUint32(4, tid, false);
  return CONNECT_BYTES;
}

/** Announce answer header (BEP 15): action, transaction, interval, leechers, seeders. */
export function writeAnnounceHeader(dv: DataView, tid: number, interval: number, leechers: number, seeders: number): number {
  dv.setUint32(0, ACTION_ANNOUNCE, false);
  dv.setUint32(4, tid, false);
  dv.setUint32(8, interval, false);
  dv.setUint32(12, leechers, false);
  dv.setUint32(16, seeders, false);
  return 20;
}

/**
 * Error answer: action 3, transaction id, message. `max` bounds the whole packet: to an
 * address not proven by a connection id, never answer with more bytes than it sent.
 */
const utf8 = new TextEncoder();

export function writeError(u8: Uint8Array, dv: DataView, tid: number, message: string, max: number): number {
  if (max < 8) return 0;
  dv.setUint32(0, ACTION_ERROR, false);
  dv.setUint32(4, tid, false);
  // UTF-8 (a site's deletion reason may not be ASCII); only whole characters fit
  const room = Math.min(max - 8, u8.length - 8);
  return 8 + utf8.encodeInto(message, u8.subarray(8, 8 + room)).written;
}

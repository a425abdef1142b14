import { AF_COMPACT, AF_HAS_KEY, AF_NO_PEER_ID, AF_V6, AnnounceRequest, EVENT_COMPLETED, EVENT_NONE, EVENT_PAUSED, EVENT_STARTED, EVENT_STOPPED, KIND_ANNOUNCE } from '../../contract/requests.js';
import type { FailureCode } from '../errors.js';
import { isV4Mapped, parseIp } from '../net/ip.js';

// Announce and scrape query strings straight to bytes.
//
// uWebSockets.js hands us the raw query as a string of ASCII characters (clients
// percent-encode every non-ASCII byte). We walk it once, compare keys in place, decode
// info_hash/peer_id %XX escapes directly into the request record, and parse numbers from
// the characters: nothing is allocated per request and binary ids never become strings.

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  c |= 0x20;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

/**
 * Percent-decode s[start, end) into out[outOff...], requiring exactly `want` bytes.
 * Returns the number of bytes decoded, or -1 on a malformed escape, a non-ASCII character,
 * or more than `want` bytes.
 */
export function decodeBytes(s: string, start: number, end: number, out: Uint8Array, outOff: number, want: number): number {
  let n = 0;
  for (let i = start; i < end; i++) {
    if (n === want) return -1;
    let c = s.charCodeAt(i);
    if (c === 0x25) {
      if (i + 2 >= end) return -1;
      const hi = hexVal(s.charCodeAt(i + 1));
      const lo = hexVal(s.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return -1;
      c = (hi << 4) | lo;
      i += 2;
    } else if (c === 0x2b) {
      c = 0x20; // '+' is a space in form encoding
    } else if (c > 0x7e || c < 0x21) {
      return -1;
    }
    out[outOff + n++] = c;
  }
  return n;
}

/** Non-negative integer from s[start, end), or -1 (empty, non-digit, or beyond 2^53 − 1). */
export function parseUint(s: string, start: number, end: number): number {
  if (start >= end || end - start > 16) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v <= MAX_SAFE ? v : -1;
}

function keyIs(s: string, start: number, end: number, key: string): boolean {
  if (end - start !== key.length) return false;
  for (let i = 0; i < key.length; i++) if (s.charCodeAt(start + i) !== key.charCodeAt(i)) return false;
  return true;
}

function valueIs(s: string, start: number, end: number, v: string): boolean {
  return keyIs(s, start, end, v);
}

/** Walks the `key=value&...` pairs of a query string by position: no substrings. */
class PairScanner {
  kStart = 0;
  kEnd = 0;
  vStart = 0;
  vEnd = 0;
  private s = '';
  private i = 0;

  reset(s: string): void {
    this.s = s;
    this.i = 0;
  }

  /** Move to the next non-empty pair; a key without '=' has an empty value. */
  next(): boolean {
    const s = this.s;
    const len = s.length;
    while (this.i < len) {
      const kStart = this.i;
      let kEnd = -1;
      let i = kStart;
      while (i < len && s.charCodeAt(i) !== 0x26) {
        if (kEnd < 0 && s.charCodeAt(i) === 0x3d) kEnd = i;
        i++;
      }
      this.i = i + 1; // past '&'
      if (kEnd < 0) {
        if (i === kStart) continue; // empty pair ("&&")
        kEnd = i;
      }
      this.kStart = kStart;
      this.kEnd = kEnd;
      this.vStart = kEnd === i ? i : kEnd + 1;
      this.vEnd = i;
      return true;
    }
    return false;
  }
}

export interface AnnounceOptions {
  numwantDefault: number;
  numwantMax: number;
  allowClientIp: boolean;
}

const SEEN_INFO_HASH = 1;
const SEEN_PEER_ID = 2;
const SEEN_PORT = 4;
const SEEN_UPLOADED = 8;
const SEEN_DOWNLOADED = 16;
const SEEN_LEFT = 32;

/**
 * Parses announces into one reusable request record (contract/requests.ts AnnounceRequest). The caller writes
 * the client's address into AnnounceRequest.IP first; `ip`/`ipv4`/`ipv6` replace it only when allowed.
 */
export class AnnounceParser {
  readonly rec = new Uint8Array(AnnounceRequest.SIZE);
  readonly dv = new DataView(this.rec.buffer);
  private readonly ipScratch = new Uint8Array(16);
  private readonly pairs = new PairScanner();

  constructor(private readonly opts: AnnounceOptions) {}

  parse(s: string): FailureCode | null {
    const rec = this.rec;
    const dv = this.dv;
    rec[AnnounceRequest.KIND] = KIND_ANNOUNCE;
    rec[AnnounceRequest.EVENT] = EVENT_NONE;
    let flags = AF_COMPACT;
    let numwant = this.opts.numwantDefault;
    let key = 0;
    let seen = 0;
    const q = this.pairs;
    q.reset(s);
    while (q.next()) {
      const kStart = q.kStart;
      const kEnd = q.kEnd;
      const vStart = q.vStart;
      const vEnd = q.vEnd;
      const klen = kEnd - kStart;
      const c0 = s.charCodeAt(kStart);
      if (klen === 9 && c0 === 0x69 && keyIs(s, kStart, kEnd, 'info_hash')) {
        if (decodeBytes(s, vStart, vEnd, rec, AnnounceRequest.INFO_HASH, 20) !== 20) return 'invalid_info_hash';
        seen |= SEEN_INFO_HASH;
      } else if (klen === 7 && c0 === 0x70 && keyIs(s, kStart, kEnd, 'peer_id')) {
        if (decodeBytes(s, vStart, vEnd, rec, AnnounceRequest.PEER_ID, 20) !== 20) return 'invalid_peer_id';
        seen |= SEEN_PEER_ID;
      } else if (klen === 4 && c0 === 0x70 && keyIs(s, kStart, kEnd, 'port')) {
        const v = parseUint(s, vStart, vEnd);
        if (v < 1 || v > 65535) return 'invalid_port';
        dv.setUint16(AnnounceRequest.PORT, v, true);
        seen |= SEEN_PORT;
      } else if (klen === 8 && c0 === 0x75 && keyIs(s, kStart, kEnd, 'uploaded')) {
        const v = parseUint(s, vStart, vEnd);
        if (v < 0) return 'invalid_uploaded';
        dv.setFloat64(AnnounceRequest.UPLOADED, v, true);
        seen |= SEEN_UPLOADED;
      } else if (klen === 10 && c0 === 0x64 && keyIs(s, kStart, kEnd, 'downloaded')) {
        const v = parseUint(s, vStart, vEnd);
        if (v < 0) return 'invalid_downloaded';
        dv.setFloat64(AnnounceRequest.DOWNLOADED, v, true);
        seen |= SEEN_DOWNLOADED;
      } else if (klen === 4 && c0 === 0x6c && keyIs(s, kStart, kEnd, 'left')) {
        const v = parseUint(s, vStart, vEnd);
        if (v < 0) return 'invalid_left';
        dv.setFloat64(AnnounceRequest.LEFT, v, true);
        seen |= SEEN_LEFT;
      } else if (klen === 5 && c0 === 0x65 && keyIs(s, kStart, kEnd, 'event')) {
        if (vStart === vEnd || valueIs(s, vStart, vEnd, 'empty')) rec[AnnounceRequest.EVENT] = EVENT_NONE;
        else if (valueIs(s, vStart, vEnd, 'started')) rec[AnnounceRequest.EVENT] = EVENT_STARTED;
        else if (valueIs(s, vStart, vEnd, 'stopped')) rec[AnnounceRequest.EVENT] = EVENT_STOPPED;
        else if (valueIs(s, vStart, vEnd, 'completed')) rec[AnnounceRequest.EVENT] = EVENT_COMPLETED;
        else if (valueIs(s, vStart, vEnd, 'paused')) rec[AnnounceRequest.EVENT] = EVENT_PAUSED;
        else return 'invalid_event';
      } else if (klen === 7 && c0 === 0x6e && keyIs(s, kStart, kEnd, 'numwant')) {
        // Some clients send -1 for "the default".
        if (vEnd - vStart === 2 && s.charCodeAt(vStart) === 0x2d && s.charCodeAt(vStart + 1) === 0x31) continue;
        const v = parseUint(s, vStart, vEnd);
        if (v < 0) return 'invalid_numwant';
        numwant = v;
      } else if (klen === 7 && c0 === 0x63 && keyIs(s, kStart, kEnd, 'compact')) {
        if (valueIs(s, vStart, vEnd, '1')) flags |= AF_COMPACT;
        else if (valueIs(s, vStart, vEnd, '0')) flags &= ~AF_COMPACT;
        else return 'invalid_compact';
      } else if (klen === 10 && c0 === 0x6e && keyIs(s, kStart, kEnd, 'no_peer_id')) {
        if (!valueIs(s, vStart, vEnd, '0')) flags |= AF_NO_PEER_ID;
      } else if (klen === 3 && c0 === 0x6b && keyIs(s, kStart, kEnd, 'key')) {
        // An opaque client string: keep a 32-bit FNV-1a digest of its characters.
        let h = 0x811c9dc5;
        for (let j = vStart; j < vEnd; j++) h = Math.imul(h ^ s.charCodeAt(j), 0x01000193);
        key = h >>> 0;
        flags |= AF_HAS_KEY;
      } else if (c0 === 0x69 && (klen === 2 || klen === 4) && (keyIs(s, kStart, kEnd, 'ip') || keyIs(s, kStart, kEnd, 'ipv4') || keyIs(s, kStart, kEnd, 'ipv6'))) {
        if (this.opts.allowClientIp && vEnd > vStart) {
          if (!this.parseIpParam(s, vStart, vEnd)) return 'invalid_ip';
        }
      }
      // Anything else (trackerid, corrupt, supportcrypto, ...) is ignored.
    }
    if (!(seen & SEEN_INFO_HASH)) return 'missing_info_hash';
    if (!(seen & SEEN_PEER_ID)) return 'missing_peer_id';
    if (!(seen & SEEN_PORT)) return 'missing_port';
    if (!(seen & SEEN_UPLOADED)) return 'missing_uploaded';
    if (!(seen & SEEN_DOWNLOADED)) return 'missing_downloaded';
    if (!(seen & SEEN_LEFT)) return 'missing_left';
    if (!isV4Mapped(rec, AnnounceRequest.IP)) flags |= AF_V6;
    rec[AnnounceRequest.FLAGS] = flags;
    dv.setUint16(AnnounceRequest.NUMWANT, numwant > this.opts.numwantMax ? this.opts.numwantMax : numwant, true);
    dv.setUint32(AnnounceRequest.KEY, key, true);
    return null;
  }

  private parseIpParam(s: string, start: number, end: number): boolean {
    let text: string;
    try {
      text = decodeURIComponent(s.slice(start, end));
    } catch {
      return false;
    }
    if (!parseIp(text, this.ipScratch, 0)) return false;
    this.rec.set(this.ipScratch, AnnounceRequest.IP);
    return true;
  }
}

/**
 * Parses the info_hashes of a scrape into `hashes` (20 bytes each, in request order,
 * duplicates kept for the caller to fold). Returns the count, or a failure code.
 */
export class ScrapeParser {
  readonly hashes: Uint8Array;
  count = 0;
  private readonly pairs = new PairScanner();

  constructor(private readonly maxHashes: number) {
    this.hashes = new Uint8Array(maxHashes * 20);
  }

  parse(s: string): FailureCode | null {
    this.count = 0;
    const q = this.pairs;
    q.reset(s);
    while (q.next()) {
      if (!keyIs(s, q.kStart, q.kEnd, 'info_hash')) continue;
      if (this.count === this.maxHashes) return 'too_many_info_hashes';
      if (decodeBytes(s, q.vStart, q.vEnd, this.hashes, this.count * 20, 20) !== 20) return 'invalid_info_hash';
      this.count++;
    }
    return null;
  }
}

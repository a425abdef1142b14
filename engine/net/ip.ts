// IP addresses as 16 raw bytes.
//
// Every address in Shardtrack is 16 bytes: IPv6 as is, IPv4 as the IPv4-mapped IPv6 address
// ::ffff:a.b.c.d. One representation means one comparison, one peer-record field and one
// compact encoder per family chosen by `isV4Mapped`. Functions write into caller-provided
// buffers at an offset and never allocate on the hot path (parsing, formatting, CIDR tests).
//
// Parsing is strict on purpose: these strings come from the internet (X-Forwarded-For,
// announce `ip=`) or from an operator's config, and "mostly right" is how allow-lists leak.
// Rejected: zone ids (fe80::1%eth0), leading zeros in IPv4 octets (01.2.3.4 is octal to some
// parsers and decimal to others), IPv4 shorthands (10.1, 0x7f.1), ports, whitespace.

import { Buffer } from 'node:buffer';

const COLON = 0x3a;
const DOT = 0x2e;
const ZERO = 0x30;

/** Value of a hex digit char code, or -1. */
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20; // fold A-F to a-f
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/**
 * Dotted-quad IPv4 in text[start, end) → 4 bytes at out[o]. Exactly four decimal octets,
 * 0–255, no leading zeros, nothing else.
 */
function parseV4(text: string, start: number, end: number, out: Uint8Array, o: number): boolean {
  let i = start;
  for (let octet = 0; octet < 4; octet++) {
    if (octet > 0) {
      if (i >= end || text.charCodeAt(i) !== DOT) return false;
      i++;
    }
    const first = i;
    let value = 0;
    while (i < end) {
      const d = text.charCodeAt(i) - ZERO;
      if (d < 0 || d > 9) break;
      value = value * 10 + d;
      if (value > 255) return false;
      i++;
    }
    const digits = i - first;
    if (digits === 0 || (digits > 1 && text.charCodeAt(first) === ZERO)) return false;
    out[o + octet] = value;
  }
  return i === end;
}

/**
 * IPv6 text in text[start, end) → 16 bytes at out[off].
 *
 * Groups are written left to right as they come; when a `::` was seen, the groups after it are
 * moved to the end of the 16 bytes (copyWithin, no temporary) and the gap is zero-filled.
 */
function parseV6(text: string, start: number, end: number, out: Uint8Array, off: number): boolean {
  let i = start;
  let n = 0; // groups written
  let gap = -1; // group index where `::` stands
  if (end - start < 2) return false;
  if (text.charCodeAt(i) === COLON) {
    if (text.charCodeAt(i + 1) !== COLON) return false; // a lone leading ':'
    gap = 0;
    i += 2;
  }
  while (i < end) {
    // One group of 1–4 hex digits, or an IPv4 tail occupying the last two groups.
    let j = i;
    let value = 0;
    while (j < end) {
      const h = hexValue(text.charCodeAt(j));
      if (h < 0) break;
      value = (value << 4) | h;
      j++;
      if (j - i > 4) break; // too long for a group; only an IPv4 tail can go on (and can't: >3 digits)
    }
    if (j < end && text.charCodeAt(j) === DOT) {
      if (n > 6 || !parseV4(text, i, end, out, off + 2 * n)) return false;
      n += 2;
      break;
    }
    const digits = j - i;
    if (digits === 0 || digits > 4 || n >= 8) return false;
    out[off + 2 * n] = value >>> 8;
    out[off + 2 * n + 1] = value & 0xff;
    n++;
    if (j === end) break;
    if (text.charCodeAt(j) !== COLON) return false;
    j++;
    if (j < end && text.charCodeAt(j) === COLON) {
      if (gap >= 0) return false; // a second `::`
      gap = n;
      j++;
    } else if (j === end) {
      return false; // a trailing single ':'
    }
    i = j;
  }
  if (gap < 0) return n === 8;
  if (n > 7) return false; // `::` stands for at least one zero group
  const tail = n - gap;
  const to = off + 2 * (8 - tail);
  out.copyWithin(to, off + 2 * gap, off + 2 * n);
  out.fill(0, off + 2 * gap, to);
  return true;
}

/** Parses text[start, end). See {@link parseIp}. */
function parseRange(text: string, start: number, end: number, out: Uint8Array, off: number): boolean {
  if (end - start < 2) return false;
  if (text.charCodeAt(start) === 0x5b /* [ */) {
    if (text.charCodeAt(end - 1) !== 0x5d /* ] */) return false;
    return parseV6(text, start + 1, end - 1, out, off); // brackets are for IPv6 literals only
  }
  let colon = false;
  for (let i = start; i < end; i++) {
    if (text.charCodeAt(i) === COLON) {
      colon = true;
      break;
    }
  }
  if (colon) return parseV6(text, start, end, out, off);
  out.fill(0, off, off + 10);
  out[off + 10] = 0xff;
  out[off + 11] = 0xff;
  return parseV4(text, start, end, out, off + 12);
}

/**
 * Parses dotted IPv4 (stored as ::ffff:a.b.c.d) or IPv6 text (`::` compression, IPv4 tail,
 * optional `[...]`) into 16 bytes at out[off]. Returns false on invalid input, never throws;
 * after false the 16 bytes at out[off] are unspecified.
 */
export function parseIp(text: string, out: Uint8Array, off = 0): boolean {
  return parseRange(text, 0, text.length, out, off);
}

/** True if the 16 bytes at buf[off] are an IPv4-mapped address (::ffff:0:0/96). */
export function isV4Mapped(buf: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 10; i++) if (buf[off + i] !== 0) return false;
  return buf[off + 10] === 0xff && buf[off + 11] === 0xff;
}

/** Longest text form: 8 groups of 4 hex digits and 7 colons. */
export const MAX_IP_TEXT = 39;

const HEX = [0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66];

/**
 * Writes the text form of the 16 bytes at buf[off] as ASCII into out[outOff] and returns the
 * number of bytes written (at most {@link MAX_IP_TEXT}): a dotted quad for IPv4-mapped
 * addresses, otherwise RFC 5952 canonical IPv6 (lower case, no leading zeros, the longest run
 * of two or more zero groups — the first of equal runs — written as `::`).
 */
export function formatIp(buf: Uint8Array, off: number, out: Uint8Array, outOff: number): number {
  let o = outOff;
  if (isV4Mapped(buf, off)) {
    for (let k = 12; k < 16; k++) {
      if (k > 12) out[o++] = DOT;
      const b = buf[off + k];
      if (b >= 100) out[o++] = ZERO + ((b / 100) | 0);
      if (b >= 10) out[o++] = ZERO + (((b / 10) | 0) % 10);
      out[o++] = ZERO + (b % 10);
    }
    return o - outOff;
  }
  // Longest run of zero groups (length >= 2).
  let bestAt = -1;
  let bestLen = 1;
  for (let g = 0; g < 8; ) {
    if (buf[off + 2 * g] !== 0 || buf[off + 2 * g + 1] !== 0) {
      g++;
      continue;
    }
    let e = g + 1;
    while (e < 8 && buf[off + 2 * e] === 0 && buf[off + 2 * e + 1] === 0) e++;
    if (e - g > bestLen) {
      bestAt = g;
      bestLen = e - g;
    }
    g = e;
  }
  for (let g = 0; g < 8; g++) {
    if (g === bestAt) {
      out[o++] = COLON;
      out[o++] = COLON;
      g += bestLen - 1;
      continue;
    }
    if (g > 0 && g !== bestAt + bestLen) out[o++] = COLON;
    const v = (buf[off + 2 * g] << 8) | buf[off + 2 * g + 1];
    let started = false;
    for (let shift = 12; shift >= 0; shift -= 4) {
      const d = (v >>> shift) & 0xf;
      if (d !== 0 || started || shift === 0) {
        out[o++] = HEX[d];
        started = true;
      }
    }
  }
  return o - outOff;
}

const scratch = Buffer.alloc(MAX_IP_TEXT);

/** Text form of the 16 bytes at buf[off] as a string (for logs and tests; allocates). */
export function formatIpString(buf: Uint8Array, off = 0): string {
  const n = formatIp(buf, off, scratch, 0);
  return scratch.toString('latin1', 0, n);
}

/**
 * Normalises uWebSockets.js `res.getRemoteAddress()` (4 bytes for IPv4, 16 for IPv6, which on a
 * dual-stack socket is already v4-mapped for IPv4 clients) into 16 bytes at out[off]. Any other
 * length (uWS gives an empty buffer for some closed or non-IP sockets) becomes `::`, the
 * unspecified address, which no CIDR list short of ::/0 matches.
 */
export function fromRemoteAddress(ab: ArrayBuffer, out: Uint8Array, off = 0): void {
  const len = ab.byteLength;
  if (len === 16) {
    out.set(new Uint8Array(ab), off);
  } else if (len === 4) {
    out.fill(0, off, off + 10);
    out[off + 10] = 0xff;
    out[off + 11] = 0xff;
    out.set(new Uint8Array(ab), off + 12);
  } else {
    out.fill(0, off, off + 16);
  }
}

/**
 * A short list of addresses and networks, tested against 16-byte addresses.
 *
 * Entries are stored packed: 16 prefix bytes (host bits zero) per entry plus one prefix length
 * in bits. An IPv4 entry a.b.c.d/n is stored as ::ffff:a.b.c.d/(96+n), so it matches exactly
 * the mapped form of those IPv4 addresses and never an IPv6 address; "0.0.0.0/0" means "any
 * IPv4", "::/0" means anything. A bare address is a /32 or /128.
 *
 * Entries with host bits set ("10.0.0.1/8") are refused rather than masked: for a list of
 * trusted proxies a typo such as 192.168.1.0/16 for /24 would silently trust far too much.
 */
export class CidrList {
  readonly size: number;
  private readonly prefixes: Uint8Array;
  private readonly bits: Uint8Array;

  constructor(entries: readonly string[]) {
    this.size = entries.length;
    this.prefixes = new Uint8Array(16 * entries.length);
    this.bits = new Uint8Array(entries.length);
    entries.forEach((entry, i) => {
      const reason = parseCidr(entry, this.prefixes, 16 * i, this.bits, i);
      if (reason !== null) throw new Error(`invalid IP or CIDR "${entry}": ${reason}`);
    });
  }

  /** Why entry is not a valid IP or CIDR, or null if it is. */
  static validate(entry: string): string | null {
    return parseCidr(entry, new Uint8Array(16), 0, new Uint8Array(1), 0);
  }

  /** True if the 16-byte address at buf[off] lies in one of the entries. */
  has(buf: Uint8Array, off = 0): boolean {
    const prefixes = this.prefixes;
    const bits = this.bits;
    outer: for (let e = 0, p = 0; e < bits.length; e++, p += 16) {
      const len = bits[e];
      const whole = len >>> 3;
      for (let k = 0; k < whole; k++) if (buf[off + k] !== prefixes[p + k]) continue outer;
      const rest = len & 7;
      if (rest !== 0 && ((buf[off + whole] & (0xff00 >>> rest)) & 0xff) !== prefixes[p + whole]) continue;
      return true;
    }
    return false;
  }
}

const cidrBits = new Uint8Array(1);

/**
 * Parses "ip" or "ip/len" (the rules of {@link CidrList}) into the 16 network bytes at
 * out[off] and returns the prefix length in the 16-byte space: an IPv4 /24 is 120.
 * Throws an Error naming the problem; for configuration and admin input, not the hot path.
 */
export function parseCidrInto(entry: string, out: Uint8Array, off = 0): number {
  const reason = parseCidr(entry, out, off, cidrBits, 0);
  if (reason !== null) throw new Error(`invalid IP or CIDR "${entry}": ${reason}`);
  return cidrBits[0];
}

/** Parses "ip" or "ip/len" into prefix (16 bytes) and bits[bi]; returns a reason or null. */
function parseCidr(entry: string, prefix: Uint8Array, po: number, bits: Uint8Array, bi: number): string | null {
  const slash = entry.indexOf('/');
  const ipEnd = slash < 0 ? entry.length : slash;
  if (!parseRange(entry, 0, ipEnd, prefix, po)) return 'not an IPv4 or IPv6 address';
  const v4 = isV4Mapped(prefix, po) && entry.indexOf(':') < 0;
  const max = v4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const lenText = entry.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText)) return 'prefix length must be a decimal number';
    len = Number(lenText);
    if (len > max) return `prefix length must be 0 to ${max} for ${v4 ? 'IPv4' : 'IPv6'}`;
  }
  const total = v4 ? 96 + len : len;
  for (let b = total; b < 128; b++) {
    if ((prefix[po + (b >>> 3)] >>> (7 - (b & 7))) & 1) {
      return `host bits are set after the first ${len}; did you mean ${maskedText(prefix, po, total)}/${len}?`;
    }
  }
  bits[bi] = total;
  return null;
}

function maskedText(prefix: Uint8Array, po: number, total: number): string {
  const masked = prefix.slice(po, po + 16);
  for (let b = total; b < 128; b++) masked[b >>> 3] &= ~(0x80 >>> (b & 7));
  return formatIpString(masked);
}

/** Space or tab. */
function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * Client address from an X-Forwarded-For value ("client, proxy1, proxy2"). Each proxy appends
 * the address it received the request from, so only the right-hand part written by our own
 * trusted proxies is believable: walk from the right, skip entries that are trusted proxies,
 * and write the first untrusted one into out[off]. If every entry is a trusted proxy the
 * leftmost one is the client (as nginx's real_ip_recursive does). An invalid or empty entry
 * stops the walk and returns false: what lies left of it cannot be trusted. The caller must
 * already have checked that the socket peer itself is a trusted proxy.
 */
export function clientAddressFromForwarded(header: string, trusted: CidrList, out: Uint8Array, off = 0): boolean {
  let end = header.length;
  for (;;) {
    const comma = end > 0 ? header.lastIndexOf(',', end - 1) : -1;
    let s = comma + 1;
    let e = end;
    while (s < e && isBlank(header.charCodeAt(s))) s++;
    while (e > s && isBlank(header.charCodeAt(e - 1))) e--;
    if (!parseRange(header, s, e, out, off)) return false;
    if (comma < 0 || !trusted.has(out, off)) return true;
    end = comma;
  }
}

import { AnnounceAnswer, ENTRY_FULL, ENTRY_V4, ENTRY_V6 } from '../../contract/requests.js';
import { formatIp, MAX_IP_TEXT } from '../net/ip.js';
import { BencodeWriter, lit } from './bencode.js';

// Answers as bencode (BEP 3, 7, 23, 48), written from shard answer records into one
// reusable buffer. Dictionary keys in sorted byte order.

export const TAG_COMPACT = 1;
export const TAG_NO_PEER_ID = 2;
export const TAG_V6 = 4;

const K_COMPLETE = lit('d8:completei');
const K_DOWNLOADED = lit('e10:downloadedi');
const K_INCOMPLETE = lit('e10:incompletei');
const K_INTERVAL = lit('e8:intervali');
const K_MIN_INTERVAL = lit('e12:min intervali');
const K_PEERS = lit('e5:peers');
const K_PEERS_EMPTY = lit('e5:peers0:');
const K_PEERS6 = lit('6:peers6');
const K_IP = lit('d2:ip');
const K_PEER_ID = lit('7:peer id20:');
const K_PORT = lit('4:porti');
const END = 0x65; // 'e'
const LIST = 0x6c; // 'l'

/** Scratch for the text form of one peer address (non-compact answers). */
const ipText = new Uint8Array(MAX_IP_TEXT);

export interface Intervals {
  interval: number;
  minInterval: number;
  jitter: number;
}

/** Largest announce answer for numwant peers (non-compact IPv6 with peer ids is the widest). */
export function maxAnnounceBytes(numwant: number): number {
  const perPeer = 6 + 3 + MAX_IP_TEXT + K_PEER_ID.length + 20 + K_PORT.length + 7 + 1;
  return 256 + numwant * perPeer;
}

export function encodeAnnounce(w: BencodeWriter, a: Uint8Array, adv: DataView, off: number, tag: number, iv: Intervals): Buffer {
  const n = adv.getUint16(off + AnnounceAnswer.COUNT, true);
  w.reset()
    .raw(K_COMPLETE).digits(adv.getUint32(off + AnnounceAnswer.SEEDERS, true))
    .raw(K_DOWNLOADED).digits(adv.getUint32(off + AnnounceAnswer.COMPLETED, true))
    .raw(K_INCOMPLETE).digits(adv.getUint32(off + AnnounceAnswer.LEECHERS, true))
    .raw(K_INTERVAL).digits(iv.interval + (iv.jitter > 0 ? Math.floor(Math.random() * (iv.jitter + 1)) : 0))
    .raw(K_MIN_INTERVAL).digits(iv.minInterval);
  const peers = off + AnnounceAnswer.PEERS;
  if (tag & TAG_COMPACT) {
    if (tag & TAG_V6) {
      w.raw(K_PEERS_EMPTY).raw(K_PEERS6).bytes(a, peers, n * ENTRY_V6);
    } else {
      w.raw(K_PEERS).bytes(a, peers, n * ENTRY_V4);
    }
  } else {
    w.raw(K_PEERS).byte(LIST);
    const withId = (tag & TAG_NO_PEER_ID) === 0;
    for (let i = 0; i < n; i++) {
      const e = peers + i * ENTRY_FULL;
      w.raw(K_IP);
      // length prefix, then the address text written in place
      const textLen = formatIp(a, e, ipText, 0);
      w.strHeader(textLen).raw(ipText.subarray(0, textLen));
      if (withId) w.raw(K_PEER_ID).raw(a.subarray(e + 18, e + 38));
      w.raw(K_PORT).digits((a[e + 16] << 8) | a[e + 17]).byte(END).byte(END);
    }
    w.byte(END);
  }
  return w.byte(END).view();
}

const K_FILES = lit('d5:filesd');
const K_FILE_COMPLETE = lit('d8:completei');
const K_FLAGS = lit('5:flagsd20:min_request_intervali');

/**
 * A scrape answer (BEP 48): info_hashes at hashes[i*20] with (seeders, completed, leechers)
 * at counts[i*3...]. `order` lists the indexes to write, sorted by their hashes' bytes and
 * each once (bencode dictionary order); a number `n` means the first n, already so.
 */
export function encodeScrape(w: BencodeWriter, hashes: Uint8Array, counts: Uint32Array, order: ArrayLike<number> | number, minInterval: number): Buffer {
  w.reset().raw(K_FILES);
  const n = typeof order === 'number' ? order : order.length;
  for (let k = 0; k < n; k++) {
    const i = typeof order === 'number' ? k : order[k];
    w.bytes(hashes, i * 20, 20)
      .raw(K_FILE_COMPLETE).digits(counts[i * 3])
      .raw(K_DOWNLOADED).digits(counts[i * 3 + 1])
      .raw(K_INCOMPLETE).digits(counts[i * 3 + 2])
      .byte(END).byte(END);
  }
  return w.byte(END).raw(K_FLAGS).digits(minInterval).byte(END).byte(END).byte(END).view();
}

/** Indexes 0..count-1 sorted by the 20-byte keys they name. */
export function sortedOrder(hashes: Uint8Array, count: number): number[] {
  const order = Array.from({ length: count }, (_, i) => i);
  order.sort((x, y) => {
    for (let b = 0; b < 20; b++) {
      const d = hashes[x * 20 + b] - hashes[y * 20 + b];
      if (d !== 0) return d;
    }
    return 0;
  });
  return order;
}

/** Bytes a scrape answer of `count` files needs at most. */
export function maxScrapeBytes(count: number): number {
  return 128 + count * (3 + 20 + 2 * K_FILE_COMPLETE.length + 3 * 16 + 30);
}

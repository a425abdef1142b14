#!/usr/bin/env node
// Deterministic, realistic HTTP announce workload for the benchmarks.
//
//   import { createPool, getPaths } from './pool.mjs'
//   const paths = getPaths(100_000)              // 100k announces, each from a random peer
//
//   node bench/pool.mjs --paths /tmp/paths.txt --whitelist /tmp/whitelist.txt
//       [--count 200000] [--seed shardtrack] [--torrents 10000] [--peers 200000]
//       [--skew 1] [--seeders 0.3] [--numwant 50] [--all] [--started]
//
// The pool: `torrents` random 20-byte info_hashes; `peers` peer identities, each a random
// peer_id behind a real client prefix (`-qB4630-` + 12 random bytes), a listen port and the
// torrent it is in (torrent popularity is Zipf(skew): skew 1 puts ~10% of peers in the top
// torrent, skew 0 spreads peers uniformly); ~30% of peers are seeders (left=0), the others
// have downloaded part of the torrent. Every byte of info_hash/peer_id is percent-encoded as
// %XX except the unreserved ASCII [A-Za-z0-9.-_~], as real clients do.
//
// Everything comes from one seeded PRNG: the same options always give the same bytes.

import { writeFileSync, createWriteStream } from 'node:fs'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { parseArgs } from './lib/gen.mjs'

export const DEFAULTS = Object.freeze({
  seed: 'shardtrack',
  torrents: 10_000,
  peers: 200_000,
  skew: 1, // Zipf exponent of torrent popularity; 0 = uniform random; -1 = round robin (peer i → torrent i mod T)
  seeders: 0.3,
  numwant: 50,
  compact: 1,
  prefix: '/announce',
})

const CLIENTS = ['-qB4630-', '-qB4520-', '-TR4050-', '-TR3000-', '-DE2110-', '-lt0D80-', '-UT3550-', '-BC0203-']
const CLIENT_WEIGHTS = [0.35, 0.1, 0.2, 0.05, 0.1, 0.1, 0.05, 0.05]

// ---- PRNG: sfc32 seeded through a string hash (cyrb128). Fast, 32-bit, deterministic. ----
function cyrb128(str) {
  let h1 = 1779033703, h2 = 3144134277, h3 = 1013904242, h4 = 2773480762
  for (let i = 0; i < str.length; i++) {
    const k = str.charCodeAt(i)
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067)
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233)
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213)
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179)
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067)
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233)
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213)
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179)
  return [(h1 ^ h2 ^ h3 ^ h4) >>> 0, (h2 ^ h1) >>> 0, (h3 ^ h1) >>> 0, (h4 ^ h1) >>> 0]
}

/** Seeded PRNG: `rng()` → uint32, `rng.float()` → [0,1), `rng.int(n)` → [0,n). */
export function makeRng(seed) {
  let [a, b, c, d] = cyrb128(String(seed))
  const next = () => {
    a |= 0; b |= 0; c |= 0; d |= 0
    const t = (((a + b) | 0) + d) | 0
    d = (d + 1) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) | 0
    return t >>> 0
  }
  for (let i = 0; i < 16; i++) next()
  next.float = () => next() / 4294967296
  next.int = (n) => Math.floor((next() / 4294967296) * n)
  next.bytes = (buf, off, len) => {
    for (let i = 0; i < len; i += 4) {
      const r = next()
      for (let j = 0; j < 4 && i + j < len; j++) buf[off + i + j] = (r >>> (8 * j)) & 0xff
    }
  }
  return next
}

// ---- percent-encoding: every byte as %XX except unreserved ASCII ----
const ENC = new Array(256)
for (let b = 0; b < 256; b++) {
  const c = String.fromCharCode(b)
  ENC[b] = /[A-Za-z0-9.\-_~]/.test(c) ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0')
}
/** Percent-encode raw bytes the way BitTorrent clients do. */
export function urlEncodeBytes(buf, off = 0, len = buf.length - off) {
  let s = ''
  for (let i = off; i < off + len; i++) s += ENC[buf[i]]
  return s
}

/**
 * Build the pool of torrents and peer identities.
 * @returns {{opts, torrents: number, peers: number, infoHashes: Buffer, peerIds: Buffer,
 *   peerTorrent: Int32Array, peerPort: Uint16Array, path: (i: number, extra?: {event?: string, numwant?: number}) => string,
 *   infoHashHex: (t: number) => string, randomPeer: () => number, swarmSizes: () => Int32Array, rng}}
 */
export function createPool(options = {}) {
  const o = { ...DEFAULTS, ...options }
  const T = o.torrents, P = o.peers
  const rng = makeRng(`${o.seed}/${T}/${P}/${o.skew}`)

  const infoHashes = Buffer.alloc(20 * T)
  rng.bytes(infoHashes, 0, infoHashes.length)
  const encHash = new Array(T)
  const torrentSize = new Float64Array(T)
  for (let t = 0; t < T; t++) {
    encHash[t] = urlEncodeBytes(infoHashes, 20 * t, 20)
    // log-uniform 50 MiB … 50 GiB
    torrentSize[t] = Math.floor(50 * 2 ** 20 * Math.pow(1024, rng.float()))
  }

  // torrent popularity: Zipf(skew) through an inverse CDF (binary search)
  let pickTorrent
  if (o.skew < 0) {
    pickTorrent = (i) => i % T
  } else if (o.skew === 0) {
    pickTorrent = () => rng.int(T)
  } else {
    const cdf = new Float64Array(T)
    let acc = 0
    for (let k = 0; k < T; k++) cdf[k] = acc += 1 / Math.pow(k + 1, o.skew)
    // spread the popular torrents over random hashes (rank k → torrent perm[k])
    const perm = Int32Array.from({ length: T }, (_, k) => k)
    for (let k = T - 1; k > 0; k--) { const j = rng.int(k + 1); [perm[k], perm[j]] = [perm[j], perm[k]] }
    pickTorrent = () => {
      const x = rng.float() * acc
      let lo = 0, hi = T - 1
      while (lo < hi) { const mid = (lo + hi) >> 1; if (cdf[mid] < x) lo = mid + 1; else hi = mid }
      return perm[lo]
    }
  }

  const peerIds = Buffer.alloc(20 * P)
  const peerTorrent = new Int32Array(P)
  const peerPort = new Uint16Array(P)
  const enc = new Array(P) // encoded "info_hash=…&peer_id=…&port=…"
  const peerUploaded = new Float64Array(P), peerDownloaded = new Float64Array(P), peerLeft = new Float64Array(P)
  const clientCdf = []
  CLIENT_WEIGHTS.reduce((a, w, i) => (clientCdf[i] = a + w), 0)
  let seeders = 0
  for (let i = 0; i < P; i++) {
    const x = rng.float() * clientCdf[clientCdf.length - 1]
    let c = 0
    while (clientCdf[c] < x) c++
    peerIds.write(CLIENTS[c], 20 * i, 'latin1')
    rng.bytes(peerIds, 20 * i + 8, 12)
    const t = pickTorrent(i)
    peerTorrent[i] = t
    // round robin layout: ports unique within a torrent (trackers that key peers by ip:port,
    // like opentracker, then count every identity); otherwise a random non-privileged port
    peerPort[i] = o.skew < 0 ? 1024 + ((i / T) | 0) % 64000 : 1024 + rng.int(65536 - 1024)
    const size = torrentSize[t]
    let left, downloaded, uploaded
    if (rng.float() < o.seeders) {
      seeders++
      left = 0
      downloaded = rng.float() < 0.5 ? 0 : size // seeded from the start, or finished downloading
      uploaded = Math.floor(size * 3 * rng.float())
    } else {
      left = 1 + Math.floor((size - 1) * rng.float())
      downloaded = size - left
      uploaded = Math.floor(downloaded * rng.float())
    }
    enc[i] = `info_hash=${encHash[t]}&peer_id=${urlEncodeBytes(peerIds, 20 * i, 20)}&port=${peerPort[i]}`
    peerUploaded[i] = uploaded
    peerDownloaded[i] = downloaded
    peerLeft[i] = left
  }

  const tail = `&compact=${o.compact}&numwant=${o.numwant}`
  const head = `${o.prefix}?`
  const counters = (i) => `&uploaded=${peerUploaded[i]}&downloaded=${peerDownloaded[i]}&left=${peerLeft[i]}`
  return {
    opts: o,
    torrents: T,
    peers: P,
    seeders,
    infoHashes,
    peerIds,
    peerTorrent,
    peerPort,
    /** the torrent's size, and each peer's uploaded / downloaded / left as its announces report them */
    torrentSize,
    peerUploaded,
    peerDownloaded,
    peerLeft,
    /** "/announce?info_hash=…&peer_id=…&port=…" of peer i: its announce without the counters and options */
    announceHead: (i) => head + enc[i],
    rng,
    /** Announce path of peer i. extra.event adds `&event=…`; extra.numwant overrides numwant. */
    path(i, extra) {
      if (!extra) return head + enc[i] + counters(i) + tail
      const nw = extra.numwant ?? o.numwant
      return head + enc[i] + counters(i) + `&compact=${o.compact}&numwant=${nw}` + (extra.event ? `&event=${extra.event}` : '')
    },
    infoHashHex: (t) => infoHashes.toString('hex', 20 * t, 20 * t + 20),
    randomPeer: () => rng.int(P),
    swarmSizes() {
      const s = new Int32Array(T)
      for (let i = 0; i < P; i++) s[peerTorrent[i]]++
      return s
    },
  }
}

/**
 * n announce paths, each from a peer identity picked uniformly at random (so a torrent is
 * picked in proportion to its swarm size). With `started: true` the first announce of each
 * peer in the sequence carries event=started. `all: true` returns every peer exactly once,
 * in a random order (n is ignored), e.g. to prefill a tracker.
 */
export function getPaths(n, options = {}) {
  const pool = options.pool ?? createPool(options)
  const rng = makeRng(`${pool.opts.seed}/paths/${n}/${options.all ? 'all' : 'random'}`)
  const out = []
  if (options.all) {
    const order = Int32Array.from({ length: pool.peers }, (_, k) => k)
    for (let k = order.length - 1; k > 0; k--) { const j = rng.int(k + 1); const t = order[k]; order[k] = order[j]; order[j] = t }
    for (const i of order) out.push(options.started ? pool.path(i, { event: 'started' }) : pool.path(i))
    return out
  }
  const seen = options.started ? new Uint8Array(pool.peers) : null
  for (const i of randomPeers(n, pool)) {
    if (seen && !seen[i]) { seen[i] = 1; out.push(pool.path(i, { event: 'started' })) } else out.push(pool.path(i))
  }
  return out
}

/** The pool the command-line options describe (--seed --torrents --peers --skew --seeders --numwant). */
export function poolFromArgs(a) {
  const num = (v, d) => (v === undefined ? d : Number(v))
  return createPool({
    seed: a.seed ?? DEFAULTS.seed,
    torrents: num(a.torrents, DEFAULTS.torrents),
    peers: num(a.peers, DEFAULTS.peers),
    skew: num(a.skew, DEFAULTS.skew),
    seeders: num(a.seeders, DEFAULTS.seeders),
    numwant: num(a.numwant, DEFAULTS.numwant),
  })
}

/** The peers of getPaths(n) (without `all`): n peer indexes drawn uniformly at random. */
export function randomPeers(n, pool) {
  const rng = makeRng(`${pool.opts.seed}/paths/${n}/random`)
  const out = new Int32Array(n)
  for (let k = 0; k < n; k++) out[k] = rng.int(pool.peers)
  return out
}

/** Whitelist text for opentracker: every info_hash in lowercase hex, one a line. */
export function whitelistText(pool) {
  let s = ''
  for (let t = 0; t < pool.torrents; t++) s += pool.infoHashHex(t) + '\n'
  return s
}

// ---- CLI ----

async function main() {
  const a = parseArgs(process.argv.slice(2), ['all', 'started', 'stats', 'help'])
  if (a.help || (!a.paths && !a.whitelist && !a.stats)) {
    process.stderr.write('usage: node bench/pool.mjs [--paths FILE] [--whitelist FILE] [--stats] [--count N] [--all] [--started]\n' +
      '       [--seed S] [--torrents N] [--peers N] [--skew X] [--seeders F] [--numwant N]\n')
    process.exit(a.help ? 0 : 2)
  }
  const num = (v, d) => (v === undefined ? d : Number(v))
  const t0 = Date.now()
  const pool = poolFromArgs(a)
  if (a.whitelist) writeFileSync(a.whitelist, whitelistText(pool))
  if (a.paths) {
    const paths = getPaths(num(a.count, pool.peers), { pool, all: !!a.all, started: !!a.started })
    const ws = createWriteStream(a.paths)
    const CHUNK = 4096
    for (let k = 0; k < paths.length; k += CHUNK) {
      if (!ws.write(paths.slice(k, k + CHUNK).join('\n') + '\n')) await once(ws, 'drain')
    }
    ws.end()
    await once(ws, 'finish')
  }
  const sizes = Array.from(pool.swarmSizes()).sort((x, y) => y - x)
  process.stderr.write(`pool: ${pool.torrents} torrents, ${pool.peers} peers (${pool.seeders} seeders), ` +
    `swarm sizes max ${sizes[0]} / p50 ${sizes[sizes.length >> 1]} / min ${sizes[sizes.length - 1]}, ` +
    `built in ${Date.now() - t0} ms\n`)
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e) => { console.error(e); process.exit(1) })
}

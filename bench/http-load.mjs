#!/usr/bin/env node
// HTTP tracker load generator (keep-alive, driven by autocannon) for bench/suite.mjs.
//
//   node bench/http-load.mjs --url http://127.0.0.1:8080 [--mode announce|scrape|mixed]
//       [--duration 10] [--warmup 2] [--connections 100] [--passkeys FILE] [--validate-every 1000]
//       [--count 200000] [--state FILE] [pool options: --seed --torrents --peers --skew --seeders --numwant]
//   node bench/http-load.mjs --url … --prefill [--close] [--passkeys FILE] [--time-limit 180]
//
// Workload: the pool of bench/pool.mjs (10,000 torrents with Zipf(1) popularity, so a few
// huge swarms and a long tail, 200,000 peer identities, ~30% seeders).
//   announce  each request an announce of a peer picked at random (`count` prebuilt requests,
//             rotated), numwant 50, compact
//   scrape    each request a scrape of one info_hash (the torrent of a random peer: popular
//             torrents are scraped more), as a client scrapes the torrent it has
//   mixed     what a tracker sees: 1 scrape for every 10 announces; every peer lives a
//             lifecycle: `started` (counters from 0), regular announces whose uploaded and
//             downloaded grow at the peer's own rate (0.2–5 MB/s) for the time since its last
//             announce, `completed` when left reaches 0, then seeding, and `stopped` on 2% of
//             announces (its next announce starts a new session). The event mix comes out at
//             about 2% started, 2% stopped, a few tenths of a % completed, the rest regular announces.
//             --state FILE keeps every peer's session (counters, stopped or not) from one run to
//             the next (the suite's rounds): without it each run starts where the prefill left them.
// --passkeys FILE: private mode: peer i belongs to passkey i mod (number of lines), and
// every path starts with /<passkey>.
// --prefill: every peer once (event=started, numwant 0) through a pipelining loader, so the
// measured runs see full swarms; with --close one request per connection (opentracker).
//
// Requests are handed to autocannon through its `setupClient` hook (getRequestBuffer: the
// next prebuilt Buffer, or in mixed mode one built from the peer's state), which costs far
// less than its per-request `setupRequest` path. Answers are checked: a few before the run
// (bencoded dict, no failure reason, `peers` or `files`), then every --validate-every-th
// one textually. Output: the MEASURE/PROGRESS/RESULT lines of bench/lib/gen.mjs.

import autocannon from 'autocannon'
import bencode from 'bencode'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { poolFromArgs, randomPeers, makeRng, urlEncodeBytes } from './pool.mjs'
import { pipelinedLoad } from './lib/http-pipeline.mjs'
import { measuredWindow, printResult, parseArgs } from './lib/gen.mjs'

const a = parseArgs(process.argv.slice(2), ['prefill', 'close', 'help'])
if (Array.isArray(a.url)) a.url = a.url.at(-1)
if (a.help || !a.url) {
  process.stderr.write(readFileSync(new URL(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).join('\n') + '\n')
  process.exit(a.help ? 0 : 2)
}
const num = (v, d) => (v === undefined ? d : Number(v))
const url = new URL(a.url)
const MODE = a.mode ?? 'announce'
if (!['announce', 'scrape', 'mixed'].includes(MODE)) { process.stderr.write(`http-load: unknown --mode ${MODE}\n`); process.exit(2) }
const DURATION = num(a.duration, 10)
const WARMUP = num(a.warmup, 2)
const CONNECTIONS = num(a.connections, 100)
const VALIDATE_EVERY = num(a['validate-every'], 1000)
const log = (s) => process.stderr.write(s + '\n')

const pool = poolFromArgs(a)
const passkeys = a.passkeys ? readFileSync(a.passkeys, 'latin1').split('\n').filter(Boolean) : null
/** The path prefix of peer i: '' in open mode, '/<passkey>' in private mode. */
const prefixOf = (i) => (passkeys ? '/' + passkeys[i % passkeys.length] : '')
const basePath = url.pathname.replace(/\/$/, '') // a tracker mounted under a path (remote targets)
const rng = makeRng(`${pool.opts.seed}/http-load/${MODE}`)

// ---------------------------------------------------------------------------- prefill
if (a.prefill) {
  let bad = 0, first = null
  const r = await pipelinedLoad({
    host: url.hostname,
    port: Number(url.port || 80),
    total: pool.peers,
    path: (k) => basePath + prefixOf(k) + pool.path(k, { event: 'started', numwant: 0 }),
    connections: 128,
    depth: 16,
    close: !!a.close,
    deadlineMs: num(a['time-limit'], 180) * 1000,
    onAnswer(k, st, body) {
      // (non-200 answers are counted by the loader as failed)
      if (st === 200 && (body[0] !== 0x64 || body.includes('failure reason'))) { bad++; first ??= body.toString('latin1', 0, 120) }
      else if (st !== 200) first ??= `HTTP ${st}`
    },
  })
  log(`prefill ${url.origin}: ${r.done}/${pool.peers} peers announced in ${r.seconds.toFixed(1)} s ` +
    `(${Math.round(r.done / r.seconds)}/s), ${bad + r.failed} failed${r.timedOut ? ', TIME LIMIT REACHED' : ''}`)
  if (first) log(`prefill: first failure: ${first}`)
  process.exit(bad + r.failed === 0 && r.done === pool.peers && !r.timedOut ? 0 : 1)
}

// ---------------------------------------------------------------------------- requests
const host = url.host
const request = (path) => Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`, 'latin1')
const scrapePaths = new Map()
/** Scrape path of torrent t as peer i's client sends it. */
const scrapePath = (t, i) => {
  const key = passkeys ? t * passkeys.length + (i % passkeys.length) : t
  let p = scrapePaths.get(key)
  if (p === undefined) scrapePaths.set(key, (p = `${basePath}${prefixOf(i)}/scrape?info_hash=${urlEncodeBytes(pool.infoHashes, 20 * t, 20)}`))
  return p
}

let nextBuffer
let saveState = () => {}
let preflight // paths fetched and fully checked before the run
if (MODE === 'announce' || MODE === 'scrape') {
  const n = num(a.count, pool.peers)
  let bufs
  if (MODE === 'announce') {
    // the peers of getPaths(n): the same sequence as the UDP generator's and earlier runs'
    const paths = Array.from(randomPeers(n, pool), (i) => basePath + prefixOf(i) + pool.path(i))
    bufs = paths.map(request)
    preflight = [0, 1, 2, 3].map((k) => paths[Math.floor((k * n) / 4)])
  } else {
    bufs = []
    for (let k = 0; k < n; k++) { const i = rng.int(pool.peers); bufs.push(request(scrapePath(pool.peerTorrent[i], i))) }
    preflight = [0, 1, 2, 3].map((k) => scrapePath(pool.peerTorrent[k], k))
  }
  let next = 0
  nextBuffer = () => {
    const b = bufs[next]
    if (++next === bufs.length) next = 0
    return b
  }
} else {
  // mixed: per-peer session state in typed arrays (no objects per peer), starting where the
  // prefill left every peer (in its swarm, the pool's counters), or where --state FILE says the
  // last run left them: each round is a new process, and a peer's counters must never go back
  // nor a stopped peer come back without `started`.
  const P = pool.peers
  const head = Array.from({ length: P }, (_, i) => basePath + prefixOf(i) + pool.announceHead(i))
  const up = Float64Array.from(pool.peerUploaded), down = Float64Array.from(pool.peerDownloaded), left = Float64Array.from(pool.peerLeft)
  const last = new Float64Array(P).fill(Date.now()) // wall clock: the state outlives the process
  const active = new Float64Array(P).fill(1) // prefilled: every peer is in its swarm
  const state = [up, down, left, last, active]
  if (a.state && existsSync(a.state)) {
    const b = readFileSync(a.state)
    if (b.length === state.length * 8 * P) state.forEach((arr, k) => arr.set(new Float64Array(b.buffer.slice(b.byteOffset + k * 8 * P, b.byteOffset + (k + 1) * 8 * P))))
    else log(`http-load: ${a.state} is not the state of this pool: starting from the prefill's`)
  }
  saveState = () => { if (a.state) writeFileSync(a.state, Buffer.concat(state.map((arr) => Buffer.from(arr.buffer)))) }
  const rate = new Float32Array(P)
  for (let i = 0; i < P; i++) rate[i] = 200_000 * Math.pow(25, rng.float()) // 0.2 … 5 MB/s, log-uniform
  const size = (i) => pool.torrentSize[pool.peerTorrent[i]]
  const tail = `&compact=${pool.opts.compact}&numwant=${pool.opts.numwant}`
  const events = { started: 0, completed: 0, stopped: 0, none: 0, scrape: 0 }
  a.events = events
  nextBuffer = () => {
    const i = rng.int(P)
    if (rng.int(11) === 0) { events.scrape++; return request(scrapePath(pool.peerTorrent[i], i)) }
    const now = Date.now()
    let ev = ''
    if (!active[i]) {
      // a new session: counters from 0; a leecher starts the torrent over, a seeder seeds on
      active[i] = 1
      up[i] = 0; down[i] = 0
      if (left[i] > 0 || rng.float() < 0.5) left[i] = size(i)
      ev = '&event=started'; events.started++
    } else {
      const bytes = rate[i] * (Math.max(0, now - last[i]) / 1000)
      if (left[i] > 0) {
        const d = Math.min(left[i], bytes)
        down[i] += d; left[i] -= d; up[i] += d * 0.3
        if (left[i] < 1) { left[i] = 0; ev = '&event=completed'; events.completed++ }
      } else {
        up[i] += bytes * 0.5
      }
      if (ev === '' && rng.int(50) === 0) { active[i] = 0; ev = '&event=stopped'; events.stopped++ }
      if (ev === '') events.none++
    }
    last[i] = now
    return request(`${head[i]}&uploaded=${Math.floor(up[i])}&downloaded=${Math.floor(down[i])}&left=${Math.ceil(left[i])}${tail}${ev}`)
  }
  // (a first announce of a stopped peer would be answered without it in the swarm: check active ones)
  const probe = []
  for (let i = 0; probe.length < 2 && i < P; i++) if (active[i]) probe.push(i)
  preflight = probe.map((i) => `${head[i]}&uploaded=${Math.floor(up[i])}&downloaded=${Math.floor(down[i])}&left=${Math.ceil(left[i])}${tail}`)
    .concat([scrapePath(pool.peerTorrent[2], 2)])
}
// ---------------------------------------------------------------------------- checks
function get(path) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: url.hostname, port: url.port, path, agent: false, timeout: 5000 }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
  })
}
/** Full check of one answer; an error string or null. */
function checkAnswer(status, body) {
  if (status !== 200) return `HTTP ${status}`
  let d
  try { d = bencode.decode(body) } catch (e) { return `not bencode: ${e.message}: ${body.toString('latin1', 0, 80)}` }
  if (!d || typeof d !== 'object' || Array.isArray(d) || ArrayBuffer.isView(d)) return 'not a dict'
  if (d['failure reason']) return `failure reason: ${Buffer.from(d['failure reason']).toString()}`
  if (!('peers' in d) && !('peers6' in d) && !('files' in d)) return `neither peers nor files (keys: ${Object.keys(d).join(',')})`
  return null
}
for (const p of preflight) {
  let r
  try { r = await get(p) } catch (e) { log(`http-load preflight: ${url.origin}${p.slice(0, 60)}…: ${e.message}`); process.exit(1) }
  const err = checkAnswer(r.status, r.body)
  if (err) { log(`http-load preflight: bad answer from ${url.origin}${p.slice(0, 40)}…: ${err}`); process.exit(1) }
}

let answers = 0, checked = 0, bad = 0, firstBad = null
function onResponse(status, body) {
  if (++answers % VALIDATE_EVERY !== 0) return
  checked++
  // autocannon hands the body over as a (UTF-8 decoded) string: check it textually
  if (status !== 200 || body[0] !== 'd' || body.includes('14:failure reason') || !(body.includes('5:peers') || body.includes('5:files'))) {
    bad++
    firstBad ??= `${status} ${String(body).slice(0, 100)}`
  }
}
// several identical entries so autocannon resets its (cloned) context every 64 requests, not every one
const requests = Array.from({ length: 64 }, () => ({ path: preflight[0], onResponse }))
const base = { url: url.origin, connections: CONNECTIONS, pipelining: 1, requests, timeout: 10, setupClient: (c) => { c.getRequestBuffer = nextBuffer } }

// ---------------------------------------------------------------------------- run
if (WARMUP > 0) await autocannon({ ...base, duration: WARMUP })
answers = 0
if (a.events) for (const k in a.events) a.events[k] = 0
let r
const w = await measuredWindow(DURATION, () => answers, () => { r = autocannon({ ...base, duration: DURATION }) })
const inWindow = answers // (autocannon may take a moment longer to stop)
r = await r
saveState()
const out = {
  mode: MODE, url: url.origin, connections: CONNECTIONS, private: !!passkeys,
  requests: inWindow, seconds: w.wall, rps: inWindow / w.wall,
  // autocannon's histogram counts whole milliseconds
  p50_ms: r.latency.p50, p99_ms: r.latency.p99, p999_ms: r.latency.p99_9, max_ms: r.latency.max, latency_resolution_ms: 1,
  errors: r.errors + r.non2xx, non2xx: r.non2xx, timeouts: r.timeouts, // (autocannon's errors include its timeouts)
  checked, bad, first_bad: firstBad, gen_cpu_pct: w.gen_cpu_pct,
  ...(a.events && { events: a.events }),
}
printResult(out)
if (firstBad) log(`http-load: first bad answer: ${firstBad}`)
if (out.requests < 10 * DURATION) { log(`http-load: almost no answers (${out.requests})`); process.exit(1) }
process.exit(bad > 0 ? 1 : 0)

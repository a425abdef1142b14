#!/usr/bin/env node
// UDP announce load generator (BEP 15, optional BEP 41 URL data) for the benchmarks.
//
//   node bench/udp-load.mjs --port 6969 [--host 127.0.0.1|::1] [--duration 10] [--warmup 2]
//       [--window 512] [--sockets 4] [--timeout 1000] [--passkey PK] [--numwant 50] [--count 200000]
//       [--reconnect 60] [--started] [--server-pid PID] [--json] [--quiet]
//       [--seed S] [--torrents N] [--peers N] [--skew X] [--seeders F]
//   node bench/udp-load.mjs --port 6969 --probe 8 [--wait 20]   send 8 announces, exit 0 if all 8 were
//                                                       answered (--wait: retry until then; a readiness check)
//   node bench/udp-load.mjs --port 6969 --prefill        every pool peer once (event=started, numwant 0)
//   node bench/udp-load.mjs --port 6969 --scrape         scrapes instead of announces (one info_hash each:
//                                                       the torrent of the request's peer)
//
// Workload: the pool of bench/pool.mjs (10,000 torrents, 200,000 peer identities, ~30% seeders)
// and the same sequence of peers as the HTTP paths file (`pool.mjs --paths`, i.e. getPaths(count)):
// each request is an announce from a peer picked uniformly at random, with that peer's
// info_hash, peer_id, port, uploaded/downloaded/left, a per-peer key and num_want 50. All
// `count` packets (98 bytes, +2+N with --passkey: BEP 41 option 2 carrying "/<passkey>/announce")
// are built before the run into one buffer; the hot loop only writes the connection id and
// the transaction id into a packet and hands it to dgram.
//
// Protocol: every socket is connected (connect(2)) to the target and first does the BEP 15
// connect exchange. Its connection id is refreshed every --reconnect seconds (the old id stays
// in use until the new one arrives). When the server refuses the id (an error answer that
// mentions "connect"), or when a socket gets no answer at all for 3 × timeout, the socket
// stops sending and connects again first.
//
// Window: --window requests are outstanding at all times (closed loop, spread evenly over
// --sockets sockets). Each window slot owns a transaction id (slot in the low 12 bits, a
// sequence number above), so an answer finds its request in O(1). A request not answered within
// --timeout ms is counted as lost and the slot moves on to the next request: there are no
// retransmissions. An answer that arrives after its timeout is counted as "late" (not as an
// announce). Loss = lost / (answers + lost).
//
// Validation of every answer: action 1 with the request's transaction id and length 20 + 6n
// (18n over IPv6) with n ≤ num_want is an announce; action 3 is an error (counted separately,
// the first messages are kept as samples); anything else is a bad answer.
//
// Output: one human line and `RESULT {...}` (--json only prints the latter on stdout, with the
// MEASURE and PROGRESS lines of bench/lib/gen.mjs): announces/s, p50/p99/p99.9 latency, loss, errors, this process's CPU use (process.cpuUsage over the
// measured wall time; ≥ 90% means the generator, not the server, is probably the limit), and
// with --server-pid the server's CPU (all threads, from /proc) over the same window. Socket
// receive-buffer drops (/proc/net/udp{,6}) are reported for the generator's sockets and the
// server's port.

import dgram from 'node:dgram'
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { poolFromArgs, randomPeers, DEFAULTS } from './pool.mjs'
import { processCpu, coreTimes, coreDelta } from './lib/proc.mjs'
import { printResult, parseArgs } from './lib/gen.mjs'

// ---------------------------------------------------------------------------- options
const a = parseArgs(process.argv.slice(2), ['json', 'prefill', 'started', 'quiet', 'scrape', 'help'])
if (a.help || a.port === undefined) {
  process.stderr.write('usage: node bench/udp-load.mjs --port PORT [--host 127.0.0.1|::1] [--duration S] [--warmup S] [--window N]\n' +
    '       [--sockets N] [--timeout MS] [--passkey PK] [--numwant N] [--count N] [--reconnect S] [--started]\n' +
    '       [--server-pid PID] [--json] [--quiet] [--probe N [--wait S] | --prefill [--time-limit S]] [pool options]\n')
  process.exit(a.help ? 0 : 2)
}
const num = (v, d) => (v === undefined ? d : Number(v))
const HOST = a.host ?? '127.0.0.1'
const PORT = num(a.port)
const V6 = HOST.includes(':')
const ENTRY = V6 ? 18 : 6
const DURATION = num(a.duration, 10)
const WARMUP = num(a.warmup, 2)
const PROBE = num(a.probe, 0)
const PREFILL = !!a.prefill
const WAIT = num(a.wait, 0) // --probe: keep trying for this many seconds
const TIMEOUT = num(a.timeout, 1000) // ms
const RECONNECT = num(a.reconnect, 60) * 1000
let SOCKETS = num(a.sockets, 4)
const NUMWANT = PREFILL ? 0 : num(a.numwant, DEFAULTS.numwant)
const SERVER_PID = a['server-pid']
const QUIET = !!a.quiet
const JSON_ONLY = !!a.json
const SCRAPE = !!a.scrape && !PREFILL
const SLOT_BITS = 12
let WINDOW = num(a.window, PREFILL ? 256 : 512)
if (PROBE) WINDOW = Math.min(WINDOW, PROBE)
if (PROBE) SOCKETS = Math.min(SOCKETS, WINDOW)
for (const [k, v, lo, hi] of [['port', PORT, 1, 65535], ['window', WINDOW, 1, 1 << SLOT_BITS], ['sockets', SOCKETS, 1, 64],
  ['timeout', TIMEOUT, 10, 60000], ['numwant', NUMWANT, 0, 1000]]) {
  if (!Number.isInteger(v) || v < lo || v > hi) { process.stderr.write(`udp-load: --${k} must be an integer from ${lo} to ${hi}\n`); process.exit(2) }
}
if (SOCKETS > WINDOW) { process.stderr.write('udp-load: --sockets must not exceed --window\n'); process.exit(2) }
const info = (s) => { if (!QUIET) process.stderr.write(s + '\n') }

// ---------------------------------------------------------------------------- packets
const t0 = performance.now()
const pool = poolFromArgs(a)
const COUNT = PREFILL ? pool.peers : num(a.count, pool.peers)
// the peer sequence: as getPaths(COUNT) (random peers), or every peer once in pool order (prefill)
const order = new Int32Array(COUNT)
const events = new Uint8Array(COUNT) // BEP 15: 0 none, 1 completed, 2 started, 3 stopped
if (PREFILL) {
  for (let k = 0; k < COUNT; k++) { order[k] = k; events[k] = 2 }
} else {
  const seen = a.started ? new Uint8Array(pool.peers) : null
  order.set(randomPeers(COUNT, pool))
  for (let k = 0; k < COUNT; k++) {
    const i = order[k]
    if (seen && !seen[i]) { seen[i] = 1; events[k] = 2 }
  }
}
const URL_DATA = a.passkey ? Buffer.from(`/${a.passkey}/announce`, 'latin1') : null
if (URL_DATA && URL_DATA.length > 255) { process.stderr.write('udp-load: passkey too long for one BEP 41 option\n'); process.exit(2) }
const PKT = SCRAPE ? 36 : 98 + (URL_DATA ? 2 + URL_DATA.length : 0)
const reqs = Buffer.alloc(COUNT * PKT)
const put64 = (off, x) => { reqs.writeUInt32BE(Math.floor(x / 2 ** 32), off); reqs.writeUInt32BE(x % 2 ** 32, off + 4) }
for (let k = 0; k < COUNT; k++) {
  const i = order[k]
  const t = pool.peerTorrent[i]
  const off = k * PKT
  if (SCRAPE) { // action 2 and one info_hash (BEP 15 scrapes carry no URL data)
    reqs.writeUInt32BE(2, off + 8)
    pool.infoHashes.copy(reqs, off + 16, 20 * t, 20 * t + 20)
    continue
  }
  reqs.writeUInt32BE(1, off + 8) // action: announce (connection id at 0 and transaction id at 12 are set per send)
  pool.infoHashes.copy(reqs, off + 16, 20 * t, 20 * t + 20)
  pool.peerIds.copy(reqs, off + 36, 20 * i, 20 * i + 20)
  put64(off + 56, pool.peerDownloaded[i])
  put64(off + 64, pool.peerLeft[i])
  put64(off + 72, pool.peerUploaded[i])
  reqs.writeUInt32BE(events[k], off + 80)
  // ip (84) stays 0: the sender's address
  reqs.writeUInt32BE(pool.peerIds.readUInt32BE(20 * i + 16), off + 88) // key: fixed per peer
  reqs.writeInt32BE(NUMWANT, off + 92)
  reqs.writeUInt16BE(pool.peerPort[i], off + 96)
  if (URL_DATA) { reqs[off + 98] = 2; reqs[off + 99] = URL_DATA.length; URL_DATA.copy(reqs, off + 100) }
}
// one Buffer view per request, made now so that sending allocates nothing of ours. A request
// is in flight at most once at a time (COUNT > WINDOW; probe and prefill never wrap).
const views = new Array(COUNT)
for (let k = 0; k < COUNT; k++) views[k] = reqs.subarray(k * PKT, k * PKT + PKT)
if (!PREFILL && !PROBE && COUNT <= WINDOW) { process.stderr.write('udp-load: --count must exceed --window\n'); process.exit(2) }
const LIMIT = PREFILL ? COUNT : PROBE ? Math.min(PROBE, COUNT) : Infinity
info(`udp-load: ${COUNT} ${SCRAPE ? 'scrape' : 'announce'} packets of ${PKT} bytes (pool ${pool.torrents} torrents, ${pool.peers} peers, ${pool.seeders} seeders) ` +
  `built in ${Math.round(performance.now() - t0)} ms`)

// ---------------------------------------------------------------------------- state
const HN = TIMEOUT * 100 + 1 // latency histogram: 10 µs buckets up to the timeout
const hist = new Uint32Array(HN)
const slotTid = new Uint32Array(WINDOW)
const sentAt = new Float64Array(WINDOW)
const busy = new Uint8Array(WINDOW)
let seq = 1
let nextReq = 0
let issued = 0 // requests handed out (probe/prefill stop at LIMIT)
let sending = true

// counters (reset when the measured window starts)
let sent = 0, ok = 0, errors = 0, bad = 0, lost = 0, late = 0, peersSum = 0, idRefused = 0
let connects = 0, connectTimeouts = 0, stallReconnects = 0
let badSample = null
const errorMessages = new Map()
const resetCounters = () => {
  sent = ok = errors = bad = lost = late = peersSum = idRefused = connects = connectTimeouts = stallReconnects = 0
  badSample = null
  errorMessages.clear()
  hist.fill(0)
}

const socks = []
for (let s = 0; s < SOCKETS; s++) {
  const st = {
    index: s,
    sock: dgram.createSocket({ type: V6 ? 'udp6' : 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 }),
    connId: Buffer.alloc(8),
    connectBuf: Buffer.alloc(16),
    connectTid: 0,
    connectSentAt: 0,
    connecting: false,
    connected: false,
    everConnected: false,
    connectedAt: 0,
    lastAnswer: 0,
    parked: [],
    localPort: 0,
  }
  st.connectBuf.writeUInt32BE(0x417, 0) // protocol id 0x41727101980
  st.connectBuf.writeUInt32BE(0x27101980, 4)
  st.sock.on('message', (msg) => onMessage(st, msg))
  st.sock.on('error', (e) => { if (!st.everConnected) info(`udp-load: socket ${s}: ${e.message}`) }) // ECONNREFUSED (ICMP) before the server is up
  socks.push(st)
}
for (let slot = 0; slot < WINDOW; slot++) socks[slot % SOCKETS].parked.push(slot)

// ---------------------------------------------------------------------------- sending
function send(slot) {
  if (!sending) return
  const st = socks[slot % SOCKETS]
  if (!st.connected) { st.parked.push(slot); return }
  if (issued >= LIMIT) return
  issued++
  const k = nextReq
  nextReq = k + 1 === COUNT ? 0 : k + 1
  const b = views[k]
  const id = st.connId
  b[0] = id[0]; b[1] = id[1]; b[2] = id[2]; b[3] = id[3]; b[4] = id[4]; b[5] = id[5]; b[6] = id[6]; b[7] = id[7]
  seq = (seq + 1) & 0xfffff
  const tid = ((seq << SLOT_BITS) | slot) >>> 0
  b.writeUInt32BE(tid, 12)
  slotTid[slot] = tid
  busy[slot] = 1
  sentAt[slot] = performance.now()
  st.sock.send(b)
  sent++
}

let connectSeq = 0
let probeAttempts = 1
function startConnect(st, park) {
  if (park) st.connected = false
  st.connecting = true
  connectSeq = (connectSeq + 1) & 0xffff
  st.connectTid = (0x80000000 | (st.index << 16) | connectSeq) >>> 0
  st.connectBuf.writeUInt32BE(0, 8)
  st.connectBuf.writeUInt32BE(st.connectTid, 12)
  st.connectSentAt = performance.now()
  st.sock.send(st.connectBuf)
}

// ---------------------------------------------------------------------------- answers
function recordError(msg) {
  errors++
  if (errorMessages.size < 8 || errorMessages.has(msg)) errorMessages.set(msg, (errorMessages.get(msg) ?? 0) + 1)
}

function onMessage(st, msg) {
  const len = msg.length
  if (len < 8) { bad++; badSample ??= `${len}-byte datagram`; return }
  const action = msg.readUInt32BE(0)
  const tid = msg.readUInt32BE(4)
  const slot = tid & ((1 << SLOT_BITS) - 1)
  if (slot >= WINDOW || busy[slot] === 0 || slotTid[slot] !== tid) {
    if (tid === st.connectTid && st.connecting) return onConnectAnswer(st, msg, action)
    late++ // an answer after its timeout, or a duplicate
    return
  }
  const now = performance.now()
  busy[slot] = 0
  st.lastAnswer = now
  const us10 = ((now - sentAt[slot]) * 100) | 0
  hist[us10 < HN ? us10 : HN - 1]++
  if (SCRAPE) {
    if (action === 2 && len === 20) ok++
    else if (action !== 3) { bad++; badSample ??= `scrape answer: action ${action}, ${len} bytes (want action 2, 20 bytes)` }
    if (action !== 3) return send(slot)
  }
  if (action === 1) {
    const n = (len - 20) / ENTRY
    if (len >= 20 && n === Math.floor(n) && n <= NUMWANT) { ok++; peersSum += n } else {
      bad++
      badSample ??= `announce answer of ${len} bytes, not 20 + ${ENTRY} × n with n ≤ num_want ${NUMWANT}: ${msg.toString('hex', 0, Math.min(len, 24))}`
    }
  } else if (action === 3) {
    const m = msg.toString('latin1', 8)
    recordError(m)
    if (/connect/i.test(m)) {
      // the server refused our connection id: connect again before sending more
      idRefused++
      if (!st.connecting) startConnect(st, true)
      else st.connected = false
    }
  } else {
    bad++
    badSample ??= `action ${action}, ${len} bytes: ${msg.toString('hex', 0, Math.min(len, 24))}`
  }
  send(slot)
}

function onConnectAnswer(st, msg, action) {
  if (action === 3) {
    recordError(`(connect) ${msg.toString('latin1', 8)}`)
    return
  }
  if (action !== 0 || msg.length < 16) { bad++; badSample ??= `connect answer: action ${action}, ${msg.length} bytes`; return }
  msg.copy(st.connId, 0, 8, 16)
  const now = performance.now()
  st.connecting = false
  st.connectedAt = st.lastAnswer = now
  connects++
  if (!st.everConnected) { st.everConnected = true; st.localPort = st.sock.address().port }
  if (!st.connected) {
    st.connected = true
    const p = st.parked
    st.parked = []
    for (let i = 0; i < p.length; i++) send(p[i])
  }
}

// timeouts, connect retries, id refresh, stalls
function tick() {
  const now = performance.now()
  for (const st of socks) {
    if (st.connecting) {
      if (now - st.connectSentAt > TIMEOUT) { connectTimeouts++; startConnect(st, false) }
    } else if (now - st.connectedAt > RECONNECT) {
      startConnect(st, false) // refresh; keep using the current id until the new one arrives
    } else if (st.connected && now - st.lastAnswer > 3 * TIMEOUT && sending) {
      stallReconnects++ // nothing at all comes back: maybe the id is dropped silently
      startConnect(st, true)
    }
  }
  for (let slot = 0; slot < WINDOW; slot++) {
    if (busy[slot] === 1 && now - sentAt[slot] > TIMEOUT) {
      busy[slot] = 0
      lost++
      send(slot)
    }
  }
}

// ---------------------------------------------------------------------------- measuring helpers
function percentile(p) {
  let total = 0
  for (let i = 0; i < HN; i++) total += hist[i]
  if (!total) return NaN
  const want = Math.ceil(total * p)
  let acc = 0
  for (let i = 0; i < HN; i++) { acc += hist[i]; if (acc >= want) return (i + 0.5) / 100 }
  return TIMEOUT
}
function maxLatency() {
  for (let i = HN - 1; i >= 0; i--) if (hist[i]) return (i + 1) / 100
  return NaN
}

/** Socket drops from /proc/net/udp{,6}: [generator sockets, server port]. */
function udpDrops() {
  const mine = new Set(socks.map((s) => s.localPort))
  let client = 0, server = 0
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    let text
    try { text = readFileSync(f, 'utf8') } catch { continue }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/)
      if (c.length < 13) continue
      const port = parseInt(c[1].split(':')[1], 16)
      const drops = Number(c[c.length - 1])
      if (mine.has(port)) client += drops
      else if (port === PORT) server += drops
    }
  }
  return [client, server]
}

/** Network-namespace UDP counters (RcvbufErrors, SndbufErrors). */
function snmp() {
  try {
    const l = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((x) => x.startsWith('Udp:'))
    const k = l[0].split(/\s+/), v = l[1].split(/\s+/).map(Number)
    return { rcvbuf: v[k.indexOf('RcvbufErrors')], sndbuf: v[k.indexOf('SndbufErrors')] }
  } catch { return { rcvbuf: NaN, sndbuf: NaN } }
}

// ---------------------------------------------------------------------------- run
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
for (const st of socks) {
  await new Promise((resolve, reject) => {
    st.sock.once('error', reject)
    st.sock.connect(PORT, HOST, () => { st.sock.off('error', reject); resolve() })
  }).catch((e) => { process.stderr.write(`udp-load: cannot connect a socket to ${HOST}:${PORT}: ${e.message}\n`); process.exit(1) })
}
const startAt = performance.now()
for (const st of socks) startConnect(st, true)
const timer = setInterval(tick, Math.max(5, Math.min(50, TIMEOUT / 20)))
while (socks.some((s) => !s.everConnected)) {
  if (performance.now() - startAt > Math.max(5000, 3 * TIMEOUT, WAIT * 1000)) {
    const n = socks.filter((s) => s.everConnected).length
    process.stderr.write(`udp-load: no connect answer from ${HOST}:${PORT} on ${SOCKETS - n} of ${SOCKETS} sockets ` +
      `within ${Math.max(5, (3 * TIMEOUT) / 1000, WAIT)} s` + (errorMessages.size ? `; errors: ${[...errorMessages.keys()].join(' | ')}` : '') + '\n')
    process.exit(1)
  }
  await sleep(5)
}
const recvBuf = socks[0].sock.getRecvBufferSize()

let wall, cpu, srvCpu, drops0, drops1, snmp0, snmp1, cores0, cores1, perSec = []
if (PROBE || PREFILL) {
  // send LIMIT requests, wait until every one is answered or timed out
  const deadline = startAt + (PREFILL ? num(a['time-limit'], 180) : Math.max(WAIT, 3 * TIMEOUT / 1000)) * 1000
  // no counter reset: the first requests went out with the connect answers
  const c0 = process.cpuUsage(), w0 = performance.now(), s0 = processCpu(SERVER_PID)
  drops0 = udpDrops(); snmp0 = snmp(); cores0 = coreTimes()
  const done = () => issued >= LIMIT && !busy.some((x) => x === 1) && socks.every((s) => s.connected)
  for (;;) {
    while (!done() && performance.now() < deadline) await sleep(5)
    // --probe with --wait: try again (e.g. opentracker still loading its whitelist) until the deadline
    if (!PROBE || ok >= LIMIT || performance.now() + 150 >= deadline) break
    await sleep(100)
    probeAttempts++
    issued = 0
    resetCounters()
    for (let slot = 0; slot < WINDOW; slot++) if (busy[slot] === 0) send(slot)
  }
  wall = (performance.now() - w0) / 1000
  const c = process.cpuUsage(c0)
  cpu = c
  srvCpu = processCpu(SERVER_PID) - s0
  drops1 = udpDrops(); snmp1 = snmp(); cores1 = coreTimes()
} else {
  await sleep(WARMUP * 1000)
  resetCounters()
  if (JSON_ONLY) process.stdout.write('MEASURE\n')
  drops0 = udpDrops(); snmp0 = snmp(); cores0 = coreTimes()
  const c0 = process.cpuUsage(), w0 = performance.now(), s0 = processCpu(SERVER_PID)
  let lastOk = 0
  const secTimer = setInterval(() => { perSec.push(ok - lastOk); lastOk = ok }, 1000)
  const progress = JSON_ONLY ? setInterval(() => process.stdout.write(`PROGRESS ${ok}\n`), 500) : undefined
  await sleep(DURATION * 1000)
  const c = process.cpuUsage(c0)
  wall = (performance.now() - w0) / 1000
  srvCpu = processCpu(SERVER_PID) - s0
  sending = false
  clearInterval(secTimer)
  clearInterval(progress)
  if (perSec.length < Math.floor(DURATION)) perSec.push(ok - lastOk) // the last second, if its timer lost the race
  cpu = c
  drops1 = udpDrops(); snmp1 = snmp(); cores1 = coreTimes()
}
clearInterval(timer)
const inFlight = busy.reduce((x, y) => x + y, 0)
for (const st of socks) st.sock.close()

// ---------------------------------------------------------------------------- report
const answered = ok + errors + bad
const genCpu = ((cpu.user + cpu.system) / 1e6 / wall) * 100
const r = {
  host: HOST, port: PORT, family: V6 ? 6 : 4, mode: PREFILL ? 'prefill' : PROBE ? 'probe' : 'load',
  ...(PROBE ? { probe_attempts: probeAttempts } : {}),
  kind: SCRAPE ? 'scrape' : 'announce', sockets: SOCKETS, window: WINDOW, timeout_ms: TIMEOUT, packet_bytes: PKT, passkey: !!URL_DATA, numwant: NUMWANT,
  seconds: +wall.toFixed(3), sent, answered, announces: ok, rps: ok / wall, errors, bad, lost, late,
  in_flight_at_end: inFlight,
  loss_pct: answered + lost ? (lost / (answered + lost)) * 100 : 0,
  p50_ms: percentile(0.5), p90_ms: percentile(0.9), p99_ms: percentile(0.99), p999_ms: percentile(0.999), max_ms: maxLatency(),
  peers_per_answer: ok ? peersSum / ok : 0,
  error_messages: Object.fromEntries(errorMessages), bad_sample: badSample,
  connects, connect_timeouts: connectTimeouts, id_refused: idRefused, stall_reconnects: stallReconnects,
  gen_cpu_pct: genCpu, gen_us_per_answer: answered ? ((cpu.user + cpu.system) / answered) : null, gen_user_pct: (cpu.user / 1e6 / wall) * 100, gen_sys_pct: (cpu.system / 1e6 / wall) * 100,
  server_pid: SERVER_PID ? Number(SERVER_PID) : null,
  server_cpu_pct: SERVER_PID ? (srvCpu / wall) * 100 : null,
  server_us_per_answer: SERVER_PID && answered ? (srvCpu * 1e6) / answered : null,
  drops_generator: drops1[0] - drops0[0], drops_server: drops1[1] - drops0[1],
  udp_rcvbuf_errors: snmp1.rcvbuf - snmp0.rcvbuf, udp_sndbuf_errors: snmp1.sndbuf - snmp0.sndbuf,
  recv_buffer_bytes: recvBuf, per_second: perSec, cores: coreDelta(cores0, cores1),
}
const f = (x, d = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '–')
const errText = errors ? ` (${Object.entries(r.error_messages).map(([m, n]) => `${n}× "${m}"`).join(', ')})` : ''
const line = `udp-load ${V6 ? `[${HOST}]` : HOST}:${PORT} ${r.mode}, ${SOCKETS} socket${SOCKETS > 1 ? 's' : ''}, window ${WINDOW}` +
  `${URL_DATA ? ', BEP 41 passkey' : ''}: ${f(r.rps)} ${SCRAPE ? 'scrapes' : 'announces'}/s over ${f(wall, 1)} s, p50 ${f(r.p50_ms, 2)} ms, p99 ${f(r.p99_ms, 2)} ms, ` +
  `loss ${f(r.loss_pct, 2)}% (${lost} of ${answered + lost}), late ${late}, errors ${errors}${errText}, bad ${bad}` +
  `${badSample ? ` (first: ${badSample})` : ''}, ${f(r.peers_per_answer, 1)} peers/answer; generator CPU ${f(genCpu)}% (${f(r.gen_us_per_answer, 1)} µs/answer)` +
  `${genCpu >= 90 && wall >= 1 ? ' ⚠ saturated: the generator, not the server, is probably the limit' : ''}` +
  `${SERVER_PID ? `; server CPU ${f(r.server_cpu_pct)}%, ${f(r.server_us_per_answer, 1)} µs/answer` : ''}; ` +
  `drops generator ${r.drops_generator} / server ${r.drops_server}${wall < 1 ? '' : `; cores busy ${r.cores.map((c) => `${c.core}: ${f(c.busy_pct)}% (softirq ${f(c.softirq_pct)}%)`).join(', ')}`}`
if (!JSON_ONLY) process.stdout.write(line + '\n')
else info(line)
printResult(r)
const failed = PROBE ? ok < LIMIT : PREFILL ? errors + bad > 0 || ok < LIMIT * 0.99 : ok === 0
process.exit(failed ? 1 : 0)

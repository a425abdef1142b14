#!/usr/bin/env node
// autocannon driver for HTTP announces over keep-alive connections.
//
//   node bench/http-announce.mjs [--url http://127.0.0.1:8080] [--duration 10] [--warmup 2]
//       [--connections 100] [--pipelining 1] [--paths FILE | --count 200000] [--seed S]
//       [--validate-every 1000] [--no-check] [--setup | --static] [--json]
//
// Each request is the next path of a precomputed list (bench/pool.mjs: each path an
// announce from a random peer identity; shared by all connections, so every connection
// announces different peers). Prints announces/s (autocannon's mean of per-second request
// counts), p50/p99 latency, non-2xx and errors, and this process's CPU use over the measured
// run (≈100% means the generator, not the server, may be the limit).
//
// Answers are checked: before the run, a few announces are fetched and decoded (must be
// a bencoded dict with `peers` and without `failure reason`), and during the run every
// `--validate-every`-th answer is checked the same way (textually). How the paths reach
// autocannon (prebuilt buffers by default; --setup, --static) is explained below.
// --json prints one line `ACJSON {...}` for scripts.
// --pipelining > 1 only works with servers that accept pipelined requests: uWS closes a
// connection that pipelines while an answer is deferred (Shardtrack answers after its shard
// replies), so against Shardtrack use --pipelining 1 and more connections.

import autocannon from 'autocannon'
import bencode from 'bencode'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import { getPaths, DEFAULTS } from './pool.mjs'

function parseArgs(argv) {
  const a = {}
  const flags = ['no-check', 'static', 'setup', 'json', 'help']
  for (let k = 0; k < argv.length; k++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[k])
    if (!m) throw new Error(`unexpected argument ${argv[k]}`)
    if (m[2] !== undefined) a[m[1]] = m[2]
    else if (flags.includes(m[1])) a[m[1]] = true
    else a[m[1]] = argv[++k]
  }
  return a
}

const a = parseArgs(process.argv.slice(2))
if (a.help) {
  process.stdout.write(readFileSync(new URL(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).join('\n') + '\n')
  process.exit(0)
}
const url = new URL(a.url ?? 'http://127.0.0.1:8080')
const duration = Number(a.duration ?? 10)
const warmup = Number(a.warmup ?? 2)
const connections = Number(a.connections ?? 100)
const pipelining = Number(a.pipelining ?? 1)
const validateEvery = Number(a['validate-every'] ?? 1000)

const paths = a.paths
  ? readFileSync(a.paths, 'latin1').split('\n').filter(Boolean)
  : getPaths(Number(a.count ?? DEFAULTS.peers), { seed: a.seed ?? DEFAULTS.seed })
const log = (s) => process.stderr.write(s + '\n')

/** Fetch one path; resolve {status, body: Buffer}. */
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

/** Full check of one answer: bencoded dict with `peers`, no `failure reason`. Returns an error string or null. */
export function checkAnswer(status, body) {
  if (status !== 200) return `HTTP ${status}`
  let d
  try { d = bencode.decode(body) } catch (e) { return `not bencode: ${e.message}: ${body.toString('latin1', 0, 80)}` }
  if (!d || typeof d !== 'object' || Array.isArray(d) || ArrayBuffer.isView(d)) return 'not a dict'
  if (d['failure reason']) return `failure reason: ${Buffer.from(d['failure reason']).toString()}`
  if (!('peers' in d) && !('peers6' in d)) return `no peers key (keys: ${Object.keys(d).join(',')})`
  return null
}

if (!a['no-check']) {
  const sample = [0, 1, 2, 3, 4, 5, 6, 7].map((k) => paths[Math.floor((k * paths.length) / 8)])
  for (const p of sample) {
    let r
    try { r = await get(p) } catch (e) { log(`preflight: ${url.origin}${p.slice(0, 60)}…: ${e.message}`); process.exit(1) }
    const err = checkAnswer(r.status, r.body)
    if (err) { log(`preflight: bad answer from ${url.origin}: ${err}`); process.exit(1) }
  }
}

let next = 0
let answers = 0, checked = 0, bad = 0, firstBad = null, served = 0
function onResponse(status, body) {
  if (++answers % validateEvery !== 0) return
  checked++
  // autocannon hands the body over as a (UTF-8 decoded) string: check it textually
  if (status !== 200 || body[0] !== 'd' || !body.includes('5:peers') || body.includes('14:failure reason')) {
    bad++
    firstBad ??= `${status} ${String(body).slice(0, 100)}`
  }
}

// Three ways to feed autocannon the paths:
//  default:  every request is prebuilt once as a Buffer; autocannon's `setupClient` hook
//            replaces each connection's getRequestBuffer() (autocannon 9 calls it once per
//            request it writes) with "the next prebuilt buffer". Costs ≈ nothing per request.
//  --setup:  autocannon's documented `setupRequest` hook: it rebuilds the request (object
//            merges, clone of the context, header formatting) for every request; measured
//            at ~1/3 of the prebuilt rate against a hello server: the generator is the limit.
//  --static: one fixed path (no rotation): a ceiling for autocannon itself.
const host = url.host
let requests, setupClient
if (a.static) {
  requests = [{ path: paths[0], onResponse }]
} else if (a.setup) {
  requests = [{
    setupRequest(req) {
      req.path = paths[next]
      if (++next === paths.length) next = 0
      served++
      return req
    },
    onResponse,
  }]
} else {
  const bufs = paths.map((p) => Buffer.from(`GET ${p} HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`, 'latin1'))
  const nextBuffer = () => {
    const b = bufs[next]
    if (++next === bufs.length) next = 0
    served++
    return b
  }
  setupClient = (client) => { client.getRequestBuffer = nextBuffer }
  // several identical entries so autocannon resets its (cloned) context every 64 requests, not every one
  requests = Array.from({ length: 64 }, () => ({ path: paths[0], onResponse }))
}

const base = { url: url.origin, connections, pipelining, requests, timeout: 10, ...(setupClient && { setupClient }) }
if (warmup > 0) await autocannon({ ...base, duration: warmup })
answers = 0
served = 0
const cpu0 = process.cpuUsage()
const t0 = process.hrtime.bigint()
const r = await autocannon({ ...base, duration })
const wall = Number(process.hrtime.bigint() - t0) / 1e9
const cpu = process.cpuUsage(cpu0)
const cpuPct = ((cpu.user + cpu.system) / 1e6 / wall) * 100

const out = {
  url: url.origin,
  connections,
  pipelining,
  duration,
  rps: r.requests.mean,
  total: r.requests.total,
  p50_ms: r.latency.p50,
  p99_ms: r.latency.p99,
  non2xx: r.non2xx,
  errors: r.errors,
  timeouts: r.timeouts,
  checked,
  bad,
  gen_cpu_pct: Math.round(cpuPct),
}
if (a.json) process.stdout.write('ACJSON ' + JSON.stringify(out) + '\n')
process.stdout.write(
  `autocannon ${url.origin} c=${connections} p=${pipelining} ${duration}s: ${Math.round(out.rps)} announces/s, ` +
    `p50 ${out.p50_ms} ms, p99 ${out.p99_ms} ms, non-2xx ${out.non2xx}, errors ${out.errors}, timeouts ${out.timeouts}, ` +
    `checked ${checked} answers (${bad} bad), generator CPU ${out.gen_cpu_pct}%\n`,
)
if (firstBad) log(`first bad answer: ${firstBad}`)
if (out.total < 100 * duration) {
  log(`error: almost no answers (${out.total})${pipelining > 1 ? ': the server may close connections that pipeline (uWS does when answers are deferred, as in Shardtrack)' : ''}`)
  process.exit(1)
}
if (!a.static && out.total > 1000 && served < out.total) {
  log(`error: only ${served} rotated paths for ${out.total} requests: autocannon's internals changed (try --setup)`)
  process.exit(1)
}
process.exit(bad > 0 || (checked === 0 && out.total > validateEvery) ? 1 : 0)

#!/usr/bin/env node
// Memory per peer of a running tracker.
//
//   node bench/rss.mjs --pid PID [--url http://127.0.0.1:8080] [--peers 1000000] [--torrents 50000]
//       [--connections 128] [--depth 16] [--close] [--time-limit 300] [--settle 3] [--seed S] [--json]
//   node bench/rss.mjs --write-whitelist FILE [--peers N] [--torrents N] [--seed S]
//   node bench/rss.mjs --print-probe [--peers N] [--torrents N] [--seed S]
//
// Announces `peers` distinct peer identities (event=started, numwant=0 so answers stay small)
// spread round robin over `torrents` torrents (peer i → torrent i mod T, port 1024 + i div T:
// every identity also has its own ip:port within its torrent, so trackers that key peers by
// address, like opentracker, count each one). Reads VmRSS of PID from /proc before and after
// (after `settle` seconds of quiet) and prints (after − before) / peers. Then checks a few
// swarms report the expected number of peers (complete + incomplete), and that no answer was
// a failure.
//
// PID is the tracker's process (all of its threads share one RSS). --close sends one request
// per connection (for servers that close after each answer: opentracker).
// --write-whitelist writes the info_hashes of this workload (lowercase hex, one a line) for
// opentracker's access.whitelist, and exits; --print-probe prints the path of the first
// announce (to check a server accepts the workload before measuring).

import { readFileSync, writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { createPool, whitelistText, DEFAULTS } from './pool.mjs'
import { pipelinedLoad } from './lib/http-pipeline.mjs'
import { parseArgs } from './lib/gen.mjs'


const a = parseArgs(process.argv.slice(2), ['close', 'json', 'help', 'print-probe'])
const log = (s) => process.stderr.write(s + '\n')
if (a.help || (!a.pid && !a['write-whitelist'] && !a['print-probe'])) {
  log(readFileSync(new URL(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).join('\n'))
  process.exit(a.help ? 0 : 2)
}

const N = Number(a.peers ?? 1_000_000)
const T = Number(a.torrents ?? 50_000)
const pool = createPool({ seed: a.seed ?? DEFAULTS.seed, torrents: T, peers: N, skew: -1 })

if (a['print-probe']) {
  // the announce the run starts with (peer 0, numwant=0): lets a script check the server takes this workload
  process.stdout.write(pool.path(0, { numwant: 0 }) + '\n')
  process.exit(0)
}
if (a['write-whitelist']) {
  writeFileSync(a['write-whitelist'], whitelistText(pool))
  log(`wrote ${T} info_hashes to ${a['write-whitelist']}`)
  process.exit(0)
}

const pid = Number(a.pid)
const url = new URL(a.url ?? 'http://127.0.0.1:8080')
const settle = Number(a.settle ?? 3)

function status(p) {
  const s = readFileSync(`/proc/${p}/status`, 'utf8')
  const kb = (k) => Number((new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s) ?? [])[1] ?? NaN)
  return { rss: kb('VmRSS') * 1024, anon: kb('RssAnon') * 1024, hwm: kb('VmHWM') * 1024, threads: Number(/^Threads:\s+(\d+)/m.exec(s)?.[1]) }
}

const MB = (b) => (b / 2 ** 20).toFixed(1) + ' MiB'
const before = status(pid)
log(`rss: pid ${pid} VmRSS ${MB(before.rss)} (anon ${MB(before.anon)}, ${before.threads} threads); loading ${N} peers over ${T} torrents into ${url.origin}`)

let failures = 0, firstFailure = null, checked = 0
const r = await pipelinedLoad({
  host: url.hostname,
  port: Number(url.port || 80),
  total: N,
  path: (k) => pool.path(k, { event: 'started', numwant: 0 }),
  connections: Number(a.connections ?? 128),
  depth: Number(a.depth ?? 16),
  close: !!a.close,
  deadlineMs: Number(a['time-limit'] ?? 300) * 1000,
  onAnswer(k, st, body) {
    // cheap textual check of every answer: a dict, no failure reason
    checked++
    if (st !== 200 || body[0] !== 0x64 /* d */ || body.includes('failure reason')) {
      failures++
      firstFailure ??= `${st} ${body.toString('latin1', 0, 120)}`
    }
  },
})
log(`rss: ${r.done} announces in ${r.seconds.toFixed(1)} s (${Math.round(r.done / r.seconds)}/s), ${r.failed} HTTP failures, ` +
  `${failures} failure answers, ${r.reconnects} reconnects${r.pipelined ? '' : ', no pipelining'}${r.timedOut ? ', TIME LIMIT REACHED' : ''}`)
if (firstFailure) log(`rss: first failure: ${firstFailure}`)

await sleep(settle * 1000)
const after = status(pid)

// swarm check: announce again as an existing peer of a few torrents (updates, adds no peer)
// with numwant=200 and read complete + incomplete
const expected = (t) => Math.floor(N / T) + (t < N % T ? 1 : 0)
let swarmsOk = 0
const probes = Math.min(10, T)
const probeBodies = []
await pipelinedLoad({
  host: url.hostname, port: Number(url.port || 80), total: probes, connections: 1, depth: 1, close: !!a.close, deadlineMs: 10_000,
  path: (k) => pool.path(Math.floor((k * T) / probes), { numwant: 200 }),
  onAnswer(k, st, body) { probeBodies[k] = body },
})
for (let k = 0; k < probes; k++) {
  const t = Math.floor((k * T) / probes)
  const b = probeBodies[k]?.toString('latin1') ?? ''
  const c = Number(/8:completei(\d+)e/.exec(b)?.[1] ?? NaN), i = Number(/10:incompletei(\d+)e/.exec(b)?.[1] ?? NaN)
  if (c + i === expected(t)) swarmsOk++
  else if (k < 3) log(`rss: swarm ${t}: complete ${c} + incomplete ${i}, expected ${expected(t)}${b ? '' : ' (no answer)'}`)
}

const loaded = r.done - failures - r.failed
const perPeer = (after.rss - before.rss) / N
const out = {
  pid, peers: N, torrents: T, announced: r.done, failures: failures + r.failed, seconds: r.seconds,
  rss_before: before.rss, rss_after: after.rss, rss_hwm: after.hwm, anon_before: before.anon, anon_after: after.anon,
  bytes_per_peer: perPeer, anon_bytes_per_peer: (after.anon - before.anon) / N, swarms_ok: swarmsOk, swarms_probed: probes,
}
if (a.json) process.stdout.write('RSSJSON ' + JSON.stringify(out) + '\n')
process.stdout.write(
  `rss: VmRSS ${MB(before.rss)} → ${MB(after.rss)} (peak ${MB(after.hwm)}) for ${N} peers: ` +
    `${perPeer.toFixed(1)} bytes/peer (anon ${out.anon_bytes_per_peer.toFixed(1)}); ` +
    `swarm counts as expected in ${swarmsOk}/${probes} probed torrents\n`,
)
if (loaded !== N || r.timedOut) log(`rss: WARNING: only ${loaded} of ${N} announces succeeded: the figure above overstates bytes/peer`)
process.exit(loaded === N && !r.timedOut ? 0 : 1)

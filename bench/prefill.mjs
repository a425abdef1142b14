#!/usr/bin/env node
// Put every peer identity of the benchmark pool into a tracker once (event=started,
// numwant=0), so the measured runs see full swarms (200,000 peers) from their first second
// instead of a table that fills up during the run.
//
//   node bench/prefill.mjs [--url http://127.0.0.1:8080] [--close] [--connections 128]
//       [--depth 16] [--time-limit 120] [--seed S] [--torrents N] [--peers N] [--skew X]
//
// Same pool options as bench/pool.mjs (defaults: 10,000 torrents, 200,000 peers, Zipf 1).
// --close: one request per connection (opentracker closes after every answer anyway).
// Exits 1 if any announce failed or the time limit was reached.

import { createPool, DEFAULTS } from './pool.mjs'
import { pipelinedLoad } from './lib/http-pipeline.mjs'

const a = {}
const argv = process.argv.slice(2)
for (let k = 0; k < argv.length; k++) {
  const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[k])
  if (!m) throw new Error(`unexpected argument ${argv[k]}`)
  a[m[1]] = m[2] ?? (m[1] === 'close' ? true : argv[++k])
}
const url = new URL(a.url ?? 'http://127.0.0.1:8080')
const num = (v, d) => (v === undefined ? d : Number(v))
const pool = createPool({
  seed: a.seed ?? DEFAULTS.seed,
  torrents: num(a.torrents, DEFAULTS.torrents),
  peers: num(a.peers, DEFAULTS.peers),
  skew: num(a.skew, DEFAULTS.skew),
})
let bad = 0, first = null
const r = await pipelinedLoad({
  host: url.hostname,
  port: Number(url.port || 80),
  total: pool.peers,
  path: (k) => pool.path(k, { event: 'started', numwant: 0 }),
  connections: num(a.connections, 128),
  depth: num(a.depth, 16),
  close: !!a.close,
  deadlineMs: num(a['time-limit'], 120) * 1000,
  onAnswer(k, st, body) {
    if (st !== 200 || body[0] !== 0x64 || body.includes('failure reason')) { bad++; first ??= `${st} ${body.toString('latin1', 0, 120)}` }
  },
})
process.stdout.write(`prefill ${url.origin}: ${r.done}/${pool.peers} peers announced in ${r.seconds.toFixed(1)} s ` +
  `(${Math.round(r.done / r.seconds)}/s), ${bad + r.failed} failed${r.timedOut ? ', TIME LIMIT REACHED' : ''}\n`)
if (first) process.stderr.write(`prefill: first failure: ${first}\n`)
process.exit(bad + r.failed === 0 && r.done === pool.peers && !r.timedOut ? 0 : 1)

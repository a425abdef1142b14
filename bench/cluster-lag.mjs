#!/usr/bin/env node
// Cross-node visibility lag: from a peer's announce at node A to its presence in an answer of
// node B, measured end to end over HTTP while the nodes are under load.
//
//   node bench/cluster-lag.mjs --a http://127.0.0.1:8080 --b http://127.0.0.1:8090 [--seconds 20] [--every 100] [--poll 5]
//
// Every `every` ms a new peer (its own port) announces at A as a seeder of a probe torrent;
// an observer peer of that torrent at B announces every `poll` ms (numwant 200) until the new
// port is in B's answer: that time is one sample (resolution: `poll` plus one round trip).
// The probe peer then stops at A. Prints one line `LAGJSON {samples, p50_ms, p90_ms,
// p99_ms, max_ms, lost}` (lost: not seen within 10 s). Needs min interval off (the
// benchmarks' NO_LIMITS) or a very short one.

import http from 'node:http'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'

const args = {}
const argv = process.argv.slice(2)
for (let k = 0; k < argv.length; k++) args[argv[k].replace(/^--/, '')] = argv[++k]
const A = new URL(args.a ?? 'http://127.0.0.1:8080')
const B = new URL(args.b ?? 'http://127.0.0.1:8090')
const seconds = Number(args.seconds ?? 20)
const every = Number(args.every ?? 100)
const poll = Number(args.poll ?? 5)

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 })
const pct = (b) => Array.from(b, (x) => '%' + x.toString(16).padStart(2, '0')).join('')
const ih = pct(randomBytes(20))

function get(url, path) {
  return new Promise((resolve, reject) => {
    http.get({ host: url.hostname, port: url.port, path, agent }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve(Buffer.concat(chunks)))
    }).on('error', reject)
  })
}

const announce = (url, pid, port, left, extra = '') =>
  get(url, `/announce?info_hash=${ih}&peer_id=${pct(pid)}&port=${port}&uploaded=0&downloaded=0&left=${left}&compact=1${extra}`)

/** Ports in a compact answer (bencoded `5:peers<n>:<bytes>`). */
function ports(body) {
  const at = body.indexOf('5:peers')
  if (at < 0) return []
  let i = at + 7
  let n = 0
  while (body[i] !== 0x3a) n = n * 10 + (body[i++] - 48)
  const out = []
  for (let e = i + 1; e + 6 <= i + 1 + n; e += 6) out.push((body[e + 4] << 8) | body[e + 5])
  return out
}

const observer = randomBytes(20)
await announce(B, observer, 1, 1000, '&event=started')
const samples = []
let lost = 0
const end = Date.now() + seconds * 1000
for (let k = 0; Date.now() < end; k++) {
  const pid = randomBytes(20)
  const port = 20000 + (k % 40000)
  const t0 = performance.now()
  const next = t0 + every
  await announce(A, pid, port, 0, '&event=started')
  let seen = false
  while (performance.now() - t0 < 10_000) {
    if (ports(await announce(B, observer, 1, 1000, '&numwant=200')).includes(port)) {
      seen = true
      break
    }
    await sleep(poll)
  }
  if (seen) samples.push(performance.now() - t0)
  else lost++
  await announce(A, pid, port, 0, '&event=stopped')
  const wait = next - performance.now()
  if (wait > 0) await sleep(wait)
}
await announce(B, observer, 1, 1000, '&event=stopped')
samples.sort((a, b) => a - b)
const q = (p) => (samples.length ? Math.round(samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]) : null)
console.log('LAGJSON ' + JSON.stringify({ samples: samples.length, p50_ms: q(0.5), p90_ms: q(0.9), p99_ms: q(0.99), max_ms: samples.length ? Math.round(samples.at(-1)) : null, lost }))
agent.destroy()

#!/usr/bin/env node
// Turns the measurements bench/run-http.sh wrote (results.jsonl, rss.jsonl, machine.json in
// one results directory) into the Markdown report: medians over the rounds.
//
//   node bench/lib/report.mjs bench/results/http-YYYYmmdd-HHMMSS

import { readRun, median, fmt } from './results.mjs'

const dir = process.argv[2]
if (!dir) { process.stderr.write('usage: node bench/lib/report.mjs RESULTS_DIR\n'); process.exit(2) }
const { lines, machine } = readRun(dir)
const results = lines('results.jsonl')
const rss = lines('rss.jsonl')
const skipped = lines('skipped.jsonl')

const onNode = (v) => (machine.baseline_node ? ` on Node ${v}` : '')
const ROWS = [
  ['shardtrack', 'autocannon', 'keepalive', `Shardtrack${onNode(machine.node)}`, 'keep-alive', 'autocannon'],
  ['shardtrack', 'wrk', 'keepalive', `Shardtrack${onNode(machine.node)}`, 'keep-alive', 'wrk'],
  ['shardtrack', 'wrk', 'close', `Shardtrack${onNode(machine.node)}`, '1 connection/request', 'wrk'],
  ['baseline', 'autocannon', 'keepalive', `Shardtrack${onNode(machine.baseline_node)}`, 'keep-alive', 'autocannon'],
  ['baseline', 'wrk', 'keepalive', `Shardtrack${onNode(machine.baseline_node)}`, 'keep-alive', 'wrk'],
  ['baseline', 'wrk', 'close', `Shardtrack${onNode(machine.baseline_node)}`, '1 connection/request', 'wrk'],
  ['nojournal', 'autocannon', 'keepalive', 'Shardtrack, no journal (checkpoint.enabled=false)', 'keep-alive', 'autocannon'],
  ['nojournal', 'wrk', 'keepalive', 'Shardtrack, no journal (checkpoint.enabled=false)', 'keep-alive', 'wrk'],
  ['nojournal', 'wrk', 'close', 'Shardtrack, no journal (checkpoint.enabled=false)', '1 connection/request', 'wrk'],
  ['opentracker', 'wrk', 'close', 'opentracker (Debian)', '1 connection/request (it closes every connection)', 'wrk'],
  ['hyper', 'wrk', 'keepalive', 'hello: hyper-express', 'keep-alive', 'wrk'],
  ['hyper', 'wrk', 'close', 'hello: hyper-express', '1 connection/request', 'wrk'],
  ['uws', 'wrk', 'keepalive', 'hello: raw uWS', 'keep-alive', 'wrk'],
  ['uws', 'wrk', 'close', 'hello: raw uWS', '1 connection/request', 'wrk'],
  ['uws', 'autocannon', 'keepalive', 'hello: raw uWS', 'keep-alive (autocannon ceiling)', 'autocannon'],
]


const out = []
out.push(`## HTTP announce benchmark — ${machine.date ?? ''}`)
out.push('')
out.push(`Machine: ${machine.nproc ?? '?'} cores, ${machine.cpu ?? '?'}; Node ${machine.node ?? '?'}; ${machine.kernel ?? ''}; ` +
  `${machine.wrk ?? 'wrk ?'}; opentracker ${machine.opentracker ?? '?'}; Shardtrack commit ${machine.commit ?? '?'}; ` +
  `load average at start ${machine.load_average ?? '?'}.`)
out.push(`Server on core ${machine.server_cpu ?? 0}, load generator on core ${machine.load_cpu ?? 1}; ${machine.rounds ?? '?'} interleaved rounds × ` +
  `${machine.seconds ?? '?'} s after a ${machine.warmup ?? '?'} s warm-up; ${machine.connections ?? '?'} connections; ` +
  `workload: ${machine.pool ?? 'bench/pool.mjs defaults'}.`)
out.push('')
out.push('| Target | Connections | Client | announces/s (median) | min – max | p50 ms | p99 ms | errors | bad answers / checked | new TCP conn / request | generator CPU | server CPU | server CPU µs / announce |')
out.push('|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
for (const [target, tool, mode, tlabel, mlabel, clabel] of ROWS) {
  const rs = results.filter((r) => r.target === target && r.tool === tool && r.mode === mode)
  if (!rs.length) {
    const sk = skipped.find((s) => s.target === target)
    if (sk) out.push(`| ${tlabel} | ${mlabel} | ${clabel} | skipped: ${sk.reason} | | | | | | | | | |`)
    continue
  }
  const rps = rs.map((r) => r.rps)
  const genCpu = median(rs.map((r) => r.gen_cpu_pct))
  const genFlag = genCpu >= 90 ? ' ⚠' : ''
  out.push(`| ${tlabel} | ${mlabel} | ${clabel} | **${fmt(median(rps))}** | ${fmt(Math.min(...rps))} – ${fmt(Math.max(...rps))} | ` +
    `${fmt(median(rs.map((r) => r.p50_ms)), 2)} | ${fmt(median(rs.map((r) => r.p99_ms)), 2)} | ${fmt(rs.reduce((a, r) => a + r.errors, 0))} | ` +
    `${fmt(rs.reduce((a, r) => a + r.bad, 0))} / ${fmt(rs.reduce((a, r) => a + r.checked, 0))} | ${fmt(median(rs.map((r) => r.opens_per_req)), 2)} | ` +
    `${fmt(genCpu)}%${genFlag} | ${fmt(median(rs.map((r) => r.server_cpu_pct)))}% | ` +
    `${fmt(median(rs.map((r) => (r.server_cpu_pct / 100 / r.rps) * 1e6)), 1)} |`)
}
out.push('')
out.push('errors: connect/write/timeout errors and non-2xx (wrk), errors+timeouts+non-2xx (autocannon); wrk\'s read errors are not counted in')
out.push('1 connection/request rows, where every server closes without a `Connection: close` header and wrk sees EOF once per request.')
out.push('bad answers: not a bencoded dict with `peers`, or a `failure reason`; wrk checks every answer of its warm-up runs,')
out.push('autocannon every 1000th answer of the measured run. ⚠ = generator CPU ≥ 90%: the client may be the limit, not the server.')
out.push('CPU = user+system time / wall time (100% = one core); server CPU counts all of its threads. server CPU µs / announce =')
out.push('server CPU time / announces answered: comparable even when the generator, not the server, is the limit (loopback TCP work is')
out.push('partly charged to whichever side runs the softirq, so treat it as ±20%).')
out.push('new TCP conn / request: the network namespace\'s TCP ActiveOpens over the run / requests (other processes\' connections add noise).')
out.push('')
/** Ratios of medians, target `a` ÷ target `b` measured in the same interleaved rounds. */
function ratios(title, a, b) {
  if (!results.some((r) => r.target === b)) return
  out.push(`| ${title} | announces/s | server CPU µs / announce | p99 ms |`)
  out.push('|---|---:|---:|---:|')
  const per = (rs, f) => median(rs.map(f))
  const us = (r) => (r.server_cpu_pct / 100 / r.rps) * 1e6
  for (const [tool, mode, label] of [['autocannon', 'keepalive', 'keep-alive (autocannon)'], ['wrk', 'keepalive', 'keep-alive (wrk)'], ['wrk', 'close', '1 connection/request (wrk)']]) {
    const x = results.filter((r) => r.target === a && r.tool === tool && r.mode === mode)
    const y = results.filter((r) => r.target === b && r.tool === tool && r.mode === mode)
    if (!x.length || !y.length) continue
    out.push(`| ${label} | ${fmt(per(x, (r) => r.rps) / per(y, (r) => r.rps), 3)} | ${fmt(per(x, us) / per(y, us), 3)} | ${fmt(per(x, (r) => r.p99_ms) / per(y, (r) => r.p99_ms), 3)} |`)
  }
  out.push('')
  out.push('Ratios of medians (above 1: more announces/s, but more CPU per announce and a longer p99).')
  out.push('')
}
// the same Shardtrack on two Node.js versions
ratios(`Node ${machine.node} ÷ Node ${machine.baseline_node}`, 'shardtrack', 'baseline')
// what the journal of peers' states costs: with checkpoints (and the journal completing them) and without
ratios('journal of peers\' states on ÷ off', 'shardtrack', 'nojournal')
if (rss.length || skipped.some((s) => s.target.startsWith('rss-'))) {
  out.push('| Memory | peers | torrents | VmRSS before → after | bytes/peer | anon bytes/peer | failed announces | swarms with expected count |')
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|')
  for (const r of rss) {
    out.push(`| ${r.target} | ${fmt(r.peers)} | ${fmt(r.torrents)} | ${fmt(r.rss_before / 2 ** 20, 1)} → ${fmt(r.rss_after / 2 ** 20, 1)} MiB | ` +
      `**${fmt(r.bytes_per_peer, 1)}** | ${fmt(r.anon_bytes_per_peer, 1)} | ${fmt(r.failures + (r.peers - r.announced))} | ${r.swarms_ok}/${r.swarms_probed} |`)
  }
  for (const s of skipped.filter((s) => s.target.startsWith('rss-'))) out.push(`| ${s.target.slice(4)} | skipped: ${s.reason} | | | | | | |`)
  out.push('')
  out.push('bytes/peer = (VmRSS after − VmRSS before) / peers, on a freshly started server, after loading every peer once (event=started,')
  out.push('numwant=0) and a few seconds of quiet. It includes everything the load made the process keep: tables, indexes, heap growth.')
  out.push('')
}
const notes = lines('notes.jsonl')
if (notes.length) {
  out.push('Notes from the run:')
  for (const n of notes) out.push(`- ${n.note}`)
  out.push('')
}
process.stdout.write(out.join('\n') + '\n')

#!/usr/bin/env node
// Turns the measurements bench/run-udp.sh wrote (results.jsonl, machine.json, skipped.jsonl,
// notes.jsonl in one results directory) into the Markdown report: medians over the rounds.
//
//   node bench/udp-report.mjs bench/results/udp-YYYYmmdd-HHMMSS

import { readRun, median, fmt } from './lib/results.mjs'

const dir = process.argv[2]
if (!dir) { process.stderr.write('usage: node bench/udp-report.mjs RESULTS_DIR\n'); process.exit(2) }
const { lines, machine } = readRun(dir)
const results = lines('results.jsonl')
const skipped = lines('skipped.jsonl')
const notes = lines('notes.jsonl')

const onNode = (v) => (machine.baseline_node ? ` on Node ${v}` : '')
const ROWS = [
  ['shardtrack', `Shardtrack, open mode${onNode(machine.node)}`],
  ['baseline', `Shardtrack, open mode${onNode(machine.baseline_node)}`],
  ['shardtrack-private', 'Shardtrack, private mode (BEP 41 passkey)'],
  ['opentracker', 'opentracker (Debian)'],
  ['hello', 'hello: Node dgram, fixed answers (ceiling)'],
]

const sum = (xs) => xs.reduce((a, b) => a + b, 0)

const out = []
out.push(`## UDP announce benchmark — ${machine.date ?? ''}`)
out.push('')
out.push(`Machine: ${machine.nproc ?? '?'} cores, ${machine.cpu ?? '?'}; Node ${machine.node ?? '?'}; ${machine.kernel ?? ''}; ` +
  `opentracker ${machine.opentracker ?? '?'}; Shardtrack commit ${machine.commit ?? '?'}; load average at start ${machine.load_average ?? '?'}; ` +
  `net.core.rmem_default ${machine.rmem_default ?? '?'}, rmem_max ${machine.rmem_max ?? '?'}.`)
out.push(`Server on core ${machine.server_cpu ?? 0}, load generator (bench/udp-load.mjs, one Node process) on core ${machine.load_cpu ?? 1}; ` +
  `${machine.rounds ?? '?'} interleaved rounds × ${machine.seconds ?? '?'} s after a ${machine.warmup ?? '?'} s warm-up; ` +
  `${machine.sockets ?? '?'} client sockets, window ${machine.window ?? '?'} requests in flight, timeout ${machine.timeout_ms ?? '?'} ms, ` +
  `target ${machine.host ?? '127.0.0.1'}; workload: ${machine.pool ?? 'bench/pool.mjs defaults'}.`)
out.push('')
out.push('| Target | announces/s (median) | min – max | p50 ms | p99 ms | loss | errors / bad | peers / answer | generator CPU | server CPU | server CPU µs / answer |')
out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
const med = {}
for (const [target, label] of ROWS) {
  const rs = results.filter((r) => r.target === target)
  if (!rs.length) {
    const sk = skipped.find((s) => s.target === target)
    if (sk) out.push(`| ${label} | skipped: ${sk.reason} | | | | | | | | | |`)
    continue
  }
  const rps = rs.map((r) => r.rps)
  const m = {
    rps: median(rps),
    us: median(rs.map((r) => r.server_us_per_answer)),
    gen: median(rs.map((r) => r.gen_cpu_pct)),
    srv: median(rs.map((r) => r.server_cpu_pct)),
  }
  med[target] = m
  const lost = sum(rs.map((r) => r.lost)), answered = sum(rs.map((r) => r.answered))
  const loss = answered + lost ? (lost / (answered + lost)) * 100 : 0
  const errors = sum(rs.map((r) => r.errors)), bad = sum(rs.map((r) => r.bad))
  out.push(`| ${label} | **${fmt(m.rps)}** | ${fmt(Math.min(...rps))} – ${fmt(Math.max(...rps))} | ` +
    `${fmt(median(rs.map((r) => r.p50_ms)), 2)} | ${fmt(median(rs.map((r) => r.p99_ms)), 2)} | ${loss < 0.01 && lost ? '<0.01' : fmt(loss, 2)}% | ` +
    `${fmt(errors)} / ${fmt(bad)} | ${fmt(median(rs.map((r) => r.peers_per_answer)), 1)} | ` +
    `${fmt(m.gen)}%${m.gen >= 90 ? ' ⚠' : ''} | ${fmt(m.srv)}% | ${fmt(m.us, 1)} |`)
}
out.push('')
out.push('announces/s: valid announce answers per second of the measured window. Loss: requests not answered within the timeout ' +
  '(no retransmissions), over all rounds. Generator CPU ⚠ (≥ 90%): the load generator is saturated, so that row is a lower bound ' +
  'of what the server can do; compare server CPU µs / answer instead. Server CPU counts every thread of the server process ' +
  '(Shardtrack: acceptor and shard worker), over the measured window only.')
out.push('')

const ratio = (a, b, name, bname) => {
  if (!med[a] || !med[b]) return
  const t = med[a].rps / med[b].rps
  const c = med[b].us / med[a].us
  const bound = med[b].gen >= 90 ? ` (the ${bname} row is generator-bound: its real throughput is higher, so this ratio flatters ${name})` : ''
  out.push(`- **${name} / ${bname}:** ${fmt(t * 100)}% of the throughput${bound}; ${fmt(c * 100)}% of its CPU efficiency ` +
    `(${fmt(med[a].us, 1)} vs ${fmt(med[b].us, 1)} server µs per answer).`)
}
out.push('Ratios (medians):')
out.push('')
ratio('shardtrack', 'hello', 'Shardtrack', 'Node ceiling')
ratio('shardtrack', 'opentracker', 'Shardtrack', 'opentracker')
ratio('shardtrack-private', 'shardtrack', 'Shardtrack private', 'Shardtrack open')
ratio('shardtrack-private', 'opentracker', 'Shardtrack private', 'opentracker')
ratio('shardtrack', 'baseline', `Shardtrack on Node ${machine.node}`, `Shardtrack on Node ${machine.baseline_node}`)
out.push('')

const errs = results.filter((r) => r.errors > 0 || r.bad > 0 || r.stall_reconnects > 0 || r.id_refused > 0)
if (errs.length) {
  out.push('Errors and reconnects:')
  out.push('')
  for (const r of errs) {
    out.push(`- ${r.target} round ${r.round}: ${r.errors} errors ${JSON.stringify(r.error_messages)}, ${r.bad} bad` +
      `${r.bad_sample ? ` (first: ${r.bad_sample})` : ''}, ${r.id_refused} refused connection ids, ${r.stall_reconnects} stall reconnects`)
  }
  out.push('')
}
const drops = results.filter((r) => r.drops_server > 0 || r.drops_generator > 0)
if (drops.length) {
  out.push('Socket receive-buffer drops (/proc/net/udp): ' + drops.map((r) => `${r.target} r${r.round}: server ${r.drops_server}, generator ${r.drops_generator}`).join('; ') + '.')
  out.push('')
}
for (const n of notes) out.push(`Note: ${n.note}`)
if (notes.length) out.push('')
process.stdout.write(out.join('\n') + '\n')

// The Markdown report of one bench/suite.mjs run: medians over the rounds, Shardtrack next to
// its rivals as ratios, the scaling run, the memory per peer.
//
//   node bench/lib/suite-report.mjs bench/results/suite-<stamp>.json   (prints it again)

import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (!s.length) return NaN
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
export const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '–')

/** Medians of one target's rounds of one scenario (undefined when none succeeded). */
function summarize(ms) {
  const ok = ms.filter((m) => !m.error)
  if (!ok.length) return undefined
  const med = (k) => median(ok.map((m) => m[k]))
  return {
    rounds: ok.length, failed: ms.length - ok.length, rps: med('rps'), min: Math.min(...ok.map((m) => m.rps)), max: Math.max(...ok.map((m) => m.rps)),
    p50: med('p50_ms'), p99: med('p99_ms'), p999: med('p999_ms'), cpu: med('server_cpu_pct'), us: med('server_us_per_req'),
    rss: med('server_rss_mb'), gen: med('gen_cpu_pct'), errors: ok.reduce((x, m) => x + (m.errors ?? 0), 0),
    bad: ok.reduce((x, m) => x + (m.bad ?? 0), 0), checked: ok.reduce((x, m) => x + (m.checked ?? 0), 0),
    loss: med('loss_pct'), ledger: med('ledger_committed_per_s'), backlog: med('ledger_backlog'), offers: med('offers_relayed_per_s'),
  }
}

export function report(r) {
  const { machine: mc, options: o } = r
  const out = []
  const label = (id) => r.targets.find((t) => t.id === id)?.label ?? id
  const get = (t, s) => summarize(r.measurements.filter((m) => m.target === t && m.scenario === s))
  out.push(`## Benchmark suite — ${mc.date.slice(0, 16).replace('T', ' ')} UTC`, '')
  out.push(`Machine: ${mc.cores} cores (${mc.cpu}), ${mc.memory_gib} GiB, ${mc.kernel}; Node ${mc.node}; ${mc.wrk ?? 'no wrk'}; Shardtrack ${mc.commit}; ` +
    `load average at start ${mc.load_average}. Servers on cores ${mc.server_cpus}, generators on ${mc.load_cpus}.`)
  out.push(`${o.rounds} interleaved round${o.rounds > 1 ? 's' : ''} × ${o.duration} s after a ${o.warmup} s warm-up; ${o.connections} HTTP connections; ` +
    `${fmt(o.torrents)} torrents (Zipf 1: a few huge swarms, a long tail), ${fmt(o.peers)} peers (~30% seeders) announced once before the rounds; ` +
    `numwant 50, compact. Whole run: ${Math.round(r.seconds / 60)} min.`, '')
  for (const t of r.targets.filter((t) => t.version || t.database)) out.push(`- ${t.label}: ${t.version ? `version ${t.version}` : ''}${t.database ? `ledger on ${t.database}` : ''}`)
  out.push('')

  out.push('| Scenario | Target | Generator | requests/s (median) | min – max | p50 ms | p99 ms | p99.9 ms | errors (all rounds) | bad / checked (all rounds) | server CPU | µs CPU / request | server RSS MiB | generator CPU |')
  out.push('|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  const extra = []
  for (const sc of r.scenarios) {
    for (const t of r.targets) {
      const s = get(t.id, sc.id)
      const failed = r.measurements.find((m) => m.target === t.id && m.scenario === sc.id && m.error)
      if (!s) { if (failed) out.push(`| ${sc.label} | ${label(t.id)} | ${sc.generator} | failed: ${failed.error} | | | | | | | | | | |`); continue }
      const warn = s.gen >= 90 ? ' ⚠' : ''
      out.push(`| ${sc.label} | ${label(t.id)} | ${sc.generator} | **${fmt(s.rps)}** | ${fmt(s.min)} – ${fmt(s.max)} | ${fmt(s.p50, 2)} | ${fmt(s.p99, 2)} | ${fmt(s.p999, 2)} | ` +
        `${fmt(s.errors)}${s.failed ? ` (${s.failed} round${s.failed > 1 ? 's' : ''} failed)` : ''} | ${fmt(s.bad)} / ${fmt(s.checked)} | ${fmt(s.cpu)}% | ${fmt(s.us, 1)} | ${fmt(s.rss)} | ${fmt(s.gen)}%${warn} |`)
      if (Number.isFinite(s.loss) && s.loss > 0) extra.push(`${sc.label}, ${label(t.id)}: ${fmt(s.loss, 2)}% of requests unanswered within 1 s.`)
      const ev = r.measurements.find((m) => m.target === t.id && m.scenario === sc.id && m.events)?.events
      if (ev) {
        const n = Object.values(ev).reduce((x, y) => x + y, 0)
        const pct = (k) => `${fmt((ev[k] / n) * 100, 1)}%`
        extra.push(`${sc.label}, ${label(t.id)}, requests sent in round 1: ${pct('none')} regular announces, ${pct('started')} started, ${pct('completed')} completed, ${pct('stopped')} stopped, ${pct('scrape')} scrapes.`)
      }
      if (Number.isFinite(s.offers)) extra.push(`${sc.label}, ${label(t.id)}: ${fmt(s.offers)} offers relayed a second.`)
      if (Number.isFinite(s.ledger)) extra.push(`${sc.label}, ${label(t.id)}: the ledger committed ${fmt(s.ledger)} records a second while the load ran; ${fmt(s.backlog)} waited in the journal at its end.`)
    }
  }
  out.push('')
  for (const e of extra) out.push(`- ${e}`)
  if (extra.length) out.push('')

  // Shardtrack against each rival, scenario by scenario
  const rivals = r.targets.filter((t) => t.rival)
  const rows = []
  for (const sc of r.scenarios) {
    const mine = get('shardtrack', sc.id)
    if (!mine) continue
    const cells = rivals.map((t) => {
      const x = get(t.id, sc.id)
      return x ? `${fmt(mine.rps / x.rps, 2)}× | ${fmt(x.us / mine.us, 2)}×` : '– | –'
    })
    if (cells.some((c) => c !== '– | –')) rows.push(`| ${sc.label} | ${cells.join(' | ')} |`)
  }
  if (rows.length) {
    out.push(`| Shardtrack ÷ rival | ${rivals.map((t) => `${t.label}: requests/s | CPU per request, rival ÷ Shardtrack`).join(' | ')} |`)
    out.push(`|---|${rivals.map(() => '---:|---:').join('|')}|`)
    out.push(...rows, '')
    out.push('Above 1: Shardtrack answers more a second, or spends less CPU per answer. The CPU ratio stays meaningful where a generator, not the server, is the limit.', '')
  }
  const open = get('shardtrack', 'mixed'), priv = get('shardtrack-private', 'private')
  if (open && priv) {
    out.push(`Private mode with the ledger ÷ open mode, mixed traffic: requests/s ${fmt(priv.rps / open.rps, 2)}×, CPU per request ${fmt(priv.us / open.us, 2)}×.`, '')
  }

  const scaling = r.targets.filter((t) => t.scaling).map((t) => ({ t, s: get(t.id, 'scaling') })).filter((x) => x.s)
  if (scaling.length) {
    const one = scaling.find((x) => x.t.shards === 1)?.s
    out.push('| Shard threads | requests/s (median) | p99 ms | server CPU | µs CPU / request | × one shard |')
    out.push('|---:|---:|---:|---:|---:|---:|')
    for (const { t, s } of scaling) out.push(`| ${t.shards} | **${fmt(s.rps)}** | ${fmt(s.p99, 2)} | ${fmt(s.cpu)}% | ${fmt(s.us, 1)} | ${one ? fmt(s.rps / one.rps, 2) : '–'} |`)
    out.push('')
    const serverCores = mc.server_cpus === 'all' ? mc.cores : mc.server_cpus.split(',').reduce((n, p) => { const [x, y] = p.split('-').map(Number); return n + (y === undefined ? 1 : y - x + 1) }, 0)
    out.push(`The servers had ${serverCores} core${serverCores > 1 ? 's' : ''}: beyond ${serverCores} shard thread${serverCores > 1 ? 's' : ''} the acceptor and the shards share them, so this machine can only show what threads cost; a machine with more cores shows the growth.`, '')
  }

  if (r.memory.length) {
    out.push('| Memory | peers | torrents | RSS before → after | bytes per peer |')
    out.push('|---|---:|---:|---:|---:|')
    for (const m of r.memory) out.push(`| ${label(m.target)} | ${fmt(m.peers)} | ${fmt(m.torrents)} | ${fmt(m.rss_before / 2 ** 20)} → ${fmt(m.rss_after / 2 ** 20)} MiB | **${fmt(m.bytes_per_peer, 1)}** |`)
    out.push('', 'A fresh server, every peer announced once (event=started, numwant 0), RSS read after a few seconds of quiet.', '')
  }
  if (r.skipped.length) {
    out.push('Skipped:')
    for (const s of r.skipped) out.push(`- ${label(s.target)}${s.scenario ? ` (${s.scenario})` : ''}: ${s.reason}`)
    out.push('')
  }
  out.push('requests/s: answers counted over the measured window. p50/p99/p99.9: latency of an answer (wrk and autocannon from the request\'s write, ' +
    'UDP from the datagram\'s send, WebSocket from the announce\'s send). errors: connection errors, timeouts and non-2xx answers ' +
    '(UDP: error packets); bad: answers that are not a bencoded dictionary with peers (or files) or that carry a failure reason, of those checked ' +
    '(wrk: every answer of its warm-up; autocannon: every 1000th; UDP: every one). Server CPU: all its threads over the window (100% = one core); ' +
    'µs CPU / request = server CPU time ÷ answers, comparable even where the generator is the limit. ⚠: generator CPU ≥ 90%: the generator, ' +
    'not the server, may be the limit of that row. autocannon rows count latency in whole milliseconds (wrk, UDP and WebSocket in microseconds).')
  return out.join('\n') + '\n'
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.stdout.write(report(JSON.parse(readFileSync(process.argv[2], 'utf8'))))
}

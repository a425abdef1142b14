// How a load generator talks to bench/suite.mjs, on its stdout, one line each:
//   MEASURE            the measured window starts now (the suite reads the server's CPU)
//   PROGRESS <n>       answers counted so far in the window (every half second: the live rate)
//   RESULT {json}      the window is over: its figures (the suite reads the server's CPU again)
// (udp-load.mjs prints MEASURE and PROGRESS with --json only; RESULT always.)

import { performance } from 'node:perf_hooks'

/**
 * The measured window of a closed-loop generator: marks its start, reports `count()` every
 * half second, and resolves after `seconds` with the wall time and this process's CPU share.
 */
export async function measuredWindow(seconds, count, onStart) {
  onStart?.()
  process.stdout.write('MEASURE\n')
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  const timer = setInterval(() => process.stdout.write(`PROGRESS ${count()}\n`), 500)
  await new Promise((r) => setTimeout(r, seconds * 1000))
  clearInterval(timer)
  const wall = (performance.now() - t0) / 1000
  const c = process.cpuUsage(c0)
  return { wall, gen_cpu_pct: ((c.user + c.system) / 1e6 / wall) * 100 }
}

export const printResult = (r) => process.stdout.write('RESULT ' + JSON.stringify(r) + '\n')

/** Latency percentiles (ms) of a sorted array of latencies in ms. */
export function quantiles(sorted) {
  const q = (f) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))] : NaN)
  return { p50_ms: q(0.5), p99_ms: q(0.99), p999_ms: q(0.999), max_ms: sorted.length ? sorted[sorted.length - 1] : NaN }
}

/** `--key value`, `--key=value` and bare `--flag` options (flags listed in `flags`); a key
 *  given twice holds an array of its values. Exits with status 2 on anything else. */
export function parseArgs(argv, flags = []) {
  const a = {}
  for (let k = 0; k < argv.length; k++) {
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(argv[k])
    if (!m) { process.stderr.write(`unexpected argument ${argv[k]}\n`); process.exit(2) }
    const v = m[2] ?? (flags.includes(m[1]) ? true : argv[++k])
    a[m[1]] = m[1] in a ? [a[m[1]]].flat().concat(v) : v
  }
  return a
}

// What bench/lib/report.mjs (HTTP) and bench/udp-report.mjs (UDP) share: reading a results
// directory written by a run script, and the median and number formatting of the tables.

import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'

/** The JSON-lines files and machine.json of one results directory. */
export function readRun(dir) {
  const lines = (f) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [])
  return {
    lines,
    machine: existsSync(join(dir, 'machine.json')) ? JSON.parse(readFileSync(join(dir, 'machine.json'), 'utf8')) : {},
  }
}

export const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (!s.length) return NaN
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

export const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '–')

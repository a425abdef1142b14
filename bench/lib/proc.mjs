// What the benchmarks read of a running process and of the machine from /proc: CPU time
// (all threads), resident memory, and per-core busy time.

import { readFileSync } from 'node:fs'

/** CPU seconds of a process, all its threads, also those that have ended (utime + stime of
 *  /proc/PID/stat, in clock ticks of 10 ms: per-thread schedstat would miss ended threads,
 *  such as wrk's workers when it prints its result). */
export function processCpu(pid) {
  if (!pid) return NaN
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/.*\) /, '').split(' ')
    return (Number(f[11]) + Number(f[12])) / TICKS
  } catch { return NaN }
}
const TICKS = 100 // USER_HZ: 100 on every Linux architecture Node runs on

/** VmRSS of a process in bytes (NaN once it is gone). */
export function rssBytes(pid) {
  try { return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024 } catch { return NaN }
}

/** Per-core jiffies from /proc/stat: [{ busy, softirq, total }] by core index. */
export function coreTimes() {
  try {
    return readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d/.test(l)).map((l) => {
      const v = l.split(/\s+/).slice(1).map(Number) // user nice system idle iowait irq softirq steal
      const total = v.slice(0, 8).reduce((x, y) => x + y, 0)
      return { busy: total - v[3] - v[4], softirq: v[6], total }
    })
  } catch { return [] }
}

/** Busy and softirq percentages per core between two coreTimes() readings. */
export const coreDelta = (c0, c1) => c1.map((c, i) => {
  const t = c.total - c0[i].total
  return { core: i, busy_pct: t ? +(((c.busy - c0[i].busy) / t) * 100).toFixed(1) : null, softirq_pct: t ? +(((c.softirq - c0[i].softirq) / t) * 100).toFixed(1) : null }
})

#!/usr/bin/env node
// Announces per second with the ledger on versus off (`make bench-ledger`), private mode,
// keep-alive HTTP (wrk), the tracker pinned to core $BENCH_SERVER_CPU (0) and wrk to
// $BENCH_LOAD_CPU (1); PostgreSQL (127.0.0.1:5432, unpinned) shares the machine.
//
//   off: database.enabled = false (users and torrents from a registry file)
//   on:  the persistence thread on the local PostgreSQL (a scratch schema, dropped after),
//        or with --embedded on the embedded database (PGlite, on the tracker's own core)
//
// The same 200,000-peer pool as make bench (bench/pool.mjs), each peer a user's (2,000 users, every
// torrent registered). Rounds alternate off/on; the report gives medians. For "on" it also
// gives what the ledger committed while wrk ran (records per second, from the tracker's
// /metrics) and the backlog when wrk stopped, i.e. whether accounting keeps up.
// Every process started here is stopped by its PID; load goes to 127.0.0.1 only.
//
//   node bench/run-ledger.mjs [--seconds 10] [--warmup 2] [--rounds 3] [--port 18450] [--url postgres://…] [--embedded]
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes, createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { createPool, getPaths, whitelistText } from './pool.mjs'
import { ledgerCounters } from './lib/ledger.mjs'
import { migrate } from '../dist/persistence/migrate.js'
import { embeddedClient, startEmbedded } from '../dist/persistence/embedded.js'

const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : d }
const SECS = Number(arg('seconds', 10)), WARMUP = Number(arg('warmup', 2)), ROUNDS = Number(arg('rounds', 3))
const PORT = Number(arg('port', 18450)), URL = arg('url', 'postgres://postgres@127.0.0.1:5432/test')
const SCPU = process.env.BENCH_SERVER_CPU ?? '0', LCPU = process.env.BENCH_LOAD_CPU ?? '1'
const EMBEDDED = process.argv.includes('--embedded')
const USERS = 2000
const work = mkdtempSync(join(tmpdir(), 'shardtrack-ledger-bench-'))
const log = (m) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`)

// ---- workload: the bench pool, each peer owned by a user (by its peer_id) ----
const passkeys = Array.from({ length: USERS }, () => randomBytes(16).toString('hex'))
const pool = createPool()
const infoHashes = whitelistText(pool).trim().split('\n')
const owner = (path) => createHash('sha1').update(/peer_id=([^&]*)/.exec(path)[1]).digest().readUInt32BE(0) % USERS
const paths = getPaths(200_000, { pool }).map((p) => `/${passkeys[owner(p)]}${p}`)
const pathsFile = join(work, 'paths.txt')
writeFileSync(pathsFile, paths.join('\n') + '\n')
const registryFile = join(work, 'registry.toml')
writeFileSync(registryFile,
  passkeys.map((k, i) => `[[users]]\nid = ${i + 1}\npasskey = "${k}"\n`).join('') +
  infoHashes.map((h, i) => `[[torrents]]\nid = ${i + 1}\ninfo_hash = "${h}"\n`).join(''))

const schema = `st_bench_${randomBytes(4).toString('hex')}`
// the embedded database is seeded here, then handed to the tracker (closed before it starts)
const embedded = EMBEDDED ? await startEmbedded(join(work, 'data', 'pglite')) : undefined
const admin = embedded ? undefined : postgres(URL, { max: 1, onnotice: () => {} })
await admin?.unsafe(`CREATE SCHEMA ${schema}`)
const sql = embedded ? postgres({ ...embeddedClient(embedded.address), onnotice: () => {} }) : postgres(URL, { max: 1, onnotice: () => {}, connection: { search_path: schema } })
await migrate(sql)
// the same ids as the registry file
for (let i = 0; i < USERS; i += 500) {
  const ids = passkeys.slice(i, i + 500).map((_, j) => i + j + 1)
  await sql`INSERT INTO users (id, passkey) SELECT * FROM unnest(${ids}::bigint[], ${passkeys.slice(i, i + 500)}::text[])`
}
for (let i = 0; i < infoHashes.length; i += 1000) {
  const part = infoHashes.slice(i, i + 1000)
  await sql`INSERT INTO torrents (id, info_hash) SELECT id, decode(h, 'hex') FROM unnest(${part.map((_, j) => i + j + 1)}::bigint[], ${part}::text[]) AS x(id, h)`
}
if (embedded) {
  await sql.end({ timeout: 1 })
  await embedded.close()
}

let child
function startTracker(mode) {
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SHARDTRACK_') && k !== 'DATABASE_URL')),
    SHARDTRACK_HTTP__HOST: '127.0.0.1', SHARDTRACK_HTTP__PORT: String(PORT), SHARDTRACK_UDP__PORT: '0', SHARDTRACK_SHARDS__COUNT: '1',
    SHARDTRACK_TRACKER__PRIVATE: 'true', SHARDTRACK_LOG__LEVEL: 'warn', SHARDTRACK_ADMIN__PORT: String(PORT + 1),
    // one load generator stands for many clients: the per-address and per-passkey limits off (bench/run-limits.sh measures them)
    SHARDTRACK_LIMITS__ADDRESS_RATE: '0', SHARDTRACK_LIMITS__PASSKEY_RATE: '0', SHARDTRACK_LIMITS__ENFORCE_MIN_INTERVAL: 'false',
    SHARDTRACK_LIMITS__MAX_INFLIGHT_PER_ADDRESS: '0', SHARDTRACK_LIMITS__AUTOBAN_FAILURES: '0', SHARDTRACK_TRACKER__MAX_PEERS_PER_USER_TORRENT: '0',
    ...(mode === 'off'
      ? { SHARDTRACK_DATABASE__ENABLED: 'false', SHARDTRACK_REGISTRY__FILE: registryFile, SHARDTRACK_DATABASE__DATA_DIR: join(work, 'data-off') }
      : EMBEDDED
        ? { SHARDTRACK_DATABASE__DATA_DIR: join(work, 'data') }
        : { SHARDTRACK_DATABASE__URL: URL, SHARDTRACK_DATABASE__SCHEMA: schema, SHARDTRACK_DATABASE__DATA_DIR: join(work, 'data') }),
  }
  child = spawn('taskset', ['-c', SCPU, process.execPath, 'dist/engine/main.js'], { env, stdio: ['ignore', 'ignore', 'inherit'] })
  return new Promise((resolve, reject) => {
    const t0 = Date.now()
    const probe = () => {
      const r = spawnSync('curl', ['-s', '-m', '2', `http://127.0.0.1:${PORT}${paths[0]}`], { encoding: 'latin1' })
      if (r.stdout.startsWith('d') && !r.stdout.includes('failure reason')) return resolve()
      if (Date.now() - t0 > 30_000) return reject(new Error(`tracker (${mode}) not answering: ${r.stdout.slice(0, 100)}`))
      setTimeout(probe, 200)
    }
    probe()
  })
}
async function stopTracker() {
  const t0 = Date.now()
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  await exited
  child = undefined
  return (Date.now() - t0) / 1000
}
process.on('exit', () => child?.kill('SIGKILL'))
process.on('SIGINT', () => process.exit(130))

function wrk(seconds) {
  const r = spawnSync('taskset', ['-c', LCPU, 'wrk', '-t1', '-c100', `-d${seconds}s`, '-s', 'bench/wrk-paths.lua', `http://127.0.0.1:${PORT}`, '--', pathsFile],
    { encoding: 'utf8', env: { ...process.env, WRK_PATHS: pathsFile } })
  const m = /WRKJSON (\{.*\})/.exec(r.stdout)
  if (!m) throw new Error(`wrk: ${r.stdout}${r.stderr}`)
  return JSON.parse(m[1])
}

const results = { off: [], on: [] }
try {
  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of round % 2 ? ['off', 'on'] : ['on', 'off']) {
      await startTracker(mode)
      wrk(WARMUP)
      const before = mode === 'on' ? await ledgerCounters(PORT + 1) : undefined
      const w = wrk(SECS)
      const r = { rps: w.rps, requests: w.requests, p99: w.p99_ms, errors: w.err_read + w.err_connect + w.err_timeout + w.non2xx }
      if (before) {
        const after = await ledgerCounters(PORT + 1)
        r.committedPerSec = (after.committed - before.committed) / SECS
        r.backlog = after.journalled - after.committed // journalled, not yet in the database
      }
      r.shutdownSecs = await stopTracker()
      results[mode].push(r)
      log(`round ${round} ${mode}: ${Math.round(r.rps)} announces/s` + (mode === 'on' ? `, ledger committed ${Math.round(r.committedPerSec)} records/s while wrk ran, backlog at the end ${r.backlog} records, SIGTERM → exit ${r.shutdownSecs.toFixed(1)} s` : ''))
    }
  }
} finally {
  if (child) await stopTracker()
  if (!embedded) {
    await sql.end({ timeout: 1 })
    await admin.unsafe(`DROP SCHEMA ${schema} CASCADE`)
    await admin.end({ timeout: 1 })
  }
  rmSync(work, { recursive: true, force: true })
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
const off = median(results.off.map((r) => r.rps)), on = median(results.on.map((r) => r.rps))
console.log(`announces/s (private, keep-alive, ${ROUNDS} rounds × ${SECS} s, medians, ${EMBEDDED ? 'embedded database' : 'PostgreSQL'}): ledger off ${Math.round(off)}, on ${Math.round(on)} (${(on / off * 100).toFixed(0)}%); ` +
  `ledger committed ${Math.round(median(results.on.map((r) => r.committedPerSec)))} records/s while loaded`)
console.log(JSON.stringify(results))

#!/usr/bin/env node
// `make bench`: the whole benchmark suite in one command. Starts each tracker, fills it,
// measures every scenario in interleaved rounds, and writes JSON and Markdown results under
// bench/results/ (suite-<stamp>.json, .md; raw logs in suite-<stamp>/). A status line shows
// the phase, its elapsed time and the live rate; the summary tables are printed at the end.
//
//   node bench/suite.mjs [--duration 10] [--warmup 2] [--rounds 3] [--connections 100]
//       [--shards 1] [--torrents 10000] [--peers 200000] [--ws-sockets 2000] [--rss-peers 1000000]
//       [--scaling 1,2] [--only announce,udp-announce,…] [--targets shardtrack,opentracker,…]
//       [--no-rivals] [--no-scaling] [--quick] [--database-url postgres://…] [--out DIR]
//       [--server-cpus 0] [--load-cpus 1]
//   node bench/suite.mjs --target http://tracker:6969 [--target udp://tracker:6969] [--target ws://tracker:8000]
//
// Scenarios (ids for --only): see SCENARIOS below. Targets: Shardtrack (open mode, --shards
// shard threads); Shardtrack in private mode with the ledger on PostgreSQL (--database-url,
// default the local one; the embedded database when none answers); and, when installed, the
// rivals: opentracker (Debian's package: HTTP and UDP) and bittorrent-tracker's server (npm:
// HTTP, UDP, WebSocket). The scaling run measures Shardtrack with 1 … cores shard threads.
// --target measures a tracker somewhere else (another machine, or one started by hand): the
// base URL of its HTTP tracker (announces go to <base>/announce; a passkey belongs in the
// base: http://host/<passkey>), udp:// and ws:// for its other listeners. Nothing is started
// then, and the server's CPU and memory are not read.
//
// Generators (each a separate process pinned to the load cores, the servers to the others):
//   wrk (C; Debian's package) for HTTP announce and scrape, keep-alive and one connection per
//       request: autocannon, a Node process on one core, tops out near 30,000 requests/s here,
//       below what Shardtrack answers, so it would measure itself;
//   autocannon (bench/http-load.mjs) for the mixed traffic, whose clients keep per-peer state
//       (events and growing counters) that is JavaScript's to keep, and for keep-alive announces
//       and scrapes when wrk is missing (one connection per request is then skipped);
//   bench/udp-load.mjs and bench/ws-load.mjs: ours, since autocannon speaks neither UDP nor
//       WebSocket (UDP: a closed window of connected sockets, prebuilt packets; WebSocket:
//       thousands of browser-like peers each on its own socket, relaying offers).
// Each figure is the median of the rounds; the server's CPU (all threads, /proc) and its peak
// resident memory are read over the measured window. Every process started here is stopped by
// its PID when the run ends, also on Ctrl-C (and only those). Load goes only to the targets (127.0.0.1 unless
// --target). See bench/README.md for how to read the tables.

import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import dgram from 'node:dgram'
import { createPool, randomPeers, urlEncodeBytes, whitelistText, DEFAULTS } from './pool.mjs'
import { processCpu, rssBytes } from './lib/proc.mjs'
import { parseArgs } from './lib/gen.mjs'
import { ledgerCounters } from './lib/ledger.mjs'
import { report, fmt } from './lib/suite-report.mjs'

const ROOT = resolve(new URL('..', import.meta.url).pathname)
process.chdir(ROOT)
const a = parseArgs(process.argv.slice(2), ['no-rivals', 'no-scaling', 'quick', 'help'])
if (a.help) {
  process.stdout.write(readFileSync(new URL(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).join('\n') + '\n')
  process.exit(0)
}
const quick = !!a.quick
const num = (k, d) => (a[k] === undefined ? d : Number(a[k]))
const NPROC = os.availableParallelism()
const LOAD_CORES = Math.max(1, Math.floor(NPROC / 4))
/** Cores in a taskset list such as "0-2,5". */
const cpuCount = (list) => String(list).split(',').reduce((n, p) => { const [x, y] = p.split('-').map(Number); return n + (Number.isInteger(x) ? (y === undefined ? 1 : Math.max(0, y - x + 1)) : 0) }, 0)
const O = {
  duration: num('duration', quick ? 3 : 10),
  warmup: num('warmup', quick ? 1 : 2),
  rounds: num('rounds', quick ? 1 : 3),
  connections: num('connections', 100),
  shards: num('shards', 1),
  torrents: num('torrents', DEFAULTS.torrents),
  peers: num('peers', DEFAULTS.peers),
  wsSockets: num('ws-sockets', quick ? 500 : 2000),
  rssPeers: num('rss-peers', quick ? 100_000 : 1_000_000),
  users: num('users', 2000),
  scaling: a['no-scaling'] ? [] : (a.scaling ?? Array.from({ length: NPROC }, (_, i) => i + 1).join(',')).split(',').filter(Boolean).map(Number),
  databaseUrl: a['database-url'] ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  // the generators on the last quarter of the cores (the last one on up to 4 cores), the servers on the rest
  serverCpus: a['server-cpus'] ?? (NPROC > 1 ? `0-${NPROC - 1 - LOAD_CORES}` : '0'),
  loadCpus: a['load-cpus'] ?? (NPROC > 1 ? `${NPROC - LOAD_CORES}-${NPROC - 1}` : '0'),
  remote: [a.target ?? []].flat(),
}
for (const k of ['duration', 'warmup', 'rounds', 'connections', 'shards', 'torrents', 'peers', 'wsSockets', 'rssPeers', 'users']) {
  const min = ['duration', 'warmup', 'rounds', 'connections', 'shards', 'torrents', 'peers'].includes(k) ? 1 : 0
  if (!Number.isInteger(O[k]) || O[k] < min) { process.stderr.write(`suite: --${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} must be an integer ≥ ${min}\n`); process.exit(2) }
}
for (const k of ['server-cpus', 'load-cpus']) if (a[k] !== undefined && cpuCount(a[k]) === 0) { process.stderr.write(`suite: --${k}: a CPU list such as 0-2,5\n`); process.exit(2) }
const poolArgs = ['--torrents', String(O.torrents), '--peers', String(O.peers)]
const NODE = process.execPath
const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)
const OUT = resolve(a.out ?? join('bench', 'results', `suite-${stamp}`))
mkdirSync(OUT, { recursive: true })
const WORK = mkdtempSync(join(os.tmpdir(), 'shardtrack-suite-'))
const runLog = createWriteStream(join(OUT, 'run.log'))
const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0
const HAVE_WRK = have('wrk')
const HAVE_TASKSET = have('taskset') && NPROC > 1
const pin = (cpus, cmd) => (HAVE_TASKSET ? ['taskset', ['-c', cpus, ...cmd]] : [cmd[0], cmd.slice(1)])

// ---------------------------------------------------------------------------- output
const TTY = process.stderr.isTTY
let status = ''
function log(line) {
  runLog.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`)
  process.stderr.write((TTY && status ? '\r\x1b[K' : '') + line + '\n' + (TTY && status ? status : ''))
}
let statusLogged = 0
/** The status line: rewritten in place on a terminal; elsewhere (a log) a line every 5 s. */
function setStatus(s) {
  status = s
  if (TTY) process.stderr.write('\r\x1b[K' + s)
  else if (s && performance.now() - statusLogged >= 5000) { statusLogged = performance.now(); process.stderr.write(s + '\n') }
}

// ---------------------------------------------------------------------------- processes
const children = new Map() // name → ChildProcess (every process started here)
function start(name, cmd, args, env = {}) {
  const logf = createWriteStream(join(OUT, `${name}.log`))
  // (undefined values drop a variable: no SHARDTRACK_ or DATABASE_URL of the caller's reaches a tracker)
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout.pipe(logf, { end: false })
  child.stderr.pipe(logf, { end: false })
  children.set(name, child)
  child.once('close', () => { children.delete(name); logf.end() })
  return child
}
/** Runs a helper to its end (not blocking the loop: the status line and Ctrl-C stay live); its
 *  output is in OUT/<name>.log, its last stderr line and its stdout returned. */
function run(name, cmd, args, limitSecs) {
  return new Promise((res) => {
    const child = start(name, cmd, args)
    let out = '', err = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { err = (err + d).slice(-2000) })
    const kill = setTimeout(() => { log(`${name}: still running after ${limitSecs} s: stopped`); child.kill('SIGKILL') }, limitSecs * 1000)
    child.once('close', (code) => { clearTimeout(kill); res({ code, stdout: out, lastLine: err.trim().split('\n').pop() ?? '' }) })
  })
}
async function stop(name) {
  const c = children.get(name)
  if (!c) return
  const exited = new Promise((r) => c.once('close', r))
  c.kill('SIGTERM')
  if (await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])) return
  log(`${name} (pid ${c.pid}) ignored SIGTERM for 10 s: SIGKILL`)
  c.kill('SIGKILL')
  await exited
}
function cleanup() {
  for (const c of children.values()) c.kill('SIGKILL')
  rmSync(WORK, { recursive: true, force: true })
}
process.on('exit', cleanup)
process.on('SIGINT', () => { log('interrupted'); process.exit(130) })
process.on('SIGTERM', () => process.exit(143))

/** A free port for TCP and UDP alike (the trackers listen on both with one number). */
const portsGiven = new Set() // (a port just closed may come back from the kernel: never hand one out twice)
async function freePort() {
  for (;;) {
    const port = await new Promise((res, rej) => {
      const s = net.createServer().once('error', rej).listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)) })
    })
    // (ss where iproute2 is installed; else a bind test)
    const ss = spawnSync('ss', ['-lunH', `sport = :${port}`], { encoding: 'utf8' })
    const udpFree = ss.status === 0 ? ss.stdout.trim() === '' : await new Promise((res) => {
      const u = dgram.createSocket('udp4').once('error', () => res(false))
      u.bind(port, '127.0.0.1', () => u.close(() => res(true)))
    })
    if (udpFree && !portsGiven.has(port)) { portsGiven.add(port); return port }
  }
}

/** GET path; the body as latin1 ('' on any error). */
function get(port, path, host = '127.0.0.1') {
  return new Promise((res) => {
    const s = net.connect({ host, port }, () => s.end(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`))
    const parts = []
    s.setTimeout(3000, () => s.destroy())
    s.on('data', (d) => parts.push(d))
    s.on('close', () => { const t = Buffer.concat(parts).toString('latin1'); res(t.slice(t.indexOf('\r\n\r\n') + 4)) })
    s.on('error', () => {})
  })
}

// ---------------------------------------------------------------------------- workload
const pool = createPool({ torrents: O.torrents, peers: O.peers })
writeFileSync(join(WORK, 'whitelist.txt'), whitelistText(pool))
const announcePeers = randomPeers(O.peers, pool) // as getPaths(peers)
const announcePaths = Array.from(announcePeers, (i) => pool.path(i))
/** The wrk paths files of a target (under its base path): announces, and scrapes of one info_hash. */
const pathsKeys = new Map()
function pathsFiles(base = '') {
  if (!pathsKeys.has(base)) pathsKeys.set(base, pathsKeys.size)
  const id = pathsKeys.get(base)
  const ann = join(WORK, `paths-${id}-announce.txt`), scr = join(WORK, `paths-${id}-scrape.txt`)
  if (!existsSync(ann)) {
    writeFileSync(ann, announcePaths.map((p) => base + p).join('\n') + '\n')
    writeFileSync(scr, Array.from(randomPeers(O.peers, pool), (i) => `${base}/scrape?info_hash=${urlEncodeBytes(pool.infoHashes, 20 * pool.peerTorrent[i], 20)}`).join('\n') + '\n')
  }
  return { announce: ann, scrape: scr }
}
const probePath = announcePaths[0]

const SCENARIOS = [
  { id: 'announce', label: 'HTTP announce, keep-alive', proto: 'http', gen: HAVE_WRK ? 'wrk' : 'autocannon', mode: 'announce' },
  { id: 'announce-close', label: 'HTTP announce, one connection per request', proto: 'http', gen: 'wrk', mode: 'announce', close: true },
  { id: 'scrape', label: 'HTTP scrape (one info_hash), keep-alive', proto: 'http', gen: HAVE_WRK ? 'wrk' : 'autocannon', mode: 'scrape' },
  { id: 'mixed', label: 'HTTP mixed traffic (10 announces : 1 scrape, events, growing counters), keep-alive', proto: 'http', gen: 'autocannon', mode: 'mixed' },
  { id: 'private', label: 'HTTP mixed traffic, private mode (passkeys), ledger on', proto: 'http', gen: 'autocannon', mode: 'mixed', private: true },
  { id: 'udp-announce', label: 'UDP announce', proto: 'udp', gen: 'udp' },
  { id: 'udp-scrape', label: 'UDP scrape (one info_hash)', proto: 'udp', gen: 'udp', scrape: true },
  { id: 'ws', label: `WebSocket announce with 5 offers (${fmt(O.wsSockets)} peers in swarms of 10)`, proto: 'ws', gen: 'ws' },
  { id: 'scaling', label: 'HTTP announce, keep-alive, by shard threads', proto: 'http', gen: HAVE_WRK ? 'wrk' : 'autocannon', mode: 'announce' },
]
const only = a.only ? new Set(a.only.split(',')) : null
const wanted = (s) => !only || only.has(s) // (and 'memory': the memory-per-peer runs)

// ---------------------------------------------------------------------------- targets
const skipped = [] // { target, scenario?, reason }
function skip(target, reason, scenario) { skipped.push({ target, scenario, reason }); log(`SKIP ${target}${scenario ? ` ${scenario}` : ''}: ${reason}`) }

// every per-address and per-passkey limit off (why: bench/lib/no-limits.env)
const NO_LIMITS = Object.fromEntries(readFileSync('bench/lib/no-limits.env', 'utf8').split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split('=')))
const targets = []
if (O.remote.length) {
  const t = { id: 'remote', label: 'remote tracker', kind: 'remote', scenarios: [] }
  for (const u of O.remote) {
    const url = new URL(u)
    if (url.protocol === 'http:') { t.http = url; t.scenarios.push('announce', 'announce-close', 'scrape', 'mixed') }
    else if (url.protocol === 'udp:') { t.udp = url; t.scenarios.push('udp-announce', 'udp-scrape') }
    else if (url.protocol === 'ws:') { if (url.pathname === '/') url.pathname = '/announce'; t.ws = url; t.scenarios.push('ws') }
    else { process.stderr.write(`suite: --target ${u}: http://, udp:// or ws:// (TLS endpoints: measure the tracker behind the proxy)\n`); process.exit(2) }
  }
  targets.push(t)
} else {
  const all = ['announce', 'announce-close', 'scrape', 'mixed', 'udp-announce', 'udp-scrape', 'ws']
  targets.push({ id: 'shardtrack', label: `Shardtrack (${O.shards} shard${O.shards > 1 ? 's' : ''})`, kind: 'shardtrack', shards: O.shards, scenarios: all })
  targets.push({ id: 'shardtrack-private', label: 'Shardtrack, private + ledger', kind: 'shardtrack', shards: O.shards, private: true, scenarios: ['private'] })
  // one node of two replicating through Redis (a redis-server of the run's own; the second node,
  // which merges what this one publishes, on the generators' cores)
  targets.push({ id: 'shardtrack-replicated', label: 'Shardtrack, replicated (2 nodes, Redis)', kind: 'shardtrack', shards: O.shards, replicated: true, scenarios: ['announce', 'mixed', 'udp-announce'] })
  if (!a['no-rivals']) {
    targets.push({ id: 'opentracker', label: 'opentracker', kind: 'opentracker', rival: true, scenarios: ['announce-close', 'udp-announce', 'udp-scrape'] })
    targets.push({ id: 'bittorrent-tracker', label: 'bittorrent-tracker', kind: 'bt', rival: true, scenarios: ['announce', 'announce-close', 'scrape', 'mixed', 'udp-announce', 'udp-scrape', 'ws'] })
  }
  for (const n of O.scaling) targets.push({ id: `shards-${n}`, label: `Shardtrack, ${n} shard${n > 1 ? 's' : ''}`, kind: 'shardtrack', shards: n, scaling: true, scenarios: ['scaling'] })
}
const filterTargets = a.targets ? new Set(a.targets.split(',')) : null
for (const t of targets) t.scenarios = t.scenarios.filter((s) => wanted(s) && (!filterTargets || filterTargets.has(t.id)))

/** The ledger database of the private target: a scratch schema on PostgreSQL, else the embedded one. */
async function ledgerDatabase(t) {
  const { default: postgres } = await import('postgres')
  const { migrate } = await import('../dist/persistence/migrate.js')
  const passkeys = Array.from({ length: O.users }, () => randomBytes(16).toString('hex'))
  const hashes = whitelistText(pool).trim().split('\n')
  let sql, env, cleanupDb
  const probe = postgres(O.databaseUrl, { max: 1, onnotice: () => {}, connect_timeout: 3 })
  try {
    await probe`SELECT 1`
    const schema = `st_suite_${randomBytes(4).toString('hex')}`
    await probe.unsafe(`CREATE SCHEMA ${schema}`)
    sql = postgres(O.databaseUrl, { max: 1, onnotice: () => {}, connection: { search_path: schema } })
    env = { SHARDTRACK_DATABASE__URL: O.databaseUrl, SHARDTRACK_DATABASE__SCHEMA: schema }
    t.database = `PostgreSQL (${new URL(O.databaseUrl).host}, schema ${schema})`
    cleanupDb = async () => { await probe.unsafe(`DROP SCHEMA ${schema} CASCADE`).catch(() => {}); await probe.end({ timeout: 1 }) }
  } catch (e) {
    await probe.end({ timeout: 1 }).catch(() => {})
    log(`no PostgreSQL at ${O.databaseUrl} (${e.message}): the private target uses the embedded database`)
    const { embeddedClient, startEmbedded } = await import('../dist/persistence/embedded.js')
    const embedded = await startEmbedded(join(t.dataDir, 'pglite'))
    sql = postgres({ ...embeddedClient(embedded.address), onnotice: () => {} })
    sql.closeEmbedded = () => embedded.close()
    env = {}
    t.database = 'embedded (PGlite)'
    cleanupDb = async () => {}
  }
  await migrate(sql)
  for (let i = 0; i < passkeys.length; i += 500) {
    const part = passkeys.slice(i, i + 500)
    await sql`INSERT INTO users (id, passkey) SELECT * FROM unnest(${part.map((_, j) => i + j + 1)}::bigint[], ${part}::text[])`
  }
  for (let i = 0; i < hashes.length; i += 1000) {
    const part = hashes.slice(i, i + 1000)
    await sql`INSERT INTO torrents (id, info_hash) SELECT id, decode(h, 'hex') FROM unnest(${part.map((_, j) => i + j + 1)}::bigint[], ${part}::text[]) AS x(id, h)`
  }
  await sql.end({ timeout: 1 })
  await sql.closeEmbedded?.()
  t.passkeysFile = join(WORK, 'passkeys.txt')
  writeFileSync(t.passkeysFile, passkeys.join('\n') + '\n')
  t.cleanupDb = cleanupDb
  return env
}

/** A redis-server of the run's own (in memory, on a free port) and the second node of a
 *  replicated target; t.env then joins t's node to them. */
async function startReplication(t) {
  if (!have('redis-server')) { skip(t.id, 'redis-server is not installed (apt-get install -y redis-server)'); return false }
  const redisPort = await freePort()
  const [rc, ra] = pin(O.loadCpus, ['redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', WORK])
  start(`${t.id}-redis`, rc, ra)
  t.aux = [`${t.id}-redis`]
  const redis = { SHARDTRACK_REDIS__URL: `redis://127.0.0.1:${redisPort}`, SHARDTRACK_REDIS__PREFIX: 'bench' }
  const peer = { id: `${t.id}-node-b`, kind: 'shardtrack', shards: 1, env: { ...redis, SHARDTRACK_REDIS__NODE_NAME: 'b' }, serverCpus: O.loadCpus }
  t.aux.push(peer.id)
  if (!(await startTarget(peer))) { skip(t.id, 'its second node did not start'); return false }
  t.env = { ...redis, SHARDTRACK_REDIS__NODE_NAME: 'a' }
  return true
}

/** Starts target t and waits until it answers `probe` (an announce path) with peers. */
async function startTarget(t, o = {}) {
  try {
    return await startTargetOnce(t, o)
  } catch (e) {
    skip(t.id, `could not start: ${e.message}`)
    await stop(t.id)
    return false
  }
}
async function startTargetOnce(t, { probe = probePath, whitelist = join(WORK, 'whitelist.txt') } = {}) {
  if (t.replicated && !(await startReplication(t))) return false
  if (t.kind === 'remote') return true
  t.port = await freePort()
  t.dataDir = join(WORK, `${t.id}-data`)
  mkdirSync(t.dataDir, { recursive: true, mode: 0o700 })
  let child
  if (t.kind === 'shardtrack') {
    if (!existsSync('dist/engine/main.js')) { skip(t.id, 'dist/engine/main.js is not built (make build)'); return false }
    t.adminPort = await freePort()
    const env = {
      ...NO_LIMITS, SHARDTRACK_HTTP__HOST: '127.0.0.1', SHARDTRACK_HTTP__PORT: String(t.port), SHARDTRACK_UDP__HOST: '127.0.0.1',
      SHARDTRACK_UDP__PORT: String(t.port), SHARDTRACK_SHARDS__COUNT: String(t.shards), SHARDTRACK_ADMIN__HOST: '127.0.0.1',
      SHARDTRACK_ADMIN__PORT: String(t.adminPort), SHARDTRACK_DATABASE__DATA_DIR: t.dataDir, SHARDTRACK_LOG__LEVEL: 'warn',
      SHARDTRACK_REGISTRY__FILE: '', DATABASE_URL: undefined,
      // checkpoints only at shutdown: an idle target must not write one during another's window
      SHARDTRACK_CHECKPOINT__INTERVAL_SECONDS: '0',
      ...(t.private ? { SHARDTRACK_TRACKER__PRIVATE: 'true', ...(await ledgerDatabase(t)) } : { SHARDTRACK_TRACKER__PRIVATE: 'false', SHARDTRACK_DATABASE__ENABLED: 'false' }),
      ...t.env,
    }
    for (const k of Object.keys(process.env)) if (k.startsWith('SHARDTRACK_') && !(k in env)) env[k] = undefined
    const [cmd, args] = pin(t.serverCpus ?? O.serverCpus, [NODE, 'dist/engine/main.js'])
    child = start(t.id, cmd, args, env)
    // private: the probe's peer announces with its owner's passkey (http-load.mjs: peer i is passkey i mod users')
    if (t.passkeysFile) { const pk = readFileSync(t.passkeysFile, 'latin1').split('\n').filter(Boolean); t.base = '/' + pk[announcePeers[0] % pk.length] }
  } else if (t.kind === 'opentracker') {
    if (!have('opentracker')) { skip(t.id, 'not installed (apt-get install -y opentracker)'); return false }
    const d = join(WORK, t.id)
    mkdirSync(d, { mode: 0o755 })
    chmodSync(d, 0o755) // it chroots here and reads the whitelist as nobody
    copyFileSync(whitelist, join(d, 'whitelist.txt'))
    chmodSync(join(d, 'whitelist.txt'), 0o644)
    writeFileSync(join(d, 'opentracker.conf'), `listen.tcp 127.0.0.1:${t.port}\nlisten.udp 127.0.0.1:${t.port}\ntracker.rootdir ${d}\ntracker.user nobody\naccess.whitelist whitelist.txt\n`)
    const [cmd, args] = pin(O.serverCpus, ['opentracker', '-f', join(d, 'opentracker.conf')])
    child = start(t.id, cmd, args)
    t.version = spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'opentracker'], { encoding: 'utf8' }).stdout || '?'
  } else if (t.kind === 'bt') {
    const [cmd, args] = pin(O.serverCpus, [NODE, 'bench/servers.mjs', 'bt', String(t.port)])
    child = start(t.id, cmd, args)
    try { t.version = JSON.parse(readFileSync('node_modules/bittorrent-tracker/package.json', 'utf8')).version } catch { t.version = '?' }
  }
  t.pid = child.pid
  t.base ??= ''
  // ready when an announce is answered with peers (opentracker loads its whitelist in the background)
  const t0 = Date.now()
  for (;;) {
    if (!children.has(t.id)) { skip(t.id, `exited at start (see ${join(OUT, t.id + '.log')})`); return false }
    const body = await get(t.port, t.base + probe)
    // (a replicated node answers once it has joined: /ready)
    if (body.startsWith('d') && body.includes('5:peers') && !body.includes('failure reason') &&
      (!t.env?.SHARDTRACK_REDIS__URL || (await get(t.adminPort, '/ready')).includes('"status":"ready"'))) return true
    if (Date.now() - t0 > 30_000) { skip(t.id, `no announce answered within 30 s (last answer: ${body.slice(0, 80)})`); await stop(t.id); return false }
    await sleep(200)
  }
}

// ---------------------------------------------------------------------------- generators
/**
 * Runs one generator to its end, reading the MEASURE / PROGRESS / RESULT lines (bench/lib/gen.mjs):
 * the server's CPU over the window and its peak memory. `onTick(answers, seconds)` drives the status line.
 */
function runGenerator(name, cmd, args, t, onTick, limitSecs, hooks = {}) {
  return new Promise((resolveRun) => {
    let atStart, atEnd // (hooks.read(): a promise of extra readings at the window's start and end)
    const [c, ar] = pin(O.loadCpus, [cmd, ...args])
    const child = start(name, c, ar)
    // the server's and the generator's CPU over the window, from /proc (wrk reports none of its own)
    let cpu0, gen0, t0, rssMax = 0, result = null, cpu1, gen1, t1, lastCount = 0
    let genLast = NaN // the generator's CPU at the last sample: its own figure if it exits before its RESULT is read
    const sampler = setInterval(() => {
      if (t0 !== undefined && t.pid) rssMax = Math.max(rssMax, rssBytes(t.pid) || 0)
      if (t0 !== undefined && result === null) genLast = processCpu(child.pid)
      onTick(lastCount, t0 === undefined ? null : (performance.now() - t0) / 1000)
    }, 250)
    const kill = setTimeout(() => { log(`${name}: no result after ${limitSecs} s: stopped`); child.kill('SIGKILL') }, limitSecs * 1000)
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line === 'MEASURE') { cpu0 = processCpu(t.pid); gen0 = processCpu(child.pid); t0 = performance.now(); atStart = hooks.read?.() }
      else if (line.startsWith('PROGRESS ')) lastCount = Number(line.slice(9))
      else if (line.startsWith('RESULT ') || line.startsWith('WRKJSON ')) {
        cpu1 = processCpu(t.pid); gen1 = processCpu(child.pid); t1 = performance.now(); atEnd = hooks.read?.()
        try { result = JSON.parse(line.slice(line.indexOf(' ') + 1)) } catch { log(`${name}: unreadable result line: ${line.slice(0, 120)}`) }
      }
    })
    // 'close', not 'exit': every line of its output has been read by then
    child.once('close', async (code) => {
      clearInterval(sampler); clearTimeout(kill)
      if (!result || t0 === undefined) return resolveRun({ error: `${name} exited with ${code} and no result (see ${join(OUT, name + '.log')})` })
      if (atStart && atEnd) result.hooks = [await atStart.catch(() => null), await atEnd.catch(() => null)]
      const wall = (t1 - t0) / 1000
      result.requests ??= result.announces // (udp-load)
      result.server_cpu_pct = t.pid ? ((cpu1 - cpu0) / wall) * 100 : null
      result.server_us_per_req = t.pid ? ((cpu1 - cpu0) * 1e6) / result.requests : null
      result.gen_cpu_pct = (((Number.isFinite(gen1) ? gen1 : genLast) - gen0) / wall) * 100
      result.server_rss_mb = t.pid && rssMax ? rssMax / 2 ** 20 : null
      result.exit_code = code
      resolveRun(result)
    })
  })
}

function wrkArgs(t, sc, seconds, validate) {
  const files = pathsFiles(t.kind === 'remote' ? t.http.pathname.replace(/\/$/, '') : t.base)
  const host = t.kind === 'remote' ? t.http.origin : `http://127.0.0.1:${t.port}`
  const threads = sc.id === 'scaling' ? cpuCount(O.loadCpus) : 1
  return ['-t' + threads, '-c' + O.connections, `-d${seconds}s`, '-s', 'bench/wrk-paths.lua', host, '--', files[sc.mode], ...(sc.close ? ['close'] : []), ...(validate ? ['validate'] : [])]
}

/** One measurement of scenario `sc` on target `t` (round `r`). */
async function measure(t, sc, r, onTick) {
  const tag = `${t.id}.${sc.id}.r${r}`
  const limit = O.warmup + O.duration + 90
  let res
  if (sc.gen === 'wrk') {
    if (!HAVE_WRK) return { error: 'wrk is not installed (apt-get install -y wrk)' }
    // the warm-up checks every answer; the measured run checks none (wrk's Lua would be the limit)
    const warm = await runGenerator(`${tag}.warmup`, 'wrk', wrkArgs(t, sc, O.warmup, true), t, () => onTick(0, null), limit)
    res = await runGenerator(tag, 'wrk', wrkArgs(t, sc, O.duration, false), t, (n, s) => onTick(null, s), limit)
    if (res.error) return res
    res.checked = warm.checked ?? 0
    res.bad = warm.bad ?? 0
    // a server that closes after each answer without saying so shows up as one read error per request (wrk reads EOF)
    res.errors = res.err_connect + res.err_write + res.err_timeout + res.non2xx + (sc.close || t.kind === 'opentracker' ? 0 : res.err_read)
  } else if (sc.gen === 'autocannon') {
    const url = t.kind === 'remote' ? t.http.href : `http://127.0.0.1:${t.port}`
    res = await runGenerator(tag, NODE, ['bench/http-load.mjs', '--url', url, '--mode', sc.mode, '--duration', String(O.duration), '--warmup', String(O.warmup),
      '--connections', String(O.connections), ...poolArgs, ...(sc.private ? ['--passkeys', t.passkeysFile] : []),
      // the peers' sessions carry on from round to round (counters never go back)
      ...(sc.mode === 'mixed' ? ['--state', join(WORK, `${t.id}.mixed-state`)] : [])],
    t, onTick, limit, sc.private && t.adminPort ? { read: () => ledgerCounters(t.adminPort) } : {})
    if (res.hooks?.[0] && res.hooks[1]) {
      const [before, after] = res.hooks
      res.ledger_committed_per_s = (after.committed - before.committed) / res.seconds
      res.ledger_backlog = after.journalled - after.committed
    }
    delete res.hooks
  } else if (sc.gen === 'udp') {
    const host = t.kind === 'remote' ? t.udp.hostname.replace(/^\[|\]$/g, '') : '127.0.0.1'
    const port = t.kind === 'remote' ? t.udp.port : String(t.port)
    res = await runGenerator(tag, NODE, ['bench/udp-load.mjs', '--host', host, '--port', port, '--duration', String(O.duration), '--warmup', String(O.warmup),
      '--json', ...poolArgs, ...(sc.scrape ? ['--scrape'] : [])], t, onTick, limit)
  } else if (sc.gen === 'ws') {
    const url = t.kind === 'remote' ? t.ws.href : `ws://127.0.0.1:${t.port}/announce`
    res = await runGenerator(tag, NODE, ['bench/ws-load.mjs', '--url', url, '--sockets', String(O.wsSockets), '--duration', String(O.duration), '--warmup', String(O.warmup)], t, onTick, limit)
  }
  return res
}

/** Waits (up to a minute) until the ledger has committed what it journalled, so that its flush
 *  does not run into the next measurement. */
async function settle(t) {
  if (!t.private) return
  for (let k = 0; k < 120; k++) {
    const c = await ledgerCounters(t.adminPort)
    if (!(c.journalled > c.committed)) return
    setStatus(`[${elapsed()}] ${t.id}: the ledger commits its backlog (${fmt(c.journalled - c.committed)} records)`)
    await sleep(500)
  }
  log(`${t.id}: the ledger still had a backlog after a minute`)
}


/** A URL without its password and path (a passkey lives there): fit for the results. */
function redact(u) {
  try { const x = new URL(u); x.password = x.password && '***'; x.pathname = x.pathname.length > 1 ? '/…' : x.pathname; return x.href } catch { return '?' }
}

/** Stops what a target started besides itself (a replicated node's Redis and second node) and
 *  drops its ledger schema. */
async function stopAux(t) {
  for (const name of t.aux ?? []) await stop(name)
  await t.cleanupDb?.()
}

// ---------------------------------------------------------------------------- machine
const sh = (c) => { const r = spawnSync('sh', ['-c', c], { encoding: 'utf8' }); return r.status === 0 ? r.stdout.trim() : '?' }
const machine = {
  date: new Date().toISOString(), cores: NPROC, cpu: os.cpus()[0]?.model ?? '?', memory_gib: +(os.totalmem() / 2 ** 30).toFixed(1),
  kernel: `${os.type()} ${os.release()}`, node: process.version, wrk: HAVE_WRK ? sh('wrk -v 2>&1 | head -1 | cut -d" " -f1-2') : null,
  commit: sh('git rev-parse --short HEAD') + (sh('git status --porcelain -- . ":!bench/results"') ? ' (+ local changes)' : ''),
  load_average: os.loadavg().map((x) => x.toFixed(2)).join(' '), server_cpus: HAVE_TASKSET ? O.serverCpus : 'all', load_cpus: HAVE_TASKSET ? O.loadCpus : 'all',
}

// ---------------------------------------------------------------------------- run
const t00 = performance.now()
const elapsed = () => { const s = Math.round((performance.now() - t00) / 1000); return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}` }
log(`results: ${OUT}`)
log(`machine: ${NPROC} cores (${machine.cpu}), Node ${process.version}, load average ${machine.load_average}; servers on cores ${machine.server_cpus}, generators on ${machine.load_cpus}`)
if (NPROC < 2) log('warning: one core: servers and generators share it, so every figure is halved and noisy')
if (!HAVE_WRK) log('wrk is not installed (apt-get install -y wrk): HTTP keep-alive runs use autocannon, one-connection-per-request runs are skipped')

const live = []
for (const t of targets) {
  if (!t.scenarios.length) continue
  setStatus(`[${elapsed()}] starting ${t.id}`)
  if (!(await startTarget(t))) { await stopAux(t); continue }
  // every peer of the pool announced once, so the measured runs see full swarms
  const url = t.kind === 'remote' ? t.http?.href : `http://127.0.0.1:${t.port}`
  if (url) {
    setStatus(`[${elapsed()}] ${t.id}: announcing ${fmt(O.peers)} peers (prefill)`)
    const r = await run(`${t.id}.prefill`, ...pin(O.loadCpus, [NODE, 'bench/http-load.mjs', '--url', url, '--prefill', ...poolArgs,
      ...(t.kind === 'opentracker' ? ['--close'] : []), ...(t.passkeysFile ? ['--passkeys', t.passkeysFile] : [])]), 240)
    log(`${t.id}: ${r.lastLine}`)
  }
  await settle(t)
  live.push(t)
}

const plan = []
for (let r = 1; r <= O.rounds; r++) {
  for (const sc of SCENARIOS) {
    const ts = live.filter((t) => t.scenarios.includes(sc.id))
    // each round starts at a different target: no target always runs first (or last)
    for (let k = 0; k < ts.length; k++) plan.push({ t: ts[(k + r - 1) % ts.length], sc, r })
  }
}
const measurements = []
let done = 0
for (const { t, sc, r } of plan) {
  done++
  const head = `[${elapsed()}] ${done}/${plan.length} ${sc.id} · ${t.id} · round ${r}/${O.rounds}`
  if (sc.gen === 'wrk' && !HAVE_WRK) { if (r === 1) skip(t.id, 'wrk is not installed', sc.id); continue }
  if (!TTY) log(head)
  let last = { n: 0, s: 0 }
  const onTick = (n, s) => {
    if (s === null) return setStatus(`${head} · warm-up`)
    const rate = n !== null && s > last.s ? (n - last.n) / (s - last.s) : NaN
    if (n !== null) last = { n, s }
    setStatus(`${head} · ${fmt(s, 1)}/${O.duration} s${Number.isFinite(rate) ? ` · ${fmt(rate)}/s` : ''}`)
  }
  const res = await measure(t, sc, r, onTick)
  await settle(t)
  if (res.error) { log(`${t.id} ${sc.id} round ${r}: ${res.error}`); measurements.push({ target: t.id, scenario: sc.id, round: r, error: res.error }); continue }
  const m = { target: t.id, scenario: sc.id, round: r, generator: sc.gen, ...res }
  measurements.push(m)
  log(`${sc.id} · ${t.id} · round ${r}: ${fmt(m.rps)}/s, p50 ${fmt(m.p50_ms, 2)} ms, p99 ${fmt(m.p99_ms, 2)} ms, p99.9 ${fmt(m.p999_ms, 2)} ms, ` +
    `errors ${fmt(m.errors)}, bad ${fmt(m.bad)}/${fmt(m.checked)}` + (m.server_cpu_pct !== null ? `, server CPU ${fmt(m.server_cpu_pct)}% (${fmt(m.server_us_per_req, 1)} µs/request), RSS ${fmt(m.server_rss_mb)} MiB` : '') +
    `, generator CPU ${fmt(m.gen_cpu_pct)}%` + (m.ledger_backlog !== undefined ? `, ledger ${fmt(m.ledger_committed_per_s)} records/s committed, backlog ${fmt(m.ledger_backlog)}` : ''))
}
for (const t of live) {
  await stop(t.id)
  await stopAux(t)
  const text = existsSync(join(OUT, `${t.id}.log`)) ? readFileSync(join(OUT, `${t.id}.log`), 'utf8') : ''
  const bad = text.split('\n').filter((l) => /crash|fatal|uncaught/i.test(l))
  if (bad.length) log(`NOTE ${t.id}.log: ${bad.length} lines mention crash/fatal/uncaught: ${bad[0].slice(0, 160)}`)
}

// ---------------------------------------------------------------------------- memory per peer
const memory = []
if (!O.remote.length && O.rssPeers > 0 && wanted('memory')) {
  const rssTorrents = Math.max(1, Math.round(O.rssPeers / 20))
  const whitelist = join(WORK, 'rss-whitelist.txt')
  await run('memory-whitelist', NODE, ['bench/rss.mjs', '--write-whitelist', whitelist, '--peers', String(O.rssPeers), '--torrents', String(rssTorrents)], 120)
  const probe = (await run('memory-probe', NODE, ['bench/rss.mjs', '--print-probe', '--peers', String(O.rssPeers), '--torrents', String(rssTorrents)], 120)).stdout.trim()
  for (const base of targets.filter((t) => (t.id === 'shardtrack' || t.kind === 'opentracker') && (!filterTargets || filterTargets.has(t.id)))) {
    const t = { ...base, id: `memory-${base.id}`, scenarios: [] }
    setStatus(`[${elapsed()}] memory: ${fmt(O.rssPeers)} peers into a fresh ${base.id}`)
    if (!(await startTarget(t, { probe, whitelist }))) continue
    await sleep(2000) // start-up allocations settle before the "before" reading
    const r = await run(`${t.id}.rss`, ...pin(O.loadCpus, [NODE, 'bench/rss.mjs', '--pid', String(t.pid), '--url', `http://127.0.0.1:${t.port}`, '--peers', String(O.rssPeers),
      '--torrents', String(rssTorrents), '--time-limit', '300', '--json', ...(t.kind === 'opentracker' ? ['--close'] : [])]), 400)
    await stop(t.id)
    const line = r.stdout.split('\n').find((l) => l.startsWith('RSSJSON '))
    if (!line) { skip(t.id, `no result (${r.lastLine})`); continue }
    const res = { target: base.id, ...JSON.parse(line.slice(8)) }
    memory.push(res)
    log(`memory · ${base.id}: ${fmt(res.bytes_per_peer, 1)} bytes per peer (${fmt(res.peers)} peers, RSS ${fmt(res.rss_before / 2 ** 20)} → ${fmt(res.rss_after / 2 ** 20)} MiB)`)
  }
}

setStatus('')
const result = {
  machine, options: { ...O, wrk: HAVE_WRK, databaseUrl: redact(O.databaseUrl), remote: O.remote.map(redact) }, scenarios: SCENARIOS.map(({ id, label, gen }) => ({ id, label, generator: gen })),
  targets: targets.map(({ id, label, kind, shards, rival, scaling, version, database }) => ({ id, label, kind, shards, rival, scaling, version, database })),
  measurements, memory, skipped, seconds: Math.round((performance.now() - t00) / 1000),
}
const md = report(result)
writeFileSync(`${OUT}.json`, JSON.stringify(result, null, 1) + '\n')
writeFileSync(`${OUT}.md`, md)
process.stdout.write('\n' + md)
log(`results: ${OUT}.md and ${OUT}.json (raw logs in ${OUT}/), ${elapsed()} in all`)
for (const name of [...children.keys()]) await stop(name) // (none should be left)
runLog.end(() => process.exit(0))

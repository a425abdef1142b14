#!/usr/bin/env node
// How many accounting records per second the persistence thread commits to PostgreSQL:
// binary AccountingRecord records as the shards write them, decoded and written by persistence/ledger.ts
// (history, user totals, snatches; the peers table is gone since checkpoints) in batches,
// into a scratch schema that is dropped afterwards.
//
//   node bench/ledger-flush.mjs [--url postgres://postgres@127.0.0.1:5432/test] [--batches 20]
//        [--batch 20000] [--users 100000] [--torrents 50000] [--peers 500000] [--steady] [--parts 1]
//
// --steady: every peer has announced before (its history row exists), as on a
// tracker that has been running for a while; every write is then an update, not an insert.
// Each record is an announce of a random peer of a fixed population (a user on a torrent),
// so a batch touches as many distinct (user, torrent) pairs and peers as real traffic
// does at this batch size: almost all of them distinct.
//
// --parts N: each batch written as N transactions in parallel over N connections, as the
// tracker does with persistence.flush_connections = N.
//
// --embedded: into the embedded database (PGlite in this process, behind its wire server,
// as the persistence thread hosts it) in a scratch directory, one part.
import { randomBytes } from 'node:crypto'
import postgres from 'postgres'
import { flushBatch } from '../dist/persistence/ledger.js'
import { migrate } from '../dist/persistence/migrate.js'
import { decode } from '../dist/persistence/records.js'
import { AccountingRecord } from '../dist/contract/accounting.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : d }
const url = arg('url', 'postgres://postgres@127.0.0.1:5432/test')
const batches = Number(arg('batches', 20)), size = Number(arg('batch', 20000))
const users = Number(arg('users', 100000)), torrents = Number(arg('torrents', 50000)), peers = Number(arg('peers', 500000))
const steady = process.argv.includes('--steady')
const parts = Number(arg('parts', 1))
const schema = `st_bench_${randomBytes(4).toString('hex')}`
const embeddedDir = process.argv.includes('--embedded') ? mkdtempSync(join(tmpdir(), 'shardtrack-flush-')) : undefined
const { embeddedClient, startEmbedded } = await import('../dist/persistence/embedded.js')
const embedded = embeddedDir ? await startEmbedded(join(embeddedDir, 'pglite')) : undefined
const admin = embedded ? undefined : postgres(url, { max: 1, onnotice: () => {} })
await admin?.unsafe(`CREATE SCHEMA ${schema}`)
const sql = embedded
  ? postgres({ ...embeddedClient(embedded.address), onnotice: () => {}, fetch_types: false })
  : postgres(url, { max: parts, onnotice: () => {}, fetch_types: false, connection: { search_path: schema } })
try {
  await migrate(sql)
  if (process.env.EXPLAIN) { await sql`LOAD 'auto_explain'`; await sql`SET auto_explain.log_min_duration = 50`; await sql`SET auto_explain.log_analyze = on`; await sql`SET auto_explain.log_nested_statements = on` }
  await sql`INSERT INTO users (id, passkey) SELECT g, md5(g::text) FROM generate_series(1, ${users}) g`
  await sql`INSERT INTO torrents (id, info_hash) SELECT g, substring(decode(md5(g::text) || md5(g::text), 'hex') for 20) FROM generate_series(1, ${torrents}) g`
  const hashes = await sql`SELECT id, info_hash FROM torrents ORDER BY id`
  let x = 1
  const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32)
  // the population: peer p is user pu[p] on torrent pt[p] with growing totals
  const pu = new Uint32Array(peers), pt = new Uint32Array(peers), up = new Float64Array(peers)
  for (let p = 0; p < peers; p++) { pu[p] = 1 + Math.floor(rnd() * users); pt[p] = 1 + Math.floor(rnd() * torrents) }
  const make = (now) => {
    const buf = new Uint8Array(size * AccountingRecord.SIZE), dv = new DataView(buf.buffer)
    for (let i = 0; i < size; i++) {
      const p = Math.floor(rnd() * peers), r = i * AccountingRecord.SIZE, d = Math.floor(rnd() * 2 ** 26)
      up[p] += d
      buf[r + AccountingRecord.FLAGS] = rnd() < 0.02 ? 1 : 0
      dv.setUint16(r + AccountingRecord.PORT, 6881, true)
      dv.setUint32(r + AccountingRecord.USER, pu[p], true)
      dv.setUint32(r + AccountingRecord.TORRENT, pt[p], true)
      dv.setUint32(r + AccountingRecord.AT, now, true)
      dv.setFloat64(r + AccountingRecord.UPLOADED, d, true)
      dv.setFloat64(r + AccountingRecord.DOWNLOADED, d >> 1, true)
      dv.setFloat64(r + AccountingRecord.UP_CREDITED, d, true)
      dv.setFloat64(r + AccountingRecord.DOWN_CREDITED, d >> 1, true)
      dv.setUint32(r + AccountingRecord.SEED_TIME, 1800, true)
      dv.setFloat64(r + AccountingRecord.TOTAL_UP, up[p], true)
      dv.setFloat64(r + AccountingRecord.TOTAL_DOWN, Math.floor(up[p] / 2), true)
      dv.setFloat64(r + AccountingRecord.LEFT, 0, true)
      dv.setUint32(r + AccountingRecord.PEER_ID, p, true) // peer_id: the peer's number, then zeros
      buf.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, (p >> 8) & 255, p & 255], r + AccountingRecord.IP)
      buf.set(hashes[pt[p] - 1].info_hash, r + AccountingRecord.INFO_HASH)
    }
    return buf
  }
  if (steady) {
    // one announce of every peer, committed before measuring
    const saved = x
    for (let p0 = 0; p0 < peers; p0 += size) {
      const chunk = make(0)
      const dv = new DataView(chunk.buffer)
      for (let i = 0; i < size && p0 + i < peers; i++) {
        const p = p0 + i, r = i * AccountingRecord.SIZE
        dv.setUint32(r + AccountingRecord.USER, pu[p], true); dv.setUint32(r + AccountingRecord.TORRENT, pt[p], true); dv.setUint32(r + AccountingRecord.PEER_ID, p, true)
        chunk.set(hashes[pt[p] - 1].info_hash, r + AccountingRecord.INFO_HASH)
        chunk[r + AccountingRecord.IP + 14] = (p >> 8) & 255; chunk[r + AccountingRecord.IP + 15] = p & 255
      }
      await flushBatch(sql, 1 + p0 / size, decode(chunk.subarray(0, Math.min(size, peers - p0) * AccountingRecord.SIZE), 1_790_000_000), { parts, journal: 'prefill' })
    }
    await sql`VACUUM ANALYZE history`.catch(() => {})
    await sql`VACUUM ANALYZE peers`.catch(() => {}) // (the builds before checkpoints filled it in the prefill)
    x = saved
  }
  const times = []
  for (let b = 1; b <= batches; b++) {
    const chunk = make(b)
    const t0 = process.hrtime.bigint()
    const r = await flushBatch(sql, b, decode(chunk, 1_790_000_000), { parts })
    times.push(Number(process.hrtime.bigint() - t0) / 1e9)
    if (!r.applied || r.deadLetters) throw new Error(`batch ${b}: ${JSON.stringify(r)}`)
  }
  const total = times.reduce((a, b) => a + b, 0)
  const sorted = [...times].sort((a, b) => a - b)
  console.log(`ledger flush${embedded ? ' into the embedded database' : ''}${steady ? ' (steady state: every peer known)' : ''}, ${parts} part${parts > 1 ? 's' : ''}: ${batches} batches × ${size} records, ${peers} peers of ${users} users × ${torrents} torrents: ` +
    `${Math.round((batches * size) / total).toLocaleString('en-US')} records/s overall, median batch ${(sorted[sorted.length >> 1] * 1000).toFixed(0)} ms ` +
    `(${Math.round(size / sorted[sorted.length >> 1]).toLocaleString('en-US')} records/s)`)
} finally {
  await sql.end({ timeout: 1 })
  if (embedded) {
    await embedded.close()
    rmSync(embeddedDir, { recursive: true, force: true })
  } else {
    await admin.unsafe(`DROP SCHEMA ${schema} CASCADE`)
    await admin.end({ timeout: 1 })
  }
}

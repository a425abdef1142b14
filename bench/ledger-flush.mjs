#!/usr/bin/env node
// How many accounting records per second the ledger writer (persistence/ledger.ts) commits
// to PostgreSQL, in batches, into a scratch schema that is dropped afterwards.
//
//   node bench/ledger-flush.mjs [--url postgres://postgres@127.0.0.1:5432/test] [--batches 20]
//        [--batch 20000] [--users 100000] [--torrents 50000]
//
// Records are spread over users × torrents like real announces (each batch touches many
// distinct pairs), so the figure includes aggregation, the unnest upserts and the commit.
import { randomBytes } from 'node:crypto'
import postgres from 'postgres'
import { flushBatch } from '../dist/persistence/ledger.js'
import { migrate } from '../dist/persistence/migrate.js'

const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : d }
const url = arg('url', 'postgres://postgres@127.0.0.1:5432/test')
const batches = Number(arg('batches', 20)), size = Number(arg('batch', 20000))
const users = Number(arg('users', 100000)), torrents = Number(arg('torrents', 50000))
const schema = `st_bench_${randomBytes(4).toString('hex')}`
const admin = postgres(url, { max: 1, onnotice: () => {} })
await admin.unsafe(`CREATE SCHEMA ${schema}`)
const sql = postgres(url, { max: 1, onnotice: () => {}, connection: { search_path: schema } })
try {
  await migrate(sql)
  await sql`INSERT INTO users (id, passkey) SELECT g, md5(g::text) FROM generate_series(1, ${users}) g`
  await sql`INSERT INTO torrents (id, info_hash) SELECT g, substring(decode(md5(g::text) || md5(g::text), 'hex') for 20) FROM generate_series(1, ${torrents}) g`
  let x = 1
  const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32)
  const make = () => Array.from({ length: size }, () => ({
    user: 1 + Math.floor(rnd() * users), torrent: 1 + Math.floor(rnd() * torrents),
    uploaded: Math.floor(rnd() * 2 ** 30), downloaded: Math.floor(rnd() * 2 ** 30), uploadedCredited: 0, downloadedCredited: 0,
    seedTime: 1800, leechTime: 0, completed: rnd() < 0.02, at: 1_790_000_000,
  }))
  const times = []
  for (let b = 1; b <= batches; b++) {
    const recs = make()
    const t0 = process.hrtime.bigint()
    const r = await flushBatch(sql, b, recs)
    times.push(Number(process.hrtime.bigint() - t0) / 1e9)
    if (!r.applied || r.deadLetters) throw new Error(`batch ${b}: ${JSON.stringify(r)}`)
  }
  const total = times.reduce((a, b) => a + b, 0)
  const sorted = [...times].sort((a, b) => a - b)
  console.log(`ledger flush: ${batches} batches × ${size} records into ${users} users × ${torrents} torrents: ` +
    `${Math.round((batches * size) / total).toLocaleString('en-US')} records/s overall, median batch ${(sorted[sorted.length >> 1] * 1000).toFixed(0)} ms ` +
    `(${Math.round(size / sorted[sorted.length >> 1]).toLocaleString('en-US')} records/s)`)
} finally {
  await sql.end({ timeout: 1 })
  await admin.unsafe(`DROP SCHEMA ${schema} CASCADE`)
  await admin.end({ timeout: 1 })
}

#!/usr/bin/env node
// The ledger's two row writes per (user, torrent) — the history upsert and the user totals
// update — sent two ways, interleaved on the same data, one transaction per batch:
//
//   unnest: what persistence/ledger.ts does — each column as one comma-joined text array,
//           unnest()ed into INSERT … ON CONFLICT and UPDATE … FROM;
//   copy:   binary COPY of the rows into a temporary staging table (ON COMMIT DELETE ROWS,
//           created once per connection), then the same two statements reading from it.
//
//   node bench/copy-vs-unnest.mjs [--url postgres://postgres@127.0.0.1:5432/test]
//        [--rounds 5] [--batch 20000] [--users 100000] [--torrents 1000000] [--pairs 500000]
//
// Steady state: every (user, torrent) pair of the population has a history row before the
// measured batches, so every history write is an update, as on a tracker that has run a
// while. Prints each method's median batch time and rows/s.
import { randomBytes } from 'node:crypto'
import postgres from 'postgres'
import { migrate } from '../dist/persistence/migrate.js'

const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : d }
const url = arg('url', 'postgres://postgres@127.0.0.1:5432/test')
const rounds = Number(arg('rounds', 5)), size = Number(arg('batch', 20000))
const users = Number(arg('users', 100000)), torrents = Number(arg('torrents', 1000000)), pairs = Number(arg('pairs', 500000))
const schema = `st_bench_${randomBytes(4).toString('hex')}`
const admin = postgres(url, { max: 1, onnotice: () => {} })
await admin.unsafe(`CREATE SCHEMA ${schema}`)
const sql = postgres(url, { max: 1, onnotice: () => {}, fetch_types: false, connection: { search_path: schema } })

let x = 7
const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32)
const pu = new Uint32Array(pairs), pt = new Uint32Array(pairs)
for (let p = 0; p < pairs; p++) { pu[p] = 1 + Math.floor(rnd() * users); pt[p] = 1 + Math.floor(rnd() * torrents) }

/** One batch: `size` distinct pairs of the population, with deltas. */
function batch() {
  const seen = new Set(), rows = []
  while (rows.length < size) {
    const p = Math.floor(rnd() * pairs)
    if (seen.has(p)) continue
    seen.add(p)
    const d = Math.floor(rnd() * 2 ** 26)
    rows.push({ user: pu[p], torrent: pt[p], uploaded: d, downloaded: d >> 1, uploadedCredited: d, downloadedCredited: d >> 1, seedTime: 1800, leechTime: 0, first: 1_790_000_000, last: 1_790_000_000 })
  }
  return rows
}

const HISTORY_MERGE = `
  ON CONFLICT (user_id, torrent_id) DO UPDATE SET
    uploaded = sat_add(h.uploaded, EXCLUDED.uploaded), downloaded = sat_add(h.downloaded, EXCLUDED.downloaded),
    uploaded_credited = sat_add(h.uploaded_credited, EXCLUDED.uploaded_credited),
    downloaded_credited = sat_add(h.downloaded_credited, EXCLUDED.downloaded_credited),
    seed_time = h.seed_time + EXCLUDED.seed_time, leech_time = h.leech_time + EXCLUDED.leech_time,
    first_announce = least(h.first_announce, EXCLUDED.first_announce), last_announce = greatest(h.last_announce, EXCLUDED.last_announce),
    completed_at = coalesce(h.completed_at, EXCLUDED.completed_at), active = true`
const USERS_SET = `uploaded = sat_add(us.uploaded, d.up), downloaded = sat_add(us.downloaded, d.down),
    uploaded_credited = sat_add(us.uploaded_credited, d.upc), downloaded_credited = sat_add(us.downloaded_credited, d.downc),
    seed_time = us.seed_time + d.seed, updated_at = now()`

const arr = (rows, k) => `{${rows.map((r) => r[k]).join(',')}}`

async function viaUnnest(rows) {
  await sql.begin(async (tx) => {
    const c = (k, t = 'bigint') => tx`${arr(rows, k)}::${tx.unsafe(t)}[]`
    await tx`
      INSERT INTO history AS h (user_id, torrent_id, uploaded, downloaded, uploaded_credited, downloaded_credited, seed_time, leech_time, first_announce, last_announce, active)
      SELECT u, t, up, down, upc, downc, seed, leech, to_timestamp(f), to_timestamp(l), true
      FROM unnest(${c('user')}, ${c('torrent')}, ${c('uploaded')}, ${c('downloaded')}, ${c('uploadedCredited')}, ${c('downloadedCredited')},
                  ${c('seedTime')}, ${c('leechTime')}, ${c('first', 'float8')}, ${c('last', 'float8')}) AS x(u, t, up, down, upc, downc, seed, leech, f, l)
      ${tx.unsafe(HISTORY_MERGE)}`
    const byUser = perUser(rows)
    await tx`
      UPDATE users AS us SET ${tx.unsafe(USERS_SET)}
      FROM unnest(${c2(tx, byUser, 'user')}, ${c2(tx, byUser, 'uploaded')}, ${c2(tx, byUser, 'downloaded')}, ${c2(tx, byUser, 'uploadedCredited')},
                  ${c2(tx, byUser, 'downloadedCredited')}, ${c2(tx, byUser, 'seedTime')}) AS d(u, up, down, upc, downc, seed)
      WHERE us.id = d.u`
  })
}
const c2 = (tx, rows, k) => tx`${arr(rows, k)}::bigint[]`

function perUser(rows) {
  const m = new Map()
  for (const r of rows) {
    const u = m.get(r.user)
    if (!u) m.set(r.user, { ...r })
    else { u.uploaded += r.uploaded; u.downloaded += r.downloaded; u.uploadedCredited += r.uploadedCredited; u.downloadedCredited += r.downloadedCredited; u.seedTime += r.seedTime }
  }
  return [...m.values()]
}

/** PostgreSQL's binary COPY: header, then per row a field count and (length, big-endian value) per field. */
function copyBinary(rows) {
  const fields = 10
  const buf = Buffer.allocUnsafe(19 + rows.length * (2 + fields * 12) + 2)
  let o = buf.write('PGCOPY\n\xff\r\n\0', 0, 'latin1')
  o = buf.writeInt32BE(0, o)
  o = buf.writeInt32BE(0, o)
  for (const r of rows) {
    o = buf.writeInt16BE(fields, o)
    for (const k of ['user', 'torrent', 'uploaded', 'downloaded', 'uploadedCredited', 'downloadedCredited', 'seedTime', 'leechTime']) {
      o = buf.writeInt32BE(8, o)
      o = buf.writeBigInt64BE(BigInt(r[k]), o)
    }
    for (const k of ['first', 'last']) {
      o = buf.writeInt32BE(8, o)
      o = buf.writeDoubleBE(r[k], o)
    }
  }
  o = buf.writeInt16BE(-1, o)
  return buf.subarray(0, o)
}

async function viaCopy(rows) {
  await sql.begin(async (tx) => {
    const w = await tx`COPY stage FROM STDIN (FORMAT binary)`.writable()
    await new Promise((resolve, reject) => { w.on('error', reject); w.on('finish', resolve); w.end(copyBinary(rows)) })
    await tx`
      INSERT INTO history AS h (user_id, torrent_id, uploaded, downloaded, uploaded_credited, downloaded_credited, seed_time, leech_time, first_announce, last_announce, active)
      SELECT u, t, up, down, upc, downc, seed, leech, to_timestamp(f), to_timestamp(l), true FROM stage
      ${tx.unsafe(HISTORY_MERGE)}`
    await tx`
      UPDATE users AS us SET ${tx.unsafe(USERS_SET)}
      FROM (SELECT u, sum(up)::bigint AS up, sum(down)::bigint AS down, sum(upc)::bigint AS upc, sum(downc)::bigint AS downc, sum(seed)::bigint AS seed FROM stage GROUP BY u) AS d
      WHERE us.id = d.u`
  })
}

try {
  await migrate(sql)
  await sql`INSERT INTO users (id, passkey) SELECT g, md5(g::text) FROM generate_series(1, ${users}) g`
  await sql`INSERT INTO torrents (id, info_hash) SELECT g, substring(decode(md5(g::text) || md5(g::text), 'hex') for 20) FROM generate_series(1, ${torrents}) g`
  // steady state: every pair has its history row
  await sql`INSERT INTO history (user_id, torrent_id, first_announce, last_announce)
            SELECT DISTINCT u, t, now(), now() FROM unnest(${'{' + pu.join(',') + '}'}::bigint[], ${'{' + pt.join(',') + '}'}::bigint[]) AS x(u, t)
            ON CONFLICT DO NOTHING`
  await sql`VACUUM ANALYZE history`
  await sql`VACUUM ANALYZE users`
  // the staging table, once per connection (max: 1), before anything is timed
  await sql`CREATE TEMP TABLE stage (u bigint, t bigint, up bigint, down bigint, upc bigint, downc bigint, seed bigint, leech bigint, f float8, l float8) ON COMMIT DELETE ROWS`
  const t = { unnest: [], copy: [] }
  for (let r = 0; r < rounds; r++) {
    for (const [name, f] of r % 2 === 0 ? [['unnest', viaUnnest], ['copy', viaCopy]] : [['copy', viaCopy], ['unnest', viaUnnest]]) {
      const rows = batch()
      const t0 = process.hrtime.bigint()
      await f(rows)
      t[name].push(Number(process.hrtime.bigint() - t0) / 1e6)
    }
  }
  const med = (a) => [...a].sort((p, q) => p - q)[a.length >> 1]
  for (const k of ['unnest', 'copy']) {
    console.log(`${k.padEnd(6)}: median ${med(t[k]).toFixed(0)} ms a batch of ${size} (${Math.round(size / (med(t[k]) / 1000)).toLocaleString('en-US')} rows/s); rounds ${t[k].map((v) => v.toFixed(0)).join(', ')} ms`)
  }
  console.log(`copy ÷ unnest time: ${(med(t.copy) / med(t.unnest)).toFixed(2)} (${users} users × ${torrents} torrents, ${pairs} pairs with history rows, ${rounds} interleaved rounds)`)
} finally {
  await sql.end({ timeout: 1 })
  await admin.unsafe(`DROP SCHEMA ${schema} CASCADE`)
  await admin.end({ timeout: 1 })
}

#!/usr/bin/env node
// What a registry change costs a tracker with many users and torrents: a whole load (the
// persistence thread's query, the copy to the acceptor, the acceptor's rebuild of its
// caches: what every change cost before the change log) against reading and applying the
// changes since the last read. A scratch schema of the local PostgreSQL, dropped after.
//
//   node bench/registry-sync.mjs [--users 1000000] [--torrents 1000000] [--changes 100] [--url postgres://…]
import postgres from 'postgres'
import { migrate } from '../dist/persistence/migrate.js'
import { loadChanges, loadRegistry } from '../dist/persistence/registry.js'
import { applyDelta, applySnapshot } from '../dist/engine/policy/registry-db.js'
import { Registry } from '../dist/engine/policy/registry.js'

const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : d }
const url = arg('url', 'postgres://postgres@127.0.0.1:5432/test')
const USERS = Number(arg('users', 1_000_000)), TORRENTS = Number(arg('torrents', 1_000_000)), CHANGES = Number(arg('changes', 100))
const schema = `st_bench_reg_${process.pid}`
const admin = postgres(url, { max: 1, onnotice: () => {} })
await admin.unsafe(`CREATE SCHEMA ${schema}`)
const sql = postgres(url, { max: 2, onnotice: () => {}, fetch_types: false, connection: { search_path: schema } })
const ms = (t) => `${Math.round(performance.now() - t)} ms`
// what crossing from the persistence thread to the acceptor costs (structured clone)
const cross = async (value) => {
  const { port1, port2 } = new MessageChannel()
  const got = new Promise((r) => port2.once('message', r))
  port1.postMessage(value)
  const v = await got
  port1.close(); port2.close()
  return v
}
const noLog = () => {}
try {
  await migrate(sql)
  let t = performance.now()
  await sql`INSERT INTO users (id, passkey) SELECT g, md5(g::text) FROM generate_series(1, ${USERS}) g`
  await sql`INSERT INTO torrents (id, info_hash) SELECT g, substring(decode(md5(g::text) || md5(g::text), 'hex') for 20) FROM generate_series(1, ${TORRENTS}) g`
  await sql`TRUNCATE registry_changes`
  console.log(`setup: ${USERS} users, ${TORRENTS} torrents in ${ms(t)}`)
  const registry = new Registry()
  for (let round = 1; round <= 3; round++) {
    t = performance.now()
    const full = await loadRegistry(sql)
    const t1 = performance.now()
    const snap = await cross(full.snapshot)
    const t2 = performance.now()
    applySnapshot(registry, snap, noLog)
    console.log(`whole load: query ${Math.round(t1 - t)} ms, copy (structured clone, both halves) ${Math.round(t2 - t1)} ms, acceptor rebuild ${ms(t2)}`)
    // CHANGES edits of the kind a site makes (passkey resets, freeleech), then one read
    for (let i = 0; i < CHANGES / 2; i++) {
      const u = 1 + ((round * 7919 + i * 104729) % USERS), tor = 1 + ((round * 6151 + i * 15485863) % TORRENTS)
      await sql`UPDATE users SET old_passkey = passkey, old_passkey_expires = now() + interval '1 day', passkey = md5(${`${round}:${i}`}) WHERE id = ${u}`
      await sql`UPDATE torrents SET download_multiplier = 0 WHERE id = ${tor}`
    }
    t = performance.now()
    const ch = await loadChanges(sql, full.since)
    const t3 = performance.now()
    const delta = await cross(ch.delta)
    const t4 = performance.now()
    applyDelta(registry, delta, noLog)
    console.log(`${CHANGES} changes: query ${Math.round(t3 - t)} ms, copy ${Math.round(t4 - t3)} ms, acceptor apply ${ms(t4)}`)
  }
} finally {
  await sql.end({ timeout: 1 })
  await admin.unsafe(`DROP SCHEMA ${schema} CASCADE`)
  await admin.end({ timeout: 1 })
}

import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { parseExposition } from '../test/support/prometheus.js';
import { loadConfig } from '../engine/config.js';
import { FAILURE_CODES, PROTO_HTTP, PROTO_UDP, TrackerCounters } from '../engine/counters.js';
import { Registry } from '../engine/policy/registry.js';
import { PersistenceStats } from '../contract/persistence-stats.js';
import { ShardPool } from '../shards/pool.js';
import { ShardControl } from '../shards/memory-layout.js';
import { EVENT_COMPLETED, EVENT_NONE, EVENT_STARTED, EVENT_STOPPED } from '../contract/requests.js';
import { createMetrics } from './metrics.js';

// Counters and shard words in, exposition text out. The pool is never started: its memory
// is all the metrics read, so the control words are set by hand here.

const config = loadConfig({ argv: [], env: {}, overrides: { registry: { file: '' }, database: { enabled: false } } });
const limits = { maxPeers: config.shards.max_peers, maxSwarms: config.shards.max_swarms };
const pools: ShardPool[] = [];

/** `clock`: the counters' clock, fixed in tests that check latency buckets. */
function setup(withPersistence = true, clock?: () => number) {
  const pool = new ShardPool({
    count: 3, maxPeers: 1024, maxSwarms: 1024, requestRingBytes: 4096, answerRingBytes: 4096,
    rules: { peerTimeout: 60, maxUploadRate: 1e9 }, numwantMax: 50, scrapeMaxHashes: 10, accounting: false, watchdogSeconds: 0, log: () => {}, onFatal: () => {},
  });
  pools.push(pool);
  const counters = new TrackerCounters(clock);
  const registry = new Registry();
  const stats = new Float64Array(PersistenceStats.SIZE);
  const metrics = createMetrics({ counters, shards: pool, registry, limits, persistence: withPersistence ? { stats } : undefined });
  return { pool, counters, registry, stats, metrics, read: async () => parseExposition(await metrics.text()) };
}

afterAll(async () => {
  for (const p of pools) await p.close();
});

describe('metrics exposition', () => {
  it('counts announces, scrapes and failures by their labels', async () => {
    const { counters: c, read } = setup();
    const t0 = performance.now();
    c.announced(PROTO_HTTP, EVENT_STARTED, null, t0);
    c.announced(PROTO_HTTP, EVENT_STARTED, null, t0);
    c.announced(PROTO_HTTP, EVENT_STOPPED, 'peer_id_in_use', t0);
    c.announced(PROTO_UDP, EVENT_COMPLETED, null, t0);
    c.announceFailed(PROTO_HTTP, EVENT_NONE, 'malformed_query');
    c.announceFailed(PROTO_UDP, EVENT_STARTED, 'banned');
    c.announceFailed(PROTO_UDP, EVENT_NONE, 'tracker_busy');
    c.scraped(PROTO_HTTP);
    c.scrapeFailed(PROTO_HTTP, 'tracker_busy');
    c.scrapeFailed(PROTO_UDP, null);
    const m = await read();
    const a = 'shardtrack_announces_total';
    expect(m.value(a, { protocol: 'http', event: 'started', outcome: 'ok' })).toBe(2);
    expect(m.value(a, { protocol: 'http', event: 'stopped', outcome: 'failed' })).toBe(1);
    expect(m.value(a, { protocol: 'http', event: 'none', outcome: 'failed' })).toBe(1);
    expect(m.value(a, { protocol: 'udp', event: 'completed', outcome: 'ok' })).toBe(1);
    expect(m.value(a, { protocol: 'udp', event: 'started', outcome: 'failed' })).toBe(1);
    expect(m.value(a, { protocol: 'udp', event: 'none', outcome: 'failed' })).toBe(1);
    expect(m.sum(a)).toBe(7);
    // every combination is there from the start, so rate() sees the first increment
    expect(m.samples.filter((s) => s.name === a)).toHaveLength(3 * 5 * 2);
    expect(m.value('shardtrack_scrapes_total', { protocol: 'http', outcome: 'ok' })).toBe(1);
    expect(m.value('shardtrack_scrapes_total', { protocol: 'http', outcome: 'failed' })).toBe(1);
    expect(m.value('shardtrack_scrapes_total', { protocol: 'udp', outcome: 'failed' })).toBe(1);
    expect(m.value('shardtrack_failures_total', { code: 'peer_id_in_use' })).toBe(1);
    expect(m.value('shardtrack_failures_total', { code: 'malformed_query' })).toBe(1);
    expect(m.value('shardtrack_failures_total', { code: 'banned' })).toBe(1);
    expect(m.value('shardtrack_failures_total', { code: 'tracker_busy' })).toBe(2);
    expect(m.sum('shardtrack_failures_total')).toBe(5); // the UDP-only message has no code
    expect(m.samples.filter((s) => s.name === 'shardtrack_failures_total')).toHaveLength(FAILURE_CODES.length);
    expect(m.value('shardtrack_busy_total')).toBe(2);
    expect(m.types.get('shardtrack_announces_total')).toBe('counter');
  });

  it('exposes announce latency as a histogram in seconds', async () => {
    const now = 1_000_000;
    const { counters: c, read } = setup(true, () => now);
    c.announced(PROTO_HTTP, EVENT_NONE, null, now - 0.05); // ≤ 0.1 ms
    c.announced(PROTO_HTTP, EVENT_NONE, null, now - 3); // ≤ 5 ms
    c.announced(PROTO_HTTP, EVENT_NONE, 'tracker_full', now - 7); // ≤ 10 ms; failures the shard sent count too
    c.announced(PROTO_UDP, EVENT_NONE, null, now - 5000); // past every bound
    const m = await read();
    const h = 'shardtrack_announce_duration_seconds';
    expect(m.types.get(h)).toBe('histogram');
    expect(m.value(h + '_bucket', { protocol: 'http', le: '0.0001' })).toBe(1);
    expect(m.value(h + '_bucket', { protocol: 'http', le: '0.0025' })).toBe(1);
    expect(m.value(h + '_bucket', { protocol: 'http', le: '0.005' })).toBe(2);
    expect(m.value(h + '_bucket', { protocol: 'http', le: '0.01' })).toBe(3);
    expect(m.value(h + '_bucket', { protocol: 'http', le: '+Inf' })).toBe(3);
    expect(m.value(h + '_count', { protocol: 'http' })).toBe(3);
    const sum = m.value(h + '_sum', { protocol: 'http' });
    expect(sum).toBeGreaterThan(0.01);
    expect(sum).toBeLessThan(0.1);
    expect(m.value(h + '_bucket', { protocol: 'udp', le: '1' })).toBe(0);
    expect(m.value(h + '_bucket', { protocol: 'udp', le: '+Inf' })).toBe(1);
    expect(m.value(h + '_sum', { protocol: 'udp' })).toBeGreaterThanOrEqual(5);
  });

  it('reads peers, swarms and per-shard figures from the control words', async () => {
    const { pool, read } = setup();
    const words = [
      { SEEDERS: 10, LEECHERS: 30, PEERS_V6: 8, SWARM_LIVE: 5, PEER_LIVE: 40 },
      { SEEDERS: 0, LEECHERS: 7, PEERS_V6: 7, SWARM_LIVE: 2, PEER_LIVE: 7 },
      { SEEDERS: 4, LEECHERS: 0, PEERS_V6: 0, SWARM_LIVE: 1, PEER_LIVE: 4 },
    ];
    pool.shards[0].ctl[ShardControl.PEERS_WS] = 4; // browsers: split 1 : 3 as well
    words.forEach((w, i) => {
      for (const [k, v] of Object.entries(w)) pool.shards[i].ctl[ShardControl[k as keyof typeof w]] = v;
    });
    pool.shards[1].ctl[ShardControl.BUSY_MS] = 2500;
    pool.shards[1].ctl[ShardControl.HANDLED] = 1234;
    pool.shards[2].ctl[ShardControl.TABLE_FULL] = 3;
    pool.shards[0].restarts = 2;
    const ring = pool.requestRing(2);
    ring.reserve(100);
    ring.commit();
    let m = await read();
    // by family and by kind: exact
    expect(m.sum('shardtrack_peers', { kind: 'seeder' })).toBe(14);
    expect(m.sum('shardtrack_peers', { kind: 'leecher' })).toBe(37);
    expect(m.sum('shardtrack_peers', { family: 'ipv6' })).toBe(15);
    expect(m.sum('shardtrack_peers', { family: 'ipv4' })).toBe(32);
    expect(m.sum('shardtrack_peers', { family: 'websocket' })).toBe(4);
    expect(m.value('shardtrack_peers', { family: 'websocket', kind: 'seeder' })).toBe(1);
    // within a family: shard 0's 8 IPv6 peers split 2 : 6 by its 1 : 3 ratio; shard 1 has only leechers
    expect(m.value('shardtrack_peers', { family: 'ipv6', kind: 'seeder' })).toBe(2);
    expect(m.value('shardtrack_peers', { family: 'ipv6', kind: 'leecher' })).toBe(13);
    expect(m.value('shardtrack_swarms')).toBe(8);
    expect(m.value('shardtrack_shard_peers', { shard: '0' })).toBe(40);
    expect(m.value('shardtrack_shard_swarms', { shard: '1' })).toBe(2);
    expect(m.value('shardtrack_shard_busy_seconds_total', { shard: '1' })).toBe(2.5);
    expect(m.value('shardtrack_shard_requests_handled_total', { shard: '1' })).toBe(1234);
    expect(m.value('shardtrack_shard_table_full_total', { shard: '2' })).toBe(3);
    expect(m.value('shardtrack_shard_restarts_total', { shard: '0' })).toBe(2);
    expect(m.value('shardtrack_shard_queue_bytes', { shard: '2', ring: 'requests' })).toBe(8 + 104); // record header + padded payload
    expect(m.value('shardtrack_shard_queue_bytes', { shard: '0', ring: 'answers' })).toBe(0);
    expect(m.value('shardtrack_shard_up', { shard: '0' })).toBe(0); // never started
    expect(m.value('shardtrack_shard_max_peers')).toBe(config.shards.max_peers);

    // The shards' int32 words wrap; the totals carry on across the wrap.
    const ctl = pool.shards[1].ctl;
    ctl[ShardControl.BUSY_MS] = 2 ** 31 - 500; // 2^31 - 500 ms
    m = await read();
    expect(m.value('shardtrack_shard_busy_seconds_total', { shard: '1' })).toBeCloseTo((2 ** 31 - 500) / 1000, 6);
    ctl[ShardControl.BUSY_MS] = (2 ** 31 - 500 + 1500) | 0; // wrapped to a negative int32
    expect(ctl[ShardControl.BUSY_MS]).toBeLessThan(0);
    m = await read();
    expect(m.value('shardtrack_shard_busy_seconds_total', { shard: '1' })).toBeCloseTo((2 ** 31 + 1000) / 1000, 6);
  });

  it('reads the registry sizes and the persistence stats', async () => {
    const { registry, stats, read } = setup();
    registry.upsertUser({ id: 1, passkey: 'a'.repeat(32), canLeech: true });
    registry.upsertUser({ id: 2, passkey: 'b'.repeat(32), canLeech: false });
    registry.upsertTorrent({ id: 1, infoHash: new Uint8Array(20).fill(7) });
    stats[PersistenceStats.DB_UP] = 1;
    stats[PersistenceStats.JOURNAL_BYTES] = 4096;
    stats[PersistenceStats.JOURNAL_BUDGET] = 1 << 30;
    stats[PersistenceStats.PENDING_BATCHES] = 3;
    stats[PersistenceStats.OLDEST_PENDING] = Date.now() / 1000 - 42;
    stats[PersistenceStats.RECORDS_JOURNALLED] = 1000;
    stats[PersistenceStats.RECORDS_COMMITTED] = 900;
    stats[PersistenceStats.FLUSH_FAILURES] = 2;
    stats[PersistenceStats.DEAD_LETTERS] = 1;
    stats[PersistenceStats.LAST_FLUSH_MS] = 250;
    stats[PersistenceStats.BUDGET_STALLS] = 4;
    let m = await read();
    expect(m.value('shardtrack_users')).toBe(2);
    expect(m.value('shardtrack_registered_torrents')).toBe(1);
    expect(m.value('shardtrack_bans')).toBe(0);
    expect(m.value('shardtrack_database_up')).toBe(1);
    expect(m.value('shardtrack_journal_bytes')).toBe(4096);
    expect(m.value('shardtrack_journal_budget_bytes')).toBe(1 << 30);
    expect(m.value('shardtrack_pending_batches')).toBe(3);
    const lag = m.value('shardtrack_persistence_lag_seconds');
    expect(lag).toBeGreaterThanOrEqual(42);
    expect(lag).toBeLessThan(50);
    expect(m.value('shardtrack_records_journalled_total')).toBe(1000);
    expect(m.value('shardtrack_records_committed_total')).toBe(900);
    expect(m.value('shardtrack_flush_failures_total')).toBe(2);
    expect(m.value('shardtrack_dead_letters_total')).toBe(1);
    expect(m.value('shardtrack_last_flush_seconds')).toBe(0.25);
    expect(m.value('shardtrack_budget_stalls_total')).toBe(4);
    stats[PersistenceStats.OLDEST_PENDING] = 0; // nothing pending: no lag
    m = await read();
    expect(m.value('shardtrack_persistence_lag_seconds')).toBe(0);
  });

  it('leaves the persistence metrics out without a persistence thread', async () => {
    const { read } = setup(false);
    const m = await read();
    expect(m.names().has('shardtrack_database_up')).toBe(false);
    expect(m.names().has('shardtrack_swarms')).toBe(true);
  });

  it('includes process metrics and event-loop lag, and keeps each tracker in its own registry', async () => {
    const a = setup();
    const b = setup();
    a.counters.scraped(PROTO_HTTP);
    const ma = await a.read();
    const mb = await b.read();
    for (const name of ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(ma.names().has(name), name).toBe(true);
    }
    expect(ma.value('shardtrack_scrapes_total', { protocol: 'http', outcome: 'ok' })).toBe(1);
    expect(mb.value('shardtrack_scrapes_total', { protocol: 'http', outcome: 'ok' })).toBe(0);
    expect(a.metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('gives every metric a HELP and a TYPE, and every line the sample format', async () => {
    const { metrics } = setup();
    const text = await metrics.text();
    const m = parseExposition(text); // throws on any line out of format
    for (const [name] of m.types) expect(m.help.get(name), name).toBeTruthy();
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? \S+$/);
    }
    expect(() => parseExposition('foo 1\n')).toThrow(/TYPE/);
    expect(() => parseExposition('# HELP foo x\n# TYPE foo gauge\nfoo{a=b} 1\n')).toThrow(/sample/);
  });
  it('are all listed in the README\'s metrics table', async () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const table = readme.slice(readme.indexOf('| metric | labels | what |'), readme.indexOf('`deploy/grafana/shardtrack.json` is a Grafana'));
    const { metrics } = setup();
    const uws = { version: 'v20.51.0', package: '@based/uws@6.0.1', binary: 'uws_linux_x64_127.node' };
    const all = createMetrics({ counters: new TrackerCounters(), shards: pools[0], registry: new Registry(), limits, persistence: { stats: new Float64Array(PersistenceStats.SIZE) }, uws });
    const names = new Set([...parseExposition(await metrics.text()).types.keys(), ...parseExposition(await all.text()).types.keys()]);
    for (const name of names) {
      if (!name.startsWith('shardtrack_')) continue;
      expect(table, name).toContain(`\`${name.slice('shardtrack_'.length)}\``);
    }
  });
});

describe('Grafana dashboard', () => {
  const dash = JSON.parse(readFileSync(new URL('../deploy/grafana/shardtrack.json', import.meta.url), 'utf8'));
  const exprs: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'expr' && typeof x === 'string') exprs.push(x);
        else walk(x);
      }
    }
  };
  walk(dash);

  it('is a dashboard over a Prometheus data source variable', () => {
    expect(dash.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dash.templating.list.some((t: { type: string; query: string }) => t.type === 'datasource' && t.query === 'prometheus')).toBe(true);
    expect(exprs.length).toBeGreaterThan(20);
  });

  it('queries only metrics the exposition has', async () => {
    const { counters, read } = setup(); // with persistence, as in production
    counters.announced(PROTO_HTTP, EVENT_NONE, null, performance.now());
    const names = (await read()).names();
    const used = new Set<string>();
    for (const e of exprs) {
      for (const [n] of e.matchAll(/\b(?:shardtrack|process|nodejs)_[a-zA-Z0-9_]+/g)) used.add(n);
    }
    expect(used.size).toBeGreaterThan(20);
    const missing = [...used].filter((n) => !names.has(n));
    expect(missing).toEqual([]);
    // and the overview panels cover what operators look at first
    for (const n of ['shardtrack_announces_total', 'shardtrack_failures_total', 'shardtrack_announce_duration_seconds_bucket', 'shardtrack_peers', 'shardtrack_swarms', 'shardtrack_shard_queue_bytes', 'shardtrack_shard_busy_seconds_total', 'shardtrack_persistence_lag_seconds', 'shardtrack_journal_bytes', 'shardtrack_flush_failures_total', 'shardtrack_database_up', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds']) {
      expect(used.has(n), n).toBe(true);
    }
  });
});

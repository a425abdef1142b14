// Several nodes sharing their peers through Redis (issue 16): peers cross nodes every way,
// scrape agrees, changes and stops follow and nothing unchanged is sent again; a node killed
// outright has its peers gone within its lease; Redis restarted under the nodes, and a
// 3-master Redis Cluster; the ledger exact when one peer's announces reach two nodes, and the
// per-user rules counting other nodes' peers.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigOverrides } from '../dist/engine/config.js';
import type { Tracker } from '../dist/engine/tracker.js';
import { ReplicationStats } from '../dist/contract/replication.js';
import { announcePath, decode, failure, freeTcpPort, get, hash, peerId, scrapeCounts, spawnTracker, startTestTracker, until, type AnnounceParams, type TrackerProcess } from './helpers.js';
import { LedgerSim, ledgerTotals, nonZero, seedRegistry } from './support/ledger-sim.js';
import { prng } from './support/prng.js';
import { perTestLedger } from './support/ledger-trackers.js';
import { hasRedisServer, machineRedis, OwnRedis, ownCluster, REDIS_URL } from './support/redis.js';

const redis = machineRedis();
const running: Tracker[] = [];
const processes: TrackerProcess[] = [];
afterEach(async () => {
  for (const p of processes.splice(0)) await p.kill();
  for (const t of running.splice(0)) await t.close();
});

const LEASE = 2;
const replication = (prefix: string, name: string, extra: object = {}) => ({ redis: { url: REDIS_URL, prefix, node_name: name, publish_interval_ms: 50, node_lease: LEASE, ...extra } });

async function node(overrides: ConfigOverrides): Promise<Tracker> {
  const t = await startTestTracker(overrides, undefined, process.env.TEST_LOG ? (m, l) => console.log(l, m) : undefined);
  running.push(t);
  return t;
}

const synced = (t: Tracker) => t.replication!.stats[ReplicationStats.SYNCED] === 1;

async function announce(t: Tracker | number, p: AnnounceParams, passkey = ''): Promise<Record<string, any>> {
  const res = await get(typeof t === 'number' ? t : t.httpPort, announcePath({ compact: 1, ...p }, passkey ? `/${passkey}` : ''));
  const f = failure(res.body);
  if (f) throw new Error(`announce refused: ${f}`);
  return decode(res.body);
}

/** Ports of the peers a node holds for an info_hash, sorted. */
const ports = (t: Tracker, ih: Uint8Array): number[] => (t.pool.swarm(ih, 1000)?.peers.map((p) => p.port) ?? []).sort((a, b) => a - b);

const scrape = (t: Tracker, ih: Uint8Array): Promise<[number, number]> => scrapeCounts(t.httpPort, ih);

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

describe('peers across nodes through Redis', () => {
  it('cross every way; scrape agrees; completions and stops follow; an unchanged re-announce is not sent again', async () => {
    const prefix = redis.prefix();
    const nodes = [await node(replication(prefix, 'a')), await node(replication(prefix, 'b')), await node(replication(prefix, 'c'))];
    await until('three nodes in sync', () => nodes.every(synced));
    const ih = hash();
    const ids = [peerId(), peerId(), peerId()];
    for (let i = 0; i < 3; i++) await announce(nodes[i], { infoHash: ih, peerId: ids[i], port: 7001 + i, left: i === 1 ? 0 : 1000 });
    await until('every node listing the three peers', () => nodes.every((t) => same(ports(t, ih), [7001, 7002, 7003])), 5_000);
    for (const t of nodes) expect(await scrape(t, ih)).toEqual([1, 2]);
    // each node answers its own peer with the other nodes' ones
    const answer = await announce(nodes[0], { infoHash: ih, peerId: ids[0], port: 7001 });
    expect(Buffer.from(answer.peers).length).toBe(12);
    expect(nodes[1].pool.stats(0).remotePeers + nodes[1].pool.stats(1).remotePeers).toBe(2);

    await announce(nodes[0], { infoHash: ih, peerId: ids[0], port: 7001, left: 0, downloaded: 1000, event: 'completed' });
    await until('the completion everywhere', async () => (await Promise.all(nodes.map((t) => scrape(t, ih)))).every((s) => same(s, [2, 1])), 5_000);
    await announce(nodes[1], { infoHash: ih, peerId: ids[1], port: 7002, left: 0, event: 'stopped' });
    await until('the stop everywhere', () => nodes.every((t) => same(ports(t, ih), [7001, 7003])), 5_000);

    // a re-announce that changes nothing others see is not published again; leases renew
    await new Promise((r) => setTimeout(r, LEASE * 1500));
    expect(nodes.every((t) => same(ports(t, ih), [7001, 7003]))).toBe(true);
    const published = nodes[2].replication!.stats[ReplicationStats.PUBLISHED];
    await announce(nodes[2], { infoHash: ih, peerId: ids[2], port: 7003, uploaded: 500 });
    await new Promise((r) => setTimeout(r, 300));
    expect(nodes[2].replication!.stats[ReplicationStats.PUBLISHED]).toBe(published);
    // a new address is
    await announce(nodes[2], { infoHash: ih, peerId: ids[2], port: 7004 });
    await until('the new port everywhere', () => nodes.every((t) => same(ports(t, ih), [7001, 7004])), 5_000);

    const metrics = (await get(nodes[0].admin!.port, '/metrics')).body.toString();
    expect(metrics).toMatch(/^shardtrack_redis_up 1$/m);
    expect(metrics).toMatch(/^shardtrack_remote_peers 1$/m);
    expect(metrics).toMatch(/^shardtrack_remote_peers_refused_total 0$/m); // (the tables have room)
    expect(metrics).toMatch(/^shardtrack_replication_lag_seconds_count [1-9]/m);
    const ready = JSON.parse((await get(nodes[0].admin!.port, '/ready')).body.toString());
    expect(ready).toMatchObject({ status: 'ready', problems: [] });

    // a node that shuts down leaves: its peers go from the others at once (not at its lease's end)
    await nodes[0].close();
    running.splice(running.indexOf(nodes[0]), 1);
    await until('the closed node peers gone', () => nodes.slice(1).every((t) => same(ports(t, ih), [7004])), LEASE * 1000);
  }, 60_000);

  it('removes the peers of a node killed outright within its lease', async () => {
    const prefix = redis.prefix();
    const b = await node(replication(prefix, 'b'));
    const p = await spawnTracker({
      SHARDTRACK_TRACKER__PRIVATE: 'false',
      SHARDTRACK_DATABASE__ENABLED: 'false',
      SHARDTRACK_REGISTRY__FILE: '',
      SHARDTRACK_ADMIN__ENABLED: 'false',
      SHARDTRACK_REDIS__URL: REDIS_URL,
      SHARDTRACK_REDIS__PREFIX: prefix,
      SHARDTRACK_REDIS__NODE_NAME: 'doomed',
      SHARDTRACK_REDIS__NODE_LEASE: String(LEASE),
      SHARDTRACK_REDIS__PUBLISH_INTERVAL_MS: '50',
    });
    processes.push(p);
    const ih = hash();
    await announce(p.port, { infoHash: ih, peerId: Buffer.alloc(20, 1), port: 7100 });
    await until('its peer at the other node', () => same(ports(b, ih), [7100]), 10_000);
    await p.kill();
    processes.splice(0);
    const t0 = Date.now();
    await until('the killed node peers gone', () => ports(b, ih).length === 0, (LEASE + 2) * 1000);
    const gone = Date.now() - t0;
    expect(gone).toBeLessThan(LEASE * 1000 + 1500); // its lease, plus a third of one between checks
    expect(b.replication!.stats[ReplicationStats.NODES_LAPSED]).toBe(1);
  }, 60_000);
});

describe.skipIf(!hasRedisServer)('Redis restarted, and Redis Cluster', () => {
  it('keeps serving while Redis is away, and converges when it is back (empty)', async () => {
    const own = new OwnRedis(await freeTcpPort());
    await own.start();
    try {
      const conf = (name: string) => ({ redis: { url: own.url, prefix: 'st', node_name: name, publish_interval_ms: 50, node_lease: LEASE } });
      const a = await node(conf('a'));
      const b = await node(conf('b'));
      await until('both in sync', () => synced(a) && synced(b));
      const ih = hash();
      const [x, y, z] = [peerId(), peerId(), peerId()];
      await announce(a, { infoHash: ih, peerId: x, port: 7201 });
      await announce(b, { infoHash: ih, peerId: y, port: 7202 });
      await until('both peers on both nodes', () => [a, b].every((t) => same(ports(t, ih), [7201, 7202])), 5_000);

      await own.stop();
      await until('both nodes see Redis gone', () => [a, b].every((t) => !t.replication!.redisUp), 5_000);
      // still answering, and /ready says degraded (200: every node loses Redis at once)
      await announce(a, { infoHash: ih, peerId: z, port: 7203 });
      await announce(b, { infoHash: ih, peerId: y, port: 7202, event: 'stopped' });
      const ready = await get(a.admin!.port, '/ready');
      expect(ready.status).toBe(200);
      expect(JSON.parse(ready.body.toString())).toMatchObject({ status: 'degraded' });
      expect((await get(a.admin!.port, '/metrics')).body.toString()).toMatch(/^shardtrack_redis_up 0$/m);

      await own.start(); // empty: everything is published again
      await until('both nodes converged', () => [a, b].every((t) => synced(t) && same(ports(t, ih), [7201, 7203])), 15_000);
      expect(await scrape(a, ih)).toEqual(await scrape(b, ih));
      expect(JSON.parse((await get(b.admin!.port, '/ready')).body.toString())).toMatchObject({ status: 'ready' });
    } finally {
      for (const t of running.splice(0)) await t.close();
      await own.dispose();
    }
  }, 60_000);

  it('shares peers through a 3-master Redis Cluster', async () => {
    const cluster = await ownCluster();
    try {
      const conf = (name: string) => ({ redis: { cluster: cluster.seeds, prefix: 'st', node_name: name, publish_interval_ms: 50, node_lease: LEASE } });
      const a = await node(conf('a'));
      const b = await node(conf('b'));
      await until('both in sync', () => synced(a) && synced(b), 15_000);
      // info_hashes of several slices (several Cluster slots, on different masters)
      const hashes = Array.from({ length: 16 }, (_, i) => {
        const h = hash();
        h[0] = i << 4;
        return h;
      });
      for (const ih of hashes) {
        await announce(a, { infoHash: ih, peerId: peerId(), port: 7301 });
        await announce(b, { infoHash: ih, peerId: peerId(), port: 7302 });
      }
      await until('every swarm on both nodes', () => hashes.every((ih) => [a, b].every((t) => same(ports(t, ih), [7301, 7302]))), 10_000);
      // leases renew (one command per slot), so nothing lapses while both live
      await new Promise((r) => setTimeout(r, LEASE * 1500));
      expect(hashes.every((ih) => [a, b].every((t) => same(ports(t, ih), [7301, 7302])))).toBe(true);
      expect(a.replication!.stats[ReplicationStats.NODES_LAPSED] + b.replication!.stats[ReplicationStats.NODES_LAPSED]).toBe(0);
      // a node leaving retires its keys on every master
      await a.close();
      running.splice(running.indexOf(a), 1);
      await until('the leaving node peers gone', () => hashes.every((ih) => same(ports(b, ih), [7302])), LEASE * 1000);
    } finally {
      for (const t of running.splice(0)) await t.close();
      await cluster.dispose();
    }
  }, 60_000);
});

describe('the ledger across nodes', () => {
  const ledger = perTestLedger();
  it('accounts each announce once, at the node holding the peer, whichever node received it; caps and the no-leechers rule count other nodes peers', async () => {
    const db = ledger.db;
    const prefix = redis.prefix();
    const start = (name: string) =>
      ledger.trackers.start(db.name, mkdtempSync(join(tmpdir(), `shardtrack-cluster-${name}-`)), { ...replication(prefix, name), tracker: { private: true, max_peers_per_user_torrent: 1 } });
    const a = await start('a');
    const b = await start('b');
    const { users, torrents } = await seedRegistry(db.sql, 2, 1);
    const ih = Buffer.from(torrents[0].infoHash);
    await until('the registry on both nodes, both in sync', () => [a, b].every((t) => t.registry.registeredTorrents === 1 && synced(t)), 15_000);
    const [seeder, leecher] = users;
    const S = peerId();
    // the leecher only at b: the seeder's upload at a is credited because of it
    await announce(b, { infoHash: ih, peerId: peerId(), port: 7402, left: 1000, event: 'started' }, leecher.passkey);
    await announce(a, { infoHash: ih, peerId: S, port: 7401, left: 0, event: 'started' }, seeder.passkey);
    await until('both peers on both nodes', () => [a, b].every((t) => same(ports(t, ih), [7401, 7402])), 5_000);
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await sleep(1100); // (deltas within one tracker second wait for the next announce)
    // the load balancer sends it to b: answered there, accounted at a (its baseline)
    const atB = await announce(b, { infoHash: ih, peerId: S, port: 7401, left: 0, uploaded: 1000 }, seeder.passkey);
    expect([atB.complete, atB.incomplete]).toEqual([1, 1]);
    await until('the forwarded announce applied at a', () => a.replication!.stats[ReplicationStats.FORWARDS_RECEIVED] === 1, 5_000);
    await sleep(1100);
    await announce(a, { infoHash: ih, peerId: S, port: 7401, left: 0, uploaded: 3000 }, seeder.passkey);
    await sleep(1100);
    await announce(b, { infoHash: ih, peerId: S, port: 7401, left: 0, uploaded: 3500, event: 'stopped' }, seeder.passkey);
    await until('the forwarded stop applied everywhere', () => [a, b].every((t) => same(ports(t, ih), [7402])), 5_000).catch((e) => {
      throw new Error(`${e.message}: a ${ports(a, ih)} b ${ports(b, ih)} sent ${b.replication!.stats[ReplicationStats.FORWARDS_SENT]} received ${a.replication!.stats[ReplicationStats.FORWARDS_RECEIVED]} a-now ${a.pool.now()} b-now ${b.pool.now()} epochs ${a.pool.epoch} ${b.pool.epoch}`);
    });
    expect([b.replication!.stats[ReplicationStats.FORWARDS_SENT], a.replication!.stats[ReplicationStats.FORWARDS_RECEIVED]]).toEqual([2, 2]);

    // a second client of the leecher's user at a: one peer per user and torrent, cluster-wide
    const refused = failure((await get(a.httpPort, announcePath({ infoHash: ih, peerId: peerId(), port: 7403, left: 1000 }, `/${leecher.passkey}`))).body);
    expect(refused).toBe('too many of your clients in this swarm');

    await ledger.trackers.stop(a);
    await ledger.trackers.stop(b);
    const [h] = await db.sql`SELECT uploaded, uploaded_credited FROM history WHERE user_id = ${seeder.id} AND torrent_id = ${torrents[0].id}`;
    expect([Number(h.uploaded), Number(h.uploaded_credited)]).toEqual([3500, 3500 * torrents[0].up]);
    expect(await db.sql`SELECT kind FROM cheat_flags WHERE user_id = ${seeder.id}`).toEqual([]);
  }, 60_000);

  it('keeps the ledger exact through a mixed run: every announce at either node', async () => {
    const db = ledger.db;
    const prefix = redis.prefix();
    const start = (name: string) => ledger.trackers.start(db.name, mkdtempSync(join(tmpdir(), `shardtrack-mixed-${name}-`)), replication(prefix, name));
    const a = await start('a');
    const b = await start('b');
    const { users, torrents } = await seedRegistry(db.sql, 4, 3);
    await until('the registry on both nodes, both in sync', () => [a, b].every((t) => t.registry.registeredTorrents === 3 && synced(t)), 15_000);
    const sim = new LedgerSim(prng(61), users, torrents, 30);
    const pick = prng(62);
    const port = () => (pick() < 0.5 ? a : b).httpPort;
    // waves a replication lag apart (a new peer's second announce at the other node within
    // the lag would start a new baseline there: README, scale-out)
    for (let wave = 0; wave < 12; wave++) {
      await Promise.all(sim.peers.map((_, i) => get(port(), sim.next(i))));
      await new Promise((r) => setTimeout(r, 400));
    }
    await sim.finish(a.httpPort);
    await new Promise((r) => setTimeout(r, 500)); // (the last forwards published)
    const received = () => a.replication!.stats[ReplicationStats.FORWARDS_RECEIVED] + b.replication!.stats[ReplicationStats.FORWARDS_RECEIVED];
    const sent = () => a.replication!.stats[ReplicationStats.FORWARDS_SENT] + b.replication!.stats[ReplicationStats.FORWARDS_SENT];
    await until('every forwarded announce applied', () => sent() > 0 && received() === sent(), 10_000);
    await ledger.trackers.stop(a);
    await ledger.trackers.stop(b);
    expect(await ledgerTotals(db.sql).then(nonZero)).toEqual(nonZero(sim.totals()));
  }, 90_000);
});

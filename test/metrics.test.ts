// /metrics against a real tracker (two shard threads, HTTP and UDP, no database): requests
// that succeed and fail show up under the right labels, and the swarm gauges agree with
// what the shards hold.
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAILURES } from '../dist/engine/errors.js';
import { ShardControl } from '../dist/shards/memory-layout.js';
import type { Tracker } from '../dist/engine/tracker.js';
import { announcePath, failure, freeUdpPort, get, hashForShard, peerId, pct, startTestTracker } from './helpers.js';
import { parseExposition } from './support/prometheus.js';

let t: Tracker;
/** The running tracker's own exposition, from its admin listener. */
const scrapeMetrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${t.admin!.port}/metrics`)).text();
let udp: Socket;

/** One UDP request and its answer (BEP 15), matched by transaction id. */
function udpRequest(b: Buffer): Promise<Buffer> {
  const tid = randomBytes(4).readUInt32BE(0);
  b.writeUInt32BE(tid, 12);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no UDP answer')), 2000);
    const on = (m: Buffer) => {
      if (m.length < 8 || m.readUInt32BE(4) !== tid) return;
      clearTimeout(timer);
      udp.off('message', on);
      resolve(m);
    };
    udp.on('message', on);
    udp.send(b, t.udpPort, '127.0.0.1');
  });
}

async function udpAnnounce(infoHash: Uint8Array, event: number): Promise<Buffer> {
  const c = Buffer.alloc(16);
  c.writeUInt32BE(0x417, 0);
  c.writeUInt32BE(0x27101980, 4);
  const conn = (await udpRequest(c)).subarray(8, 16);
  const a = Buffer.alloc(98);
  conn.copy(a, 0);
  a.writeUInt32BE(1, 8);
  Buffer.from(infoHash).copy(a, 16);
  Buffer.from(peerId()).copy(a, 36);
  a.writeBigUInt64BE(1000n, 64); // left
  a.writeUInt32BE(event, 80);
  a.writeInt32BE(-1, 92);
  a.writeUInt16BE(6881, 96);
  return udpRequest(a);
}

const codeOf = (message: string | undefined): string | undefined => Object.entries(FAILURES).find(([, m]) => m === message)?.[0];

beforeAll(async () => {
  t = await startTestTracker({ udp: { port: await freeUdpPort() } });
  udp = createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
});
afterAll(async () => {
  udp?.close();
  await t?.close();
});

describe('metrics of a running tracker', () => {
  it('counts announces and scrapes by outcome, and the gauges match the shards', async () => {
    const port = t.httpPort;
    // Swarm A on shard 0: an IPv4 seeder and leecher. Swarm B on shard 1: an IPv6 leecher
    // (over ::1) and, from UDP, an IPv4 leecher. Shard 1 has no seeders, so the estimated
    // family × kind split is exact here.
    const a = hashForShard(0, 2);
    const b = hashForShard(1, 2);
    const ok = async (path: string, host?: string) => {
      const r = await get(port, path, { host });
      expect(failure(r.body)).toBeUndefined();
    };
    await ok(announcePath({ infoHash: a, peerId: peerId(), port: 7001, left: 0, event: 'started' }));
    await ok(announcePath({ infoHash: a, peerId: peerId(), port: 7002, event: 'started' }));
    await ok(announcePath({ infoHash: a, peerId: peerId(), port: 7003, event: 'stopped' })); // a stop of an unknown peer: answered, no peer left
    await ok(announcePath({ infoHash: b, peerId: peerId(), port: 7004 }), '::1');

    // failures: unparsable, too long, a bad event (parsed far enough: still event "none")
    const bad1 = failure((await get(port, '/announce?port=1')).body);
    const bad2 = failure((await get(port, `/announce?info_hash=${'x'.repeat(t.config.http.max_query_bytes)}`)).body);
    const bad3 = failure((await get(port, announcePath({ infoHash: a, peerId: peerId(), port: 7005, event: 'bogus' }))).body);
    expect([codeOf(bad1), codeOf(bad2), codeOf(bad3)]).toEqual(['missing_info_hash', 'query_too_long', 'invalid_event']);

    // scrapes: one answered, one refused (full scrape is off)
    await ok(`/scrape?info_hash=${pct(a)}`);
    expect(codeOf(failure((await get(port, '/scrape')).body))).toBe('full_scrape_disabled');

    // UDP: an announce, and one with an event BEP 15 does not have
    expect((await udpAnnounce(b, 2)).readUInt32BE(0)).toBe(1);
    const err = await udpAnnounce(b, 9);
    expect(err.readUInt32BE(0)).toBe(3);
    expect(err.subarray(8).toString()).toBe(FAILURES.invalid_event);

    const text = await scrapeMetrics();
    const m = parseExposition(text);
    const ann = (labels: Record<string, string>) => m.value('shardtrack_announces_total', labels);
    expect(ann({ protocol: 'http', event: 'started', outcome: 'ok' })).toBe(2);
    expect(ann({ protocol: 'http', event: 'stopped', outcome: 'ok' })).toBe(1);
    expect(ann({ protocol: 'http', event: 'none', outcome: 'ok' })).toBe(1);
    expect(ann({ protocol: 'http', event: 'none', outcome: 'failed' })).toBe(3);
    expect(ann({ protocol: 'udp', event: 'started', outcome: 'ok' })).toBe(1);
    expect(ann({ protocol: 'udp', event: 'none', outcome: 'failed' })).toBe(1);
    expect(m.sum('shardtrack_announces_total')).toBe(9);
    expect(m.value('shardtrack_scrapes_total', { protocol: 'http', outcome: 'ok' })).toBe(1);
    expect(m.value('shardtrack_scrapes_total', { protocol: 'http', outcome: 'failed' })).toBe(1);
    const fail = (code: string) => m.value('shardtrack_failures_total', { code });
    expect([fail('missing_info_hash'), fail('query_too_long'), fail('invalid_event'), fail('full_scrape_disabled')]).toEqual([1, 1, 2, 1]);
    expect(m.sum('shardtrack_failures_total')).toBe(5);
    expect(m.value('shardtrack_busy_total')).toBe(0);
    // latency: every announce a shard answered, none that the acceptor refused
    expect(m.value('shardtrack_announce_duration_seconds_count', { protocol: 'http' })).toBe(4);
    expect(m.value('shardtrack_announce_duration_seconds_count', { protocol: 'udp' })).toBe(1);
    expect(m.value('shardtrack_announce_duration_seconds_sum', { protocol: 'http' })).toBeGreaterThan(0);

    // swarm gauges: as announced, and as the shards' own words say
    expect(m.value('shardtrack_peers', { family: 'ipv4', kind: 'seeder' })).toBe(1);
    expect(m.value('shardtrack_peers', { family: 'ipv4', kind: 'leecher' })).toBe(2);
    expect(m.value('shardtrack_peers', { family: 'ipv6', kind: 'seeder' })).toBe(0);
    expect(m.value('shardtrack_peers', { family: 'ipv6', kind: 'leecher' })).toBe(1);
    expect(m.value('shardtrack_swarms')).toBe(2);
    const words = (w: number) => t.pool.shards.reduce((n, s) => n + s.ctl[w], 0);
    expect(m.sum('shardtrack_peers', { kind: 'seeder' })).toBe(words(ShardControl.SEEDERS));
    expect(m.sum('shardtrack_peers', { kind: 'leecher' })).toBe(words(ShardControl.LEECHERS));
    expect(m.sum('shardtrack_peers', { family: 'ipv6' })).toBe(words(ShardControl.PEERS_V6));
    expect(m.value('shardtrack_swarms')).toBe(words(ShardControl.SWARM_LIVE));
    expect(m.value('shardtrack_shard_peers', { shard: '0' })).toBe(2);
    expect(m.value('shardtrack_shard_peers', { shard: '1' })).toBe(2);
    for (const shard of ['0', '1']) {
      expect(m.value('shardtrack_shard_up', { shard })).toBe(1);
      expect(m.value('shardtrack_shard_restarts_total', { shard })).toBe(0);
      expect(m.value('shardtrack_shard_requests_handled_total', { shard })).toBeGreaterThan(0);
    }
    expect(m.names().has('shardtrack_database_up')).toBe(false); // database off
    expect(m.names().has('nodejs_eventloop_lag_seconds')).toBe(true);
  });

  it('counts shard restarts', async () => {
    await t.pool.killShard(1);
    await t.pool.shardUp(1);
    const m = parseExposition(await scrapeMetrics());
    expect(m.value('shardtrack_shard_restarts_total', { shard: '1' })).toBe(1);
    expect(m.value('shardtrack_shard_up', { shard: '1' })).toBe(1);
    // the swarms came back on the same memory
    expect(m.value('shardtrack_shard_swarms', { shard: '1' })).toBe(1);
  });
});

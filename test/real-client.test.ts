// Real BitTorrent clients through every step of a download: aria2 (Debian's `aria2`) over
// HTTP (private, passkey URL) and UDP (BEP 15), and Transmission's daemon (Debian's
// `transmission-daemon`) over UDP. Each client's later announces must land too: the
// regular ones, `completed` (a scrape then shows two seeders and one download) and
// `stopped` (the swarm empties). Skipped, saying so, where a client is not installed.
import bencode from 'bencode';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Tracker } from '../dist/engine/tracker.js';
import { FAILURE_CODES, PROTO_HTTP, PROTO_UDP, TrackerCounters } from '../dist/engine/counters.js';
import { EVENT_COMPLETED, EVENT_NONE, EVENT_STARTED, EVENT_STOPPED } from '../dist/contract/requests.js';
import { decodeRawKeys, defaultLimits, freeTcpPort, freeUdpPort, get, hexKey, pct, startTestTracker, until } from './helpers.js';

const hasAria2 = spawnSync('aria2c', ['--version']).status === 0;
const hasTransmission = spawnSync('transmission-daemon', ['-V']).status === 0;
if (!hasAria2) console.warn('real-client tests skipped: aria2c not installed (apt-get install aria2)');
if (!hasTransmission) console.warn('Transmission test skipped: transmission-daemon not installed (apt-get install transmission-daemon)');

// Short intervals so that regular re-announces happen within the test.
const INTERVALS = { interval: 10, min_interval: 10, interval_jitter: 0 };

describe.skipIf(!hasAria2)('real client (aria2c)', () => {
  it('over a private HTTP announce URL: started, regular, completed and stopped announces all land', async () => {
    await aria2Download('http');
  }, 60_000);

  it('over a UDP announce URL (BEP 15): started, regular, completed and stopped announces all land', async () => {
    await aria2Download('udp');
  }, 60_000);
});

describe.skipIf(!hasAria2 || !hasTransmission)('real client (transmission-daemon)', () => {
  it('downloads over UDP from an aria2 seeder: completed and stopped land', async () => {
    const s = await setUp('udp');
    const rpcPort = await freeTcpPort();
    const conf = join(s.dir, 'transmission');
    mkdirSync(join(conf, 'dl'), { recursive: true });
    writeFileSync(
      join(conf, 'settings.json'),
      JSON.stringify({
        'dht-enabled': false, 'lpd-enabled': false, 'pex-enabled': false, 'utp-enabled': false, 'port-forwarding-enabled': false,
        'rpc-authentication-required': false, 'rpc-whitelist-enabled': false, 'rpc-host-whitelist-enabled': false,
        'ratio-limit-enabled': false, 'idle-seeding-limit-enabled': false, 'download-dir': join(conf, 'dl'), 'incomplete-dir-enabled': false,
      }),
    );
    const daemon = spawn('transmission-daemon', ['-f', '-g', conf, '-p', String(rpcPort), '-r', '127.0.0.1', '-P', '26893'], { stdio: 'ignore' });
    let seeder: ChildProcess | undefined;
    try {
      const rpc = transmissionRpc(rpcPort);
      await until('transmission-daemon answers RPC', async () => (await rpc('session-get').catch(() => null)) !== null);
      await rpc('torrent-add', { metainfo: readFileSync(s.torrent).toString('base64') });
      // Transmission first, so that the seeder's first answer lists it and it connects at once.
      await until('transmission announced started', async () => (await s.scrape()).incomplete === 1);
      seeder = s.aria2('seed', 26894, 26994);
      await until('transmission downloaded and announced completed', async () => {
        const c = await s.scrape();
        return c.complete === 2 && c.downloaded === 1;
      }, 45_000);
      expect(readFileSync(join(conf, 'dl', 'file.bin')).equals(s.data)).toBe(true);
      const [t] = (await rpc('torrent-get', { fields: ['id'] })).torrents as { id: number }[];
      await rpc('torrent-stop', { ids: [t.id] });
      await until('transmission announced stopped', async () => (await s.scrape()).complete === 1);
      s.expectAnnounced(PROTO_UDP, [EVENT_STARTED, EVENT_COMPLETED, EVENT_STOPPED]);
      s.expectNoFailures();
    } finally {
      seeder?.kill('SIGKILL');
      daemon.kill('SIGKILL');
      await s.t.close();
    }
  }, 90_000);
});

async function aria2Download(proto: 'http' | 'udp'): Promise<void> {
  const s = await setUp(proto);
  const base = proto === 'http' ? 26881 : 26883;
  const seeder = s.aria2('seed', base, base + 110);
  let leecher: ChildProcess | undefined;
  try {
    await until('the seeder announced started', async () => (await s.scrape()).complete === 1);
    leecher = s.aria2('leech', base + 1, base + 111);
    await until('the leecher downloaded and announced completed', async () => {
      const c = await s.scrape();
      return c.complete === 2 && c.downloaded === 1 && c.incomplete === 0;
    }, 30_000);
    expect(readFileSync(join(s.dir, 'leech', 'file.bin')).equals(s.data)).toBe(true);
    // the seeder's regular re-announce (every 10 s) lands too
    await until('a regular announce', async () => s.announced(proto === 'http' ? PROTO_HTTP : PROTO_UDP, EVENT_NONE) > 0, 20_000);
    // a graceful stop (SIGINT; aria2 takes SIGTERM as an emergency halt) sends `stopped`
    seeder.kill('SIGINT');
    leecher.kill('SIGINT');
    await until('both clients announced stopped', async () => {
      const c = await s.scrape();
      return c.complete === 0 && c.incomplete === 0;
    });
    s.expectAnnounced(proto === 'http' ? PROTO_HTTP : PROTO_UDP, [EVENT_STARTED, EVENT_NONE, EVENT_COMPLETED, EVENT_STOPPED]);
    s.expectNoFailures();
  } finally {
    seeder.kill('SIGKILL');
    leecher?.kill('SIGKILL');
    await s.t.close();
  }
}

interface Setup {
  t: Tracker;
  dir: string;
  data: Buffer;
  torrent: string;
  /** Start aria2c seeding (`seed`, from a full copy) or downloading (`leech`, then seeding on). */
  aria2(role: 'seed' | 'leech', port: number, dhtPort: number): ChildProcess;
  scrape(): Promise<{ complete: number; incomplete: number; downloaded: number }>;
  /** Announces answered without a failure, over `proto` with `event`. */
  announced(proto: number, event: number): number;
  expectAnnounced(proto: number, events: number[]): void;
  expectNoFailures(): void;
}

/** A tracker, a 256 KiB file and its torrent, private over HTTP or open over UDP. */
async function setUp(proto: 'http' | 'udp'): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'shardtrack-client-'));
  mkdirSync(join(dir, 'seed'));
  mkdirSync(join(dir, 'leech'));
  const data = randomBytes(256 * 1024);
  writeFileSync(join(dir, 'seed', 'file.bin'), data);
  const pieceLength = 16384;
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += pieceLength) pieces.push(createHash('sha1').update(data.subarray(i, i + pieceLength)).digest());
  const info = { length: data.length, name: 'file.bin', 'piece length': pieceLength, pieces: Buffer.concat(pieces), private: 1 };
  const infoHash = createHash('sha1').update(bencode.encode(info)).digest();

  // aria2 sends no BEP 41 URL data (nor does Transmission), so UDP runs use an open tracker.
  const passkey = randomBytes(16).toString('hex');
  const t =
    proto === 'http'
      ? await startTestTracker({ ...defaultLimits(), tracker: { private: true, require_registered_torrents: true, max_peers_per_user_torrent: 3, ...INTERVALS } })
      : await startTestTracker({ ...defaultLimits(), tracker: INTERVALS, udp: { host: '127.0.0.1', port: await freeUdpPort() } });
  t.registry.upsertUser({ id: 7, passkey, canLeech: true });
  t.registry.upsertTorrent({ id: 1, infoHash });
  const announce = proto === 'http' ? `http://127.0.0.1:${t.httpPort}/${passkey}/announce` : `udp://127.0.0.1:${t.udpPort}/announce`;
  const torrent = join(dir, 't.torrent');
  writeFileSync(torrent, bencode.encode({ announce, info }));
  const scrapePath = `${proto === 'http' ? `/${passkey}` : ''}/scrape?info_hash=${pct(infoHash)}`;

  const announced = (p: number, event: number) =>
    t.counters.announces[TrackerCounters.announceIndex(p, event, 0)];
  return {
    t,
    dir,
    data,
    torrent,
    aria2(role, port, dhtPort) {
      // aria2 speaks UDP trackers through its DHT socket, so UDP runs enable DHT: with no
      // entry point and an empty routing table it only ever talks to the tracker.
      const dht = proto === 'udp' ? ['--enable-dht=true', `--dht-listen-port=${dhtPort}`, `--dht-file-path=${join(dir, `dht${dhtPort}.dat`)}`] : ['--enable-dht=false'];
      const args = ['--bt-enable-lpd=false', '--enable-dht6=false', '--enable-peer-exchange=false', ...dht, `--listen-port=${port}`, '--seed-ratio=0', '--seed-time=2'];
      args.push(...(role === 'seed' ? [`--dir=${join(dir, 'seed')}`, '--check-integrity=true'] : [`--dir=${join(dir, 'leech')}`]));
      return spawn('aria2c', [...args, torrent], { stdio: 'ignore' });
    },
    async scrape() {
      const r = await get(t.httpPort, scrapePath);
      const files = (decodeRawKeys(r.body) as Map<string, Map<string, unknown>>).get(hexKey('files'));
      const f = files?.get(infoHash.toString('hex')) as Map<string, number> | undefined;
      if (!f) throw new Error(`scrape answered ${r.body.toString('latin1')}`);
      return { complete: f.get(hexKey('complete'))!, incomplete: f.get(hexKey('incomplete'))!, downloaded: f.get(hexKey('downloaded'))! };
    },
    announced,
    expectAnnounced(p, events) {
      for (const e of events) expect(announced(p, e), `announces with event ${e}`).toBeGreaterThan(0);
    },
    expectNoFailures() {
      const failed = FAILURE_CODES.filter((_, i) => t.counters.failures[i] > 0);
      expect(failed).toEqual([]);
    },
  };
}

/** Transmission's JSON-RPC: the first call learns the CSRF session id from a 409. */
function transmissionRpc(port: number) {
  let session = '';
  return async (method: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> => {
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/transmission/rpc`, {
        method: 'POST',
        headers: { 'X-Transmission-Session-Id': session },
        body: JSON.stringify({ method, arguments: args }),
      });
      if (r.status === 409) {
        session = r.headers.get('x-transmission-session-id') ?? '';
        continue;
      }
      const body = (await r.json()) as { result: string; arguments: Record<string, unknown> };
      if (body.result !== 'success') throw new Error(`transmission ${method}: ${body.result}`);
      return body.arguments;
    }
    throw new Error('transmission RPC kept answering 409');
  };
}

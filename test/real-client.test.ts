// A real BitTorrent client (aria2, Debian's `aria2` package) seeds and downloads a torrent
// through the tracker, over HTTP (private, passkey URL) and over UDP (BEP 15). Skipped,
// saying so, where aria2c is not installed.
import bencode from 'bencode';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freeUdpPort, startTestTracker } from './helpers.js';

const hasAria2 = spawnSync('aria2c', ['--version']).status === 0;
if (!hasAria2) console.warn('real-client test skipped: aria2c not installed (apt-get install aria2)');

describe.skipIf(!hasAria2)('real client (aria2c)', () => {
  it('two aria2c clients find each other through a private HTTP announce URL and transfer the file', async () => {
    await transfer('http');
  }, 45_000);

  it('two aria2c clients find each other through a UDP announce URL (BEP 15) and transfer the file', async () => {
    await transfer('udp');
  }, 45_000);
});

async function transfer(proto: 'http' | 'udp'): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'shardtrack-aria2-'));
  mkdirSync(join(dir, 'seed'));
  mkdirSync(join(dir, 'leech'));
  const data = randomBytes(256 * 1024);
  writeFileSync(join(dir, 'seed', 'file.bin'), data);
  const pieceLength = 16384;
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += pieceLength) pieces.push(createHash('sha1').update(data.subarray(i, i + pieceLength)).digest());
  const info = { length: data.length, name: 'file.bin', 'piece length': pieceLength, pieces: Buffer.concat(pieces), private: 1 };
  const infoHash = createHash('sha1').update(bencode.encode(info)).digest();

  // aria2 sends no BEP 41 URL data, so its UDP run uses an open tracker.
  const passkey = randomBytes(16).toString('hex');
  const t =
    proto === 'http'
      ? await startTestTracker({ tracker: { private: true, require_registered_torrents: true } })
      : await startTestTracker({ udp: { host: '127.0.0.1', port: await freeUdpPort() } });
  t.registry.upsertUser({ id: 7, passkey, canLeech: true });
  t.registry.upsertTorrent({ id: 1, infoHash });
  const announce = proto === 'http' ? `http://127.0.0.1:${t.httpPort}/${passkey}/announce` : `udp://127.0.0.1:${t.udpPort}/announce`;
  const torrent = join(dir, 't.torrent');
  writeFileSync(torrent, bencode.encode({ announce, info }));
  // aria2 speaks UDP trackers through its DHT socket, so the UDP run enables DHT: with no
  // entry point and an empty routing table it only ever talks to the tracker.
  const dht = (port: number) =>
    proto === 'udp' ? ['--enable-dht=true', `--dht-listen-port=${port}`, `--dht-file-path=${join(dir, `dht${port}.dat`)}`] : ['--enable-dht=false'];
  const common = ['--bt-enable-lpd=false', '--enable-dht6=false', '--enable-peer-exchange=false'];
  const seeder = spawn('aria2c', [...common, ...dht(26991), `--dir=${join(dir, 'seed')}`, '--check-integrity=true', '--seed-ratio=0', '--seed-time=1', '--listen-port=26881', torrent], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 1500));
    // The tracker runs in this process: wait for the client without blocking the loop.
    const leech = spawn('aria2c', [...common, ...dht(26992), `--dir=${join(dir, 'leech')}`, '--seed-time=0', '--listen-port=26882', torrent], { timeout: 30_000 });
    let out = '';
    leech.stdout.on('data', (d) => (out += d));
    const status = await new Promise((r) => leech.on('exit', r));
    expect(status, out.slice(-2000)).toBe(0);
    expect(readFileSync(join(dir, 'leech', 'file.bin')).equals(data)).toBe(true);
  } finally {
    seeder.kill('SIGKILL');
    await t.close();
  }
}

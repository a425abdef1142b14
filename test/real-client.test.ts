// A real BitTorrent client (aria2, Debian's `aria2` package) seeds and downloads a private
// torrent through the tracker. Skipped, saying so, where aria2c is not installed.
import bencode from 'bencode';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startTestTracker } from './helpers.js';

const hasAria2 = spawnSync('aria2c', ['--version']).status === 0;
if (!hasAria2) console.warn('real-client test skipped: aria2c not installed (apt-get install aria2)');

describe.skipIf(!hasAria2)('real client (aria2c)', () => {
  it('two aria2c clients find each other through a private announce URL and transfer the file', async () => {
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

    const passkey = randomBytes(16).toString('hex');
    const t = await startTestTracker({ tracker: { private: true, require_registered_torrents: true } });
    t.registry.upsertUser({ id: 7, passkey, canLeech: true });
    t.registry.upsertTorrent({ id: 1, infoHash });
    const torrent = join(dir, 't.torrent');
    writeFileSync(torrent, bencode.encode({ announce: `http://127.0.0.1:${t.httpPort}/${passkey}/announce`, info }));
    const common = ['--bt-enable-lpd=false', '--enable-dht=false', '--enable-dht6=false', '--enable-peer-exchange=false',];
    const seeder = spawn('aria2c', [...common, `--dir=${join(dir, 'seed')}`, '--check-integrity=true', '--seed-ratio=0', '--seed-time=1', '--listen-port=26881', torrent], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 1500));
      // The tracker runs in this process: wait for the client without blocking the loop.
      const leech = spawn('aria2c', [...common, `--dir=${join(dir, 'leech')}`, '--seed-time=0', '--listen-port=26882', torrent], { timeout: 30_000 });
      let out = '';
      leech.stdout.on('data', (d) => (out += d));
      const status = await new Promise((r) => leech.on('exit', r));
      expect(status, out.slice(-2000)).toBe(0);
      expect(readFileSync(join(dir, 'leech', 'file.bin')).equals(data)).toBe(true);
    } finally {
      seeder.kill('SIGKILL');
      await t.close();
    }
  }, 45_000);
});

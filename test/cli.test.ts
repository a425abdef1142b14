// The tracker as an operator runs it: `node dist/engine/main.js` with configuration from
// the environment, a TOML file and flags.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { announcePath, decode, get, hash, peerId, startTestTracker } from './helpers.js';

const MAIN = join(__dirname, '..', 'dist', 'engine', 'main.js');
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SHARDTRACK_')));

describe('command line', () => {
  it('--print-config prints the effective configuration as TOML', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrack-cli-'));
    const file = join(dir, 'tracker.toml');
    writeFileSync(file, '[tracker]\ninterval = 2400\n');
    const r = spawnSync(process.execPath, [MAIN, '--config', file, '--print-config'], {
      env: { ...cleanEnv(), SHARDTRACK_HTTP__PORT: '9999' },
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    const c = parseToml(r.stdout) as any;
    expect(c.http.port).toBe(9999);
    expect(c.tracker.interval).toBe(2400);
    expect(c.tracker.private).toBe(true);
    expect(r.stdout).toMatch(/^# /m);
  });

  it('refuses to start on a bad value, naming the key', () => {
    const r = spawnSync(process.execPath, [MAIN], { env: { ...cleanEnv(), SHARDTRACK_HTTP__PORT: 'eighty' }, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/http\.port/);
    expect(r.stderr).toMatch(/SHARDTRACK_HTTP__PORT/);
  });

  it('refuses unknown keys', () => {
    const r = spawnSync(process.execPath, [MAIN], { env: { ...cleanEnv(), SHARDTRACK_TRACKER__INTERVALL: '5' }, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/SHARDTRACK_TRACKER__INTERVALL/);
  });

  it('refuses to start on an HTTP port another tracker holds (uWS would share it silently)', async () => {
    const first = await startTestTracker({});
    try {
      const r = spawnSync(process.execPath, [MAIN], {
        env: { ...cleanEnv(), SHARDTRACK_HTTP__PORT: String(first.httpPort), SHARDTRACK_UDP__PORT: '0', SHARDTRACK_REGISTRY__FILE: '' },
        encoding: 'utf8',
        timeout: 10_000,
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/already in use/);
    } finally {
      await first.close();
    }
  });

  it('starts, serves announces and stops cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrack-cli-'));
    const child = spawn(process.execPath, [MAIN], {
      env: { ...cleanEnv(), SHARDTRACK_HTTP__PORT: '0', SHARDTRACK_UDP__PORT: '0', SHARDTRACK_REGISTRY__FILE: join(dir, 'registry.toml') },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    child.stderr.on('data', (d) => (log += d));
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start: ${log}`)), 10_000);
      child.stderr.on('data', () => {
        const m = /port (\d+)/.exec(log);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    });
    // private mode by default: the first start created a user and printed its passkey
    const passkey = /passkey ([0-9a-f]{32})/.exec(log)![1];
    const d = decode((await get(port, announcePath({ infoHash: hash(), peerId: peerId(), port: 6881 }, `/${passkey}`))).body);
    expect(d['failure reason']).toBeUndefined();
    expect(d.incomplete).toBe(1);
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.on('exit', r));
    expect(code).toBe(0);
  });
});

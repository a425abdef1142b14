// The tracker as an operator runs it: `node dist/engine/main.js` with configuration from
// the environment, a TOML file and flags.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { announcePath, cleanEnv, decode, get, hash, MAIN, peerId, spawnTracker, startTestTracker, until } from './helpers.js';
import { PG_URL, testSchema } from './support/pg.js';
import { VERSION } from '../dist/engine/version.js';

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

  it('--help and -h print the commands and flags and exit 0, starting nothing', () => {
    for (const flag of ['--help', '-h']) {
      const r = spawnSync(process.execPath, [MAIN, flag], { env: cleanEnv(), encoding: 'utf8', timeout: 10_000 });
      expect(r.status, r.stderr).toBe(0);
      for (const word of ['usage: shardtrack', 'migrate', 'token create', 'user add', 'torrent add', '--config', '--print-config', '--version', 'SHARDTRACK_']) {
        expect(r.stdout).toContain(word);
      }
      expect(r.stderr).toBe(''); // no tracker started: it would log to stderr
    }
    // even with a configuration that would not load, and as the `help` command
    for (const args of [['--help'], ['help']]) {
      const r = spawnSync(process.execPath, [MAIN, ...args], { env: { ...cleanEnv(), SHARDTRACK_HTTP__PORT: 'x' }, encoding: 'utf8' });
      expect(r.status, args[0]).toBe(0);
      expect(r.stdout).toContain('usage: shardtrack');
    }
  });

  it('--version prints the version, the Node.js and the native uWebSockets.js build', () => {
    const r = spawnSync(process.execPath, [MAIN, '--version'], { env: cleanEnv(), encoding: 'utf8', timeout: 10_000 });
    expect(r.status).toBe(0);
    const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
    expect(r.stdout).toBe(`shardtrack ${VERSION} on Node.js ${process.version}, uWebSockets.js v20.51.0 (${binary} from @based/uws@6.0.1)\n`);
  });

  it('refuses to serve on uWebSockets.js that is not its native binary, naming Node.js, ABI and glibc', () => {
    // A resolve hook hands main.js a stand-in for uWebSockets.js, as a build with a
    // JavaScript fallback (or none for this Node) would.
    const dir = mkdtempSync(join(tmpdir(), 'shardtrack-uws-'));
    writeFileSync(join(dir, 'fallback.cjs'), 'module.exports = { App() { return {}; } };\n');
    writeFileSync(join(dir, 'missing.cjs'), "throw new Error('no binary for this platform');\n");
    for (const [stub, said] of [
      ['fallback.cjs', /is not the native uws_\w+\.node: refusing to serve on a JavaScript fallback/],
      ['missing.cjs', /has no binary that loads on Node\.js v\d+\.\d+\.\d+ \(ABI \d+\) on linux-\w+ with glibc [\d.]+: no binary for this platform/],
    ] as const) {
      const hook = join(dir, `hook-${stub}.mjs`);
      writeFileSync(
        hook,
        `import { registerHooks } from 'node:module';\n` +
          `registerHooks({ resolve: (s, c, next) => s === 'uWebSockets.js' ? { url: ${JSON.stringify(`file://${join(dir, stub)}`)}, shortCircuit: true } : next(s, c) });\n`,
      );
      const r = spawnSync(process.execPath, ['--import', hook, MAIN], {
        env: { ...cleanEnv(), SHARDTRACK_DATABASE__ENABLED: 'false', SHARDTRACK_CHECKPOINT__ENABLED: 'false', SHARDTRACK_HTTP__PORT: '0', SHARDTRACK_UDP__PORT: '0', SHARDTRACK_ADMIN__PORT: '0', SHARDTRACK_REGISTRY__FILE: '' },
        encoding: 'utf8',
        timeout: 10_000,
      });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(said);
      expect(r.stderr).not.toMatch(/listening/);
    }
  });

  it('refuses an unknown flag or command, naming it, before starting anything', () => {
    for (const [args, named] of [
      [['--prot', '9000'], 'unknown flag --prot'],
      [['--print-confg'], 'unknown flag --print-confg'],
      [['serve'], 'unknown command serve'],
      [['user', 'add', '--pass', 'x'], 'unknown flag --pass for user'],
    ] as const) {
      const r = spawnSync(process.execPath, [MAIN, ...args], { env: cleanEnv(), encoding: 'utf8', timeout: 10_000 });
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(`shardtrack: ${named}\n`);
      expect(r.stderr).toContain('usage: shardtrack');
    }
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
        env: { ...cleanEnv(), SHARDTRACK_HTTP__PORT: String(first.httpPort), SHARDTRACK_UDP__PORT: '0', SHARDTRACK_REGISTRY__FILE: '', SHARDTRACK_DATABASE__ENABLED: 'false', SHARDTRACK_CHECKPOINT__ENABLED: 'false', SHARDTRACK_ADMIN__PORT: '0' },
        encoding: 'utf8',
        timeout: 10_000,
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/already in use/);
    } finally {
      await first.close();
    }
  });

  it('starts on the embedded database, serves, stops cleanly on SIGTERM and keeps its state across restarts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrack-cli-'));
    const spawned: Awaited<ReturnType<typeof spawnTracker>>[] = [];
    const run = async () => {
      const p = await spawnTracker({ SHARDTRACK_DATABASE__DATA_DIR: dir, SHARDTRACK_CHECKPOINT__ENABLED: 'true' }); // (as by default)
      spawned.push(p);
      return p;
    };
    const infoHash = hash();
    const id = peerId();
    // a registered torrent: only its peers are accounted
    const added = spawnSync(process.execPath, [MAIN, 'torrent', 'add', Buffer.from(infoHash).toString('hex')], {
      env: { ...cleanEnv(), SHARDTRACK_DATABASE__DATA_DIR: dir }, encoding: 'utf8', timeout: 60_000,
    });
    expect(added.stdout).toMatch(/torrent 1 registered/);
    // private mode on an embedded database without users: a first user, its passkey in the log
    try {
      const first = await run();
      // its passkey and the first admin token are in a 0600 file of the 0700 data directory,
      // never whole in the log
      const credentials = readFileSync(join(dir, 'credentials'), 'utf8');
      const passkey = /^first_user_passkey = ([0-9a-f]{32})$/m.exec(credentials)![1];
      const token = /^first_admin_token = (\S+)$/m.exec(credentials)![1];
      expect(first.log()).toMatch(/passkey [0-9a-f]{4}…\(32 chars\), whole in .*credentials/);
      expect(first.log()).not.toContain(passkey);
      expect(first.log()).not.toContain(token);
      const mode = (p: string) => statSync(p).mode & 0o777;
      expect(mode(join(dir, 'credentials'))).toBe(0o600);
      expect(mode(dir)).toBe(0o700);
      expect(mode(join(dir, 'pglite'))).toBe(0o700);
      expect(mode(join(dir, 'journal'))).toBe(0o700);
      for (const f of readdirSync(join(dir, 'journal'))) expect(mode(join(dir, 'journal', f)), f).toBe(0o600);
      const d = decode((await get(first.port, announcePath({ infoHash, peerId: id, port: 6881, left: 0, event: 'started' }, `/${passkey}`))).body);
      expect(d['failure reason']).toBeUndefined();
      expect(d.complete).toBe(1);
      expect(await first.stop()).toBe(0);

      // the same user, and the seeder is back in its swarm before it announces again
      const second = await run();
      expect(second.log()).not.toMatch(/created a first user/);
      expect(second.log()).toMatch(/restored 1 peers/);
      const again = decode((await get(second.port, announcePath({ infoHash, peerId: peerId(), port: 6882 }, `/${passkey}`))).body);
      expect(again['failure reason']).toBeUndefined();
      expect(again.complete).toBe(1);
      expect(await second.stop()).toBe(0);
    } finally {
      for (const p of spawned) await p.kill(); // none left running if an expectation failed
    }
  }, 90_000);

  it('admin commands work on the database, and a running tracker follows them', async () => {
    const db = await testSchema();
    const env = { ...cleanEnv(), SHARDTRACK_DATABASE__URL: PG_URL, SHARDTRACK_DATABASE__SCHEMA: db.name, SHARDTRACK_DATABASE__DATA_DIR: mkdtempSync(join(tmpdir(), 'shardtrack-cli-db-')) };
    const run = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { env, encoding: 'utf8' });
    let tracker: Awaited<ReturnType<typeof spawnTracker>> | undefined;
    try {
      expect(run('migrate').stdout).toMatch(/schema at version \d+/);
      tracker = await spawnTracker({ SHARDTRACK_DATABASE__URL: PG_URL, SHARDTRACK_DATABASE__SCHEMA: db.name, SHARDTRACK_DATABASE__DATA_DIR: env.SHARDTRACK_DATABASE__DATA_DIR, SHARDTRACK_TRACKER__REQUIRE_REGISTERED_TORRENTS: 'true' });
      const user = run('user', 'add', '--class', 'vip');
      expect(user.status).toBe(0);
      const passkey = /passkey ([0-9a-f]{32})/.exec(user.stdout)![1];
      const infoHash = hash();
      expect(run('torrent', 'add', Buffer.from(infoHash).toString('hex'), '--freeleech').stdout).toMatch(/torrent \d+ registered/);
      const path = announcePath({ infoHash, peerId: peerId(), port: 6881 }, `/${passkey}`);
      await until('the running tracker to take the new user and torrent', async () => decode((await get(tracker.port, path)).body)['failure reason'] === undefined);
      const token = run('token', 'create', 'ops');
      expect(token.stdout).toMatch(/token \d+ \(ops\): st_/);
      const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM users WHERE class = 'vip'`;
      expect(n).toBe(1);
      const bad = run('torrent', 'add', 'xyz');
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/40 hex digits/);
      expect(run('token', 'revoke', '999').status).toBe(2);
    } finally {
      await tracker?.stop();
      await db.drop();
    }
  }, 60_000);

  it('refuses to open the embedded database a running tracker holds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardtrack-lock-'));
    const tracker = await spawnTracker({ SHARDTRACK_DATABASE__DATA_DIR: dir });
    try {
      const r = spawnSync(process.execPath, [MAIN, 'user', 'add'], { env: { ...cleanEnv(), SHARDTRACK_DATABASE__DATA_DIR: dir }, encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`in use by process ${tracker.pid}`));
    } finally {
      expect(await tracker.stop()).toBe(0);
    }
  }, 60_000);
});

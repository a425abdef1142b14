// Restart to serving with N peers (issue 14): start a tracker pinned to a core with
// checkpoints on, load N peers (bench/rss.mjs), stop it with SIGTERM (the last checkpoint
// is written then: timed), start it again and time how long until it listens with every
// peer back (the log line of the restore), then check a swarm's count. Prints a Markdown
// table.
//
// --database URL: with the ledger on that PostgreSQL (a scratch schema holding --users
// users and --registered torrents, loaded at start). In both modes the persistence thread
// reads the checkpoint and hands it over. (After SIGTERM the journal's tail is empty: the
// last checkpoint holds everything; tests cover the tail.)
//
//   node bench/checkpoint-restart.mjs [--peers 1000000] [--torrents 50000] [--port 18700] [--server-cpu 0] [--load-cpu 1]
//        [--database postgres://postgres@127.0.0.1:5432/test --users 100000 --registered 100000]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { migrate } from '../dist/persistence/migrate.js';

const a = { peers: '1000000', torrents: '50000', port: '18700', 'server-cpu': '0', 'load-cpu': '1', database: '', users: '100000', registered: '100000' };
const argv = process.argv.slice(2);
for (let k = 0; k < argv.length; k += 2) a[argv[k].replace(/^--/, '')] = argv[k + 1];
const dir = mkdtempSync(join(tmpdir(), 'shardtrack-restart-'));
const schema = `st_bench_${randomBytes(4).toString('hex')}`;
const sql = a.database ? postgres(a.database, { max: 1, onnotice: () => {} }) : undefined;
if (sql) {
  await sql.unsafe(`CREATE SCHEMA ${schema}`);
  await sql.unsafe(`SET search_path = ${schema}`);
  await migrate(sql);
  await sql`INSERT INTO users (id, passkey) SELECT g, md5(g::text) FROM generate_series(1, ${Number(a.users)}) g`;
  await sql`INSERT INTO torrents (id, info_hash) SELECT g, substring(decode(md5(g::text) || md5(g::text), 'hex') for 20) FROM generate_series(1, ${Number(a.registered)}) g`;
}
const env = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SHARDTRACK_') && k !== 'DATABASE_URL')),
  SHARDTRACK_TRACKER__PRIVATE: 'false', SHARDTRACK_REGISTRY__FILE: '',
  ...(sql ? { SHARDTRACK_DATABASE__URL: a.database, SHARDTRACK_DATABASE__SCHEMA: schema } : { SHARDTRACK_DATABASE__ENABLED: 'false' }),
  SHARDTRACK_DATABASE__DATA_DIR: dir, SHARDTRACK_CHECKPOINT__INTERVAL_SECONDS: '0', SHARDTRACK_HTTP__HOST: '127.0.0.1',
  SHARDTRACK_HTTP__PORT: a.port, SHARDTRACK_UDP__PORT: '0', SHARDTRACK_ADMIN__ENABLED: 'false', SHARDTRACK_SHARDS__COUNT: '1',
  SHARDTRACK_LIMITS__ADDRESS_RATE: '0', SHARDTRACK_LIMITS__MAX_SWARMS_PER_ADDRESS: '0', SHARDTRACK_LIMITS__MAX_INFLIGHT_PER_ADDRESS: '0',
  SHARDTRACK_LOG__LEVEL: 'info',
};

function start() {
  const t0 = performance.now();
  const child = spawn('taskset', ['-c', a['server-cpu'], process.execPath, 'dist/engine/main.js'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const listening = new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      log += d;
      if (/listening on/.test(log)) resolve(performance.now() - t0);
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${log}`)));
  });
  return { child, listening, log: () => log };
}

async function stop(child) {
  const t0 = performance.now();
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGTERM');
  await exited;
  return performance.now() - t0;
}

const first = start();
await first.listening;
const loaded = spawnSync('taskset', ['-c', a['load-cpu'], process.execPath, 'bench/rss.mjs', '--pid', String(first.child.pid), '--url', `http://127.0.0.1:${a.port}`,
  '--peers', a.peers, '--torrents', a.torrents, '--settle', '1'], { encoding: 'utf8' });
if (loaded.status !== 0) throw new Error(`loading failed: ${loaded.stderr}`);
const stopMs = await stop(first.child);
const size = statSync(join(dir, 'checkpoint')).size;
const second = start();
const listenMs = await second.listening;
const restored = /restored (\d+) peers/.exec(second.log())?.[1];
if (process.env.BENCH_LOG) console.error(second.log());
const probe = spawnSync('taskset', ['-c', a['load-cpu'], process.execPath, 'bench/rss.mjs', '--print-probe', '--peers', a.peers, '--torrents', a.torrents], { encoding: 'utf8' }).stdout.trim();
const answer = spawnSync('curl', ['-s', `http://127.0.0.1:${a.port}${probe}`], { encoding: 'latin1' }).stdout;
await stop(second.child);
rmSync(dir, { recursive: true, force: true });
if (sql) {
  await sql.unsafe(`DROP SCHEMA ${schema} CASCADE`);
  await sql.end({ timeout: 1 });
}
console.log(sql ? `With the ledger on PostgreSQL: ${Number(a.users).toLocaleString('en')} users and ${Number(a.registered).toLocaleString('en')} torrents registered.` : 'No database.');
console.log(`| peers | SIGTERM to exit (last checkpoint written) | checkpoint file | start to listening, every peer back | peers restored | probe swarm |`);
console.log(`| --- | --- | --- | --- | --- | --- |`);
console.log(`| ${Number(a.peers).toLocaleString('en')} | ${(stopMs / 1000).toFixed(2)} s | ${(size / 1048576).toFixed(0)} MiB | ${(listenMs / 1000).toFixed(2)} s | ${Number(restored).toLocaleString('en')} | ${/8:completei(\d+)e/.exec(answer)?.[1] ?? '?'} complete, ${/10:incompletei(\d+)e/.exec(answer)?.[1] ?? '?'} incomplete |`);

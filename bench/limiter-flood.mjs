// The limiter's memory under a flood (issue 13): start a tracker with the default limits,
// send one announce from each of N distinct loopback addresses (127.1.0.0 onwards: all of
// 127/8 is loopback), and read the limiter's figures and the process's memory from /metrics
// before and after. The tables are fixed at start: entries stop at their capacity, bytes do
// not move, evictions count the rest.
//
//   node bench/limiter-flood.mjs [--addresses 100000] [--concurrency 200] [--port 18603] [--server-cpu 0]
import { spawn } from 'node:child_process';
import http from 'node:http';
import { randomBytes } from 'node:crypto';

const a = { addresses: '100000', concurrency: '200', port: '18603', 'server-cpu': '0' };
const argv = process.argv.slice(2);
for (let k = 0; k < argv.length; k += 2) a[argv[k].replace(/^--/, '')] = argv[k + 1];
const N = Number(a.addresses);
const PORT = Number(a.port);
const ADMIN = PORT + 1;

const env = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SHARDTRACK_') && k !== 'DATABASE_URL')),
  SHARDTRACK_TRACKER__PRIVATE: 'false', SHARDTRACK_DATABASE__ENABLED: 'false', SHARDTRACK_REGISTRY__FILE: '',
  SHARDTRACK_HTTP__HOST: '127.0.0.1', SHARDTRACK_HTTP__PORT: String(PORT), SHARDTRACK_UDP__PORT: '0',
  SHARDTRACK_ADMIN__PORT: String(ADMIN), SHARDTRACK_SHARDS__COUNT: '1', SHARDTRACK_LOG__LEVEL: 'warn',
};
const child = spawn('taskset', ['-c', a['server-cpu'], process.execPath, 'dist/engine/main.js'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
const stop = () => child.kill('SIGTERM');
process.on('exit', stop);

function get(port, path, localAddress) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, localAddress, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    });
    req.on('error', () => resolve(''));
    req.setTimeout(5000, () => req.destroy());
  });
}

async function metrics() {
  const text = await get(ADMIN, '/metrics');
  const pick = (re) => Number(re.exec(text)?.[1] ?? NaN);
  return {
    entries: pick(/^shardtrack_limiter_entries\{table="addresses"\} (\S+)/m),
    capacity: pick(/^shardtrack_limiter_capacity\{table="addresses"\} (\S+)/m),
    bytes: pick(/^shardtrack_limiter_bytes\{table="addresses"\} (\S+)/m) + pick(/^shardtrack_limiter_bytes\{table="passkeys"\} (\S+)/m),
    evictions: pick(/^shardtrack_limiter_evictions_total\{table="addresses"\} (\S+)/m),
    rss: pick(/^process_resident_memory_bytes (\S+)/m),
    heap: pick(/^nodejs_heap_size_used_bytes (\S+)/m),
  };
}

const pct = (b) => [...b].map((x) => '%' + x.toString(16).padStart(2, '0')).join('');
for (let i = 0; i < 300; i++) {
  if ((await get(ADMIN, '/health')) !== '') break;
  await new Promise((r) => setTimeout(r, 100));
}
await get(PORT, `/announce?info_hash=${pct(randomBytes(20))}&peer_id=${pct(randomBytes(20))}&port=1&uploaded=0&downloaded=0&left=0`);
await new Promise((r) => setTimeout(r, 500));
const before = await metrics();
const t0 = Date.now();
let next = 0;
let ok = 0;
async function worker() {
  while (next < N) {
    const i = next++;
    const from = `127.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
    const body = await get(PORT, `/announce?info_hash=${pct(randomBytes(20))}&peer_id=${pct(randomBytes(20))}&port=6881&uploaded=0&downloaded=0&left=1&event=stopped`, from); // no peer stays: only the limiter remembers
    if (body.startsWith('d') && !body.includes('failure reason')) ok++;
  }
}
await Promise.all(Array.from({ length: Number(a.concurrency) }, worker));
const secs = (Date.now() - t0) / 1000;
await new Promise((r) => setTimeout(r, 1000));
if (global.gc) global.gc();
const after = await metrics();
const mb = (x) => (x / 1048576).toFixed(1);
console.log(`\n### Limiter memory after a flood from ${N.toLocaleString('en')} addresses\n`);
console.log(`${ok.toLocaleString('en')} announces answered in ${secs.toFixed(1)} s, one (event=stopped: no peer stays) from each of ${N.toLocaleString("en")} loopback addresses (default limits).\n`);
console.log('| | before | after |\n| --- | --- | --- |');
console.log(`| address table entries (capacity ${before.capacity.toLocaleString('en')}) | ${before.entries.toLocaleString('en')} | ${after.entries.toLocaleString('en')} |`);
console.log(`| evictions | ${before.evictions.toLocaleString('en')} | ${after.evictions.toLocaleString('en')} |`);
console.log(`| limiter tables, MiB (both) | ${mb(before.bytes)} | ${mb(after.bytes)} |`);
console.log(`| process RSS, MiB | ${mb(before.rss)} | ${mb(after.rss)} |`);
console.log(`| JS heap used, MiB | ${mb(before.heap)} | ${mb(after.heap)} |`);
stop();

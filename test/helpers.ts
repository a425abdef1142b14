// Shared helpers of the integration tests: start a real tracker (compiled, from dist/) on a
// free port, speak HTTP to it byte-exactly, decode bencoded answers with the `bencode` package.
import bencode from 'bencode';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { loadConfig, type ConfigOverrides } from '../dist/engine/config.js';
import { startTracker, type Tracker } from '../dist/engine/tracker.js';

export { until } from './support/until.js';

export async function startTestTracker(
  overrides: ConfigOverrides = {},
  onFatal?: (msg: string) => void,
  log: (msg: string, level?: string) => void = () => {},
): Promise<Tracker> {
  const base: ConfigOverrides = {
    http: { host: '::', port: 0 },
    udp: { port: 0 }, // off unless a test asks for it (freeUdpPort)
    shards: { count: 2, max_peers: 1 << 20, max_swarms: 1 << 18 },
    tracker: { private: false, max_peers_per_user_torrent: 0 },
    // off unless a test asks (test/limits.test.ts): simulated clients announce far faster than real ones
    limits: { address_rate: 0, passkey_rate: 0, enforce_min_interval: false, max_swarms_per_address: 0, max_inflight_per_address: 0, autoban_failures: 0 },
    registry: { file: '' },
    database: { enabled: false }, // tests that want the ledger say so (test/persistence.test.ts)
    checkpoint: { enabled: false }, // tests that want checkpoints say so, with a data directory of their own
    admin: { port: 0 },
  };
  const merged = deepMerge(base, overrides);
  const config = loadConfig({ argv: [], env: {}, overrides: merged });
  return startTracker(config, log, onFatal ?? ((msg) => {
    throw new Error(`tracker gave up: ${msg}`);
  }));
}

/** The limits as an operator gets them by default (startTestTracker turns them off). */
export function defaultLimits(): ConfigOverrides {
  const d = loadConfig({ argv: [], env: {} });
  return { limits: { ...d.limits }, tracker: { max_peers_per_user_torrent: d.tracker.max_peers_per_user_torrent } };
}

function deepMerge<T>(a: T, b: T): T {
  const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
  for (const [k, v] of Object.entries(b as Record<string, unknown>)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) ? deepMerge((out[k] ?? {}) as T, v as T) : v;
  }
  return out as T;
}

/** A UDP port nothing is bound to right now (bound and released; fine on loopback). */
export async function freeUdpPort(): Promise<number> {
  const { createSocket } = await import('node:dgram');
  const s = createSocket('udp6');
  await new Promise<void>((r) => s.bind(0, '::', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A TCP port nothing listens on right now on 127.0.0.1 (bound and released). */
export async function freeTcpPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface Reply {
  status: number;
  body: Buffer;
  headers: http.IncomingHttpHeaders;
}

export function get(port: number, path: string, opts: { host?: string; headers?: Record<string, string>; localAddress?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: opts.host ?? '127.0.0.1', port, path, headers: opts.headers, localAddress: opts.localAddress, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Percent-encode every byte as real clients do (unreserved ASCII stays). */
export function pct(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    s += /[A-Za-z0-9.\-_~]/.test(c) ? c : '%' + b.toString(16).padStart(2, '0').toUpperCase();
  }
  return s;
}

export interface AnnounceParams {
  infoHash: Uint8Array;
  peerId: Uint8Array;
  port: number;
  uploaded?: number;
  downloaded?: number;
  left?: number;
  event?: string;
  numwant?: number;
  compact?: 0 | 1;
  noPeerId?: boolean;
  key?: string;
  extra?: string;
}

export function announcePath(p: AnnounceParams, prefix = ''): string {
  let q = `info_hash=${pct(p.infoHash)}&peer_id=${pct(p.peerId)}&port=${p.port}&uploaded=${p.uploaded ?? 0}&downloaded=${p.downloaded ?? 0}&left=${p.left ?? 1000}`;
  if (p.event) q += `&event=${p.event}`;
  if (p.numwant !== undefined) q += `&numwant=${p.numwant}`;
  if (p.compact !== undefined) q += `&compact=${p.compact}`;
  if (p.noPeerId) q += '&no_peer_id=1';
  if (p.key) q += `&key=${p.key}`;
  if (p.extra) q += `&${p.extra}`;
  return `${prefix}/announce?${q}`;
}

export function decode(body: Buffer): Record<string, any> {
  return bencode.decode(body) as Record<string, any>;
}

export function text(v: unknown): string {
  return Buffer.from(v as Uint8Array).toString('utf8');
}

export function failure(body: Buffer): string | undefined {
  const d = decode(body);
  return d['failure reason'] ? text(d['failure reason']) : undefined;
}

export function hash(): Uint8Array {
  return randomBytes(20);
}

/** A peer id with a client prefix, like real clients send. */
export function peerId(): Uint8Array {
  const id = randomBytes(20);
  id.set(Buffer.from('-qB4630-'), 0);
  return id;
}

/** An info_hash whose first four bytes route it to `shard` of `count`. */
export function hashForShard(shard: number, count: number): Uint8Array {
  for (;;) {
    const h = randomBytes(20);
    if (h.readUInt32BE(0) % count === shard) return h;
  }
}

/** Compact IPv4 peers as "a.b.c.d:port" strings. */
export function compactPeers(v: Uint8Array): string[] {
  const out: string[] = [];
  for (let i = 0; i + 6 <= v.length; i += 6) out.push(`${v[i]}.${v[i + 1]}.${v[i + 2]}.${v[i + 3]}:${(v[i + 4] << 8) | v[i + 5]}`);
  return out;
}

/** Compact IPv6 peers as "[hex...]:port" with the raw 16 bytes in hex. */
export function compactPeers6(v: Uint8Array): Array<{ ip: string; port: number }> {
  const out: Array<{ ip: string; port: number }> = [];
  for (let i = 0; i + 18 <= v.length; i += 18) out.push({ ip: Buffer.from(v.subarray(i, i + 16)).toString('hex'), port: (v[i + 16] << 8) | v[i + 17] });
  return out;
}

/**
 * Decode bencode keeping dictionary keys as hex of their raw bytes (the `bencode` package
 * turns keys into UTF-8 strings, which loses binary info_hash keys). Also checks that every
 * dictionary's keys are strictly sorted, as BEP 3 requires.
 */
export function decodeRawKeys(buf: Buffer): unknown {
  let i = 0;
  const value = (): unknown => {
    const c = buf[i];
    if (c === 0x69) {
      const end = buf.indexOf(0x65, i);
      const n = Number(buf.subarray(i + 1, end).toString());
      i = end + 1;
      return n;
    }
    if (c === 0x6c) {
      i++;
      const out: unknown[] = [];
      while (buf[i] !== 0x65) out.push(value());
      i++;
      return out;
    }
    if (c === 0x64) {
      i++;
      const out = new Map<string, unknown>();
      let prev: Buffer | undefined;
      while (buf[i] !== 0x65) {
        const k = bytes();
        if (prev && Buffer.compare(prev, k) >= 0) throw new Error(`dictionary keys not sorted at ${i}`);
        prev = k;
        out.set(k.toString('hex'), value());
      }
      i++;
      return out;
    }
    return bytes();
  };
  const bytes = (): Buffer => {
    const colon = buf.indexOf(0x3a, i);
    const len = Number(buf.subarray(i, colon).toString());
    const b = buf.subarray(colon + 1, colon + 1 + len);
    i = colon + 1 + len;
    return b;
  };
  const v = value();
  if (i !== buf.length) throw new Error(`trailing bytes after bencoded value at ${i}`);
  return v;
}

export const hexKey = (s: string): string => Buffer.from(s).toString('hex');

/** [complete, incomplete] of one info_hash, scraped over HTTP (with a passkey in private mode). */
export async function scrapeCounts(port: number, ih: Uint8Array, passkey?: string): Promise<[number, number]> {
  const files = (decodeRawKeys((await get(port, `${passkey === undefined ? '' : `/${passkey}`}/scrape?info_hash=${pct(ih)}`)).body) as Map<string, unknown>).get(hexKey('files')) as Map<string, Map<string, number>>;
  const f = files.get(Buffer.from(ih).toString('hex'));
  return f === undefined ? [0, 0] : [f.get(hexKey('complete'))!, f.get(hexKey('incomplete'))!];
}

/** A tracker run as operators run it: `node dist/engine/main.js`, configured by environment. */
export interface TrackerProcess {
  readonly port: number;
  readonly pid: number;
  log(): string;
  /** SIGTERM, resolving with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: no shutdown path at all. */
  kill(): Promise<void>;
}

export const MAIN = new URL('../dist/engine/main.js', import.meta.url).pathname;

/** The environment without any tracker settings of the machine running the tests. */
/**
 * The environment for a spawned tracker: none of ours (nor the header limit vitest sets for
 * trackers in this process: a spawned main.js sets its own from http.max_query_bytes).
 */
export const cleanEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SHARDTRACK_') && k !== 'DATABASE_URL' && k !== 'UWS_HTTP_MAX_HEADERS_SIZE'));

export async function spawnTracker(env: Record<string, string>, startMs = 30_000): Promise<TrackerProcess> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [MAIN], {
    env: { ...cleanEnv(), SHARDTRACK_HTTP__PORT: '0', SHARDTRACK_UDP__PORT: '0', SHARDTRACK_ADMIN__PORT: '0', SHARDTRACK_CHECKPOINT__ENABLED: 'false', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tracker did not start: ${log}`)), startMs);
    const check = (): void => {
      const m = /listening on \S+ port (\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stderr.on('data', check);
    void exited.then((code) => reject(new Error(`tracker exited (${code}) before listening: ${log}`)));
  });
  return {
    port,
    pid: child.pid!,
    log: () => log,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

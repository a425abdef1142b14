// Configuration: one valibot schema is the single source of every setting, its default and its
// comment. Each key is declared once, with `int`, `bool`, `str`, `oneOf` or `list`; the schema,
// the environment variable names and their coercion, printConfig's commented TOML and the README
// table (configDocs) are all derived from that one declaration.
//
// Precedence: defaults < TOML file (--config <path> or SHARDTRACK_CONFIG) < environment
// (SHARDTRACK_<TABLE>__<KEY>) < `overrides` (tests, embedding code). The merged object is
// validated once and deep-frozen. Unknown keys and bad values stop start-up with a ConfigError
// naming the key, what was expected and where the value came from: a typo that silently falls
// back to a default is worse than a tracker that refuses to start.

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import * as v from 'valibot';
import { CidrList } from './net/ip.js';

// ---------------------------------------------------------------------------------------------
// Key declarations

type Kind = 'int' | 'bool' | 'str' | 'list';
/** Carried in each key's valibot metadata: how to coerce env strings and what to say on error. */
type Meta = { kind: Kind; expected: string; hint: string; shown?: string };

const meta = <T>(m: Meta) => v.metadata<T, Meta>(m);

/** `shown`: how the docs state a default computed at start (the machine's cores). */
function int(def: number, min: number, max: number, doc: string, shown?: string) {
  return v.pipe(
    v.optional(v.number(), def),
    v.integer(),
    v.minValue(min),
    v.maxValue(max),
    v.description(doc),
    meta<number>({ kind: 'int', expected: `an integer from ${min} to ${max}`, hint: `${min}–${max}`, shown }),
  );
}

function bool(def: boolean, doc: string) {
  return v.pipe(v.optional(v.boolean(), def), v.description(doc), meta<boolean>({ kind: 'bool', expected: 'true or false', hint: '' }));
}

function str(def: string, doc: string) {
  return v.pipe(v.optional(v.string(), def), v.description(doc), meta<string>({ kind: 'str', expected: 'a string', hint: '' }));
}

function oneOf<const T extends readonly [string, ...string[]]>(def: T[number], options: T, doc: string) {
  const expected = `one of ${options.join(', ')}`;
  return v.pipe(v.optional(v.picklist(options), def), v.description(doc), meta<T[number]>({ kind: 'str', expected, hint: expected }));
}

function list(def: string[], doc: string, item: v.GenericSchema<string> = v.string()) {
  return v.pipe(
    v.optional(v.array(item), def),
    v.description(doc),
    meta<string[]>({ kind: 'list', expected: 'a list of strings', hint: '' }),
  );
}

/** A table; absent means all its defaults. */
function table<const E extends v.ObjectEntries>(entries: E) {
  return v.optional(v.strictObject(entries), {} as v.InferInput<v.StrictObjectSchema<E, undefined>>);
}

const ipOrCidr = v.pipe(
  v.string(),
  v.check(
    (s: string) => CidrList.validate(s) === null,
    (issue) => `not a valid IP or CIDR (${CidrList.validate(String(issue.input))})`,
  ),
);

/** Shard workers: one per core, leaving one for the acceptor. */
const defaultShards = Math.min(256, Math.max(1, availableParallelism() - 1));

const Tables = v.strictObject({
  http: table({
    host: str('::', 'listen address for HTTP announce/scrape; "::" listens on IPv6 and IPv4 (dual stack), "0.0.0.0" IPv4 only'),
    port: int(8080, 0, 65535, 'listen port for HTTP announce/scrape; 0 picks a free port (tests)'),
    max_query_bytes: int(8192, 256, 65536, 'longer query strings are refused before parsing'),
    max_inflight: int(65536, 1024, 1048576, 'announces/scrapes waiting on shards at once; beyond it clients get "tracker busy"'),
  }),
  udp: table({
    host: str('::', 'listen address for UDP announce/scrape (BEP 15); "::" is dual stack'),
    port: int(6969, 0, 65535, 'listen port for UDP announce/scrape; 0 disables UDP'),
    connection_id_secret: str('', 'shared by every node behind one UDP address: connection ids one node issues are valid on all (at least 32 characters; clocks in step within 2 minutes); empty = keys of this process alone'),
  }),
  ws: table({
    enabled: bool(true, 'WebSocket tracker (WebTorrent, WebRTC signalling) on the HTTP port: /announce and /<passkey>/announce upgrade'),
    interval: int(120, 10, 86400, 'seconds WebSocket peers should wait between announces (browser offers expire within about a minute)'),
    max_message_bytes: int(65536, 1024, 1048576, 'longer WebSocket messages close the socket (1009)'),
    max_offers: int(10, 0, 50, 'most offers one announce may carry; each goes to one WebSocket peer of the swarm'),
    max_swarms_per_socket: int(100, 1, 10000, 'most swarms one WebSocket may announce in'),
    max_sockets_per_address: int(64, 1, 100000, 'most WebSockets open at once from one client address (a browser needs one per tracker); beyond, the upgrade is refused (429)'),
    messages_per_second: int(50, 1, 10000, 'messages one WebSocket may send per second (a burst of twice that); beyond, a failure reason, and a close after many'),
    idle_timeout_seconds: int(120, 8, 960, 'a WebSocket silent this long is closed (the server pings it before)'),
    max_backpressure_bytes: int(262144, 1024, 67108864, 'a socket with this much unsent gets no more relays (dropped and counted)'),
  }),
  tracker: table({
    private: bool(true, 'require a known passkey in /<passkey>/announce'),
    require_registered_torrents: bool(false, 'in private mode, refuse info_hashes not registered'),
    interval: int(1800, 10, 86400, 'seconds clients should wait between announces'),
    min_interval: int(300, 1, 86400, 'seconds clients must wait between announces; at most tracker.interval'),
    interval_jitter: int(120, 0, 3600, 'random seconds added to interval so clients spread out'),
    peer_timeout: int(3900, 30, 172800, 'seconds without an announce before a peer expires'),
    numwant_default: int(50, 0, 1000, 'peers returned when the client sends no numwant; at most tracker.numwant_max'),
    numwant_max: int(200, 1, 1000, 'most peers returned in one announce, whatever numwant asks'),
    scrape_max_hashes: int(64, 1, 1000, 'info_hashes per scrape request'),
    full_scrape: bool(false, 'answer /scrape without info_hash with every swarm (built off the acceptor\'s loop, gzipped when asked)'),
    full_scrape_cache_seconds: int(30, 1, 3600, 'a full scrape answer is rebuilt at most this often; meanwhile requests get the last one'),
    allow_client_ip: bool(false, 'honour the ip/ipv4/ipv6 announce parameters (only sensible for trusted clients)'),
    max_peers_per_user_torrent: int(3, 0, 1000, 'private mode: most peers (clients) of one user in one swarm; a further one is refused and flagged too_many_peers; 0 = no cap'),
  }),
  limits: table({
    address_rate: int(20, 0, 1_000_000, 'announces and scrapes a second one source address (IPv4, IPv6 /64) may send on average; 0 = no rate limit'),
    address_burst: int(1000, 1, 10_000_000, 'requests an address may send at once before address_rate applies (a seedbox starting thousands of torrents)'),
    passkey_rate: int(10, 0, 1_000_000, 'announces and scrapes a second one user (passkey) may send on average; 0 = no rate limit'),
    passkey_burst: int(1000, 1, 10_000_000, 'requests a user may send at once before passkey_rate applies'),
    table_entries: int(65536, 1024, 16_777_216, 'addresses (and, separately, users) the limiter remembers: fixed memory, 36 bytes each per table; the least recently seen are forgotten first'),
    max_inflight_per_address: int(256, 0, 65535, 'requests of one address waiting on shards at once (its share of http.max_inflight); 0 = no cap'),
    enforce_min_interval: bool(true, 'refuse an announce sooner than tracker.min_interval after the peer\'s previous one (stopped and a first completed always pass)'),
    max_swarms_per_address: int(1000, 0, 10_000_000, 'open mode: most swarms one source address may be a peer of (split evenly across shards); 0 = no cap'),
    autoban_failures: int(100, 0, 65535, 'refused requests (unknown or missing passkey, malformed) from one address within autoban_window_seconds that ban it; 0 = never'),
    autoban_window_seconds: int(60, 1, 86400, 'window in which autoban_failures are counted'),
    autoban_seconds: int(3600, 1, 30 * 86400, 'how long an automatic ban lasts (admin API: GET /auto-bans, DELETE /auto-bans/{address})'),
  }),
  shards: table({
    count: int(defaultShards, 1, 256, 'shard worker threads (default: cores - 1, at least 1); a swarm lives on one', 'cores − 1 (min 1)'),
    max_peers: int(33554432, 1024, 48_000_000, 'upper bound on peers per shard: address space is reserved, memory committed only as tables grow (about 100-130 bytes a peer with its index and address entry)'),
    max_swarms: int(8388608, 1024, 64_000_000, 'upper bound on swarms per shard (96 bytes a swarm + index)'),
    ready_heartbeat_seconds: int(5, 2, 3600, '/ready answers 503 naming a shard whose loop has not turned for this many seconds (an idle shard turns 4 times a second)'),
    watchdog_seconds: int(30, 0, 3600, 'a shard whose loop has not turned for this many seconds is terminated and respawned on its memory like a crashed one; 0 = never; at least shards.ready_heartbeat_seconds'),
  }),
  net: table({
    trusted_proxies: list([], 'IPs/CIDRs of reverse proxies whose X-Forwarded-For / X-Real-IP are believed', ipOrCidr),
  }),
  registry: table({
    file: str('data/registry.toml', 'with database.enabled = false only: users and torrents from a watched TOML file (edits apply without restart); "" for none'),
  }),
  database: table({
    enabled: bool(true, 'keep the ledger (accounting) and the registry in a database; false = in-memory only, registry from registry.file'),
    url: str('', 'PostgreSQL URL (postgres://user@host:5432/db); empty = the conventional DATABASE_URL, else the embedded database under data_dir'),
    schema: v.pipe(
      v.optional(v.pipe(v.string(), v.regex(/^[a-z_][a-z0-9_]{0,62}$/)), 'public'),
      v.description('schema holding the tracker\'s tables (lower-case SQL identifier)'),
      meta<string>({ kind: 'str', expected: 'a lower-case SQL identifier', hint: '' }),
    ),
    data_dir: str('data', 'where the accounting journal and the embedded database live'),
  }),
  accounting: table({
    max_upload_rate: int(1250000000, 1, 2 ** 50, 'bytes a second: the most upload one announce can credit per second since the peer\'s previous announce (default 10 Gbit/s, a fast seedbox); beyond it the claim is cut and flagged upload_over_rate'),
  }),
  checkpoint: table({
    enabled: bool(true, 'keep the swarms in data_dir/checkpoint, written every interval_seconds and at shutdown, and put them back at start with the journal of every change after it (without a database too)'),
    interval_seconds: int(300, 0, 86400, 'seconds between checkpoints while serving; 0 = only at shutdown (also at start when the swarms came back without one, and early when the batches kept for one pass a quarter of the journal budget)'),
  }),
  persistence: table({
    flush_interval_ms: int(1000, 20, 60000, 'journal records (accounting, and peers states for the checkpoints) are journalled, and written to the database, at least this often'),
    flush_connections: int(2, 1, 64, 'connections a batch is written with in parallel, each a transaction over its share of the users (PostgreSQL only: the embedded database takes one); more when the database has cores to spare'),
    journal_max_bytes: int(1073741824, 1048576, 2 ** 50, 'disk budget of the journal: batches owed to the database (while it is away) and those kept for a checkpoint tail (which give way first); at 80% owed the tracker warns, at 100% it stops taking announces rather than lose accounting'),
  }),
  admin: table({
    enabled: bool(true, 'serve the admin API (/api/v1, needs the database), /health, /ready and /metrics'),
    host: str('127.0.0.1', 'listen address of the admin listener (keep it private: loopback or an internal network)'),
    port: int(8081, 0, 65535, 'listen port of the admin listener; 0 picks a free port (tests)'),
    on_tracker_port: bool(false, 'serve the admin routes on the tracker\'s HTTP port instead of a listener of their own'),
    metrics_token: str('', 'bearer token /metrics requires (Prometheus: authorization.credentials); empty = none, and then /metrics is not served with on_tracker_port'),
  }),
  redis: table({
    url: str('', 'Redis URL (redis://[:password@]host:6379/0) through which nodes share their peers (README: scale-out); empty = this node alone'),
    cluster: list([], 'Redis Cluster seed URLs, instead of url (keys are hash-tagged per slice of the info_hash space)'),
    prefix: v.pipe(
      v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,64}$/)), 'shardtrack'),
      v.description('prefix of every Redis key: nodes sharing it share their peers (letters, digits, _ . -)'),
      meta<string>({ kind: 'str', expected: 'letters, digits, _ . - (1 to 64)', hint: '' }),
    ),
    node_name: str('', 'this node in the cluster (its log lines, its ids in Redis); empty = the host name'),
    publish_interval_ms: int(200, 10, 500, 'local peer changes are published at least this often, in one batch per slice'),
    node_lease: int(10, 2, 300, 'seconds: a node that stops renewing its lease (it died, or lost Redis) has its peers removed everywhere within this'),
    unready_when_down: bool(false, '/ready answers 503 while Redis is unreachable (default: 200 with the state degraded, since every node loses Redis at once)'),
  }),
  log: table({
    level: oneOf('info', ['error', 'warn', 'info', 'debug'], 'least severe log level written'),
  }),
});

/** Rules between keys; each issue is reported on the first key named. */
const Schema = v.pipe(
  Tables,
  v.forward(
    v.partialCheck(
      [['tracker', 'min_interval'], ['tracker', 'interval']],
      (c) => c.tracker.min_interval <= c.tracker.interval,
      (issue) => `must not exceed tracker.interval (${issue.input.tracker.interval})`,
    ),
    ['tracker', 'min_interval'],
  ),
  v.forward(
    v.partialCheck(
      [['udp', 'connection_id_secret']],
      (c) => c.udp.connection_id_secret === '' || c.udp.connection_id_secret.length >= 32,
      () => 'must be empty or at least 32 characters (a guessable secret lets anyone forge connection ids)',
    ),
    ['udp', 'connection_id_secret'],
  ),
  v.forward(
    v.partialCheck(
      [['tracker', 'numwant_default'], ['tracker', 'numwant_max']],
      (c) => c.tracker.numwant_default <= c.tracker.numwant_max,
      (issue) => `must not exceed tracker.numwant_max (${issue.input.tracker.numwant_max})`,
    ),
    ['tracker', 'numwant_default'],
  ),
  v.forward(
    v.partialCheck(
      [['shards', 'watchdog_seconds'], ['shards', 'ready_heartbeat_seconds']],
      (c) => c.shards.watchdog_seconds === 0 || c.shards.watchdog_seconds >= c.shards.ready_heartbeat_seconds,
      (issue) => `must be 0 or at least shards.ready_heartbeat_seconds (${issue.input.shards.ready_heartbeat_seconds})`,
    ),
    ['shards', 'watchdog_seconds'],
  ),
);

// ---------------------------------------------------------------------------------------------
// Types

type Plain = v.InferOutput<typeof Tables>;
type DeepReadonly<T> = T extends readonly (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;
type DeepPartial<T> = T extends readonly (infer U)[] ? readonly U[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/** The effective configuration: fully typed, deep-frozen. */
export type Config = DeepReadonly<Plain>;
/** Any subset of the configuration, as plain values (for `loadConfig({ overrides })`). */
export type ConfigOverrides = DeepPartial<Plain>;

export interface LoadOptions {
  /** Command-line arguments; default process.argv.slice(2). Only `--config` is read. */
  argv?: readonly string[];
  /** Environment; default process.env. */
  env?: Record<string, string | undefined>;
  /** Applied last, over the environment. */
  overrides?: ConfigOverrides;
}

/** A setting that stops start-up. `key` is the key path (or variable/flag), `source` where the value came from. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly key: string,
    problem: string,
    readonly source?: string,
  ) {
    super(`${key}: ${problem}${source === undefined ? '' : ` (from ${source})`}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Leaves derived from the schema

type AnySchema = v.GenericSchema & { wrapped?: { entries?: v.ObjectEntries } };
/** The entries of a table declared with `table()`, or undefined for a key. */
const tableEntries = (schema: AnySchema) => schema.wrapped?.entries;
interface Leaf {
  path: string[];
  key: string;
  env: string;
  meta: Meta;
  doc: string;
  default: unknown;
}

const ENV_PREFIX = 'SHARDTRACK_';
const ENV_CONFIG = 'SHARDTRACK_CONFIG';

const leaves: Leaf[] = [];
(function collect(entries: v.ObjectEntries, prefix: string[]) {
  for (const [name, entry] of Object.entries(entries)) {
    const schema = entry as AnySchema;
    const path = [...prefix, name];
    const sub = tableEntries(schema);
    if (sub) {
      collect(sub, path);
      continue;
    }
    const m = v.getMetadata(schema as v.SchemaWithPipe<[v.GenericSchema]>) as Meta;
    const doc = v.getDescription(schema as v.SchemaWithPipe<[v.GenericSchema]>) ?? '';
    leaves.push({
      path,
      key: path.join('.'),
      env: ENV_PREFIX + path.map((p) => p.toUpperCase()).join('__'),
      meta: m,
      doc: m.hint && m.kind === 'int' ? `${doc} (${m.hint})` : m.hint ? `${doc}; ${m.hint}` : doc,
      default: deepFreeze(v.getDefault(schema as v.OptionalSchema<v.GenericSchema, unknown>)),
    });
  }
})(Tables.entries, []);

const leafByKey = new Map(leaves.map((l) => [l.key, l]));
const leafByEnv = new Map(leaves.map((l) => [l.env, l]));

// ---------------------------------------------------------------------------------------------
// Loading

export function loadConfig(opts: LoadOptions = {}): Config {
  const argv = opts.argv ?? process.argv.slice(2);
  const env = opts.env ?? process.env;
  const merged: Record<string, unknown> = {};
  const sources = new Map<string, string>(); // key path → where its value came from

  const file = configPath(argv, env);
  if (file !== undefined) mergeLayer(merged, readToml(file), Tables.entries, [], file, sources);
  mergeEnv(merged, env, sources);
  // The conventional DATABASE_URL, unless the file or SHARDTRACK_DATABASE__URL set one.
  const dbUrl = env.DATABASE_URL;
  if (dbUrl && !sources.has('database.url')) {
    const db = (merged.database ??= {}) as Record<string, unknown>;
    db.url = dbUrl;
    sources.set('database.url', 'DATABASE_URL');
  }
  if (opts.overrides) mergeLayer(merged, opts.overrides, Tables.entries, [], 'overrides', sources);

  const result = v.safeParse(Schema, merged);
  if (!result.success) throw issuesError(result.issues, sources);
  return deepFreeze(result.output);
}

/** `--config <path>` / `--config=<path>` (the last one wins), else SHARDTRACK_CONFIG, else none. */
function configPath(argv: readonly string[], env: Record<string, string | undefined>): string | undefined {
  let path: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') break;
    if (arg === '--config') path = argv[++i] ?? '';
    else if (arg.startsWith('--config=')) path = arg.slice('--config='.length);
    else continue;
    if (path === '') throw new ConfigError('--config', 'expected a file path', 'command line');
  }
  return path ?? (env[ENV_CONFIG] || undefined);
}

function readToml(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('config', `cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return parseToml(text);
  } catch (err) {
    throw new ConfigError('config', `invalid TOML in ${file}: ${(err as Error).message}`);
  }
}

const BOOLEANS: Record<string, boolean> = { true: true, false: false, 1: true, 0: false, yes: true, no: false, on: true, off: false };

/** Coerces each SHARDTRACK_* variable by its key's kind and sets it over `target`. */
function mergeEnv(target: Record<string, unknown>, env: Record<string, string | undefined>, sources: Map<string, string>): void {
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || name === ENV_CONFIG || text === undefined) continue;
    const leaf = leafByEnv.get(name);
    if (!leaf) throw new ConfigError(name, `unknown environment variable${suggest(name, leafByEnv.keys())}`);
    const bad = (expected: string) => new ConfigError(leaf.key, `expected ${expected}, got ${JSON.stringify(text)}`, name);
    let value: unknown;
    switch (leaf.meta.kind) {
      case 'int':
        if (!/^\s*[+-]?\d+\s*$/.test(text)) throw bad(leaf.meta.expected);
        value = Number(text);
        break;
      case 'bool':
        value = BOOLEANS[text.trim().toLowerCase()];
        if (value === undefined) throw bad('one of true, false, 1, 0, yes, no, on, off');
        break;
      case 'str':
        value = text;
        break;
      case 'list':
        value = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
        break;
    }
    let table = target;
    for (const p of leaf.path.slice(0, -1)) table = (table[p] ??= {}) as Record<string, unknown>;
    table[leaf.path.at(-1)!] = value;
    sources.set(leaf.key, name);
  }
}

/** Copies one layer's values over `target`, rejecting keys the schema does not declare. */
function mergeLayer(
  target: Record<string, unknown>,
  layer: object,
  entries: v.ObjectEntries,
  prefix: string[],
  source: string,
  sources: Map<string, string>,
): void {
  for (const [name, value] of Object.entries(layer)) {
    const path = [...prefix, name];
    const key = path.join('.');
    const schema = Object.hasOwn(entries, name) ? (entries[name] as AnySchema) : undefined;
    if (!schema) throw new ConfigError(key, `unknown key${suggest(key, leafByKey.keys())}`, source);
    if (value === undefined) continue;
    const sub = tableEntries(schema);
    if (sub) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new ConfigError(key, `expected a table, got ${show(value)}`, source);
      }
      mergeLayer((target[name] ??= {}) as Record<string, unknown>, value, sub, path, source, sources);
    } else {
      target[name] = value;
      sources.set(key, source);
    }
  }
}

/**
 * One line per key (a value can fail several checks of its pipe: only the first is shown).
 * Rules between keys run even on values that failed their own range check (valibot keeps such
 * data "typed"), so they are only reported once every value is valid by itself.
 */
function issuesError(all: readonly v.BaseIssue<unknown>[], sources: Map<string, string>): ConfigError {
  const own = all.filter((issue) => issue.type !== 'partial_check');
  const byKey = new Map<string, ConfigError>();
  for (const issue of own.length > 0 ? own : all) {
    const items = issue.path ?? [];
    const key = items.map((p, i) => (typeof p.key === 'number' ? `[${p.key}]` : `${i > 0 ? '.' : ''}${String(p.key)}`)).join('');
    const leafKey = items.filter((p) => typeof p.key === 'string').map((p) => p.key).join('.');
    const leaf = leafByKey.get(leafKey);
    const got = show(items.at(-1)?.value);
    const problem = issue.type === 'check' || issue.type === 'partial_check' || !leaf ? issue.message : `expected ${leaf.meta.expected}`;
    if (!byKey.has(key)) byKey.set(key, new ConfigError(key, `${problem}, got ${got}`, sources.get(leafKey) ?? 'default'));
  }
  const errors = [...byKey.values()];
  if (errors.length === 1) return errors[0]!;
  const joined = new ConfigError(errors[0]!.key, '', errors[0]!.source);
  joined.message = errors.map((e) => e.message).join('\n');
  return joined;
}

function show(value: unknown): string {
  return typeof value === 'string' || typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** "; did you mean X?" for a near miss (edit distance ≤ 2), else "". */
function suggest(name: string, candidates: Iterable<string>): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = distance(name, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best === undefined ? '' : `; did you mean ${best}?`;
}

function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length]!;
}

function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value as DeepReadonly<T>;
}

// ---------------------------------------------------------------------------------------------
// Output

/** The effective configuration as commented TOML (`--print-config`); parses back to the same values. */
export function printConfig(config: Config): string {
  const lines = [
    '# Shardtrack effective configuration (environment over file over defaults).',
    '# Any key can be set in the environment as SHARDTRACK_<TABLE>__<KEY>, e.g. SHARDTRACK_HTTP__PORT.',
  ];
  let table = '';
  for (const leaf of leaves) {
    const header = leaf.path.slice(0, -1).join('.');
    if (header !== table) lines.push('', `[${header}]`);
    table = header;
    let value: unknown = config;
    for (const p of leaf.path) value = (value as Record<string, unknown>)[p];
    // (tokens and secrets are not printed whole: the output ends up in terminals and tickets)
    if (/_(token|secret)$/.test(leaf.key) && typeof value === 'string' && value !== '') value = `${value.slice(0, 4)}… (${value.length} characters, not shown)`;
    else if (typeof value === 'string') value = withoutPassword(value);
    else if (Array.isArray(value)) value = value.map((x) => (typeof x === 'string' ? withoutPassword(x) : x));
    lines.push(`# ${leaf.doc}`, stringifyToml({ [leaf.path.at(-1)!]: value }).trimEnd());
  }
  return `${lines.join('\n')}\n`;
}

/** A URL's password replaced by *** (database and Redis URLs); anything else as it is. */
function withoutPassword(value: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/]*:[^/@]*@/i.test(value)) return value;
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/:@]*:)[^/@]*@/i, '$1***@');
}

/** Every key with its environment variable, default and comment (for the README). */
export function configDocs(): Array<{ key: string; env: string; default: unknown; doc: string }> {
  return leaves.map((l) => ({ key: l.key, env: l.env, default: l.default, doc: l.doc }));
}

/** The README's configuration table (Markdown): every key, its variable, default and comment. */
export function configTable(): string {
  const rows = ['| key | environment | default | meaning |', '| --- | --- | --- | --- |'];
  for (const l of leaves) rows.push(`| \`${l.key}\` | \`${l.env}\` | ${l.meta.shown ?? `\`${JSON.stringify(l.default)}\``} | ${l.doc} |`);
  return rows.join('\n');
}


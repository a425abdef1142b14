import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { afterAll, describe, expect, expectTypeOf, it } from 'vitest';
import { type Config, ConfigError, configDocs, loadConfig, printConfig } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'shardtrack-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileNo = 0;
function tomlFile(text: string): string {
  const path = join(dir, `config-${fileNo++}.toml`);
  writeFileSync(path, text);
  return path;
}

/** loadConfig isolated from the real process argv/env. */
const load = (opts: Parameters<typeof loadConfig>[0] = {}) => loadConfig({ argv: [], env: {}, ...opts });

/** The ConfigError thrown by fn (fails the test if none). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('runs with zero configuration', () => {
    const c = load();
    expect(c.http).toEqual({ host: '::', port: 8080, max_query_bytes: 8192, max_inflight: 65536 });
    expect(c.udp).toEqual({ host: '::', port: 6969, connection_id_secret: '' });
    expect(c.tracker).toEqual({
      private: true,
      require_registered_torrents: false,
      interval: 1800,
      min_interval: 300,
      interval_jitter: 120,
      peer_timeout: 3900,
      numwant_default: 50,
      numwant_max: 200,
      scrape_max_hashes: 64,
      full_scrape: false,
      full_scrape_cache_seconds: 30,
      allow_client_ip: false,
      max_peers_per_user_torrent: 3,
    });
    expect(c.shards).toEqual({
      count: Math.min(256, Math.max(1, availableParallelism() - 1)),
      max_peers: 33554432,
      max_swarms: 8388608,
      ready_heartbeat_seconds: 5,
      watchdog_seconds: 30,
    });
    expect(c.net).toEqual({ trusted_proxies: [] });
    expect(c.registry).toEqual({ file: 'data/registry.toml' });
    expect(c.log).toEqual({ level: 'info' });
  });

  it('is fully typed', () => {
    const c = load();
    expectTypeOf(c.http.port).toEqualTypeOf<number>();
    expectTypeOf(c.tracker.private).toEqualTypeOf<boolean>();
    expectTypeOf(c.log.level).toEqualTypeOf<'error' | 'warn' | 'info' | 'debug'>();
    expectTypeOf(c.net.trusted_proxies).toEqualTypeOf<readonly string[]>();
  });

  it('reads the file named by --config, --config= or SHARDTRACK_CONFIG', () => {
    const file = tomlFile(`
      [http]
      port = 9000
      host = "0.0.0.0"
      [tracker]
      private = false
      [net]
      trusted_proxies = ["10.0.0.0/8", "::1"]
      [log]
      level = "debug"
    `);
    for (const opts of [{ argv: ['--config', file] }, { argv: [`--config=${file}`] }, { env: { SHARDTRACK_CONFIG: file } }]) {
      const c = load(opts);
      expect(c.http.port).toBe(9000);
      expect(c.http.host).toBe('0.0.0.0');
      expect(c.http.max_query_bytes).toBe(8192); // untouched keys keep their default
      expect(c.tracker.private).toBe(false);
      expect(c.net.trusted_proxies).toEqual(['10.0.0.0/8', '::1']);
      expect(c.log.level).toBe('debug');
    }
    // --config wins over SHARDTRACK_CONFIG; an empty SHARDTRACK_CONFIG means no file.
    expect(load({ argv: ['--config', file], env: { SHARDTRACK_CONFIG: join(dir, 'missing.toml') } }).http.port).toBe(9000);
    expect(load({ env: { SHARDTRACK_CONFIG: '' } }).http.port).toBe(8080);
  });

  it('applies the environment over the file and overrides over the environment', () => {
    const file = tomlFile('[http]\nport = 9000\nmax_query_bytes = 1024\n[tracker]\ninterval = 900\n');
    const env = { SHARDTRACK_CONFIG: file, SHARDTRACK_HTTP__PORT: '9100', SHARDTRACK_TRACKER__INTERVAL: '1200' };
    const c = load({ env });
    expect(c.http.port).toBe(9100);
    expect(c.http.max_query_bytes).toBe(1024);
    expect(c.tracker.interval).toBe(1200);
    const o = load({ env, overrides: { http: { port: 9200 }, log: { level: 'warn' } } });
    expect(o.http.port).toBe(9200);
    expect(o.http.max_query_bytes).toBe(1024);
    expect(o.tracker.interval).toBe(1200);
    expect(o.log.level).toBe('warn');
  });

  it('coerces environment strings by the key type', () => {
    const bools: Array<[string, boolean]> = [
      ['true', true], ['FALSE', false], ['1', true], ['0', false], ['Yes', true], ['no', false], ['ON', true], [' off ', false],
    ];
    for (const [text, value] of bools) {
      expect(load({ env: { SHARDTRACK_TRACKER__FULL_SCRAPE: text } }).tracker.full_scrape, text).toBe(value);
    }
    expect(load({ env: { SHARDTRACK_HTTP__PORT: ' 443 ' } }).http.port).toBe(443);
    expect(load({ env: { SHARDTRACK_HTTP__PORT: '+443' } }).http.port).toBe(443);
    expect(load({ env: { SHARDTRACK_UDP__PORT: '0' } }).udp.port).toBe(0);
    expect(load({ env: { SHARDTRACK_REGISTRY__FILE: '' } }).registry.file).toBe('');
    expect(load({ env: { SHARDTRACK_HTTP__HOST: '127.0.0.1' } }).http.host).toBe('127.0.0.1');
    const proxies = (text: string) => load({ env: { SHARDTRACK_NET__TRUSTED_PROXIES: text } }).net.trusted_proxies;
    expect(proxies('')).toEqual([]);
    expect(proxies('  ')).toEqual([]);
    expect(proxies('10.0.0.0/8')).toEqual(['10.0.0.0/8']);
    expect(proxies(' 10.0.0.0/8 ,  ::1,192.168.0.0/16 ')).toEqual(['10.0.0.0/8', '::1', '192.168.0.0/16']);
    expect(proxies('10.0.0.0/8,')).toEqual(['10.0.0.0/8']);
  });

  it('ignores undefined environment entries and unrelated variables', () => {
    expect(load({ env: { SHARDTRACK_HTTP__PORT: undefined, PATH: '/bin', SHARDTRACKER: 'x' } }).http.port).toBe(8080);
  });

  it('returns a deep-frozen result without freezing what the caller passed', () => {
    const proxies = ['10.0.0.0/8'];
    const c = load({ overrides: { net: { trusted_proxies: proxies } } });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.http)).toBe(true);
    expect(Object.isFrozen(c.net.trusted_proxies)).toBe(true);
    expect(() => {
      (c.http as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (c.net.trusted_proxies as string[]).push('::1');
    }).toThrow(TypeError);
    expect(Object.isFrozen(proxies)).toBe(false);
    expect(load().net.trusted_proxies).toEqual([]); // defaults are not shared mutable state
  });
});

describe('ConfigError', () => {
  it('names an unknown key in the file, at any level', () => {
    const leaf = tomlFile('[http]\nprot = 80\n');
    let e = configError(() => load({ argv: ['--config', leaf] }));
    expect(e.key).toBe('http.prot');
    expect(e.source).toBe(leaf);
    expect(e.message).toContain('http.prot');
    expect(e.message).toContain('unknown key');
    expect(e.message).toContain('did you mean http.port?');
    expect(e.message).toContain(leaf);

    e = configError(() => load({ argv: ['--config', tomlFile('[htp]\nport = 80\n')] }));
    expect(e.key).toBe('htp');
    e = configError(() => load({ argv: ['--config', tomlFile('port = 80\n')] }));
    expect(e.key).toBe('port');
    e = configError(() => load({ argv: ['--config', tomlFile('[http.port]\nx = 1\n')] }));
    expect(e.message).toContain('http.port');
    e = configError(() => load({ argv: ['--config', tomlFile('http = 5\n')] }));
    expect(e.message).toMatch(/^http: expected a table, got 5/);
    e = configError(() => load({ argv: ['--config', tomlFile('[tracker]\n__proto__ = 1\n')] }));
    expect(e.key).toBe('tracker.__proto__');
  });

  it('names an unknown SHARDTRACK_ environment variable', () => {
    let e = configError(() => load({ env: { SHARDTRACK_HTTP__PROT: '80' } }));
    expect(e.key).toBe('SHARDTRACK_HTTP__PROT');
    expect(e.message).toContain('SHARDTRACK_HTTP__PROT');
    e = configError(() => load({ env: { SHARDTRACK_HTTP_PORT: '80' } }));
    expect(e.message).toContain('did you mean SHARDTRACK_HTTP__PORT?');
    e = configError(() => load({ env: { SHARDTRACK_: '1' } }));
    expect(e.key).toBe('SHARDTRACK_');
  });

  it('rejects bad integers from the environment, naming the key, expectation and variable', () => {
    const e = configError(() => load({ env: { SHARDTRACK_HTTP__PORT: 'abc' } }));
    expect(e.message).toBe('http.port: expected an integer from 0 to 65535, got "abc" (from SHARDTRACK_HTTP__PORT)');
    expect(e.key).toBe('http.port');
    expect(e.source).toBe('SHARDTRACK_HTTP__PORT');
    for (const bad of ['', '80x', '8080.0', '1e3', '0x50', '8 080', '--80', 'NaN']) {
      expect(configError(() => load({ env: { SHARDTRACK_HTTP__PORT: bad } })).message, bad).toContain('http.port');
    }
  });

  it('rejects bad booleans', () => {
    const e = configError(() => load({ env: { SHARDTRACK_TRACKER__PRIVATE: 'maybe' } }));
    expect(e.message).toContain('tracker.private');
    expect(e.message).toContain('"maybe"');
    expect(e.message).toContain('SHARDTRACK_TRACKER__PRIVATE');
    const file = tomlFile('[tracker]\nprivate = "yes"\n'); // TOML has real booleans: no coercion in the file
    expect(configError(() => load({ argv: ['--config', file] })).message).toBe(
      `tracker.private: expected true or false, got "yes" (from ${file})`,
    );
  });

  it('rejects out-of-range and mistyped values, naming where they came from', () => {
    const file = tomlFile('[http]\nport = 70000\n');
    expect(configError(() => load({ argv: ['--config', file] })).message).toBe(
      `http.port: expected an integer from 0 to 65535, got 70000 (from ${file})`,
    );
    expect(configError(() => load({ env: { SHARDTRACK_SHARDS__COUNT: '0' } })).message).toBe(
      'shards.count: expected an integer from 1 to 256, got 0 (from SHARDTRACK_SHARDS__COUNT)',
    );
    expect(configError(() => load({ overrides: { tracker: { numwant_max: 1.5 } } })).message).toBe(
      'tracker.numwant_max: expected an integer from 1 to 1000, got 1.5 (from overrides)',
    );
    expect(configError(() => load({ argv: ['--config', tomlFile('[http]\nhost = 5\n')] })).message).toContain(
      'http.host: expected a string, got 5',
    );
    expect(configError(() => load({ argv: ['--config', tomlFile('[net]\ntrusted_proxies = "::1"\n')] })).message).toContain(
      'net.trusted_proxies: expected a list of strings, got "::1"',
    );
    expect(configError(() => load({ env: { SHARDTRACK_LOG__LEVEL: 'verbose' } })).message).toBe(
      'log.level: expected one of error, warn, info, debug, got "verbose" (from SHARDTRACK_LOG__LEVEL)',
    );
  });

  it('reports every bad key at once, one line each', () => {
    // A variable that cannot be coerced stops at once.
    expect(configError(() => load({ env: { SHARDTRACK_HTTP__PORT: '-1', SHARDTRACK_UDP__PORT: '-1.5' } })).message).not.toContain('\n');
    const all = configError(() => load({ overrides: { http: { port: -1 }, udp: { port: -1.5 }, tracker: { numwant_default: 300 } } }));
    const lines = all.message.split('\n');
    expect(lines).toHaveLength(2); // rules between keys wait until every value is valid by itself
    expect(lines[0]).toMatch(/^http\.port: /);
    expect(lines[1]).toMatch(/^udp\.port: expected an integer from 0 to 65535, got -1.5/);
    expect(all.key).toBe('http.port');
    const rules = configError(() => load({ overrides: { tracker: { numwant_default: 300, min_interval: 2000 } } }));
    expect(rules.message.split('\n')).toEqual([
      'tracker.min_interval: must not exceed tracker.interval (1800), got 2000 (from overrides)',
      'tracker.numwant_default: must not exceed tracker.numwant_max (200), got 300 (from overrides)',
    ]);
  });

  it('checks rules between keys', () => {
    const file = tomlFile('[tracker]\ninterval = 600\nmin_interval = 900\n');
    let e = configError(() => load({ argv: ['--config', file] }));
    expect(e.key).toBe('tracker.min_interval');
    expect(e.message).toBe(`tracker.min_interval: must not exceed tracker.interval (600), got 900 (from ${file})`);
    expect(load({ argv: ['--config', file], env: { SHARDTRACK_TRACKER__INTERVAL: '900' } }).tracker.min_interval).toBe(900);

    e = configError(() => load({ env: { SHARDTRACK_TRACKER__NUMWANT_MAX: '20' } }));
    expect(e.key).toBe('tracker.numwant_default');
    expect(e.message).toBe('tracker.numwant_default: must not exceed tracker.numwant_max (20), got 50 (from default)');

    e = configError(() => load({ env: { SHARDTRACK_SHARDS__READY_HEARTBEAT_SECONDS: '60' } }));
    expect(e.message).toBe('shards.watchdog_seconds: must be 0 or at least shards.ready_heartbeat_seconds (60), got 30 (from default)');
    expect(load({ env: { SHARDTRACK_SHARDS__READY_HEARTBEAT_SECONDS: '60', SHARDTRACK_SHARDS__WATCHDOG_SECONDS: '0' } }).shards.watchdog_seconds).toBe(0);

    e = configError(() => load({ env: { SHARDTRACK_NET__TRUSTED_PROXIES: '10.0.0.0/8, proxy.local' } }));
    expect(e.key).toBe('net.trusted_proxies[1]');
    expect(e.message).toContain('net.trusted_proxies');
    expect(e.message).toContain('"proxy.local"');
    e = configError(() => load({ overrides: { net: { trusted_proxies: ['10.0.0.1/8'] } } }));
    expect(e.message).toContain('did you mean 10.0.0.0/8?');
  });

  it('reports unreadable files, bad TOML and a --config without a path', () => {
    const missing = join(dir, 'missing.toml');
    expect(configError(() => load({ argv: ['--config', missing] })).message).toContain(missing);
    expect(configError(() => load({ env: { SHARDTRACK_CONFIG: missing } })).message).toContain(missing);
    const broken = tomlFile('[http\nport = 1\n');
    expect(configError(() => load({ argv: ['--config', broken] })).message).toContain(`invalid TOML in ${broken}`);
    expect(configError(() => load({ argv: ['--config'] })).key).toBe('--config');
    expect(configError(() => load({ argv: ['--config='] })).key).toBe('--config');
  });

  it('rejects unknown keys in overrides too', () => {
    const e = configError(() => load({ overrides: { http: { prot: 1 } } as never }));
    expect(e.message).toBe('http.prot: unknown key; did you mean http.port? (from overrides)');
  });
});

describe('printConfig', () => {
  const roundTrip = (c: Config) => expect(parseToml(printConfig(c))).toEqual(JSON.parse(JSON.stringify(c)));

  it('round-trips the defaults and custom values through smol-toml', () => {
    roundTrip(load());
    roundTrip(
      load({
        overrides: {
          http: { host: '127.0.0.1', port: 1 },
          tracker: { private: false, interval: 86400 },
          net: { trusted_proxies: ['10.0.0.0/8', '2001:db8::/32'] },
          registry: { file: 'C:\\tracker\\"odd" name ✓\t.toml' },
          log: { level: 'error' },
        },
      }),
    );
  });

  it('loads back as the same configuration', () => {
    const c = load({ overrides: { udp: { port: 0 }, net: { trusted_proxies: ['::1'] }, registry: { file: '' } } });
    expect(load({ argv: ['--config', tomlFile(printConfig(c))] })).toEqual(c);
  });

  it('never prints a token or a secret whole', () => {
    const secret = 'S'.repeat(40);
    const token = 'T'.repeat(40);
    const text = printConfig(load({ overrides: { udp: { connection_id_secret: secret }, admin: { metrics_token: token } } }));
    expect(text).not.toContain(secret);
    expect(text).not.toContain(token);
    expect(text).toContain('SSSS… (40 characters, not shown)');
  });

  it('precedes every key with its comment, grouped by table', () => {
    const lines = printConfig(load()).split('\n');
    const tables = lines.filter((l) => l.startsWith('['));
    expect(tables).toEqual(['[http]', '[udp]', '[ws]', '[tracker]', '[limits]', '[shards]', '[net]', '[registry]', '[database]', '[accounting]', '[checkpoint]', '[persistence]', '[admin]', '[redis]', '[log]']);
    const docs = configDocs();
    for (const { key, doc } of docs) {
      const name = key.split('.').at(-1)!;
      const at = lines.findIndex((l, i) => l.startsWith(`${name} = `) && lines.slice(0, i).reverse().find((t) => t.startsWith('[')) === `[${key.split('.')[0]}]`);
      expect(at, key).toBeGreaterThan(0);
      expect(lines[at - 1]).toBe(`# ${doc}`);
    }
    expect(lines.filter((l) => /^\w+ = /.test(l))).toHaveLength(docs.length);
  });
});

describe('configDocs', () => {
  it('lists every key with its variable, default and comment', () => {
    const docs = configDocs();
    expect(docs.map((d) => d.key)).toEqual([
      'http.host', 'http.port', 'http.max_query_bytes', 'http.max_inflight',
      'udp.host', 'udp.port', 'udp.connection_id_secret',
      'ws.enabled', 'ws.interval', 'ws.max_message_bytes', 'ws.max_offers', 'ws.max_swarms_per_socket', 'ws.max_sockets_per_address', 'ws.messages_per_second', 'ws.idle_timeout_seconds', 'ws.max_backpressure_bytes',
      'tracker.private', 'tracker.require_registered_torrents', 'tracker.interval', 'tracker.min_interval',
      'tracker.interval_jitter', 'tracker.peer_timeout', 'tracker.numwant_default', 'tracker.numwant_max',
      'tracker.scrape_max_hashes', 'tracker.full_scrape', 'tracker.full_scrape_cache_seconds', 'tracker.allow_client_ip',
      'tracker.max_peers_per_user_torrent',
      'limits.address_rate', 'limits.address_burst', 'limits.passkey_rate', 'limits.passkey_burst', 'limits.table_entries',
      'limits.max_inflight_per_address', 'limits.enforce_min_interval', 'limits.max_swarms_per_address',
      'limits.autoban_failures', 'limits.autoban_window_seconds', 'limits.autoban_seconds',
      'shards.count', 'shards.max_peers', 'shards.max_swarms', 'shards.ready_heartbeat_seconds', 'shards.watchdog_seconds',
      'net.trusted_proxies', 'registry.file',
      'database.enabled', 'database.url', 'database.schema', 'database.data_dir',
      'accounting.max_upload_rate',
      'checkpoint.enabled', 'checkpoint.interval_seconds',
      'persistence.flush_interval_ms', 'persistence.flush_connections', 'persistence.journal_max_bytes',
      'admin.enabled', 'admin.host', 'admin.port', 'admin.on_tracker_port', 'admin.metrics_token',
      'redis.url', 'redis.cluster', 'redis.prefix', 'redis.node_name', 'redis.publish_interval_ms', 'redis.node_lease', 'redis.unready_when_down',
      'log.level',
    ]);
    const byKey = new Map(docs.map((d) => [d.key, d]));
    expect(byKey.get('http.port')).toMatchObject({ env: 'SHARDTRACK_HTTP__PORT', default: 8080 });
    expect(byKey.get('http.port')!.doc).toContain('0–65535');
    expect(byKey.get('tracker.private')).toMatchObject({ env: 'SHARDTRACK_TRACKER__PRIVATE', default: true });
    expect(byKey.get('net.trusted_proxies')).toMatchObject({ env: 'SHARDTRACK_NET__TRUSTED_PROXIES', default: [] });
    for (const d of docs) {
      expect(d.doc, d.key).not.toBe('');
      expect(d.doc, d.key).not.toContain('\n');
      expect(d.env).toBe(`SHARDTRACK_${d.key.toUpperCase().replace('.', '__')}`);
    }
    // Every documented variable is accepted, and every default loads back as itself.
    const env = Object.fromEntries(docs.map((d) => [d.env, Array.isArray(d.default) ? d.default.join(',') : String(d.default)]));
    const c = load({ env }) as unknown as Record<string, Record<string, unknown>>;
    for (const d of docs) {
      const [table, name] = d.key.split('.') as [string, string];
      expect(c[table]![name], d.key).toEqual(d.default);
    }
  });
});


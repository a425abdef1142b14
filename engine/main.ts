#!/usr/bin/env node
// Shardtrack entry point: check the command line, load the configuration, check that
// uWebSockets.js loads natively, start the tracker, stop cleanly on SIGINT/SIGTERM.
// `--help`, `--version` and `--print-config` print and exit; admin commands
// (`shardtrack token create …`, see engine/cli.ts) run and exit.
import { parseArgs, runCommand, USAGE, UsageError, type Args } from './cli.js';
import { ConfigError, loadConfig, printConfig } from './config.js';
import { loadUws, setHeaderLimit, UwsLoadError, type UwsInfo } from './http/uws.js';
import type { LogLevel } from '../contract/log.js';
import { VERSION } from './version.js';

const LEVELS: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };
let threshold = LEVELS.info;

function log(msg: string, level: LogLevel = 'info'): void {
  if (LEVELS[level] <= threshold) process.stderr.write(`${new Date().toISOString()} ${level} ${msg}\n`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`shardtrack: ${e.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (args.version) {
    const uws = native();
    process.stdout.write(`shardtrack ${VERSION} on Node.js ${process.version}, uWebSockets.js ${uws.version} (${uws.binary} from ${uws.package})\n`);
    return;
  }
  let config;
  try {
    config = loadConfig({ argv });
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`shardtrack: configuration error: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  if (args.printConfig) {
    process.stdout.write(printConfig(config));
    return;
  }
  if (args.command !== null) {
    process.exitCode = await runCommand(argv, config, (s) => process.stdout.write(s));
    return;
  }
  threshold = LEVELS[config.log.level];
  setHeaderLimit(config.http.max_query_bytes); // before uWS loads: it reads the limit once
  const uws = native();
  log(`shardtrack ${VERSION} on Node.js ${process.version}, uWebSockets.js ${uws.version} (native ${uws.binary} from ${uws.package})`);
  // hyper-express (and with it uWS) loads with the tracker, after the checks above
  const { startTracker } = await import('./tracker.js');
  const tracker = await startTracker(config, log);
  const shown = (h: string) => (h === '::' || h === '0.0.0.0' ? 'localhost' : h.includes(':') ? `[${h}]` : h);
  const host = shown(config.http.host);
  const udpHost = shown(config.udp.host);
  const mode = config.tracker.private ? 'private' : 'open';
  log(`shardtrack listening on ${config.http.host} port ${tracker.httpPort} (${mode} mode, ${config.shards.count} shard${config.shards.count === 1 ? '' : 's'})`);
  if (tracker.udp) log(`UDP (BEP 15${config.tracker.private ? ', passkeys by BEP 41' : ''}) on ${config.udp.host} port ${tracker.udpPort}`);
  if (config.tracker.private) {
    const where = config.database.enabled ? `the users table${config.database.url === '' ? ' of the embedded database' : ''}` : config.registry.file || 'the registry';
    log(`announce URL: http://${host}:${tracker.httpPort}/<passkey>/announce (passkeys in ${where})`);
    if (tracker.udp) log(`UDP announce URL: udp://${udpHost}:${tracker.udpPort}/<passkey>/announce`);
  } else {
    log(`announce URL: http://${host}:${tracker.httpPort}/announce`);
    if (tracker.udp) log(`UDP announce URL: udp://${udpHost}:${tracker.udpPort}/announce`);
  }
  if (tracker.admin) {
    const where = config.admin.on_tracker_port ? `the tracker port ${tracker.httpPort}` : `${config.admin.host} port ${tracker.admin.port}`;
    log(`admin on ${where}: ${tracker.persistence ? '/api/v1 (bearer token), ' : ''}/health, /ready, /metrics`);
  }
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: shutting down${tracker.persistence ? ' (committing the ledger first)' : ''}`);
    tracker.close().then(
      () => process.exit(0),
      (e) => {
        log(`shutdown failed: ${e}`, 'error');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** The native uWS, or exit naming why it does not load (never a JavaScript fallback). */
function native(): UwsInfo {
  try {
    return loadUws();
  } catch (e) {
    if (!(e instanceof UwsLoadError)) throw e;
    process.stderr.write(`shardtrack: ${e.message}\n`);
    process.exit(1);
  }
}

main().catch((e) => {
  log(`fatal: ${e?.stack ?? e}`, 'error');
  process.exit(1);
});

// `shardtrack <command>`: the common admin tasks, run against the tracker's database (the
// configured PostgreSQL, or the embedded one while no tracker holds it). A running tracker
// on PostgreSQL sees the changes within a second (NOTIFY); on the embedded database, stop
// it first or use the admin API.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import postgres from 'postgres';
import { Tokens } from '../admin/auth.js';
import { embeddedClient, startEmbedded, type Embedded } from '../persistence/embedded.js';
import { migrate } from '../persistence/migrate.js';
import { PG_COMMON } from '../persistence/pg.js';
import type { Config } from './config.js';

export const USAGE = `usage: shardtrack [command] [--config tracker.toml]

commands:
  (none)                          run the tracker
  migrate                         bring the database schema up to date
  token create <name>             create an admin API token (printed once)
  token revoke <id>               revoke an admin API token
  user add [--passkey K] [--class C] [--no-leech]
                                  create a user; prints its id and passkey
  torrent add <info_hash hex> [--name N] [--freeleech]
                                  register a torrent; prints its id
  help                            this text

flags:
  --config <file>                 read settings from a TOML file (also SHARDTRACK_CONFIG)
  --print-config                  print the effective configuration as commented TOML
  -h, --help                      this text
  -V, --version                   the version

Every setting can also come from the environment: SHARDTRACK_<TABLE>__<KEY>, e.g.
SHARDTRACK_HTTP__PORT=8080 (see --print-config and the README for the keys).
`;

export const COMMANDS = new Set(['migrate', 'token', 'user', 'torrent', 'help']);

/** A command line that does not parse: the message names what was wrong. */
export class UsageError extends Error {}

/** Options each command takes: those followed by a value, and switches. */
const COMMAND_OPTIONS: Record<string, { values: readonly string[]; switches: readonly string[] }> = {
  user: { values: ['--passkey', '--class'], switches: ['--no-leech'] },
  torrent: { values: ['--name'], switches: ['--freeleech'] },
};

export interface Args {
  /** The admin command, or null to run the tracker. */
  command: string | null;
  help: boolean;
  version: boolean;
  printConfig: boolean;
}

/**
 * Check a command line before anything runs: an unknown flag or command is a UsageError
 * naming it (a typo must not start a tracker with defaults). `--config` is read by
 * loadConfig; command arguments by runCommand.
 */
export function parseArgs(argv: readonly string[]): Args {
  const out: Args = { command: null, help: false, version: false, printConfig: false };
  let flags = true; // until `--`
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--' && flags) {
      flags = false;
      continue;
    }
    if (!flags || /^-\d/.test(a)) {
      // an argument that looks like a flag after `--`, or a negative number
      if (out.command === null) throw new UsageError(`unknown command ${a}`);
      continue;
    }
    if (a === '--config') {
      i++;
      continue;
    }
    if (a.startsWith('--config=')) continue;
    if (a === '-h' || a === '--help') out.help = true;
    else if (a === '-V' || a === '--version') out.version = true;
    else if (a === '--print-config') out.printConfig = true;
    else if (a.startsWith('-')) {
      const opts = out.command === null ? undefined : COMMAND_OPTIONS[out.command];
      if (opts?.values.includes(a)) i++;
      else if (!opts?.switches.includes(a)) throw new UsageError(`unknown flag ${a}${out.command ? ` for ${out.command}` : ''}`);
    } else if (out.command === null) {
      if (!COMMANDS.has(a)) throw new UsageError(`unknown command ${a}`);
      if (a === 'help') out.help = true; // like --help: needs no configuration
      else out.command = a;
    }
    // other words are the command's arguments
  }
  return out;
}

/** Value of `--name value` in args, or undefined. */
function opt(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith('--')) throw new UsageError(`${name} needs a value`);
  return v;
}

async function openDatabase(config: Config): Promise<{ sql: postgres.Sql; close(): Promise<void> }> {
  const db = config.database;
  if (!db.enabled) throw new UsageError('database.enabled is false: there is no database to work on');
  const common = { ...PG_COMMON, max: 1, connection: { search_path: db.schema } };
  let embedded: Embedded | undefined;
  let sql: postgres.Sql;
  if (db.url !== '') sql = postgres(db.url, common);
  else {
    embedded = await startEmbedded(join(db.data_dir, 'pglite'));
    sql = postgres({ ...common, ...embeddedClient(embedded.address) });
  }
  if (db.schema !== 'public') await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${db.schema}`);
  await migrate(sql);
  return {
    sql,
    async close() {
      await sql.end({ timeout: 1 });
      await embedded?.close();
    },
  };
}

/** Run a command; returns the process exit status. */
export async function runCommand(argv: string[], config: Config, out: (s: string) => void): Promise<number> {
  const args = argv.filter((a, i) => a !== '--config' && argv[i - 1] !== '--config' && !a.startsWith('--config='));
  const [cmd, sub, ...rest] = args;
  if (cmd === 'help') {
    out(USAGE);
    return 0;
  }
  let db: Awaited<ReturnType<typeof openDatabase>> | undefined;
  try {
    if (cmd === 'token' && sub !== 'create' && sub !== 'revoke') throw new UsageError('token create <name> | token revoke <id>');
    if ((cmd === 'user' || cmd === 'torrent') && sub !== 'add') throw new UsageError(`${cmd} add …`);
    db = await openDatabase(config);
    const { sql } = db;
    switch (cmd) {
      case 'migrate': {
        const [{ v }] = await sql`SELECT max(version) AS v FROM schema_migrations`;
        out(`schema at version ${v}\n`);
        return 0;
      }
      case 'token': {
        if (sub === 'create') {
          if (!rest[0]) throw new UsageError('token create <name>');
          const t = await new Tokens(sql).create(rest[0]);
          out(`token ${t.id} (${rest[0]}): ${t.token}\n`);
        } else {
          const id = Number(rest[0]);
          if (!Number.isInteger(id)) throw new UsageError('token revoke <id>');
          const r = await sql`UPDATE admin_tokens SET revoked_at = now() WHERE id = ${id} AND revoked_at IS NULL`;
          if (r.count === 0) throw new UsageError(`no live token ${id}`);
          out(`token ${id} revoked\n`);
        }
        return 0;
      }
      case 'user': {
        const passkey = opt(rest, '--passkey') ?? randomBytes(16).toString('hex');
        const [u] = await sql`INSERT INTO users (passkey, class, can_leech) VALUES (${passkey}, ${opt(rest, '--class') ?? 'user'}, ${!rest.includes('--no-leech')})
          RETURNING id, passkey`;
        out(`user ${u.id} passkey ${u.passkey}\nannounce URL: http://<host>:${config.http.port}/${u.passkey}/announce\n`);
        return 0;
      }
      case 'torrent': {
        const hex = rest[0] ?? '';
        if (!/^[0-9a-fA-F]{40}$/.test(hex)) throw new UsageError('torrent add <info_hash as 40 hex digits>');
        const [t] = await sql`INSERT INTO torrents (info_hash, name, download_multiplier)
          VALUES (${Buffer.from(hex, 'hex')}, ${opt(rest, '--name') ?? null}, ${rest.includes('--freeleech') ? 0 : 1}) RETURNING id`;
        out(`torrent ${t.id} registered\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown command ${cmd}`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`shardtrack: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`shardtrack: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await db?.close();
  }
}

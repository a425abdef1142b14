import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, unwatchFile, watchFile } from 'node:fs';
import { dirname } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import * as v from 'valibot';
import { PASSKEY_RE, type Registry, type TorrentEntry, type UserEntry } from './registry.js';
import type { Logger } from '../../contract/log.js';
import { privateDir, writePrivate } from '../../persistence/private-files.js';

// The registry file: users and registered torrents as TOML, until the persistence thread
// feeds the registry from PostgreSQL. The file is watched; a valid edit replaces the
// registry at once, an invalid one is reported and the previous contents stay in force.
//
//   [[users]]
//   id = 1
//   passkey = "0123456789abcdef0123456789abcdef"
//   can_leech = true          # optional, default true
//
//   [[torrents]]
//   id = 1
//   info_hash = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"   # 40 hex digits

const FileSchema = v.strictObject({
  users: v.optional(
    v.array(
      v.strictObject({
        id: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(2 ** 32 - 1)),
        passkey: v.pipe(v.string(), v.regex(PASSKEY_RE, 'passkey must be 16-64 letters and digits')),
        can_leech: v.optional(v.boolean(), true),
      }),
    ),
    [],
  ),
  torrents: v.optional(
    v.array(
      v.strictObject({
        id: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(2 ** 32 - 1)),
        info_hash: v.pipe(v.string(), v.regex(/^[0-9a-fA-F]{40}$/, 'info_hash must be 40 hex digits')),
      }),
    ),
    [],
  ),
});

export interface RegistryContents {
  users: UserEntry[];
  torrents: TorrentEntry[];
}

/** Parse and validate a registry file's text. Throws an Error naming the problem. */
export function parseRegistryFile(text: string, path: string): RegistryContents {
  let raw: unknown;
  try {
    // smol-toml parses integers as numbers unless they exceed 2^53; ids are validated below.
    raw = parseToml(text);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  const r = v.safeParse(FileSchema, raw);
  if (!r.success) {
    const issue = r.issues[0];
    throw new Error(`${path}: ${v.getDotPath(issue) ?? '(root)'}: ${issue.message}`);
  }
  const users = r.output.users.map((u) => ({ id: u.id, passkey: u.passkey, canLeech: u.can_leech }));
  const torrents = r.output.torrents.map((t) => ({ id: t.id, infoHash: Buffer.from(t.info_hash, 'hex') }));
  const seen = new Set<string>();
  for (const u of users) {
    if (seen.has(u.passkey)) throw new Error(`${path}: passkey of user ${u.id} is used twice`);
    seen.add(u.passkey);
  }
  return { users, torrents };
}

export function newPasskey(): string {
  return randomBytes(16).toString('hex');
}

/**
 * Load the registry file into `registry` and keep watching it. When private mode starts
 * with no file, one is created with a first user so the operator has a working announce
 * URL at once. Returns a function that stops watching.
 */
export function attachRegistryFile(
  registry: Registry,
  path: string,
  opts: { createWithUser: boolean; log: Logger },
): () => void {
  if (!existsSync(path) && opts.createWithUser) {
    privateDir(dirname(path));
    const passkey = newPasskey();
    writePrivate(
      path,
      `# Shardtrack registry: users and registered torrents. Edits apply without restart.\n` +
        `[[users]]\nid = 1\npasskey = "${passkey}"\ncan_leech = true\n\n` +
        `# [[torrents]]\n# id = 1\n# info_hash = "<40 hex digits>"\n`,
    );
    opts.log(`created ${path} with a first user (passkey ${passkey.slice(0, 4)}…, whole in the file)`);
  }
  const load = (): void => {
    if (!existsSync(path)) return;
    try {
      const c = parseRegistryFile(readFileSync(path, 'utf8'), path);
      for (const why of registry.replaceAll(c.users, c.torrents)) opts.log(`registry: ${why}: ignored`, 'error');
      opts.log(`registry: ${c.users.length} users, ${c.torrents.length} torrents from ${path}`);
    } catch (e) {
      opts.log(`registry not reloaded, keeping the previous one: ${(e as Error).message}`, 'warn');
    }
  };
  load();
  const onChange = (): void => load();
  watchFile(path, { interval: 250, persistent: false }, onChange);
  return () => unwatchFile(path, onChange);
}

import type postgres from 'postgres';
import type { Multipliers } from './records.js';

// The registry as the database holds it, loaded for the acceptor's caches: plain data that
// crosses threads by postMessage (registry changes are rare, unlike announces). The
// acceptor turns it into its lookup structures (engine/policy/registry-db.ts).

export interface RegistrySnapshot {
  /** Enabled users; a reset passkey appears as a second entry with its grace expiry. */
  users: { id: number; passkey: string; canLeech: boolean; expiresAt: number }[];
  /** Live torrents; a BEP 52 hybrid appears under its v1 and its (truncated) v2 hash. */
  torrents: { id: number; infoHash: Uint8Array }[];
  /** Torrents deleted within the last DELETED_DAYS: announces are told the reason. */
  deleted: { id: number; infoHash: Uint8Array; reason: string }[];
  multipliers: [number, Multipliers][];
  bans: { cidr: string; expiresAt: number }[];
  clients: Uint8Array[];
}

const DELETED_DAYS = 90;

const secs = (x: unknown): number => (x === null || x === undefined ? 0 : Math.floor(Number(x)));

export async function loadRegistry(sql: postgres.Sql): Promise<RegistrySnapshot> {
  // one snapshot of all four tables
  return sql.begin('ISOLATION LEVEL REPEATABLE READ READ ONLY', async (tx) => {
    const users: RegistrySnapshot['users'] = [];
    for (const u of await tx`SELECT id, passkey, old_passkey, extract(epoch FROM old_passkey_expires) AS old_exp, can_leech
                             FROM users WHERE enabled`) {
      users.push({ id: Number(u.id), passkey: u.passkey, canLeech: u.can_leech, expiresAt: 0 });
      if (u.old_passkey !== null && (u.old_exp === null || secs(u.old_exp) > Date.now() / 1000)) {
        users.push({ id: Number(u.id), passkey: u.old_passkey, canLeech: u.can_leech, expiresAt: secs(u.old_exp) });
      }
    }
    const torrents: RegistrySnapshot['torrents'] = [];
    const multipliers: RegistrySnapshot['multipliers'] = [];
    for (const t of await tx`SELECT id, info_hash, info_hash_v2, upload_multiplier::float8 AS up, download_multiplier::float8 AS down,
                                    extract(epoch FROM multipliers_expire) AS exp
                             FROM torrents WHERE deleted_at IS NULL`) {
      const id = Number(t.id);
      torrents.push({ id, infoHash: t.info_hash });
      if (t.info_hash_v2 !== null) torrents.push({ id, infoHash: t.info_hash_v2 });
      if (t.up !== 1 || t.down !== 1) multipliers.push([id, { up: t.up, down: t.down, expires: secs(t.exp) }]);
    }
    const deleted: RegistrySnapshot['deleted'] = [];
    for (const t of await tx`SELECT id, info_hash, info_hash_v2, deleted_reason FROM torrents
                             WHERE deleted_at > now() - make_interval(days => ${DELETED_DAYS})`) {
      deleted.push({ id: Number(t.id), infoHash: t.info_hash, reason: t.deleted_reason });
      if (t.info_hash_v2 !== null) deleted.push({ id: Number(t.id), infoHash: t.info_hash_v2, reason: t.deleted_reason });
    }
    const bans = (await tx`SELECT network::text AS cidr, extract(epoch FROM expires_at) AS exp FROM bans
                          WHERE expires_at IS NULL OR expires_at > now()`).map((b) => ({ cidr: b.cidr as string, expiresAt: secs(b.exp) }));
    const clients = (await tx`SELECT peer_id_prefix FROM client_allowlist`).map((c) => c.peer_id_prefix as Uint8Array);
    return { users, torrents, deleted, multipliers, bans, clients };
  });
}

/** In private mode a tracker with no users is useless: create one and hand back its passkey. */
export async function ensureFirstUser(sql: postgres.Sql, passkey: string): Promise<string | null> {
  const made = await sql`INSERT INTO users (passkey) SELECT ${passkey} WHERE NOT EXISTS (SELECT 1 FROM users) RETURNING passkey`;
  return made.length > 0 ? (made[0].passkey as string) : null;
}

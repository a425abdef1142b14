import type postgres from 'postgres';
import type { RegistryDelta, RegistrySnapshot } from '../contract/registry.js';

// Reads of the registry (users, torrents, bans, client allow-list) for the acceptor's
// caches: whole, or the changes since the previous read (the change log of 0007).

const DELETED_DAYS = 90;
/** Past this many changes in one read, a whole reload is cheaper than ids one by one. */
const DELTA_MAX = 50_000;

const secs = (x: unknown): number => (x === null || x === undefined ? 0 : Math.floor(Number(x)));

type Tx = postgres.TransactionSql;

/** An `AND id = ANY(…)` filter, or nothing (every row). */
function onlyIds(tx: Tx, ids: number[] | undefined): postgres.PendingQuery<postgres.Row[]> {
  return ids === undefined ? tx`` : tx`AND id = ANY(string_to_array(${ids.join(',')}, ',')::bigint[])`;
}

async function readUsers(tx: Tx, ids?: number[]): Promise<RegistrySnapshot['users']> {
  const users: RegistrySnapshot['users'] = [];
  for (const u of await tx`SELECT id, passkey, old_passkey, extract(epoch FROM old_passkey_expires) AS old_exp, can_leech
                           FROM users WHERE enabled ${onlyIds(tx, ids)}`) {
    users.push({ id: Number(u.id), passkey: u.passkey, canLeech: u.can_leech, expiresAt: 0 });
    if (u.old_passkey !== null && (u.old_exp === null || secs(u.old_exp) > Date.now() / 1000)) {
      users.push({ id: Number(u.id), passkey: u.old_passkey, canLeech: u.can_leech, expiresAt: secs(u.old_exp) });
    }
  }
  return users;
}

async function readTorrents(tx: Tx, ids?: number[]): Promise<Pick<RegistrySnapshot, 'torrents' | 'deleted' | 'multipliers'>> {
  const torrents: RegistrySnapshot['torrents'] = [];
  const multipliers: RegistrySnapshot['multipliers'] = [];
  for (const t of await tx`SELECT id, info_hash, info_hash_v2, upload_multiplier::float8 AS up, download_multiplier::float8 AS down,
                                  size::float8 AS size, extract(epoch FROM multipliers_expire) AS exp
                           FROM torrents WHERE deleted_at IS NULL ${onlyIds(tx, ids)}`) {
    const id = Number(t.id);
    torrents.push({ id, infoHash: t.info_hash });
    if (t.info_hash_v2 !== null) torrents.push({ id, infoHash: t.info_hash_v2 });
    if (t.up !== 1 || t.down !== 1 || t.size > 0) multipliers.push([id, { up: t.up, down: t.down, expires: secs(t.exp), size: t.size }]);
  }
  const deleted: RegistrySnapshot['deleted'] = [];
  for (const t of await tx`SELECT id, info_hash, info_hash_v2, deleted_reason FROM torrents
                           WHERE deleted_at > now() - make_interval(days => ${DELETED_DAYS}) ${onlyIds(tx, ids)}`) {
    deleted.push({ id: Number(t.id), infoHash: t.info_hash, reason: t.deleted_reason });
    if (t.info_hash_v2 !== null) deleted.push({ id: Number(t.id), infoHash: t.info_hash_v2, reason: t.deleted_reason });
  }
  return { torrents, deleted, multipliers };
}

async function readBans(tx: Tx): Promise<RegistrySnapshot['bans']> {
  return (await tx`SELECT network::text AS cidr, extract(epoch FROM expires_at) AS exp FROM bans
                   WHERE expires_at IS NULL OR expires_at > now()`).map((b) => ({ cidr: b.cidr as string, expiresAt: secs(b.exp) }));
}

async function readClients(tx: Tx): Promise<RegistrySnapshot['clients']> {
  return (await tx`SELECT peer_id_prefix FROM client_allowlist`).map((c) => c.peer_id_prefix as Uint8Array);
}

/** This read's snapshot (pg_snapshot as text): the next read takes what it could not see. */
async function snapshotNow(tx: Tx): Promise<string> {
  return (await tx<{ s: string }[]>`SELECT pg_current_snapshot()::text AS s`)[0].s;
}

/**
 * Everything, in one snapshot, and the point to read changes from (loadChanges) after it.
 */
export async function loadRegistry(sql: postgres.Sql): Promise<{ snapshot: RegistrySnapshot; since: string }> {
  return sql.begin('ISOLATION LEVEL REPEATABLE READ READ ONLY', async (tx) => {
    const since = await snapshotNow(tx);
    const snapshot = { users: await readUsers(tx), ...(await readTorrents(tx)), bans: await readBans(tx), clients: await readClients(tx) };
    return { snapshot, since };
  });
}

/**
 * What changed since `since` (the snapshot of a previous load or read): the changes of
 * every transaction that snapshot could not see (running then, or begun since) and this
 * one can, so a transaction that commits late is read late, never skipped, and one that
 * stays open long costs nothing meanwhile. Returns the point to read from next, or null
 * when a whole reload is due instead: a TRUNCATE, more changes than reading them one by one
 * is worth, or transaction ids behind `since` (a database restored from a backup).
 */
export async function loadChanges(sql: postgres.Sql, since: string): Promise<{ delta: RegistryDelta; since: string } | null> {
  return sql.begin('ISOLATION LEVEL REPEATABLE READ READ ONLY', async (tx) => {
    const [{ next, back }] = await tx`SELECT pg_current_snapshot()::text AS next,
                                             pg_snapshot_xmin(${since}::pg_snapshot) > pg_snapshot_xmax(pg_current_snapshot()) AS back`;
    if (back) return null;
    const log = await tx`SELECT kind, id, old_key1, old_key2, old_hash1, old_hash2 FROM registry_changes
                         WHERE xid >= pg_snapshot_xmin(${since}::pg_snapshot) AND NOT pg_visible_in_snapshot(xid, ${since}::pg_snapshot)
                         ORDER BY seq LIMIT ${DELTA_MAX + 1}`;
    if (log.length > DELTA_MAX || log.some((c) => c.kind === 'all')) return null;
    const userIds = new Set<number>();
    const torrentIds = new Set<number>();
    const delta: RegistryDelta = { users: [], dropKeys: [], torrents: [], deleted: [], dropHashes: [], multipliers: [] };
    for (const c of log) {
      const id = Number(c.id);
      if (c.kind === 'user') {
        userIds.add(id);
        for (const k of [c.old_key1, c.old_key2]) if (k !== null) delta.dropKeys.push([id, k as string]);
      } else if (c.kind === 'torrent') {
        torrentIds.add(id);
        for (const h of [c.old_hash1, c.old_hash2]) if (h !== null) delta.dropHashes.push([id, h as Uint8Array]);
      } else if (c.kind === 'ban') delta.bans ??= await readBans(tx);
      else if (c.kind === 'client') delta.clients ??= await readClients(tx);
    }
    if (userIds.size > 0) delta.users = await readUsers(tx, [...userIds]);
    if (torrentIds.size > 0) {
      const t = await readTorrents(tx, [...torrentIds]);
      delta.torrents = t.torrents;
      delta.deleted = t.deleted;
      const current = new Map(t.multipliers);
      delta.multipliers = [...torrentIds].map((id) => [id, current.get(id) ?? null]);
    }
    return { delta, since: next as string };
  });
}

/**
 * Forget changes every reader has long read (a reader away for 12 hours reloads whole):
 * made a day ago, by a transaction no longer running.
 */
export async function pruneChanges(sql: postgres.Sql): Promise<void> {
  await sql`DELETE FROM registry_changes WHERE changed_at < now() - interval '1 day' AND xid < pg_snapshot_xmin(pg_current_snapshot())`;
}

/** In private mode a tracker with no users is useless: create one and hand back its passkey. */
export async function ensureFirstUser(sql: postgres.Sql, passkey: string): Promise<string | null> {
  const made = await sql`INSERT INTO users (passkey) SELECT ${passkey} WHERE NOT EXISTS (SELECT 1 FROM users) RETURNING passkey`;
  return made.length > 0 ? (made[0].passkey as string) : null;
}

/** Nothing in it: no user, torrent, ban or client changed. */
export function isEmpty(d: RegistryDelta): boolean {
  return d.users.length + d.dropKeys.length + d.torrents.length + d.deleted.length + d.dropHashes.length + d.multipliers.length === 0 && !d.bans && !d.clients;
}

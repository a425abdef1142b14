import type { RegistryDelta, RegistrySnapshot } from '../../contract/registry.js';
import type { BanEntry } from './bans.js';
import { parseCidr } from './bans.js';
import type { Registry } from './registry.js';
import type { Logger } from '../../contract/log.js';

// Install what the persistence thread reads from the database into the acceptor's caches:
// a whole snapshot at start (each part swapped whole), then the changes as they happen.

export function applySnapshot(registry: Registry, snap: RegistrySnapshot, log: Logger): void {
  const refused = registry.replaceAll(
    snap.users.map((u) => ({ id: u.id, passkey: u.passkey, canLeech: u.canLeech, expiresAt: u.expiresAt })),
    snap.torrents.map((t) => ({ id: t.id, infoHash: t.infoHash })),
    snap.deleted ?? [], // (a snapshot saved by an older version has none)
  );
  for (const why of refused) log(`registry: ${why}: ignored`, 'error');
  registry.bans.replace(parseBans(snap.bans, log));
  registry.clients.replace(snap.clients);
}

/**
 * Apply changed users and torrents one by one: keys they held go (unless another user or
 * torrent holds them now), then their current entries go in. Bans and clients, when they
 * changed, are swapped whole.
 */
export function applyDelta(registry: Registry, d: RegistryDelta, log: Logger): void {
  for (const [id, key] of d.dropKeys) registry.removeUserKey(key, id);
  for (const [id, hash] of d.dropHashes) registry.removeTorrent(hash, id);
  for (const u of d.users) {
    try {
      registry.upsertUser({ id: u.id, passkey: u.passkey, canLeech: u.canLeech, expiresAt: u.expiresAt });
    } catch (e) {
      log(`registry: ${(e as Error).message}: user ignored`, 'error');
    }
  }
  const torrent = (f: () => void) => {
    try {
      f();
    } catch (e) {
      log(`registry: ${(e as Error).message}: torrent ignored`, 'error');
    }
  };
  for (const t of d.deleted) torrent(() => registry.upsertTorrent(t, t.reason));
  for (const t of d.torrents) torrent(() => registry.upsertTorrent(t)); // a live registration wins over a deleted one
  if (d.bans) registry.bans.replace(parseBans(d.bans, log));
  if (d.clients) registry.clients.replace(d.clients);
}

function parseBans(list: RegistrySnapshot['bans'], log: Logger): BanEntry[] {
  const bans: BanEntry[] = [];
  for (const b of list) {
    try {
      bans.push({ ...parseCidr(b.cidr), expiresAt: b.expiresAt });
    } catch (e) {
      log(`ban ${b.cidr} ignored: ${(e as Error).message}`, 'warn');
    }
  }
  return bans;
}

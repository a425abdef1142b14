import type { RegistrySnapshot } from '../../persistence/registry.js';
import type { BanEntry } from './bans.js';
import { parseCidr } from './bans.js';
import type { Registry } from './registry.js';

// Install a registry snapshot from the database (sent by the persistence thread at start
// and after every change) into the acceptor's caches, each part swapped whole.

export function applySnapshot(registry: Registry, snap: RegistrySnapshot, log: (msg: string, level?: 'warn') => void): void {
  registry.replaceAll(
    snap.users.map((u) => ({ id: u.id, passkey: u.passkey, canLeech: u.canLeech, expiresAt: u.expiresAt })),
    snap.torrents.map((t) => ({ id: t.id, infoHash: t.infoHash })),
    snap.deleted ?? [], // (a snapshot saved by an older version has none)
  );
  const bans: BanEntry[] = [];
  for (const b of snap.bans) {
    try {
      bans.push({ ...parseCidr(b.cidr), expiresAt: b.expiresAt });
    } catch (e) {
      log(`ban ${b.cidr} ignored: ${(e as Error).message}`, 'warn');
    }
  }
  registry.bans.replace(bans);
  registry.clients.replace(snap.clients);
}

// The registry as the database holds it (users, torrents, multipliers, bans, client
// allow-list): plain data the persistence thread reads (persistence/registry.ts) and posts to
// the acceptor, which turns it into its lookup structures (engine/policy/registry-db.ts).
// Registry changes are rare, unlike announces: postMessage is the right crossing for them.

/**
 * What crediting needs of a torrent: credited = bounded × multiplier, until `expires` (unix s,
 * 0 = never); `size` in bytes bounds the download a session can claim (0 = not known).
 */
export interface Multipliers {
  up: number;
  down: number;
  expires: number;
  size: number;
}

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

/**
 * What changed since a previous read (see loadChanges): the current state of every user and
 * torrent named in the change log, and the cache keys they had before (each goes from the
 * caches unless it now belongs to someone else). Bans and clients, when they changed, whole.
 */
export interface RegistryDelta {
  users: RegistrySnapshot['users'];
  /** [user id, passkey] the caches held: dropped if still that user's. */
  dropKeys: [number, string][];
  torrents: RegistrySnapshot['torrents'];
  deleted: RegistrySnapshot['deleted'];
  /** [torrent id, info_hash] the caches held: dropped if still that torrent's. */
  dropHashes: [number, Uint8Array][];
  /** Current multipliers and size of every changed torrent (null: plain 1×/1× of unknown size, or gone). */
  multipliers: [number, Multipliers | null][];
  bans?: RegistrySnapshot['bans'];
  clients?: RegistrySnapshot['clients'];
}

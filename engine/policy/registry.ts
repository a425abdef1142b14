// The acceptor's view of who may announce what: users by passkey and registered torrents
// by info_hash. Lookups run on every announce and allocate nothing; changes (from the
// registry file today, from the persistence thread later) apply at once, without restart.

import { BanList } from './bans.js';
import { ClientAllowList } from './clients.js';

export interface UserEntry {
  readonly id: number; // > 0; carried in request records for accounting
  readonly passkey: string;
  readonly canLeech: boolean;
  /** Unix seconds after which this passkey stops working (a reset passkey's grace); 0 = never. */
  readonly expiresAt?: number;
}

export interface TorrentEntry {
  readonly id: number; // > 0
  readonly infoHash: Uint8Array; // 20 bytes
}

interface TorrentNode extends TorrentEntry {
  next: TorrentNode | undefined; // chain of entries sharing the 48-bit bucket key
}

/** Passkeys are what private trackers hand out: 16–64 letters and digits. */
export const PASSKEY_RE = /^[A-Za-z0-9]{16,64}$/;

// First 6 bytes of an info_hash as an exact integer: a Map key without building a string.
// SHA-1 bytes are uniform; entries sharing these 48 bits chain and compare all 20 bytes.
function bucketKey(u8: Uint8Array, off: number): number {
  return (u8[off] * 0x10000000000 + u8[off + 1] * 0x100000000 + ((u8[off + 2] << 24) >>> 0) + (u8[off + 3] << 16) + (u8[off + 4] << 8) + u8[off + 5]);
}

function same(a: Uint8Array, b: Uint8Array, off: number): boolean {
  for (let i = 0; i < 20; i++) if (a[i] !== b[off + i]) return false;
  return true;
}

export class Registry {
  /** IP/CIDR bans, checked before anything else on every announce and scrape. */
  readonly bans = new BanList();
  /** peer_id prefixes of permitted clients; empty = all. */
  readonly clients = new ClientAllowList();
  private users = new Map<string, UserEntry>();
  private torrents = new Map<number, TorrentNode>();
  private torrentCount = 0;

  get userCount(): number {
    return this.users.size;
  }

  get registeredTorrents(): number {
    return this.torrentCount;
  }

  user(passkey: string): UserEntry | undefined {
    const u = this.users.get(passkey);
    if (u !== undefined && u.expiresAt && u.expiresAt * 1000 <= Date.now()) return undefined;
    return u;
  }

  /** Registered torrent id of the info_hash at u8[off], or 0. */
  torrentId(u8: Uint8Array, off: number): number {
    for (let n = this.torrents.get(bucketKey(u8, off)); n !== undefined; n = n.next) {
      if (same(n.infoHash, u8, off)) return n.id;
    }
    return 0;
  }

  upsertUser(u: UserEntry): void {
    if (!PASSKEY_RE.test(u.passkey)) throw new Error(`invalid passkey for user ${u.id}`);
    this.users.set(u.passkey, Object.freeze({ ...u }));
  }

  removeUser(passkey: string): boolean {
    return this.users.delete(passkey);
  }

  upsertTorrent(t: TorrentEntry): void {
    if (t.infoHash.length !== 20) throw new Error(`info_hash of torrent ${t.id} is not 20 bytes`);
    const k = bucketKey(t.infoHash, 0);
    const node: TorrentNode = { id: t.id, infoHash: Uint8Array.from(t.infoHash), next: undefined };
    let prev: TorrentNode | undefined;
    for (let n = this.torrents.get(k); n !== undefined; prev = n, n = n.next) {
      if (same(n.infoHash, t.infoHash, 0)) {
        node.next = n.next;
        if (prev) prev.next = node;
        else this.torrents.set(k, node);
        return;
      }
    }
    node.next = this.torrents.get(k);
    this.torrents.set(k, node);
    this.torrentCount++;
  }

  removeTorrent(infoHash: Uint8Array): boolean {
    const k = bucketKey(infoHash, 0);
    let prev: TorrentNode | undefined;
    for (let n = this.torrents.get(k); n !== undefined; prev = n, n = n.next) {
      if (!same(n.infoHash, infoHash, 0)) continue;
      if (prev) prev.next = n.next;
      else if (n.next) this.torrents.set(k, n.next);
      else this.torrents.delete(k);
      this.torrentCount--;
      return true;
    }
    return false;
  }

  /** Replace everything at once (a reload): lookups never see a half-applied state. */
  replaceAll(users: readonly UserEntry[], torrents: readonly TorrentEntry[]): void {
    const next = new Registry();
    for (const u of users) next.upsertUser(u);
    for (const t of torrents) next.upsertTorrent(t);
    this.users = next.users;
    this.torrents = next.torrents;
    this.torrentCount = next.torrentCount;
  }
}

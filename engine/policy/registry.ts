// The acceptor's view of who may announce what: users by passkey and registered torrents
// by info_hash. Lookups run on every announce and allocate nothing; changes (from the
// database through the persistence thread, or from the registry file) apply at once,
// without restart.

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
  reason: string | undefined; // set: deleted (announces are told why), id unused
}

/** Ids travel in request and accounting records as u32 (contract/requests.ts): larger ones would be truncated. */
export const MAX_ID = 0xffffffff;

function checkId(what: string, id: number): void {
  if (!Number.isInteger(id) || id < 1 || id > MAX_ID) throw new Error(`${what} id ${id} is outside 1..${MAX_ID}, what the tracker's records hold`);
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
  /** Entries that are a user's current passkey (not a reset one in its grace window). */
  private currentKeys = 0;
  private torrents = new Map<number, TorrentNode>();
  private torrentCount = 0;
  private deletedCount = 0;

  /**
   * Users known (a reset passkey in its grace window is a second key of the same user).
   * Kept as entries change: /metrics and /stats read it without walking every user.
   */
  get userCount(): number {
    return this.currentKeys;
  }

  get registeredTorrents(): number {
    return this.torrentCount;
  }

  get banCount(): number {
    return this.bans.size;
  }

  user(passkey: string): UserEntry | undefined {
    const u = this.users.get(passkey);
    if (u !== undefined && u.expiresAt && u.expiresAt * 1000 <= Date.now()) return undefined;
    return u;
  }

  /** Registered torrent id of the info_hash at u8[off], or 0 (unknown or deleted). */
  torrentId(u8: Uint8Array, off: number): number {
    for (let n = this.torrents.get(bucketKey(u8, off)); n !== undefined; n = n.next) {
      if (same(n.infoHash, u8, off)) return n.reason === undefined ? n.id : 0;
    }
    return 0;
  }

  /** Why the torrent at u8[off] was deleted, if it was. */
  deletedReason(u8: Uint8Array, off: number): string | undefined {
    if (this.deletedCount === 0) return undefined;
    for (let n = this.torrents.get(bucketKey(u8, off)); n !== undefined; n = n.next) {
      if (same(n.infoHash, u8, off)) return n.reason;
    }
    return undefined;
  }

  upsertUser(u: UserEntry): void {
    checkId('user', u.id);
    if (!PASSKEY_RE.test(u.passkey)) throw new Error(`invalid passkey for user ${u.id}`);
    this.removeUser(u.passkey);
    this.users.set(u.passkey, Object.freeze({ ...u }));
    if (!u.expiresAt) this.currentKeys++;
  }

  removeUser(passkey: string): boolean {
    const old = this.users.get(passkey);
    if (old === undefined) return false;
    this.users.delete(passkey);
    if (!old.expiresAt) this.currentKeys--;
    return true;
  }

  /** Remove a passkey if it still belongs to user `id` (it may have moved to another since). */
  removeUserKey(passkey: string, id: number): boolean {
    return this.users.get(passkey)?.id === id && this.removeUser(passkey);
  }

  /** Register a torrent, or with `deletedReason` keep it as deleted (refused with that reason). */
  upsertTorrent(t: TorrentEntry, deletedReason?: string): void {
    checkId('torrent', t.id);
    if (t.infoHash.length !== 20) throw new Error(`info_hash of torrent ${t.id} is not 20 bytes`);
    const k = bucketKey(t.infoHash, 0);
    const node: TorrentNode = { id: t.id, infoHash: Uint8Array.from(t.infoHash), next: undefined, reason: deletedReason };
    this.tally(node, 1);
    let prev: TorrentNode | undefined;
    for (let n = this.torrents.get(k); n !== undefined; prev = n, n = n.next) {
      if (same(n.infoHash, t.infoHash, 0)) {
        this.tally(n, -1);
        node.next = n.next;
        if (prev) prev.next = node;
        else this.torrents.set(k, node);
        return;
      }
    }
    node.next = this.torrents.get(k);
    this.torrents.set(k, node);
  }

  /** Remove an info_hash; with `id`, only if it is still that torrent's. */
  removeTorrent(infoHash: Uint8Array, id?: number): boolean {
    const k = bucketKey(infoHash, 0);
    let prev: TorrentNode | undefined;
    for (let n = this.torrents.get(k); n !== undefined; prev = n, n = n.next) {
      if (!same(n.infoHash, infoHash, 0)) continue;
      if (id !== undefined && n.id !== id) return false;
      if (prev) prev.next = n.next;
      else if (n.next) this.torrents.set(k, n.next);
      else this.torrents.delete(k);
      this.tally(n, -1);
      return true;
    }
    return false;
  }

  private tally(n: TorrentNode, d: number): void {
    if (n.reason === undefined) this.torrentCount += d;
    else this.deletedCount += d;
  }

  /**
   * Replace everything at once (a reload): lookups never see a half-applied state. Entries
   * the registry cannot hold (an id beyond u32, a malformed passkey) are left out; returns
   * why, one line each.
   */
  replaceAll(users: readonly UserEntry[], torrents: readonly TorrentEntry[], deleted: readonly (TorrentEntry & { reason: string })[] = []): string[] {
    const next = new Registry();
    const refused: string[] = [];
    const add = (f: () => void) => {
      try {
        f();
      } catch (e) {
        refused.push((e as Error).message);
      }
    };
    for (const u of users) add(() => next.upsertUser(u));
    for (const d of deleted) add(() => next.upsertTorrent(d, d.reason));
    for (const t of torrents) add(() => next.upsertTorrent(t)); // a live registration wins over a deleted one
    this.users = next.users;
    this.currentKeys = next.currentKeys;
    this.torrents = next.torrents;
    this.torrentCount = next.torrentCount;
    this.deletedCount = next.deletedCount;
    return refused;
  }
}

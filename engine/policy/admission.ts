import { AnnounceRequest } from '../../contract/requests.js';
import type { Config } from '../config.js';
import type { FailureCode } from '../errors.js';
import type { AnnounceOptions } from '../http/query.js';
import type { Limits } from './limits.js';
import type { Registry } from './registry.js';

// Who may announce what: the checks every frontend (HTTP, UDP) makes before a request
// goes to a shard, in one place so the protocols cannot drift apart.

/** Announce parser settings derived from the configuration (same for every protocol). */
export function announceOptions(cfg: Config): AnnounceOptions {
  const t = cfg.tracker;
  return { numwantDefault: t.numwant_default, numwantMax: t.numwant_max, allowClientIp: t.allow_client_ip };
}

export class Admission {
  /** Words for the last refusal that has some (a deleted torrent's reason, how long to wait), else null. */
  detail: string | null = null;

  constructor(
    private readonly cfg: Config,
    private readonly registry: Registry,
    private readonly limits: Limits | null = null,
  ) {}

  /**
   * First of all, before parsing: may the client at ip16[off] (the socket's address, or a
   * trusted proxy's client) send a request now? Not auto-banned, within its address's rate.
   */
  client(ip16: Uint8Array, off: number): FailureCode | null {
    this.detail = null;
    return this.limited(this.limits?.admitAddress(ip16, off, Date.now()) ?? null);
  }

  /** The client was refused with `code`: failures count toward its address's ban. */
  refused(code: FailureCode): void {
    this.limits?.strike(code, Date.now());
  }

  /** Has the client its share of the requests in flight already (limits.max_inflight_per_address)? */
  busy(): boolean {
    return this.limits !== null && this.limits.busy();
  }

  /** The admitted client, for the requests in flight it holds (engine/pending.ts), or -1. */
  get clientEntry(): number {
    return this.limits === null ? -1 : this.limits.entry;
  }

  /** A limit's refusal (or null), with how long to wait as its detail. */
  private limited(code: FailureCode | null): FailureCode | null {
    if (code !== null) this.detail = `retry in ${this.limits!.retryIn} seconds`;
    return code;
  }

  /**
   * Check a parsed announce record (AnnounceRequest layout) with the passkey the client gave (null for
   * none) and stamp its USER and TORRENT fields. Returns the failure to answer, or null.
   */
  announce(passkey: string | null, rec: Uint8Array, dv: DataView): FailureCode | null {
    this.detail = null;
    if (this.isBanned(rec, AnnounceRequest.IP)) return 'banned';
    if (!this.registry.clients.allowed(rec, AnnounceRequest.PEER_ID)) return 'client_not_allowed';
    let user = 0;
    if (this.cfg.tracker.private) {
      if (passkey === null) return 'passkey_required';
      const u = this.registry.user(passkey);
      if (u === undefined) return 'unknown_passkey';
      if (!u.canLeech && dv.getFloat64(AnnounceRequest.LEFT, true) > 0) return 'leeching_disabled';
      user = u.id;
      const limited = this.limited(this.limits?.admitUser(user, Date.now()) ?? null);
      if (limited !== null) return limited;
    }
    const torrent = this.registry.torrentId(rec, AnnounceRequest.INFO_HASH);
    if (torrent === 0 && this.cfg.tracker.private) {
      const reason = this.registry.deletedReason(rec, AnnounceRequest.INFO_HASH);
      if (reason !== undefined) {
        this.detail = reason;
        return 'torrent_deleted';
      }
      if (this.cfg.tracker.require_registered_torrents) return 'torrent_not_registered';
    }
    dv.setUint32(AnnounceRequest.USER, user, true);
    dv.setUint32(AnnounceRequest.TORRENT, torrent, true);
    return null;
  }

  /** May the client at the 16-byte address ip16[off] scrape? (Not banned; private mode: a known passkey within its rate.) */
  scrape(passkey: string | null, ip16: Uint8Array, off: number): FailureCode | null {
    if (this.isBanned(ip16, off)) return 'banned';
    if (!this.cfg.tracker.private) return null;
    if (passkey === null) return 'passkey_required';
    const u = this.registry.user(passkey);
    if (u === undefined) return 'unknown_passkey';
    return this.limited(this.limits?.admitUser(u.id, Date.now()) ?? null);
  }

  private isBanned(ip16: Uint8Array, off: number): boolean {
    const bans = this.registry.bans;
    // The clock is read only when there are bans: most trackers have none.
    return bans.size !== 0 && bans.banned(ip16, off, Math.floor(Date.now() / 1000));
  }
}

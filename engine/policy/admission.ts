import { AQ } from '../../shards/layout.js';
import type { Config } from '../config.js';
import type { FailureCode } from '../errors.js';
import type { AnnounceOptions } from '../http/query.js';
import type { Registry } from './registry.js';

// Who may announce what: the checks every frontend (HTTP, UDP) makes before a request
// goes to a shard, in one place so the protocols cannot drift apart.

/** Announce parser settings derived from the configuration (same for every protocol). */
export function announceOptions(cfg: Config): AnnounceOptions {
  const t = cfg.tracker;
  return { numwantDefault: t.numwant_default, numwantMax: t.numwant_max, allowClientIp: t.allow_client_ip };
}

export class Admission {
  constructor(
    private readonly cfg: Config,
    private readonly registry: Registry,
  ) {}

  /**
   * Check a parsed announce record (AQ layout) with the passkey the client gave (null for
   * none) and stamp its USER and TORRENT fields. Returns the failure to answer, or null.
   */
  announce(passkey: string | null, rec: Uint8Array, dv: DataView): FailureCode | null {
    let user = 0;
    if (this.cfg.tracker.private) {
      if (passkey === null) return 'passkey_required';
      const u = this.registry.user(passkey);
      if (u === undefined) return 'unknown_passkey';
      if (!u.canLeech && dv.getFloat64(AQ.LEFT, true) > 0) return 'leeching_disabled';
      user = u.id;
    }
    const torrent = this.registry.torrentId(rec, AQ.INFO_HASH);
    if (torrent === 0 && this.cfg.tracker.private && this.cfg.tracker.require_registered_torrents) return 'torrent_not_registered';
    dv.setUint32(AQ.USER, user, true);
    dv.setUint32(AQ.TORRENT, torrent, true);
    return null;
  }

  /** May this client scrape? (Private mode: a known passkey.) */
  scrape(passkey: string | null): FailureCode | null {
    if (!this.cfg.tracker.private) return null;
    if (passkey === null) return 'passkey_required';
    return this.registry.user(passkey) === undefined ? 'unknown_passkey' : null;
  }
}

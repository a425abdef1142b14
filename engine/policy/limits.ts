import type { Config } from '../config.js';
import type { FailureCode } from '../errors.js';
import { isV4Mapped, parseIp } from '../net/ip.js';
import { ClientTable } from './client-table.js';

// What any one address or passkey may take of the tracker (README: limits): a token bucket
// per source address (IPv4 /32, IPv6 /64) and per user for announces and scrapes, a share of
// the requests in flight per address, and a temporary ban for an address that keeps
// failing. Two fixed-size tables (client-table.ts): memory does not grow with clients.

/**
 * Refusals that count as an address's failures toward an automatic ban: what an honest
 * client does not send. (Rate-limit refusals do not: a seedbox starting thousands of
 * torrents meets its bucket, and is slowed, not banned.)
 */
export const STRIKES: ReadonlySet<FailureCode> = new Set<FailureCode>([
  'unknown_passkey', 'passkey_required', 'malformed_query', 'missing_info_hash', 'invalid_info_hash', 'missing_peer_id',
  'invalid_peer_id', 'missing_port', 'invalid_port', 'missing_uploaded', 'invalid_uploaded', 'missing_downloaded',
  'invalid_downloaded', 'missing_left', 'invalid_left', 'invalid_numwant', 'invalid_event', 'invalid_ip', 'invalid_compact',
  'query_too_long', 'too_many_info_hashes',
]);

const V4_MARK = 0xffffffff;

export interface AutoBan {
  address: string;
  until: number; // unix s
}

export class Limits {
  readonly addresses: ClientTable;
  readonly users: ClientTable;
  /** The address entry of the request being admitted (-1: none), for strike() and inflight. */
  entry = -1;
  /** Seconds the last refusal asks the client to wait. */
  retryIn = 0;
  bansTotal = 0;
  private readonly l: Config['limits'];
  private readonly key = new Uint32Array(2);

  constructor(cfg: Config) {
    this.l = cfg.limits;
    this.addresses = new ClientTable(this.l.table_entries);
    this.users = new ClientTable(this.l.table_entries);
  }

  /** May the address at ip16[off] send a request now? Sets `entry`. */
  admitAddress(ip16: Uint8Array, off: number, nowMs: number): FailureCode | null {
    const t = this.addresses;
    keyOf(ip16, off, this.key);
    const i = t.get(this.key[0], this.key[1], nowMs, this.l.address_burst);
    this.entry = i;
    const until = t.bannedUntil[i];
    if (until !== 0) {
      const left = until - Math.floor(nowMs / 1000);
      if (left > 0) {
        this.retryIn = left;
        t.refill(i, nowMs, this.l.address_rate, this.l.address_burst); // the bucket fills meanwhile
        return 'auto_banned';
      }
      t.bannedUntil[i] = 0; // expired
    }
    if (this.l.address_rate > 0 && !t.take(i, nowMs, this.l.address_rate, this.l.address_burst)) {
      this.retryIn = t.wait(i, this.l.address_rate);
      return 'address_rate_limited';
    }
    t.stamp[i] = nowMs;
    return null;
  }

  /** May user `user` (a known passkey) send a request now? */
  admitUser(user: number, nowMs: number): FailureCode | null {
    if (this.l.passkey_rate <= 0 || user === 0) return null;
    const t = this.users;
    const i = t.get(user, 0, nowMs, this.l.passkey_burst);
    if (t.take(i, nowMs, this.l.passkey_rate, this.l.passkey_burst)) return null;
    this.retryIn = t.wait(i, this.l.passkey_rate);
    return 'passkey_rate_limited';
  }

  /** Has the admitted address its share of the requests in flight already? */
  busy(): boolean {
    return this.entry >= 0 && this.l.max_inflight_per_address > 0 && this.addresses.inflight[this.entry] >= this.l.max_inflight_per_address;
  }

  /** A request of entry `i` went to a shard (engine/pending.ts counts them). */
  acquired(i: number): void {
    if (this.addresses.inflight[i] < 0xffff) this.addresses.inflight[i]++;
  }

  /** A request of entry `i` was answered (or lost). */
  done(i: number): void {
    if (i >= 0 && this.addresses.inflight[i] > 0) this.addresses.inflight[i]--;
  }

  /** The admitted address was refused with `code`: count it toward a ban. */
  strike(code: FailureCode, nowMs: number): void {
    const i = this.entry;
    if (i < 0 || this.l.autoban_failures <= 0 || !STRIKES.has(code)) return;
    const t = this.addresses;
    const now = Math.floor(nowMs / 1000);
    if (now - t.strikeStart[i] >= this.l.autoban_window_seconds) {
      t.strikeStart[i] = now;
      t.strikes[i] = 0;
    }
    if (++t.strikes[i] >= this.l.autoban_failures) {
      t.bannedUntil[i] = now + this.l.autoban_seconds;
      t.strikes[i] = 0;
      this.bansTotal++;
    }
  }

  /** Addresses banned now (walks the table: admin API only). */
  autoBans(nowMs: number): AutoBan[] {
    const t = this.addresses;
    const now = Math.floor(nowMs / 1000);
    const out: AutoBan[] = [];
    for (let i = 0; i < t.capacity; i++) {
      if (t.stamp[i] !== 0 && t.bannedUntil[i] > now) out.push({ address: keyText(...t.key(i)), until: t.bannedUntil[i] });
    }
    return out;
  }

  /** The tables' figures, for /metrics. */
  get tables(): { name: string; entries: number; capacity: number; bytes: number; evictions: number }[] {
    return [
      { name: 'addresses', entries: this.addresses.used, capacity: this.addresses.capacity, bytes: this.addresses.bytes, evictions: this.addresses.evictions },
      { name: 'passkeys', entries: this.users.used, capacity: this.users.capacity, bytes: this.users.bytes, evictions: this.users.evictions },
    ];
  }

  /** lift() of an address as text (an IPv6 /64 may be written `a:b:c:d::/64`); null when it is none. */
  liftAddress(text: string, nowMs: number): boolean | null {
    const ip16 = new Uint8Array(16);
    if (!parseIp(text.replace(/\/64$/, ''), ip16, 0)) return null;
    return this.lift(ip16, nowMs);
  }

  /** Lift the automatic ban of an address (as autoBans() writes it); false when it has none. */
  lift(ip16: Uint8Array, nowMs: number): boolean {
    const t = this.addresses;
    const i = t.find(...addressKey(ip16, 0));
    if (i < 0 || t.bannedUntil[i] <= Math.floor(nowMs / 1000)) return false;
    t.bannedUntil[i] = 0;
    t.strikes[i] = 0;
    t.tokens[i] = this.l.address_burst;
    return true;
  }
}

/** An address as the tables key it, into out[0..1]: IPv4 whole, IPv6 by its /64. */
function keyOf(ip16: Uint8Array, off: number, out: Uint32Array): void {
  if (isV4Mapped(ip16, off)) {
    out[0] = u32(ip16, off + 12);
    out[1] = V4_MARK;
  } else {
    out[0] = u32(ip16, off);
    out[1] = u32(ip16, off + 4);
  }
}

const u32 = (b: Uint8Array, o: number): number => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

/** keyOf() as a pair (tests, the admin API). */
export function addressKey(ip16: Uint8Array, off: number): [number, number] {
  const k = new Uint32Array(2);
  keyOf(ip16, off, k);
  return [k[0], k[1]];
}

function keyText(a: number, b: number): string {
  if (b === V4_MARK) return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
  const g = [a >>> 16, a & 0xffff, b >>> 16, b & 0xffff].map((x) => x.toString(16));
  return `${g.join(':')}::/64`;
}

import { AnnounceAnswer, ST_BUSY, ST_OK, ST_PEER_ID_IN_USE, ST_TOO_MANY_PEERS, ST_TOO_MANY_SWARMS, ST_TOO_SOON } from '../contract/requests.js';
import type { ByteRing } from '../contract/ring.js';
import type { FailureCode } from './errors.js';

const BY_STATUS: Record<number, FailureCode> = {
  [ST_PEER_ID_IN_USE]: 'peer_id_in_use',
  [ST_TOO_SOON]: 'announce_too_soon',
  [ST_TOO_MANY_PEERS]: 'too_many_peers',
  [ST_TOO_MANY_SWARMS]: 'too_many_swarms',
  [ST_BUSY]: 'tracker_busy',
};

/** The failure an announce answer record carries, or null when it carries peers. */
export function announceFailure(ring: ByteRing, off: number): FailureCode | null {
  const status = ring.u8[off + AnnounceAnswer.STATUS];
  if (status === ST_OK) return null;
  return BY_STATUS[status] ?? 'tracker_full';
}

/** The words after the failure reason a shard's refusal carries (how long to wait), or null. */
export function failureDetail(ring: ByteRing, off: number): string | null {
  if (ring.u8[off + AnnounceAnswer.STATUS] !== ST_TOO_SOON) return null;
  return `wait ${ring.dv.getUint32(off + AnnounceAnswer.WAIT, true)} seconds`;
}

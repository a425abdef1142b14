import { AnnounceAnswer, ST_OK, ST_PEER_ID_IN_USE } from '../contract/requests.js';
import type { ByteRing } from '../contract/ring.js';
import type { FailureCode } from './errors.js';

/** The failure an announce answer record carries, or null when it carries peers. */
export function announceFailure(ring: ByteRing, off: number): FailureCode | null {
  const status = ring.u8[off + AnnounceAnswer.STATUS];
  if (status === ST_OK) return null;
  return status === ST_PEER_ID_IN_USE ? 'peer_id_in_use' : 'tracker_full';
}

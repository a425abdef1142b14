// One registry of everything a tracker client can be told went wrong: a stable code, the
// message, and the bencoded body pre-encoded once at start-up. The README's table of
// failure reasons is checked against this list by a test.

export const FAILURES = {
  query_too_long: 'request too long',
  malformed_query: 'malformed query string',
  missing_info_hash: 'missing info_hash',
  invalid_info_hash: 'info_hash must be 20 bytes',
  missing_peer_id: 'missing peer_id',
  invalid_peer_id: 'peer_id must be 20 bytes',
  missing_port: 'missing port',
  invalid_port: 'port must be an integer from 1 to 65535',
  missing_uploaded: 'missing uploaded',
  invalid_uploaded: 'uploaded must be a non-negative integer below 2^53',
  missing_downloaded: 'missing downloaded',
  invalid_downloaded: 'downloaded must be a non-negative integer below 2^53',
  missing_left: 'missing left',
  invalid_left: 'left must be a non-negative integer below 2^53',
  invalid_numwant: 'numwant must be an integer',
  invalid_event: 'unknown event (expected started, stopped, completed, paused or none)',
  invalid_ip: 'invalid ip, ipv4 or ipv6 parameter',
  invalid_compact: 'compact must be 0 or 1',
  banned: 'your IP address is banned from this tracker',
  client_not_allowed: "your client is not allowed on this tracker; see the site's list of allowed clients",
  passkey_required: 'this is a private tracker: announce with your personal /<passkey>/announce URL',
  unknown_passkey: 'unknown passkey',
  leeching_disabled: 'your leeching privileges are disabled',
  torrent_not_registered: 'torrent not registered with this tracker',
  torrent_deleted: 'torrent deleted from this tracker',
  too_many_info_hashes: 'too many info_hashes in one scrape',
  full_scrape_disabled: 'full scrape is disabled: name the info_hashes',
  peer_id_in_use: 'this peer_id is in use by another client in this swarm',
  tracker_full: 'tracker is full, try again later',
  tracker_busy: 'tracker busy, try again later',
  address_busy: 'too many requests from your address in progress, try again later',
  address_rate_limited: 'too many requests from your address',
  passkey_rate_limited: 'too many requests with your passkey',
  auto_banned: 'too many failed requests from your address: temporarily banned',
  announce_too_soon: 'announced sooner than the min interval allows',
  too_many_peers: 'too many of your clients in this swarm',
  too_many_swarms: 'your address is in too many swarms',
  shard_restarted: 'tracker was restarting this swarm, try again',
  ws_invalid_message: 'invalid message: expected a JSON object with an action',
  ws_invalid_action: 'unknown action (expected announce or scrape)',
  ws_invalid_offers: 'offers must be a list of objects with an offer object and a 20-byte offer_id',
  ws_too_many_offers: 'too many offers in one announce',
  ws_invalid_answer: 'an answer needs an answer object, and to_peer_id and offer_id of 20 bytes',
  ws_too_many_swarms: 'this WebSocket is in too many swarms',
  ws_rate_limited: 'too many messages on this WebSocket',
  ws_too_many_sockets: 'too many WebSockets open from your address',
} as const;

export type FailureCode = keyof typeof FAILURES;

function encodeFailure(message: string): Buffer {
  const msg = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`d14:failure reason${msg.length}:`), msg, Buffer.from('e')]);
}

/**
 * The failure text with a detail the site gave (a deleted torrent's reason): built per
 * request, only for refusals that carry one.
 */
export function failureText(code: FailureCode, detail: string | null): string {
  return detail === null ? FAILURES[code] : `${FAILURES[code]}: ${detail}`;
}

/** Bencoded body of failureText(). */
export function failureBody(code: FailureCode, detail: string | null): Buffer {
  return detail === null ? FAILURE_BODIES[code] : encodeFailure(failureText(code, detail));
}

/** Bencoded `failure reason` bodies, by code. */
export const FAILURE_BODIES: Readonly<Record<FailureCode, Buffer>> = Object.freeze(
  Object.fromEntries(Object.entries(FAILURES).map(([code, message]) => [code, encodeFailure(message)])) as Record<FailureCode, Buffer>,
);

-- Every peer in the swarms, one row per (info_hash, peer_id): the totals it last reported
-- and its address, written in the same transaction as the deltas they produced. After a
-- restart (even a SIGKILL) the tracker reloads these rows into its swarms, so a peer's next
-- delta is taken from exactly what the ledger already holds (nothing counted twice or
-- lost) and clients find their swarms as they left them. Peers of open mode (no user) and
-- of unregistered torrents are kept too; only the ledger needs both.
CREATE TABLE peers (
  info_hash     bytea NOT NULL CHECK (octet_length(info_hash) = 20),
  peer_id       bytea NOT NULL CHECK (octet_length(peer_id) = 20),
  torrent_id    bigint REFERENCES torrents (id) ON DELETE CASCADE,
  user_id       bigint REFERENCES users (id) ON DELETE CASCADE,
  ip            bytea NOT NULL CHECK (octet_length(ip) = 16),  -- IPv4 as ::ffff:a.b.c.d, as in the shards
  port          integer NOT NULL CHECK (port BETWEEN 0 AND 65535),
  peer_key      bigint NOT NULL DEFAULT 0,
  has_key       boolean NOT NULL DEFAULT false,
  uploaded      bigint NOT NULL DEFAULT 0,   -- reported totals (this session of the client)
  downloaded    bigint NOT NULL DEFAULT 0,
  left_bytes    bigint NOT NULL DEFAULT 0,
  paused        boolean NOT NULL DEFAULT false,
  last_announce timestamptz NOT NULL,
  PRIMARY KEY (info_hash, peer_id)
);
CREATE INDEX peers_last_announce ON peers (last_announce);
CREATE INDEX peers_user ON peers (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX peers_torrent ON peers (torrent_id) WHERE torrent_id IS NOT NULL;

-- Notifications name the schema too: trackers of several schemas may share a database.
CREATE OR REPLACE FUNCTION notify_registry_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('registry_changed', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
  RETURN NULL;
END
$$;

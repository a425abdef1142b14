-- Every peer in the swarms, one row per (info_hash, peer_id): the totals it last reported
-- and its address, written in the same transaction as the deltas they produced. After a
-- restart (even a SIGKILL) the tracker reloads these rows into its swarms, so a peer's next
-- delta is taken from exactly what the ledger already holds (nothing counted twice or
-- lost) and clients find their swarms as they left them. Peers of open mode (no user) and
-- of unregistered torrents are kept too; only the ledger needs both.
CREATE TABLE peers (
  info_hash     bytea NOT NULL CHECK (octet_length(info_hash) = 20),
  peer_id       bytea NOT NULL CHECK (octet_length(peer_id) = 20),
  torrent_id    bigint,   -- registered torrent (none: unregistered); removed with it (forget_torrents)
  user_id       bigint,   -- none in open mode; removed with the user (forget_users)
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
CREATE INDEX peers_user ON peers (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX peers_torrent ON peers (torrent_id) WHERE torrent_id IS NOT NULL;

-- Notifications name the schema too: trackers of several schemas may share a database.
CREATE OR REPLACE FUNCTION notify_registry_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('registry_changed', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
  RETURN NULL;
END
$$;

-- The ledger's hot tables, tuned for the flush (measured on PostgreSQL 15, 20,000-row
-- batches): a foreign-key check costs ~19 µs a row on insert, twice per history row, so the
-- references go (the ledger writer checks users and torrents in the same transaction, and
-- the triggers below remove a deleted user's or torrent's rows as the cascade did); and no
-- index covers a column every flush changes (last_announce), so updates can be HOT and
-- leave the indexes alone, with room left in each page for them.
ALTER TABLE history DROP CONSTRAINT history_user_id_fkey, DROP CONSTRAINT history_torrent_id_fkey;
ALTER TABLE snatches DROP CONSTRAINT snatches_user_id_fkey, DROP CONSTRAINT snatches_torrent_id_fkey;
DROP INDEX history_torrent;
DROP INDEX history_user_active;
CREATE INDEX history_torrent ON history (torrent_id);
CREATE INDEX history_user ON history (user_id);
ALTER TABLE history SET (fillfactor = 70);
ALTER TABLE peers SET (fillfactor = 70);
ALTER TABLE users SET (fillfactor = 80);     -- totals change every flush; passkeys seldom
ALTER TABLE torrents SET (fillfactor = 80);  -- snatch counts

-- A deleted user's or torrent's ledger and peer rows go with it (what ON DELETE CASCADE
-- did); TG_ARGV[0] names the column that refers to it.
CREATE FUNCTION forget_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['history', 'snatches', 'peers'] LOOP
    EXECUTE format('DELETE FROM %I WHERE %I IN (SELECT id FROM gone)', t, TG_ARGV[0]);
  END LOOP;
  RETURN NULL;
END
$$;
CREATE TRIGGER users_forget AFTER DELETE ON users REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION forget_rows('user_id');
CREATE TRIGGER torrents_forget AFTER DELETE ON torrents REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION forget_rows('torrent_id');

-- Integrity: what the tracker did not believe. A row per claim a bound cut (the shards and
-- the persistence thread decide: see contract/accounting.ts CHEAT_*), written in the same
-- transaction as the batch that carries it, so a flag is never lost nor written twice; and
-- a row when a user's lifetime download of a torrent passes twice its size. Kept when the
-- user or torrent goes (evidence outlives accounts). Moderators resolve them through the
-- admin API.
CREATE TABLE cheat_flags (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id     bigint NOT NULL,
  torrent_id  bigint NOT NULL,
  peer_id     bytea CHECK (octet_length(peer_id) = 20),  -- none for download_over_twice_size (a sum of sessions)
  kind        text NOT NULL CHECK (kind IN ('upload_over_rate', 'upload_no_leechers', 'counters_backwards',
                                            'download_over_size', 'download_over_twice_size', 'too_many_peers')),
  evidence    jsonb NOT NULL,          -- the numbers: claimed, credited, seconds, totals, address
  flagged_at  timestamptz NOT NULL,    -- the announce's time
  resolved_at timestamptz,
  resolved_by text,
  resolution  text
);
CREATE INDEX cheat_flags_time ON cheat_flags (flagged_at DESC);
CREATE INDEX cheat_flags_user ON cheat_flags (user_id, flagged_at DESC);
CREATE INDEX cheat_flags_open ON cheat_flags (kind, flagged_at DESC) WHERE resolved_at IS NULL;
CREATE INDEX cheat_flags_pair ON cheat_flags (user_id, torrent_id, kind);

-- Totals add without overflowing: a bigint column that would pass 2^63−1 stays there
-- instead of refusing its row (and every later one of that user) into dead_letters.
-- Both terms are never negative (the ledger adds deltas). SQL-language and immutable: the
-- planner inlines it.
CREATE FUNCTION sat_add(a bigint, b bigint) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN b > 9223372036854775807 - a THEN 9223372036854775807 ELSE a + b END
$$;

-- The size bounds the download a session may claim: the tracker follows its changes.
DROP TRIGGER torrents_policy_log ON torrents;
CREATE TRIGGER torrents_policy_log AFTER UPDATE OF id, info_hash, info_hash_v2, size, download_multiplier, upload_multiplier, multipliers_expire, deleted_at, deleted_reason ON torrents
  FOR EACH ROW EXECUTE FUNCTION log_registry_change();

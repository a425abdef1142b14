-- Registry changes as a log the tracker reads incrementally. Reloading whole tables on every
-- change cost ~12 s and blocked the acceptor 6-7 s at a million users and torrents; the
-- tracker now reads the rows named here since its last read and applies just those.
--
-- A row per changed user or torrent (what its cache keys were before: they go unless the
-- row still holds them), one per statement for bans and the client allow-list (small:
-- reloaded whole), 'all' for a TRUNCATE. By xid a reader takes the changes of every
-- transaction its previous read's snapshot could not see, so a change committed late is
-- never skipped.
CREATE TABLE registry_changes (
  seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  xid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
  kind       text NOT NULL CHECK (kind IN ('user', 'torrent', 'ban', 'client', 'all')),
  id         bigint,
  old_key1   text,    -- users: the passkey and old passkey before the change
  old_key2   text,
  old_hash1  bytea,   -- torrents: info_hash and info_hash_v2 before the change
  old_hash2  bytea,
  changed_at timestamptz NOT NULL DEFAULT clock_timestamp() -- (the change, not its transaction's start)
);
CREATE INDEX registry_changes_xid ON registry_changes (xid);
CREATE INDEX registry_changes_at ON registry_changes (changed_at);

-- (bytea_output pinned: a session set to 'escape' would not decode below)
CREATE FUNCTION log_registry_change() RETURNS trigger LANGUAGE plpgsql SET bytea_output = 'hex' AS $$
DECLARE
  -- rows as jsonb: one statement serves users and torrents (a bytea is '\x…' text there)
  o jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') AND TG_LEVEL = 'ROW' THEN to_jsonb(OLD) END;
  n jsonb := CASE WHEN TG_OP IN ('UPDATE', 'INSERT') AND TG_LEVEL = 'ROW' THEN to_jsonb(NEW) END;
  k text := CASE TG_TABLE_NAME WHEN 'users' THEN 'user' ELSE 'torrent' END;
BEGIN
  IF TG_LEVEL = 'STATEMENT' THEN
    -- (bans and clients are reloaded whole anyway; a TRUNCATE of users or torrents is not
    -- worth a row per id)
    INSERT INTO registry_changes (kind) VALUES (CASE WHEN TG_OP = 'TRUNCATE' AND TG_ARGV[0] IN ('user', 'torrent') THEN 'all' ELSE TG_ARGV[0] END);
    RETURN NULL;
  END IF;
  INSERT INTO registry_changes (kind, id, old_key1, old_key2, old_hash1, old_hash2)
  VALUES (k, (coalesce(o, n)->>'id')::bigint, o->>'passkey', o->>'old_passkey',
          decode(substr(o->>'info_hash', 3), 'hex'), decode(substr(o->>'info_hash_v2', 3), 'hex'));
  IF o->>'id' <> n->>'id' THEN -- the row changed id: the new one is a change too
    INSERT INTO registry_changes (kind, id) VALUES (k, (n->>'id')::bigint);
  END IF;
  RETURN NULL;
END
$$;
-- Row triggers with column lists: the ledger's counter updates never fire them.
CREATE TRIGGER users_log AFTER INSERT OR DELETE ON users FOR EACH ROW EXECUTE FUNCTION log_registry_change();
CREATE TRIGGER users_policy_log AFTER UPDATE OF id, passkey, old_passkey, old_passkey_expires, can_leech, enabled ON users
  FOR EACH ROW EXECUTE FUNCTION log_registry_change();
CREATE TRIGGER users_truncate_log AFTER TRUNCATE ON users FOR EACH STATEMENT EXECUTE FUNCTION log_registry_change('user');
CREATE TRIGGER torrents_log AFTER INSERT OR DELETE ON torrents FOR EACH ROW EXECUTE FUNCTION log_registry_change();
CREATE TRIGGER torrents_policy_log AFTER UPDATE OF id, info_hash, info_hash_v2, download_multiplier, upload_multiplier, multipliers_expire, deleted_at, deleted_reason ON torrents
  FOR EACH ROW EXECUTE FUNCTION log_registry_change();
CREATE TRIGGER torrents_truncate_log AFTER TRUNCATE ON torrents FOR EACH STATEMENT EXECUTE FUNCTION log_registry_change('torrent');
CREATE TRIGGER bans_log AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON bans FOR EACH STATEMENT EXECUTE FUNCTION log_registry_change('ban');
CREATE TRIGGER client_allowlist_log AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON client_allowlist
  FOR EACH STATEMENT EXECUTE FUNCTION log_registry_change('client');

-- A passkey identifies one user across both columns (a reset passkey keeps working during
-- its grace window), and an info_hash one torrent across v1 and v2: the tracker's caches
-- map each to a single entry, so a value shared between two rows would credit the wrong
-- user or torrent. UNIQUE covers each column; these triggers cover the pairs.
CREATE FUNCTION check_cross_unique() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'users' THEN
    IF EXISTS (SELECT 1 FROM users WHERE id <> NEW.id AND (old_passkey = NEW.passkey OR passkey = NEW.old_passkey)) THEN
      RAISE EXCEPTION 'passkey already in use by another user' USING ERRCODE = 'unique_violation';
    END IF;
  ELSIF EXISTS (SELECT 1 FROM torrents WHERE id <> NEW.id AND (info_hash_v2 = NEW.info_hash OR info_hash = NEW.info_hash_v2)) THEN
    RAISE EXCEPTION 'info_hash already registered for another torrent' USING ERRCODE = 'unique_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER users_cross_unique BEFORE INSERT OR UPDATE OF passkey, old_passkey ON users
  FOR EACH ROW EXECUTE FUNCTION check_cross_unique();
CREATE TRIGGER torrents_cross_unique BEFORE INSERT OR UPDATE OF info_hash, info_hash_v2 ON torrents
  FOR EACH ROW EXECUTE FUNCTION check_cross_unique();

-- 0004's check as one OR over two columns was planned as a sequential scan (the plan is
-- cached while the table is empty, and an OR with a NULL side cannot use both indexes),
-- making a bulk insert of users or torrents quadratic. One lookup per column, each on its
-- unique index, and none for a NULL value.
CREATE OR REPLACE FUNCTION check_cross_unique() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'users' THEN
    IF (NEW.passkey IS NOT NULL AND EXISTS (SELECT 1 FROM users WHERE old_passkey = NEW.passkey AND id <> NEW.id))
       OR (NEW.old_passkey IS NOT NULL AND EXISTS (SELECT 1 FROM users WHERE passkey = NEW.old_passkey AND id <> NEW.id)) THEN
      RAISE EXCEPTION 'passkey already in use by another user' USING ERRCODE = 'unique_violation';
    END IF;
  ELSIF (NEW.info_hash IS NOT NULL AND EXISTS (SELECT 1 FROM torrents WHERE info_hash_v2 = NEW.info_hash AND id <> NEW.id))
     OR (NEW.info_hash_v2 IS NOT NULL AND EXISTS (SELECT 1 FROM torrents WHERE info_hash = NEW.info_hash_v2 AND id <> NEW.id)) THEN
    RAISE EXCEPTION 'info_hash already registered for another torrent' USING ERRCODE = 'unique_violation';
  END IF;
  RETURN NEW;
END
$$;

-- A batch may be written as several transactions in parallel ("parts", split by user), so
-- a database with cores to spare takes more of the ledger: each part is applied exactly
-- once, and a row of part -1, committed before any part, says how many parts the batch is
-- cut into, so a replay after a restart with another setting cuts it the same way.
ALTER TABLE applied_batches ADD COLUMN part integer NOT NULL DEFAULT 0;
ALTER TABLE applied_batches ADD COLUMN parts integer NOT NULL DEFAULT 1;
ALTER TABLE applied_batches ADD CONSTRAINT applied_batches_part CHECK (parts >= 1 AND part >= -1 AND part < parts);
ALTER TABLE applied_batches DROP CONSTRAINT applied_batches_pkey;
ALTER TABLE applied_batches ADD PRIMARY KEY (journal, batch_id, part);

-- The ledger writer checks that users and torrents exist, then writes rows that refer to
-- them (there are no foreign keys: 0002). A delete between the two would leave rows behind.
-- Each flush holds this lock shared; deleting users or torrents takes it exclusively, so
-- the delete waits for flushes in flight (and its forget trigger then removes their rows)
-- instead of every flush locking every row it refers to (FOR KEY SHARE cost 20%). Sites
-- should delete in short READ COMMITTED transactions: the forget triggers then see the rows
-- the flushes they waited for wrote (under REPEATABLE READ they would not).
CREATE FUNCTION ledger_exclusive() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('shardtrack-ledger:' || TG_TABLE_SCHEMA));
  RETURN NULL;
END
$$;
CREATE TRIGGER users_ledger_lock BEFORE DELETE ON users FOR EACH STATEMENT EXECUTE FUNCTION ledger_exclusive();
CREATE TRIGGER torrents_ledger_lock BEFORE DELETE ON torrents FOR EACH STATEMENT EXECUTE FUNCTION ledger_exclusive();

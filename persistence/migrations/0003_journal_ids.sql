-- Batch ids are a journal's own sequence: a new data directory (a redeploy without its
-- volume, a second tracker on the same schema) starts again at 1. Keyed by batch id alone,
-- its batches would be taken for replays of another journal's and skipped. Each journal
-- has a random id of its own; a batch is (journal, batch_id).
ALTER TABLE applied_batches ADD COLUMN journal text NOT NULL DEFAULT '';
ALTER TABLE applied_batches DROP CONSTRAINT applied_batches_pkey;
ALTER TABLE applied_batches ADD PRIMARY KEY (journal, batch_id);
ALTER TABLE dead_letters ADD COLUMN journal text NOT NULL DEFAULT '';

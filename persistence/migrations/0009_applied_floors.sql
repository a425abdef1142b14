-- Exactly once for batches whose applied_batches rows were pruned. A run deletes its rows
-- more than 100,000 batches behind (about a day); a replay of such a batch (a data
-- directory restored from a backup, a clone's pending batches) would find no row and be
-- applied again. Every batch of a journal run below its floor is known applied: a replay
-- below it is skipped. (A batch a copy holds pending is the same batch the original
-- journalled and applied: the run that wrote it is the same.)
CREATE TABLE applied_floors (
  journal text PRIMARY KEY,  -- journal identity / run (persistence/batches.ts batchNamespace)
  below   bigint NOT NULL    -- every batch id below this was applied
);

-- The hourly prune of runs nobody writes any more reads by time.
CREATE INDEX applied_batches_at ON applied_batches (applied_at);

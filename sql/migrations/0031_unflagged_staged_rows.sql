-- The rows staged without key_repeated (NULL: staged by other means, or before migration 0030), found by an index
-- rather than by reading every candidate. 20_duplicates groups every candidate of a source that has such a row in
-- the run (it cannot tell which of them repeat), and learnt which sources those are by scanning all the candidates
-- for a NULL flag and joining the result back to each of them: 2.3 of the 1M first load's 2.8 s of duplicates, in
-- the match, which the main backend runs nearly alone. The extract flags every row it stages, so a run's partition
-- of this index is empty and costs the COPY only the test of its predicate; the question "which sources of the run
-- have an unflagged row" is two index pages. Partitions staged before migration 0030 have the flag NULL on every
-- row: their indexes hold every row, built once here (a few seconds a million rows).
CREATE INDEX population_record_unflagged ON staging.population_record (run_id, source_id)
    WHERE key_repeated IS NULL;

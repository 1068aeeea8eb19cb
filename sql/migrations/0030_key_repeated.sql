-- staging.population_record.key_repeated: set by the extract when a staged row's record key may repeat within its
-- (run, source) — the key was already staged by the same extract, or it is not printable ASCII without a space, so
-- that normalisation (population.norm_text: white space, full-width forms) might make it equal to another. false:
-- the first row of its key, a key that normalises to itself. NULL: not known (a row staged by other means or by an
-- older version).
--
-- Why: 20_duplicates finds the keys staged more than once in the run (the superseded rows) by grouping every
-- candidate by its key, about two million groups at 1M residents of which some 23 thousand repeat: a hash
-- aggregate the parallel workers cannot split (partial aggregation reduces nothing when nearly every group has one
-- row), so its leader built the two-million-entry table alone (4.3 s of the slower machine's reconciliation). The
-- extract sees every row of a (run, source) in one process and keeps a set of its keys (0.15–0.45 µs a row); the
-- candidates then group only the rows it flagged. Conservative: a key it flags that does not repeat among the
-- candidates (its other row quarantined, a file rolled back) is only windowed for nothing.
ALTER TABLE staging.population_record ADD COLUMN key_repeated boolean;
COMMENT ON COLUMN staging.population_record.key_repeated IS
    '键可能重复: true when the row''s record key was already staged by the same extract (or may change when normalised); false: first of its key; NULL = not known';

-- A golden person left with no current statement — every department record that made it has since been
-- corrected to another identity (e.g. 公安 corrected the ID number on its record) — is retired from
-- population.person: its history is closed and it is recorded here with the person that now holds its records.
CREATE TABLE population.person_retired (
    person_id            bigint PRIMARY KEY,
    id_type              text,
    id_number            text,
    successor_person_id  bigint,
    reason               text        NOT NULL,
    run_id               bigint      NOT NULL REFERENCES audit.run,
    retired_at           timestamptz NOT NULL
);
COMMENT ON TABLE population.person_retired IS '注销的人员标识: persons whose every source record moved to another identity (ID corrected at source)';
COMMENT ON COLUMN population.person_retired.successor_person_id IS '承接人员标识 (the person now holding its records)';
COMMENT ON COLUMN population.person_retired.reason IS '原因 (ID_CORRECTED_AT_SOURCE)';
COMMENT ON COLUMN population.person_retired.retired_at IS '注销时间 (history valid_to)';

-- Per-attribute lineage, readable: which department, record and time each golden value came from.
CREATE VIEW population.attribute_lineage AS
SELECT p.person_id, l.attribute, l.value, s.department, s.source_id, s.source_key, s.source_updated_at,
       s.run_id, s.source_record_id
FROM population.person p
CROSS JOIN LATERAL (VALUES
        ('name', p.name::text, p.src_name),
        ('sex', p.sex::text, p.src_sex),
        ('birth_date', p.birth_date::text, p.src_birth_date),
        ('ethnicity', p.ethnicity::text, p.src_ethnicity),
        ('nationality', p.nationality::text, p.src_nationality),
        ('hukou_division', p.hukou_division::text, p.src_hukou_division),
        ('hukou_address', p.hukou_address::text, p.src_hukou_address),
        ('residence_division', p.residence_division::text, p.src_residence_division),
        ('residence_address', p.residence_address::text, p.src_residence_address),
        ('residence_permit_no', p.residence_permit_no::text, p.src_residence_permit_no),
        ('population_status', p.population_status::text, p.src_population_status),
        ('death_date', p.death_date::text, p.src_death_date),
        ('marital_status', p.marital_status::text, p.src_marital_status),
        ('employer', p.employer::text, p.src_employer),
        ('employer_uscc', p.employer_uscc::text, p.src_employer_uscc),
        ('social_insurance_status', p.social_insurance_status::text, p.src_social_insurance_status),
        ('education_level', p.education_level::text, p.src_education_level),
        ('school', p.school::text, p.src_school)
    ) AS l(attribute, value, source_record_id)
JOIN population.source_record s ON s.source_record_id = l.source_record_id;
COMMENT ON VIEW population.attribute_lineage IS '数据血缘: each golden value with its department, source record and time';

-- Validation results of the quality gate (GX suites), by GB/T 36344 dimension.
CREATE TABLE quality.validation_run (
    validation_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          bigint      NOT NULL REFERENCES audit.run,
    suite           text        NOT NULL,
    table_name      text        NOT NULL,
    success         boolean     NOT NULL,
    blocking_failed integer     NOT NULL,
    warning_failed  integer     NOT NULL,
    evaluated       integer     NOT NULL,
    data_docs_path  text,
    validated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, suite)
);
COMMENT ON TABLE quality.validation_run IS '质量校验: one row per run and suite; success is false when a blocking expectation failed';
COMMENT ON COLUMN quality.validation_run.suite IS '规则集 (expectations/<suite>.json)';
COMMENT ON COLUMN quality.validation_run.blocking_failed IS '阻断性规则失败数';
COMMENT ON COLUMN quality.validation_run.warning_failed IS '警告性规则失败数';
COMMENT ON COLUMN quality.validation_run.data_docs_path IS '数据文档 (GX Data Docs HTML)';

CREATE TABLE quality.expectation_result (
    validation_id    bigint  NOT NULL REFERENCES quality.validation_run ON DELETE CASCADE,
    expectation_id   text    NOT NULL,
    expectation_type text    NOT NULL,
    column_name      text,
    dimension        text    NOT NULL CHECK (dimension IN ('规范性', '完整性', '准确性', '一致性', '时效性', '可访问性')),
    severity         text    NOT NULL CHECK (severity IN ('blocking', 'warning')),
    success          boolean NOT NULL,
    element_count    bigint,
    unexpected_count bigint,
    unexpected_percent double precision,
    observed         jsonb,
    PRIMARY KEY (validation_id, expectation_id)
);
COMMENT ON TABLE quality.expectation_result IS '规则结果: each expectation''s outcome with its GB/T 36344 dimension and severity';
COMMENT ON COLUMN quality.expectation_result.dimension IS '质量维度 (GB/T 36344: 规范性 完整性 准确性 一致性 时效性 可访问性)';
COMMENT ON COLUMN quality.expectation_result.severity IS '级别 (blocking 阻断, warning 警告)';
COMMENT ON COLUMN quality.expectation_result.unexpected_count IS '不符合行数';

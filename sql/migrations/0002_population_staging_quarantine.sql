-- Staging (as received) and quarantine (rejected, with why) for the population database.
CREATE TABLE staging.population_record (
    run_id              bigint      NOT NULL REFERENCES audit.run,
    source_id           text        NOT NULL,
    seq                 bigint      NOT NULL,
    department          text        NOT NULL,
    source_key          text,
    source_updated_at   timestamptz,
    received_at         timestamptz NOT NULL DEFAULT now(),
    row_hash            text        NOT NULL,
    origin              text,
    id_type             text,
    id_number           text,
    name                text,
    sex                 text,
    birth_date          text,
    ethnicity           text,
    nationality         text,
    hukou_division      text,
    hukou_address       text,
    residence_division  text,
    residence_address   text,
    residence_permit_no text,
    population_status   text,
    death_date          text,
    marital_status      text,
    employer            text,
    employer_uscc       text,
    social_insurance_status text,
    education_level     text,
    school              text,
    event_type          text,
    event_date          text,
    payload             jsonb       NOT NULL,
    parse_error         text,
    PRIMARY KEY (run_id, source_id, seq)
);
COMMENT ON TABLE staging.population_record IS '人口暂存: every row as received, renamed to canonical fields, raw payload kept';
COMMENT ON COLUMN staging.population_record.run_id IS '运行编号';
COMMENT ON COLUMN staging.population_record.source_id IS '数据源 (source registry id)';
COMMENT ON COLUMN staging.population_record.seq IS '抽取序号 (order within the run and source, deterministic)';
COMMENT ON COLUMN staging.population_record.department IS '提供部门';
COMMENT ON COLUMN staging.population_record.source_key IS '源记录主键';
COMMENT ON COLUMN staging.population_record.source_updated_at IS '源记录更新时间';
COMMENT ON COLUMN staging.population_record.received_at IS '接收时间';
COMMENT ON COLUMN staging.population_record.row_hash IS '行哈希 (md5 of the raw payload)';
COMMENT ON COLUMN staging.population_record.origin IS '来源位置 (table, file and line, API page)';
COMMENT ON COLUMN staging.population_record.id_type IS '证件类型';
COMMENT ON COLUMN staging.population_record.id_number IS '证件号码 (原样)';
COMMENT ON COLUMN staging.population_record.name IS '姓名';
COMMENT ON COLUMN staging.population_record.sex IS '性别';
COMMENT ON COLUMN staging.population_record.birth_date IS '出生日期';
COMMENT ON COLUMN staging.population_record.ethnicity IS '民族';
COMMENT ON COLUMN staging.population_record.nationality IS '国籍';
COMMENT ON COLUMN staging.population_record.hukou_division IS '户籍地行政区划代码';
COMMENT ON COLUMN staging.population_record.hukou_address IS '户籍地址';
COMMENT ON COLUMN staging.population_record.residence_division IS '居住地行政区划代码';
COMMENT ON COLUMN staging.population_record.residence_address IS '居住地址';
COMMENT ON COLUMN staging.population_record.residence_permit_no IS '居住证号码';
COMMENT ON COLUMN staging.population_record.population_status IS '人口状态';
COMMENT ON COLUMN staging.population_record.death_date IS '死亡日期';
COMMENT ON COLUMN staging.population_record.marital_status IS '婚姻状况';
COMMENT ON COLUMN staging.population_record.employer IS '就业单位';
COMMENT ON COLUMN staging.population_record.employer_uscc IS '就业单位统一社会信用代码';
COMMENT ON COLUMN staging.population_record.social_insurance_status IS '社会保险参保状态';
COMMENT ON COLUMN staging.population_record.education_level IS '学历';
COMMENT ON COLUMN staging.population_record.school IS '学校';
COMMENT ON COLUMN staging.population_record.event_type IS '业务事项';
COMMENT ON COLUMN staging.population_record.event_date IS '业务发生日期';
COMMENT ON COLUMN staging.population_record.payload IS '原始记录 (source field names and values as received)';
COMMENT ON COLUMN staging.population_record.parse_error IS '解析错误 (a malformed row: kept raw in payload, quarantined as MALFORMED_ROW)';

-- Output of the identifier rules: one row per staged row, normalised values, reasons and warnings.
CREATE TABLE staging.population_checked (
    run_id          bigint NOT NULL,
    source_id       text   NOT NULL,
    seq             bigint NOT NULL,
    id_type         text,
    id_number       text,
    id_birth_date   date,
    id_sex          text,
    id_division     text,
    birth_date      date,
    death_date      date,
    event_date      date,
    sex             text,
    reasons         text[] NOT NULL DEFAULT '{}',
    warnings        text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, source_id, seq)
);
COMMENT ON TABLE staging.population_checked IS '校验结果: normalised identifiers and dates, reject reasons and warnings per staged row';
COMMENT ON COLUMN staging.population_checked.id_type IS '证件类型 (规范化)';
COMMENT ON COLUMN staging.population_checked.id_number IS '证件号码 (规范化: 18位, 大写X, 半角)';
COMMENT ON COLUMN staging.population_checked.id_birth_date IS '证件号码中的出生日期';
COMMENT ON COLUMN staging.population_checked.id_sex IS '证件号码中的性别 (1男 2女)';
COMMENT ON COLUMN staging.population_checked.id_division IS '证件号码中的行政区划代码';
COMMENT ON COLUMN staging.population_checked.birth_date IS '出生日期 (规范化)';
COMMENT ON COLUMN staging.population_checked.death_date IS '死亡日期 (规范化)';
COMMENT ON COLUMN staging.population_checked.event_date IS '业务发生日期 (规范化)';
COMMENT ON COLUMN staging.population_checked.sex IS '性别 (GB/T 2261.1 代码)';
COMMENT ON COLUMN staging.population_checked.reasons IS '拒绝原因代码';
COMMENT ON COLUMN staging.population_checked.warnings IS '警告代码';

CREATE TABLE quarantine.population_record (
    run_id          bigint      NOT NULL REFERENCES audit.run,
    source_id       text        NOT NULL,
    seq             bigint      NOT NULL,
    department      text        NOT NULL,
    source_key      text,
    reasons         text[]      NOT NULL CHECK (cardinality(reasons) > 0),
    payload         jsonb       NOT NULL,
    origin          text,
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, source_id, seq)
);
COMMENT ON TABLE quarantine.population_record IS '人口隔离: rejected rows, why, and the raw payload to fix and resend';
COMMENT ON COLUMN quarantine.population_record.department IS '提供部门 (who must fix it)';
COMMENT ON COLUMN quarantine.population_record.source_key IS '源记录主键';
COMMENT ON COLUMN quarantine.population_record.reasons IS '原因代码 (docs/reason-codes.md)';
COMMENT ON COLUMN quarantine.population_record.payload IS '原始记录';
COMMENT ON COLUMN quarantine.population_record.origin IS '来源位置';
COMMENT ON COLUMN quarantine.population_record.quarantined_at IS '隔离时间';
CREATE INDEX ON quarantine.population_record USING gin (reasons);

-- Files or pages that could not be read at all (empty file, XML not well-formed): nothing to stage, but recorded.
CREATE TABLE quarantine.source_file (
    run_id        bigint NOT NULL REFERENCES audit.run,
    source_id     text   NOT NULL,
    origin        text   NOT NULL,
    reason        text   NOT NULL,
    detail        text,
    PRIMARY KEY (run_id, source_id, origin)
);
COMMENT ON TABLE quarantine.source_file IS '隔离文件: whole files or pages that could not be parsed, with the parser''s message';
COMMENT ON COLUMN quarantine.source_file.reason IS '原因代码 (EMPTY_FILE, MALFORMED_FILE)';

-- The golden resident-population tables: accepted source records, crosswalk, golden person with SCD2 history and
-- per-attribute lineage, review queue and discrepancies (比对).

-- Every accepted statement a department made about a person (one row per merged staged row).
CREATE TABLE population.source_record (
    source_record_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id              bigint      NOT NULL REFERENCES audit.run,
    source_id           text        NOT NULL,
    seq                 bigint      NOT NULL,
    department          text        NOT NULL,
    source_key          text        NOT NULL,
    source_updated_at   timestamptz NOT NULL,
    person_id           bigint      NOT NULL,
    match_method        text        NOT NULL,
    is_current          boolean     NOT NULL DEFAULT true,
    row_hash            text        NOT NULL,
    warnings            text[]      NOT NULL DEFAULT '{}',
    id_type             text,
    id_number           text,
    name                text,
    sex                 text,
    birth_date          date,
    ethnicity           text,
    nationality         text,
    hukou_division      text,
    hukou_address       text,
    residence_division  text,
    residence_address   text,
    residence_permit_no text,
    population_status   text,
    death_date          date,
    marital_status      text,
    employer            text,
    employer_uscc       text,
    social_insurance_status text,
    education_level     text,
    school              text,
    UNIQUE (run_id, source_id, seq)
);
CREATE UNIQUE INDEX source_record_current ON population.source_record (source_id, source_key) WHERE is_current;
CREATE INDEX source_record_person ON population.source_record (person_id) WHERE is_current;
COMMENT ON TABLE population.source_record IS '源记录: every accepted statement of a department about a person, normalised; the candidates of survivorship';
COMMENT ON COLUMN population.source_record.source_record_id IS '源记录编号 (lineage points here)';
COMMENT ON COLUMN population.source_record.department IS '提供部门';
COMMENT ON COLUMN population.source_record.source_key IS '源记录主键';
COMMENT ON COLUMN population.source_record.source_updated_at IS '源记录更新时间';
COMMENT ON COLUMN population.source_record.person_id IS '人员标识 (golden person)';
COMMENT ON COLUMN population.source_record.match_method IS '匹配方式 (id_number, evidence, new)';
COMMENT ON COLUMN population.source_record.is_current IS '是否为该源记录的最新版本';
COMMENT ON COLUMN population.source_record.warnings IS '警告代码';

-- Crosswalk: each department's record key to the golden person.
CREATE TABLE population.person_xref (
    source_id       text   NOT NULL,
    source_key      text   NOT NULL,
    department      text   NOT NULL,
    person_id       bigint NOT NULL,
    match_method    text   NOT NULL,
    first_run_id    bigint NOT NULL REFERENCES audit.run,
    last_run_id     bigint NOT NULL REFERENCES audit.run,
    PRIMARY KEY (source_id, source_key)
);
CREATE INDEX person_xref_person ON population.person_xref (person_id);
COMMENT ON TABLE population.person_xref IS '标识对照: department record key -> golden person id';
COMMENT ON COLUMN population.person_xref.source_key IS '部门记录主键';
COMMENT ON COLUMN population.person_xref.person_id IS '人员标识';
COMMENT ON COLUMN population.person_xref.match_method IS '匹配方式 (id_number, evidence, new)';
COMMENT ON COLUMN population.person_xref.first_run_id IS '首次匹配的运行';
COMMENT ON COLUMN population.person_xref.last_run_id IS '最近一次匹配的运行';

CREATE SEQUENCE population.person_id_seq;

-- The golden person: one row per resident, values chosen under 一数一源, each with a lineage pointer src_<attr>.
CREATE TABLE population.person (
    person_id           bigint PRIMARY KEY DEFAULT nextval('population.person_id_seq'),
    id_type             text,
    id_number           text,
    name                text,
    sex                 text,
    birth_date          date,
    ethnicity           text,
    nationality         text,
    hukou_division      text,
    hukou_address       text,
    residence_division  text,
    residence_address   text,
    residence_permit_no text,
    population_status   text,
    death_date          date,
    marital_status      text,
    employer            text,
    employer_uscc       text,
    social_insurance_status text,
    education_level     text,
    school              text,
    is_registered       boolean GENERATED ALWAYS AS (hukou_division LIKE '31%') STORED,
    src_name            bigint,
    src_sex             bigint,
    src_birth_date      bigint,
    src_ethnicity       bigint,
    src_nationality     bigint,
    src_hukou_division  bigint,
    src_hukou_address   bigint,
    src_residence_division bigint,
    src_residence_address  bigint,
    src_residence_permit_no bigint,
    src_population_status bigint,
    src_death_date      bigint,
    src_marital_status  bigint,
    src_employer        bigint,
    src_employer_uscc   bigint,
    src_social_insurance_status bigint,
    src_education_level bigint,
    src_school          bigint,
    row_hash            text        NOT NULL,
    valid_from          timestamptz NOT NULL,
    created_run_id      bigint      NOT NULL REFERENCES audit.run,
    updated_run_id      bigint      NOT NULL REFERENCES audit.run
);
CREATE UNIQUE INDEX person_identity ON population.person (id_type, id_number) WHERE id_number IS NOT NULL;
CREATE INDEX person_evidence ON population.person (name, birth_date, sex);
COMMENT ON TABLE population.person IS '实有人口 (主表): one row per resident; values from the authoritative department (一数一源)';
COMMENT ON COLUMN population.person.person_id IS '人员标识';
COMMENT ON COLUMN population.person.id_type IS '证件类型 (RIC 居民身份证, PASSPORT 护照, PRP 外国人永久居留身份证)';
COMMENT ON COLUMN population.person.id_number IS '证件号码 (公民身份号码18位)';
COMMENT ON COLUMN population.person.name IS '姓名';
COMMENT ON COLUMN population.person.sex IS '性别 (GB/T 2261.1: 1男 2女 9未说明)';
COMMENT ON COLUMN population.person.birth_date IS '出生日期';
COMMENT ON COLUMN population.person.ethnicity IS '民族';
COMMENT ON COLUMN population.person.nationality IS '国籍';
COMMENT ON COLUMN population.person.hukou_division IS '户籍地行政区划代码 (GB/T 2260)';
COMMENT ON COLUMN population.person.hukou_address IS '户籍地址';
COMMENT ON COLUMN population.person.residence_division IS '居住地行政区划代码 (GB/T 2260)';
COMMENT ON COLUMN population.person.residence_address IS '居住地址';
COMMENT ON COLUMN population.person.residence_permit_no IS '居住证号码';
COMMENT ON COLUMN population.person.population_status IS '人口状态 (active 正常, deceased 死亡, moved_out 迁出)';
COMMENT ON COLUMN population.person.death_date IS '死亡日期';
COMMENT ON COLUMN population.person.marital_status IS '婚姻状况 (GB/T 2261.2: 10未婚 20已婚 30丧偶 40离婚)';
COMMENT ON COLUMN population.person.employer IS '就业单位';
COMMENT ON COLUMN population.person.employer_uscc IS '就业单位统一社会信用代码';
COMMENT ON COLUMN population.person.social_insurance_status IS '社会保险参保状态';
COMMENT ON COLUMN population.person.education_level IS '学历';
COMMENT ON COLUMN population.person.school IS '学校';
COMMENT ON COLUMN population.person.is_registered IS '是否上海户籍 (户籍/非户籍)';
COMMENT ON COLUMN population.person.row_hash IS '属性哈希 (detects change for SCD2)';
COMMENT ON COLUMN population.person.valid_from IS '当前版本生效时间';
COMMENT ON COLUMN population.person.created_run_id IS '创建运行';
COMMENT ON COLUMN population.person.updated_run_id IS '最近更新运行';
COMMENT ON COLUMN population.person.src_name IS '姓名的来源记录 (population.source_record)';

-- SCD type 2 history: every version of every person, [valid_from, valid_to).
CREATE TABLE population.person_history (LIKE population.person INCLUDING DEFAULTS EXCLUDING IDENTITY);
ALTER TABLE population.person_history DROP COLUMN is_registered;
ALTER TABLE population.person_history ALTER COLUMN person_id DROP DEFAULT;
ALTER TABLE population.person_history ADD COLUMN valid_to timestamptz;
ALTER TABLE population.person_history ADD COLUMN version integer NOT NULL;
ALTER TABLE population.person_history ADD PRIMARY KEY (person_id, version);
CREATE INDEX person_history_as_of ON population.person_history (person_id, valid_from, valid_to);
COMMENT ON TABLE population.person_history IS '人口历史 (SCD2): every version of every person, valid over [valid_from, valid_to)';
COMMENT ON COLUMN population.person_history.valid_from IS '版本生效时间';
COMMENT ON COLUMN population.person_history.valid_to IS '版本失效时间 (空 = 当前版本)';
COMMENT ON COLUMN population.person_history.version IS '版本号';

-- The state of every person as of a moment.
CREATE FUNCTION population.person_as_of(as_of timestamptz)
RETURNS SETOF population.person_history
LANGUAGE sql STABLE AS $$
    SELECT * FROM population.person_history
    WHERE valid_from <= as_of AND (valid_to IS NULL OR valid_to > as_of)
$$;
COMMENT ON FUNCTION population.person_as_of(timestamptz) IS '某一时点的人口状态 (SCD2 as-of query)';

-- Rows that could not be matched with confidence wait here for a person (they are also in quarantine).
CREATE TABLE population.review_queue (
    run_id          bigint NOT NULL REFERENCES audit.run,
    source_id       text   NOT NULL,
    seq             bigint NOT NULL,
    department      text   NOT NULL,
    source_key      text,
    reason          text   NOT NULL,
    candidate_person_ids bigint[] NOT NULL DEFAULT '{}',
    evidence        jsonb  NOT NULL,
    status          text   NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'merged', 'rejected')),
    decided_by      text,
    decided_at      timestamptz,
    PRIMARY KEY (run_id, source_id, seq)
);
COMMENT ON TABLE population.review_queue IS '人工复核队列: records without a usable ID whose evidence is ambiguous or matches nobody';
COMMENT ON COLUMN population.review_queue.reason IS '原因代码 (REVIEW_AMBIGUOUS_MATCH, REVIEW_NO_MATCH)';
COMMENT ON COLUMN population.review_queue.candidate_person_ids IS '候选人员标识';
COMMENT ON COLUMN population.review_queue.evidence IS '匹配依据 (姓名, 出生日期, 性别, 区划)';
COMMENT ON COLUMN population.review_queue.status IS '状态 (open 待复核, merged 已合并, rejected 已驳回)';

-- 比对: a department whose value disagrees with the authoritative department's. The row is addressed to the
-- authority (数源部门, who keeps the item current and verifies it) and names the disagreeing department, which
-- receives it too: whichever is wrong fixes it at source. Department reports list both roles.
CREATE TABLE population.discrepancy (
    person_id               bigint NOT NULL,
    attribute               text   NOT NULL,
    department              text   NOT NULL,
    source_id               text   NOT NULL,
    source_key              text   NOT NULL,
    department_value        text,
    authority_department    text   NOT NULL,
    authority_value         text,
    authority_source_key    text,
    status                  text   NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    first_run_id            bigint NOT NULL REFERENCES audit.run,
    last_run_id             bigint NOT NULL REFERENCES audit.run,
    PRIMARY KEY (person_id, attribute, source_id)
);
CREATE INDEX discrepancy_department ON population.discrepancy (department, status);
COMMENT ON TABLE population.discrepancy IS '比对差异: a department disagrees with the authority (一数一源); addressed to the authority, naming the disagreeing department';
COMMENT ON COLUMN population.discrepancy.attribute IS '数据项';
COMMENT ON COLUMN population.discrepancy.department IS '不一致的部门 (抄送)';
COMMENT ON COLUMN population.discrepancy.department_value IS '该部门的值';
COMMENT ON COLUMN population.discrepancy.authority_department IS '权威部门 (数源部门, 收件部门)';
COMMENT ON COLUMN population.discrepancy.authority_value IS '权威值';
COMMENT ON COLUMN population.discrepancy.authority_source_key IS '权威记录主键';
COMMENT ON COLUMN population.discrepancy.status IS '状态 (open 待整改, resolved 已一致)';
COMMENT ON COLUMN population.discrepancy.first_run_id IS '首次发现的运行';
COMMENT ON COLUMN population.discrepancy.last_run_id IS '最近确认的运行';

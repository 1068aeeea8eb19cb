-- Publication of the approved subsets (pipelines/publish, docs/publication.md).
--
-- Schema `publish`: what downstream systems and the read API see — one table publish.<dataset code> per dataset
-- holding its CURRENT published release (created and replaced by pipelines.publish.flow, columns = the dataset's
-- fields), the release register, its event log (the changelog) and the catalog.
-- Schema `publish_work`: the publication core's own working area, never read by consumers — one build table per
-- release ("<release id>", the rows as reviewed, kept while the release may still be published or rolled back
-- to) and the district reference table the dataset definitions join to.
CREATE SCHEMA IF NOT EXISTS publish;
COMMENT ON SCHEMA publish IS '数据开放: the current published release of every open dataset, releases and catalog';
CREATE SCHEMA IF NOT EXISTS publish_work;
COMMENT ON SCHEMA publish_work IS '数据开放工作区: build tables of releases (as reviewed) and reference tables; not for consumers';

CREATE TABLE publish.release (
    release_id      text        PRIMARY KEY CHECK (release_id ~ '^[a-z][a-z0-9_]*-[0-9]{8}-[0-9]{3}$'),
    dataset_code    text        NOT NULL,
    version         integer     NOT NULL CHECK (version > 0),
    status          text        NOT NULL CHECK (status IN ('awaiting_approval', 'approved', 'published', 'rejected',
                                                           'superseded', 'rolled_back', 'blocked')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    as_of           date,
    source_run_ids  bigint[]    NOT NULL DEFAULT '{}',
    quality_passed  boolean     NOT NULL,
    row_count       bigint      NOT NULL DEFAULT 0,
    files           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    review          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    definition_sha256 text,
    approved_by     text,
    decided_at      timestamptz,
    note            text,
    UNIQUE (dataset_code, version)
);
CREATE INDEX release_dataset_status ON publish.release (dataset_code, status);
COMMENT ON TABLE publish.release IS '发布版本: every release of every open dataset, its review, files and status';
COMMENT ON COLUMN publish.release.release_id IS '版本标识 (<数据集代码>-<YYYYMMDD>-<NNN>)';
COMMENT ON COLUMN publish.release.dataset_code IS '数据集代码';
COMMENT ON COLUMN publish.release.version IS '版本号 (per dataset, 1, 2, …)';
COMMENT ON COLUMN publish.release.status IS '状态: awaiting_approval 待审批, approved 已批准, published 已发布, rejected 已驳回, superseded 已替代, rolled_back 已回滚, blocked 已阻断';
COMMENT ON COLUMN publish.release.created_at IS '生成时间';
COMMENT ON COLUMN publish.release.published_at IS '发布时间 (first time it became current)';
COMMENT ON COLUMN publish.release.as_of IS '统计截止日期 (last day of the newest source run)';
COMMENT ON COLUMN publish.release.source_run_ids IS '来源运行 (audit.run)';
COMMENT ON COLUMN publish.release.quality_passed IS '来源运行是否通过质量闸门';
COMMENT ON COLUMN publish.release.row_count IS '记录数';
COMMENT ON COLUMN publish.release.files IS '文件: format -> {path (relative to PUBLISH_DIR), sha256, bytes}';
COMMENT ON COLUMN publish.release.review IS '保密审查报告 (review.json)';
COMMENT ON COLUMN publish.release.definition_sha256 IS '数据集定义 (YAML + SQL) 的哈希';
COMMENT ON COLUMN publish.release.approved_by IS '审批人 (auto = 自动批准)';
COMMENT ON COLUMN publish.release.decided_at IS '审批时间';
COMMENT ON COLUMN publish.release.note IS '审批意见';

-- Every event of every release, in order: the changelog (CHANGELOG.md and changelog.jsonl are written from it).
CREATE TABLE publish.release_event (
    event_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    release_id      text        NOT NULL REFERENCES publish.release,
    dataset_code    text        NOT NULL,
    event           text        NOT NULL CHECK (event IN ('prepared', 'approved', 'rejected', 'published',
                                                          'superseded', 'rolled_back', 'restored', 'blocked')),
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor           text,
    note            text,
    row_count       bigint
);
CREATE INDEX release_event_dataset ON publish.release_event (dataset_code, event_id);
COMMENT ON TABLE publish.release_event IS '发布日志: one row per release event (changelog)';
COMMENT ON COLUMN publish.release_event.event IS '事件: prepared 生成, approved 批准, rejected 驳回, published 发布, superseded 被替代, rolled_back 回滚撤下, restored 回滚恢复, blocked 阻断';
COMMENT ON COLUMN publish.release_event.at IS '时间';
COMMENT ON COLUMN publish.release_event.actor IS '操作人';
COMMENT ON COLUMN publish.release_event.note IS '说明';
COMMENT ON COLUMN publish.release_event.row_count IS '记录数';

-- The government data catalog (政务数据资源目录 / 开放目录): one row per dataset once it has been published.
CREATE TABLE publish.catalog_entry (
    dataset_code        text        PRIMARY KEY,
    title               text        NOT NULL,
    title_en            text        NOT NULL,
    database            text        NOT NULL,
    provider_department text        NOT NULL,
    provider_department_name text   NOT NULL,
    abstract            text        NOT NULL,
    abstract_en         text,
    classification      text        NOT NULL,
    keywords            text[]      NOT NULL DEFAULT '{}',
    open_attribute      text        NOT NULL CHECK (open_attribute IN ('unconditional', 'conditional', 'closed')),
    open_attribute_label text       NOT NULL,
    share_type          text        NOT NULL,
    update_frequency    text        NOT NULL,
    record_level        boolean     NOT NULL,
    fields              jsonb       NOT NULL,
    formats             text[]      NOT NULL,
    distributions       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    related             jsonb       NOT NULL DEFAULT '[]'::jsonb,
    license             jsonb       NOT NULL,
    asset_uri           text        NOT NULL,
    table_name          text        NOT NULL,
    current_release_id  text        REFERENCES publish.release,
    current_version     integer,
    row_count           bigint,
    as_of               date,
    first_published     timestamptz NOT NULL,
    updated             timestamptz NOT NULL
);
COMMENT ON TABLE publish.catalog_entry IS '开放目录: core catalog metadata of every published dataset and its current release';
COMMENT ON COLUMN publish.catalog_entry.dataset_code IS '数据集代码 (= table publish.<code>)';
COMMENT ON COLUMN publish.catalog_entry.title IS '数据集名称';
COMMENT ON COLUMN publish.catalog_entry.title_en IS '英文名称';
COMMENT ON COLUMN publish.catalog_entry.database IS '所属基础库 (population, legal_person, spatial)';
COMMENT ON COLUMN publish.catalog_entry.provider_department IS '数源部门代码 (pipelines.departments)';
COMMENT ON COLUMN publish.catalog_entry.provider_department_name IS '数源部门';
COMMENT ON COLUMN publish.catalog_entry.abstract IS '摘要';
COMMENT ON COLUMN publish.catalog_entry.classification IS '资源分类';
COMMENT ON COLUMN publish.catalog_entry.keywords IS '关键字';
COMMENT ON COLUMN publish.catalog_entry.open_attribute IS '开放属性: unconditional 无条件开放, conditional 有条件开放, closed 不予开放';
COMMENT ON COLUMN publish.catalog_entry.open_attribute_label IS '开放属性 (中文)';
COMMENT ON COLUMN publish.catalog_entry.share_type IS '共享类型 (无条件共享, 有条件共享, 不予共享)';
COMMENT ON COLUMN publish.catalog_entry.update_frequency IS '更新频率';
COMMENT ON COLUMN publish.catalog_entry.record_level IS '是否为个体记录 (record-level) 数据';
COMMENT ON COLUMN publish.catalog_entry.fields IS '数据项: [{name, type, label_zh, description, filterable}]';
COMMENT ON COLUMN publish.catalog_entry.formats IS '开放格式';
COMMENT ON COLUMN publish.catalog_entry.distributions IS '下载文件: format -> {path (under <code>/current/), sha256, bytes, media_type}';
COMMENT ON COLUMN publish.catalog_entry.related IS '关联资源';
COMMENT ON COLUMN publish.catalog_entry.license IS '使用许可 / 开放协议';
COMMENT ON COLUMN publish.catalog_entry.asset_uri IS 'Airflow Asset URI of publish.<code>';
COMMENT ON COLUMN publish.catalog_entry.table_name IS '数据表';
COMMENT ON COLUMN publish.catalog_entry.current_release_id IS '当前版本';
COMMENT ON COLUMN publish.catalog_entry.current_version IS '当前版本号';
COMMENT ON COLUMN publish.catalog_entry.row_count IS '记录数';
COMMENT ON COLUMN publish.catalog_entry.as_of IS '统计截止日期';
COMMENT ON COLUMN publish.catalog_entry.first_published IS '首次发布时间';
COMMENT ON COLUMN publish.catalog_entry.updated IS '更新时间';

-- Division code (current or retired, GB/T 2260) -> today's Shanghai district. Filled from pipelines.identity
-- (SHANGHAI_DISTRICTS and the retired codes' successors) before every build, so it never drifts from the rules.
CREATE TABLE publish_work.district_map (
    division_code     text PRIMARY KEY,
    district_code     text NOT NULL,
    district_name     text NOT NULL,
    district_name_en  text NOT NULL,
    sort_order        integer NOT NULL
);
COMMENT ON TABLE publish_work.district_map IS '区划对照: division code (current or retired) -> current Shanghai district';
COMMENT ON COLUMN publish_work.district_map.division_code IS '行政区划代码 (现行或已撤销)';
COMMENT ON COLUMN publish_work.district_map.district_code IS '现行区代码';
COMMENT ON COLUMN publish_work.district_map.district_name IS '区名称';
COMMENT ON COLUMN publish_work.district_map.district_name_en IS '区英文名称';
COMMENT ON COLUMN publish_work.district_map.sort_order IS '排序';

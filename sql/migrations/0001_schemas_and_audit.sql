-- Layers as schemas, and the audit tables that prove every run's row accounting.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE SCHEMA IF NOT EXISTS staging;
COMMENT ON SCHEMA staging IS '暂存层: increments exactly as received from the departments';
CREATE SCHEMA IF NOT EXISTS quarantine;
COMMENT ON SCHEMA quarantine IS '隔离区: rejected rows with machine-readable reasons and their raw payload';
CREATE SCHEMA IF NOT EXISTS population;
COMMENT ON SCHEMA population IS '实有人口库: the golden resident-population tables';
CREATE SCHEMA IF NOT EXISTS audit;
COMMENT ON SCHEMA audit IS '审计: runs, watermarks, files and row accounting';
CREATE SCHEMA IF NOT EXISTS quality;
COMMENT ON SCHEMA quality IS '数据质量: validation results by GB/T 36344 dimension';

CREATE TABLE audit.run (
    run_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pipeline        text        NOT NULL,
    interval_start  timestamptz NOT NULL,
    interval_end    timestamptz NOT NULL,
    dag_id          text,
    airflow_run_id  text,
    attempts        integer     NOT NULL DEFAULT 1,
    status          text        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'success', 'failed', 'blocked')),
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    UNIQUE (pipeline, interval_start, interval_end)
);
COMMENT ON TABLE audit.run IS '运行记录: one row per pipeline and data interval; a re-run of the interval reuses it';
COMMENT ON COLUMN audit.run.pipeline IS '管道 (population, legal_person, spatial)';
COMMENT ON COLUMN audit.run.interval_start IS '数据区间开始';
COMMENT ON COLUMN audit.run.interval_end IS '数据区间结束 (不含)';
COMMENT ON COLUMN audit.run.attempts IS '执行次数 (re-runs of the same interval)';
COMMENT ON COLUMN audit.run.status IS '状态: running, success, failed, blocked (quality gate)';

CREATE TABLE audit.watermark (
    source_id       text PRIMARY KEY,
    high_watermark  timestamptz NOT NULL,
    run_id          bigint NOT NULL REFERENCES audit.run,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE audit.watermark IS '水位线: the highest source update time extracted so far, per source';
COMMENT ON COLUMN audit.watermark.high_watermark IS '已抽取的最大更新时间';

CREATE TABLE audit.extract (
    run_id          bigint NOT NULL REFERENCES audit.run,
    source_id       text   NOT NULL,
    low_watermark   timestamptz,
    high_watermark  timestamptz,
    received        bigint NOT NULL DEFAULT 0,
    detail          jsonb  NOT NULL DEFAULT '{}'::jsonb,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    PRIMARY KEY (run_id, source_id)
);
COMMENT ON TABLE audit.extract IS '抽取记录: the window each run read from each source; a re-run reads the same window';
COMMENT ON COLUMN audit.extract.low_watermark IS '抽取下限 (上次水位线, 不含)';
COMMENT ON COLUMN audit.extract.high_watermark IS '抽取上限 (数据区间结束, 不含)';
COMMENT ON COLUMN audit.extract.received IS '接收行数';

CREATE TABLE audit.file_manifest (
    source_id   text   NOT NULL,
    path        text   NOT NULL,
    sha256      text   NOT NULL,
    size_bytes  bigint NOT NULL,
    drop_date   date   NOT NULL,
    run_id      bigint NOT NULL REFERENCES audit.run,
    rows_read   bigint NOT NULL,
    error       text,
    PRIMARY KEY (source_id, path)
);
COMMENT ON TABLE audit.file_manifest IS '文件清单: every dropped file taken in, by the run that took it';
COMMENT ON COLUMN audit.file_manifest.drop_date IS '投递日期 (landing/<dept>/<dataset>/<YYYY-MM-DD>/)';
COMMENT ON COLUMN audit.file_manifest.error IS '文件级错误 (空文件, 无法解析的XML等)';

CREATE TABLE audit.row_accounting (
    run_id       bigint NOT NULL REFERENCES audit.run,
    source_id    text   NOT NULL,
    received     bigint NOT NULL,
    merged       bigint NOT NULL,
    quarantined  bigint NOT NULL,
    duplicates   bigint NOT NULL,
    PRIMARY KEY (run_id, source_id),
    CONSTRAINT every_row_accounted_for CHECK (received = merged + quarantined + duplicates)
);
COMMENT ON TABLE audit.row_accounting IS '行数核对: received = merged + quarantined + duplicates, per run and source';
COMMENT ON COLUMN audit.row_accounting.received IS '接收';
COMMENT ON COLUMN audit.row_accounting.merged IS '并入主表';
COMMENT ON COLUMN audit.row_accounting.quarantined IS '隔离 (含待人工复核)';
COMMENT ON COLUMN audit.row_accounting.duplicates IS '重复';

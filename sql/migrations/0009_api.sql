-- The read API's own tables (pipelines/api): the audit log of the identity verification service (核验).
-- Schema `api`, not `publish`: the publish schema belongs to the publication core (0008) and this migration must
-- not depend on it (an existing warehouse may apply 0008 after 0009).
CREATE SCHEMA IF NOT EXISTS api;
COMMENT ON SCHEMA api IS '数据开放接口: the read API''s audit tables';

CREATE TABLE api.verification_log (
    log_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    called_at    timestamptz NOT NULL DEFAULT now(),
    client       text        NOT NULL,
    department   text        NOT NULL,
    id_hash      text        NOT NULL CHECK (id_hash ~ '^[0-9a-f]{64}$'),
    outcome      text        NOT NULL CHECK (outcome IN ('match', 'no_match', 'invalid_id')),
    remote_addr  text
);
CREATE INDEX verification_log_client_time ON api.verification_log (client, called_at);
CREATE INDEX verification_log_id_hash ON api.verification_log (id_hash);
COMMENT ON TABLE api.verification_log IS '身份核验日志: every call of POST /api/v1/verify; never the ID number or the name in clear';
COMMENT ON COLUMN api.verification_log.log_id IS '日志编号';
COMMENT ON COLUMN api.verification_log.called_at IS '调用时间';
COMMENT ON COLUMN api.verification_log.client IS '调用方 (API key client name)';
COMMENT ON COLUMN api.verification_log.department IS '调用部门';
COMMENT ON COLUMN api.verification_log.id_hash IS '公民身份号码的加盐哈希: HMAC-SHA256 of the normalised number (the raw input when invalid) keyed with audit_salt from the API keys file';
COMMENT ON COLUMN api.verification_log.outcome IS '核验结果: match 一致, no_match 不一致, invalid_id 号码格式错误';
COMMENT ON COLUMN api.verification_log.remote_addr IS '调用方地址';

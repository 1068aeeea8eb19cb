-- A file taken in is known by its path AND its content: a department that drops a corrected file under the same
-- name (it happens: "the same file again, fixed") must have it taken again, not ignored because the path was
-- seen. The manifest keeps one row per content of a path; mtime_ns (with size_bytes) lets a run skip hashing a
-- file that has not been touched since it was taken.
ALTER TABLE audit.file_manifest DROP CONSTRAINT file_manifest_pkey;
ALTER TABLE audit.file_manifest ADD PRIMARY KEY (source_id, path, sha256);
ALTER TABLE audit.file_manifest ADD COLUMN mtime_ns bigint;
ALTER TABLE audit.file_manifest ADD COLUMN replaces_sha256 text;
COMMENT ON COLUMN audit.file_manifest.mtime_ns IS '文件修改时间 (ns): with size_bytes, an untouched file is not hashed again';
COMMENT ON COLUMN audit.file_manifest.replaces_sha256 IS '同名文件内容变化后重新接收: the content taken before under this path';

"""Every setting of the project, read from the environment in one place.

Each setting has a documented default so that ``make demo`` and ``make test`` run with no configuration at all.
Nothing else in the package reads ``os.environ`` directly.

| variable               | default                                                   | meaning                                       |
|------------------------|-----------------------------------------------------------|-----------------------------------------------|
| ``PROJECT_ROOT``       | the checkout                                              | where config/, sql/, expectations/ live       |
| ``LOCAL_DIR``          | ``<root>/.local``                                         | the project's own cluster, Airflow home, data |
| ``LOCAL_PG_PORT``      | ``.local/pg/port``, else ``54329``                        | port of the project's own PostgreSQL cluster  |
| ``WAREHOUSE_URL``      | ``postgresql+psycopg://postgres@127.0.0.1:54329/warehouse`` | the warehouse (PostgreSQL + PostGIS)        |
| ``FRONTDB_URL``        | the warehouse server, database ``frontdb``                | the departments' 前置库 (simulated here)       |
| ``LANDING_DIR``        | ``<local>/landing``                                       | file drops: landing/<dept>/<dataset>/<day>/   |
| ``SIM_API_URL``        | ``http://127.0.0.1:8765``                                 | the departments' HTTP APIs (simulated here)   |
| ``SIM_API_DIR``        | ``<local>/api``                                           | what the simulated API serves                 |
| ``REPORTS_DIR``        | ``<local>/reports``                                       | quality reports, Data Docs, discrepancy files |
| ``SIM_SEED``           | ``20260101``                                              | seed of the simulated departments             |
| ``SIM_PERSONS``        | ``2000``                                                  | simulated residents in the first extract      |
| ``SIM_START``          | ``2026-01-01``                                            | day of the full first extract                 |
| ``SIM_DAYS``           | ``4``                                                     | simulated days of increments after it         |
| ``SOURCE_REGISTRY``    | ``<root>/config/population_sources.yaml``                 | the source registry                           |
| ``AUTHORITY_REGISTRY`` | ``<root>/config/authority.yaml``                          | the authority registry (数源目录)              |
| ``COPY_CHUNK_ROWS``    | ``50000``                                                 | rows per COPY chunk when streaming            |
| ``PUBLISH_DIR``        | ``<local>/publish``                                       | released open-data files a portal syncs       |
| ``DATASETS_DIR``       | ``<root>/datasets``                                       | open dataset definitions (YAML + SQL)         |
| ``SUPPRESSION_THRESHOLD`` | ``10``                                                 | aggregate cells below this are suppressed     |
| ``K_ANONYMITY``        | ``5``                                                     | k for record-level datasets                   |
| ``API_HOST`` / ``API_PORT`` | ``127.0.0.1`` / ``8000``                             | the read API (``make api``)                    |
| ``API_KEYS_FILE``      | ``<local>/api_keys.yaml``                                 | keys of authorised departments (有条件开放)     |
| ``VERIFY_RATE_PER_MINUTE`` | ``60``                                                | identity verifications per client per minute  |
| ``QUALITY_GATE_SCOPE`` | ``auto``                                                  | ``table``: every row; ``run``: the rows the run wrote; ``auto``: ``run`` unless the run wrote ≥ 20 % of a table |
| ``RECONCILE_PARTITIONS`` | ``2``                                                   | backends reconciling a first load at once (1 = one transaction); about the database server's cores |
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import URL, make_url

_ROOT = Path(__file__).resolve().parent.parent


def write_cache_file(path: Path, data: bytes) -> None:
    """Write a file of the project's cache (under ``local_dir``) through a temporary file of this process, renamed
    into place, so that a reader never sees it half written; a directory that cannot be written leaves it
    unwritten (the cache is then only missed, never wrong)."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    project_root: Path
    local_dir: Path
    local_pg_port: int
    warehouse_url: URL
    frontdb_url: URL
    landing_dir: Path
    sim_api_url: str
    sim_api_dir: Path
    reports_dir: Path
    sim_seed: int
    sim_persons: int
    sim_start: date
    sim_days: int
    source_registry: Path
    authority_registry: Path
    copy_chunk_rows: int
    publish_dir: Path
    datasets_dir: Path
    suppression_threshold: int
    k_anonymity: int
    quality_gate_scope: str
    reconcile_partitions: int
    api_host: str
    api_port: int
    api_keys_file: Path
    verify_rate_per_minute: int

    @property
    def uses_local_cluster(self) -> bool:
        """True when the warehouse is the project's own cluster under .local/ (started by scripts/pg.sh)."""
        return "WAREHOUSE_URL" not in os.environ or not os.environ["WAREHOUSE_URL"]

    @staticmethod
    def libpq(url: URL) -> str:
        """A libpq connection string for psycopg, passwords escaped by SQLAlchemy's URL rendering."""
        return url.set(drivername="postgresql").render_as_string(hide_password=False)


def local_pg_port(local_dir: Path) -> int:
    """The port of the project's own cluster: LOCAL_PG_PORT, else the one scripts/pg.sh chose and wrote down."""
    port_file = local_dir / "pg" / "port"
    default = port_file.read_text().strip() if port_file.is_file() else "54329"
    return int(_env("LOCAL_PG_PORT", default))


def load() -> Settings:
    root = Path(_env("PROJECT_ROOT", str(_ROOT)))
    local = Path(_env("LOCAL_DIR", str(root / ".local")))
    port = local_pg_port(local)
    default_wh = URL.create(
        "postgresql+psycopg", username="postgres", host="127.0.0.1", port=port, database="warehouse"
    )
    warehouse = make_url(_env("WAREHOUSE_URL", default_wh.render_as_string(hide_password=False)))
    if warehouse.drivername == "postgresql":
        warehouse = warehouse.set(drivername="postgresql+psycopg")
    frontdb_default = warehouse.set(database="frontdb")
    frontdb = make_url(_env("FRONTDB_URL", frontdb_default.render_as_string(hide_password=False)))
    if frontdb.drivername == "postgresql":
        frontdb = frontdb.set(drivername="postgresql+psycopg")
    return Settings(
        project_root=root,
        local_dir=local,
        local_pg_port=port,
        warehouse_url=warehouse,
        frontdb_url=frontdb,
        landing_dir=Path(_env("LANDING_DIR", str(local / "landing"))),
        sim_api_url=_env("SIM_API_URL", "http://127.0.0.1:8765").rstrip("/"),
        sim_api_dir=Path(_env("SIM_API_DIR", str(local / "api"))),
        reports_dir=Path(_env("REPORTS_DIR", str(local / "reports"))),
        sim_seed=int(_env("SIM_SEED", "20260101")),
        sim_persons=int(_env("SIM_PERSONS", "2000")),
        sim_start=date.fromisoformat(_env("SIM_START", "2026-01-01")),
        sim_days=int(_env("SIM_DAYS", "4")),
        source_registry=Path(_env("SOURCE_REGISTRY", str(root / "config" / "population_sources.yaml"))),
        authority_registry=Path(_env("AUTHORITY_REGISTRY", str(root / "config" / "authority.yaml"))),
        copy_chunk_rows=int(_env("COPY_CHUNK_ROWS", "50000")),
        publish_dir=Path(_env("PUBLISH_DIR", str(local / "publish"))),
        datasets_dir=Path(_env("DATASETS_DIR", str(root / "datasets"))),
        suppression_threshold=int(_env("SUPPRESSION_THRESHOLD", "10")),
        k_anonymity=int(_env("K_ANONYMITY", "5")),
        quality_gate_scope=_env("QUALITY_GATE_SCOPE", "auto"),
        reconcile_partitions=max(1, int(_env("RECONCILE_PARTITIONS", "2"))),
        api_host=_env("API_HOST", "127.0.0.1"),
        api_port=int(_env("API_PORT", "8000")),
        api_keys_file=Path(_env("API_KEYS_FILE", str(local / "api_keys.yaml"))),
        verify_rate_per_minute=int(_env("VERIFY_RATE_PER_MINUTE", "60")),
    )


settings = load()

"""Test settings: a fresh warehouse and 前置库 database per test session on the real PostgreSQL/PostGIS.

The environment is set here, before ``pipelines.settings`` is imported, so every module sees the test databases.
The server is the project's own cluster (``make test`` starts it) unless WAREHOUSE_URL names another one.
Markers: ``integration`` (needs PostgreSQL), ``e2e`` (runs DAGs; slow). ``make test-quick`` skips e2e.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import URL, make_url

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="popetl-test-"))
_REPO = Path(__file__).resolve().parents[1]
_PORT_FILE = Path(os.environ.get("LOCAL_DIR", _REPO / ".local")) / "pg" / "port"
_base = os.environ.get("WAREHOUSE_URL") or URL.create(
    "postgresql+psycopg", username="postgres", host="127.0.0.1",
    port=int(os.environ.get("LOCAL_PG_PORT") or (_PORT_FILE.read_text().strip() if _PORT_FILE.is_file() else 54329)),
    database="warehouse",
).render_as_string(hide_password=False)
_BASE_URL = make_url(_base)
_SUFFIX = os.environ.get("PYTEST_XDIST_WORKER", "main")
TEST_WAREHOUSE = _BASE_URL.set(database=f"test_warehouse_{_SUFFIX}")
TEST_FRONTDB = _BASE_URL.set(database=f"test_frontdb_{_SUFFIX}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


os.environ["WAREHOUSE_URL"] = TEST_WAREHOUSE.render_as_string(hide_password=False)
os.environ["FRONTDB_URL"] = TEST_FRONTDB.render_as_string(hide_password=False)
os.environ["LANDING_DIR"] = str(_SESSION_DIR / "landing")
os.environ["SIM_API_DIR"] = str(_SESSION_DIR / "api")
os.environ["REPORTS_DIR"] = str(_SESSION_DIR / "reports")
os.environ["PUBLISH_DIR"] = str(_SESSION_DIR / "publish")
os.environ["API_KEYS_FILE"] = str(_SESSION_DIR / "api_keys.yaml")
os.environ["VERIFY_RATE_PER_MINUTE"] = "100000"  # the quota itself has its own test
os.environ["SIM_API_URL"] = f"http://127.0.0.1:{_free_port()}"
os.environ.setdefault("SIM_PERSONS", "400")
os.environ["GX_ANALYTICS_ENABLED"] = "false"
# Airflow for dag.test(): its own home and SQLite metadata DB per session, the project's dags/.
os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_REPO / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(_REPO / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO), os.environ.get("PYTHONPATH", "")) if p)


def _recreate(db_url: URL) -> None:
    import psycopg

    from pipelines.settings import Settings

    admin = Settings.libpq(db_url.set(database="postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (db_url.database,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{db_url.database}"')
        conn.execute(f'CREATE DATABASE "{db_url.database}"')


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata database (SQLite) for dag.test()."""
    import subprocess
    import sys

    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, env=dict(os.environ))
    return Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_DIR


@pytest.fixture(scope="session")
def warehouse_db() -> URL:
    """A freshly created and migrated warehouse database for this test session."""
    from pipelines.warehouse import migrate

    _recreate(TEST_WAREHOUSE)
    migrate(TEST_WAREHOUSE)
    return TEST_WAREHOUSE


@pytest.fixture(scope="session")
def frontdb() -> URL:
    """A freshly created 前置库 database for this test session."""
    _recreate(TEST_FRONTDB)
    return TEST_FRONTDB


def truncate_warehouse(url: URL) -> None:
    """Empty every data table of the warehouse (schema kept)."""
    from pipelines.warehouse import connect

    with connect(url) as conn:
        for (partition,) in conn.execute(  # staging's run partitions go with the runs (ids start again at 1)
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'staging' AND c.relkind = 'r'"
        ).fetchall():
            conn.execute(f"DROP TABLE {partition}")
        tables = conn.execute(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
            " WHERE schemaname IN ('staging','quarantine','population','audit','quality','publish','api')"
        ).fetchall()
        if tables:
            conn.execute("TRUNCATE " + ", ".join(t for (t,) in tables) + " RESTART IDENTITY CASCADE")
        conn.execute("ALTER SEQUENCE population.person_id_seq RESTART")


@pytest.fixture()
def clean_warehouse(warehouse_db: URL) -> URL:
    """The test warehouse with every data table emptied (schema kept): a test starts from nothing."""
    truncate_warehouse(warehouse_db)
    return warehouse_db

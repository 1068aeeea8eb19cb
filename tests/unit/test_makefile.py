"""The Makefile, scripts/bootstrap.sh and scripts/airflow_env.sh do what docs/operations.md says.

`make -n` shows what a target would run without running it; the environment script is sourced for real into a
temporary LOCAL_DIR (it runs `airflow db migrate` there once, a few seconds).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ["help", "setup", "demo", "test", "test-quick", "airflow", "api", "bench", "pg-stop", "clean"]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(*args: str, **env: str) -> str:
    out = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), *args],
        capture_output=True, text=True, check=True, env={**os.environ, **env},
    )
    return out.stdout


def test_help_lists_every_target_with_a_description():
    lines = make("help").splitlines()
    described = {line.split()[0]: line for line in lines[1:] if line.strip()}
    assert set(TARGETS) <= set(described), sorted(set(TARGETS) - set(described))
    assert all(len(line.split()) > 2 for line in described.values())
    phony = re.search(r"^\.PHONY:(.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE).group(1).split()
    assert set(TARGETS) <= set(phony)


def test_setup_installs_starts_postgres_and_migrates_in_that_order():
    steps = make("-n", "setup").splitlines()
    assert steps == [
        "bash scripts/bootstrap.sh",
        "bash scripts/pg.sh start",
        ".venv/bin/python -m pipelines migrate",
    ]


@pytest.mark.parametrize(
    ("target", "command"),
    [
        ("test", ".venv/bin/python -m pytest -q tests"),
        ("test-quick", '.venv/bin/python -m pytest -q -m "not e2e" tests'),
        ("demo", ".venv/bin/python -m pipelines demo"),
        ("bench", ".venv/bin/python -m pipelines bench"),
        ("airflow", "bash scripts/airflow.sh"),
    ],
)
def test_targets_run_setup_first_then_their_command(target, command):
    steps = make("-n", target).splitlines()
    assert steps[:3] == make("-n", "setup").splitlines()
    assert steps[-1].endswith(command), steps[-1]
    if target in ("test", "test-quick", "demo"):
        assert steps[-1].startswith("source scripts/airflow_env.sh && "), "dag.test() needs the Airflow env"


def test_clean_stops_the_cluster_before_removing_local_state(tmp_path):
    (tmp_path / "pg" / "data").mkdir(parents=True)
    steps = make("-n", "clean", LOCAL_DIR=str(tmp_path)).splitlines()
    assert steps[-1] == f'rm -rf "{tmp_path}"'
    assert any("scripts/pg.sh stop" in s for s in steps[:-1])


def test_ci_runs_make_test():
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in ci
    commands = [line for line in ci.splitlines()[1:] if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == "make test"
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


def test_bootstrap_refuses_an_unsupported_python_with_a_clear_message(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", tmp_path / "scripts" / "bootstrap.sh")
    shutil.copy(ROOT / "requirements.txt", tmp_path / "requirements.txt")
    old = tmp_path / "python3.9"
    old.write_text("#!/bin/sh\n[ \"$1\" = --version ] && echo 'Python 3.9.18'\nexit 1\n")
    old.chmod(0o755)
    out = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "bootstrap.sh")],
        capture_output=True, text=True, env={**os.environ, "PYTHON": str(old)},
    )
    assert out.returncode != 0
    assert "is not Python 3.11 to 3.14" in out.stderr and "Python 3.9.18" in out.stderr
    assert not (tmp_path / ".venv").exists()


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "airflow").exists(), reason="needs .venv (make setup)")
def test_airflow_env_configures_the_local_airflow_and_migrates_once(tmp_path):
    script = (
        "source scripts/airflow_env.sh >/dev/null 2>&1 || exit 1; "
        "python -c 'import json, os; print(json.dumps(dict(os.environ)))'"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env = {**clean, "LOCAL_DIR": str(tmp_path), "AIRFLOW_ADMIN_PASSWORD": "s3cret"}

    def source() -> tuple[dict, str]:
        out = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout), out.stderr

    seen, _ = source()
    home = tmp_path / "airflow"
    assert seen["AIRFLOW_HOME"] == str(home)
    assert seen["AIRFLOW__CORE__DAGS_FOLDER"] == str(ROOT / "dags")
    assert seen["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(ROOT / "plugins")
    assert seen["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert seen["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{home}/airflow.db"
    assert seen["PYTHONPATH"].split(":")[0] == str(ROOT)
    assert seen["PATH"].split(":")[0] == str(ROOT / ".venv" / "bin")
    assert (home / "airflow.db").is_file() and (home / ".migrated").is_file()
    passwords = Path(seen["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    assert json.loads(passwords.read_text()) == {"admin": "s3cret"}
    assert seen["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"

    stamp = (home / ".migrated").stat().st_mtime_ns
    db = (home / "airflow.db").stat().st_mtime_ns
    source()  # second time: no migration
    assert (home / ".migrated").stat().st_mtime_ns == stamp
    assert (home / "airflow.db").stat().st_mtime_ns == db

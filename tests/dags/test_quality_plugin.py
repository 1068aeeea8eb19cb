"""The Airflow plugin that shows the quality reports: it loads, and its page lists the warehouse's validations."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipelines.runs import open_run
from pipelines.warehouse import connect

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "quality_reports.py"


def _load_plugin():
    spec = importlib.util.spec_from_file_location("quality_reports", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.QualityReportsPlugin


def test_plugin_declares_an_app_and_a_menu_entry():
    from airflow.plugins_manager import AirflowPlugin

    plugin = _load_plugin()
    assert issubclass(plugin, AirflowPlugin)
    assert plugin.fastapi_apps[0]["url_prefix"] == "/quality-reports"
    assert plugin.external_views[0]["href"] == "/quality-reports/"


@pytest.mark.integration
def test_page_lists_validation_runs_with_dimensions(clean_warehouse, session_dir):
    from datetime import datetime, timedelta, timezone

    start = datetime(2026, 1, 1, 16, tzinfo=timezone.utc)
    run_id = open_run("population", start, start + timedelta(days=1), url=clean_warehouse)
    with connect(clean_warehouse) as conn:
        vid = conn.execute(
            "INSERT INTO quality.validation_run (run_id, suite, table_name, success, blocking_failed, warning_failed,"
            " evaluated) VALUES (%s, 'population.person', 'population.person', false, 1, 2, 3) RETURNING validation_id",
            (run_id,)).fetchone()[0]
        conn.execute(
            "INSERT INTO quality.expectation_result (validation_id, expectation_id, expectation_type, dimension,"
            " severity, success) VALUES (%s, 'a', 't', '一致性', 'blocking', false), (%s, 'b', 't', '完整性',"
            " 'warning', true), (%s, 'c', 't', '完整性', 'blocking', true)", (vid, vid, vid))
    client = TestClient(_load_plugin().fastapi_apps[0]["app"])
    page = client.get("/").text
    assert "阻断 BLOCKED" in page and "population.person" in page
    assert "一致性 0/1 · 完整性 2/2" in page
    assert f"files/quality/{run_id}/scorecard.html" in page

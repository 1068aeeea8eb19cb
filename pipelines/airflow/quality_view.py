"""The quality reports inside the Airflow UI: a small FastAPI app mounted by plugins/quality_reports.py.

``/quality-reports/`` lists every validated run (per suite: verdict, blocking and warning failures, the GB/T 36344
dimension scores) with links to each run's scorecard, GX Data Docs and the departments' discrepancy/quarantine
files, all served read-only from REPORTS_DIR. It shows counts and codes only, never personal values.
"""

from __future__ import annotations

from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from pipelines.settings import settings

_CSS = """body{font-family:"Noto Sans CJK SC","Microsoft YaHei",Arial,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f3f3f3}
.ok{color:#1a7f37;font-weight:bold}.bad{color:#c62828;font-weight:bold}"""


def runs_table(url=None) -> list[tuple]:
    from pipelines.warehouse import connect

    with connect(url) as conn:
        return conn.execute(
            """
            SELECT v.run_id, r.pipeline, (r.interval_start AT TIME ZONE 'Asia/Shanghai')::date, r.status, v.suite,
                   v.success, v.blocking_failed, v.warning_failed, v.evaluated,
                   coalesce((SELECT string_agg(d.dimension || ' ' || d.passed || '/' || d.total, ' · '
                                               ORDER BY d.dimension)
                             FROM (SELECT dimension, count(*) FILTER (WHERE success) AS passed, count(*) AS total
                                   FROM quality.expectation_result e WHERE e.validation_id = v.validation_id
                                   GROUP BY dimension) d), '')
            FROM quality.validation_run v JOIN audit.run r USING (run_id)
            ORDER BY v.run_id DESC, v.suite LIMIT 500
            """
        ).fetchall()


def render(rows: list[tuple]) -> str:
    body = "".join(
        f"<tr><td>{run_id}</td><td>{escape(pipeline)}</td><td>{day}</td><td>{escape(status)}</td>"
        f"<td>{escape(suite)}</td><td class={'ok' if ok else 'bad'}>{'通过 PASSED' if ok else '阻断 BLOCKED'}</td>"
        f"<td>{blocking}</td><td>{warning}</td><td>{evaluated}</td><td>{escape(dims)}</td>"
        f"<td><a href='files/quality/{run_id}/scorecard.html'>scorecard</a></td></tr>"
        for run_id, pipeline, day, status, suite, ok, blocking, warning, evaluated, dims in rows
    )
    return (
        f"<!doctype html><meta charset=utf-8><title>数据质量报告 Quality reports</title><style>{_CSS}</style>"
        "<h1>数据质量报告 · Quality reports</h1>"
        "<p><a href='files/data_docs/index.html'>Great Expectations Data Docs</a> · "
        "<a href='files/departments/'>部门比对与隔离文件 Department reports</a></p>"
        "<table><tr><th>run</th><th>pipeline</th><th>day</th><th>run status</th><th>suite</th><th>gate</th>"
        "<th>blocking failed</th><th>warnings</th><th>rules</th><th>GB/T 36344 dimensions (passed/total)</th>"
        f"<th></th></tr>{body}</table>"
    )


def create_app() -> FastAPI:
    app = FastAPI(title="Quality reports", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return render(runs_table())

    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    app.mount("/files", StaticFiles(directory=settings.reports_dir, html=True, check_dir=False), name="files")
    return app

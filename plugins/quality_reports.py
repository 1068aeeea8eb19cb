"""Airflow plugin: the data-quality reports (GB/T 36344 scorecards, GX Data Docs, department files) in the UI."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from pipelines.airflow.quality_view import create_app


class QualityReportsPlugin(AirflowPlugin):
    name = "quality_reports"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/quality-reports", "name": "Quality reports"}]
    external_views = [
        {
            "name": "数据质量 Quality reports",
            "href": "/quality-reports/",
            "destination": "nav",
            "category": "browse",
            "url_route": "quality-reports",
        }
    ]

"""Every DAG tag, from one list, so the Airflow UI's tag filter stays tidy."""

from __future__ import annotations

POPULATION = "实有人口库"
LEGAL_PERSON = "法人库"
SPATIAL = "空间地理库"
INGEST = "ingest"
QUALITY = "quality"
PUBLISH = "publish"
DAILY = "daily"

ALL = [POPULATION, LEGAL_PERSON, SPATIAL, INGEST, QUALITY, PUBLISH, DAILY]

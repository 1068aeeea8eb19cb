"""DAG integrity: every DAG imports without error, does nothing at parse time, and documents itself."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag(monkeypatch_module):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


@pytest.fixture(scope="module")
def monkeypatch_module():
    """Parse time must not touch the warehouse, the network or the registries: make each of them explode."""
    import httpx
    import psycopg

    import pipelines.registry

    mp = pytest.MonkeyPatch()

    def forbidden(*args, **kwargs):
        raise AssertionError("I/O at DAG parse time")

    mp.setattr(psycopg, "connect", forbidden)
    mp.setattr(httpx, "get", forbidden)
    mp.setattr(httpx, "Client", forbidden)
    mp.setattr(pipelines.registry, "load_sources", forbidden)
    mp.setattr(pipelines.registry, "load_authority", forbidden)
    yield mp
    mp.undo()


def test_every_dag_file_imports_without_error(dagbag):
    assert dagbag.import_errors == {}
    files = sorted(p.stem for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
    assert files, "no DAG files"
    # one DAG per file, file name = dag_id
    assert sorted(dagbag.dag_ids) == files


def test_every_dag_documents_itself(dagbag):
    from pipelines.airflow import tags

    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md and len(dag.doc_md) > 200, f"{dag_id}: doc_md missing or too short"
        for needed in ("Owner", "Re-run", "nterval"):
            assert needed in dag.doc_md, f"{dag_id}: doc_md does not say {needed!r}"
        assert dag.tags and set(dag.tags) <= set(tags.ALL), f"{dag_id}: tags must come from pipelines.airflow.tags"
        for task in dag.tasks:
            assert task.owner not in (None, "", "airflow"), f"{dag_id}.{task.task_id}: owner not set"


def test_population_dag_shape(dagbag):
    dag = dagbag.dags["population_daily"]
    upstream = {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}
    assert upstream == {
        "start_run": [],
        "list_sources": [],
        "extract": ["list_sources", "start_run"],
        "validate": ["extract", "start_run"],
        "reconcile": ["start_run", "validate"],
        "quality_gate": ["reconcile", "start_run"],
        "publish_golden": ["quality_gate", "start_run"],
    }
    assert dag.max_active_runs == 1
    assert [a.name for a in dag.get_task("publish_golden").outlets] == ["population.person"]
    # the extract task is mapped over the source registry at run time, not expanded at parse time
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    assert isinstance(dag.get_task("extract"), MappedOperator)

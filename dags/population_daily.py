"""实有人口库 daily: incremental ingest → validation and quarantine → reconciliation (一数一源) → quality gate."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, task

from pipelines.airflow import tags
from pipelines.airflow.assets import POPULATION_PERSON
from pipelines.settings import settings

DOC = """
### 实有人口库 · population_daily

**Owner:** 市大数据中心 data engineering, on behalf of the owning departments 市公安局 (户籍与居住登记, 居住证,
境外人员), 市卫生健康委员会 (出生/死亡), 市民政局 (婚姻), 市人力资源和社会保障局 (就业/社保), 市教育委员会 (学籍).

**What it does.** For its data interval (one day, Asia/Shanghai) it extracts each source of the source registry
(`config/population_sources.yaml`) — 前置库 tables by update-time watermark, file drops under
`landing/<dept>/<dataset>/<day>/`, and paged JSON APIs — into `staging`; checks identifiers and records
(公民身份号码 check digit, 15→18 upgrade, dates, GB/T 2260 divisions, sex/birth date vs ID) and quarantines what
breaks a hard rule with reason codes; reconciles identities into `population.person` under 一数一源 (the authority
registry `config/authority.yaml`), with lineage, SCD2 history, a review queue and discrepancy (比对) rows; then runs
the Great Expectations quality gate (GB/T 36344 dimensions). A blocking failure fails the run and the Asset is not
updated. On success it updates the Asset `population.person`.

**Interval semantics:** data-interval. A run reads exactly its window; re-running an interval leaves the tables as
one run did. Late rows (late files in old folders, rows updated later in a 前置库) are picked up by the next run.

**Re-run / backfill:** clear the run (or `airflow dags test population_daily <date>`); backfill with
`airflow backfill create --dag-id population_daily --from-date … --to-date …` — runs go one at a time
(`max_active_runs=1`) because each run's window starts at the previous watermark. Row accounting per run and source
is in `audit.row_accounting`; see docs/operations.md.
"""


@dag(
    dag_id="population_daily",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="Asia/Shanghai"),
    start_date=pendulum.instance(
        pendulum.datetime(settings.sim_start.year, settings.sim_start.month, settings.sim_start.day,
                          tz="Asia/Shanghai")
    ),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC,
    tags=[tags.POPULATION, tags.INGEST, tags.QUALITY, tags.DAILY],
    default_args={"owner": "population-data-team", "retries": 1, "retry_delay": timedelta(minutes=2)},
)
def population_daily():
    @task
    def start_run(data_interval_start=None, data_interval_end=None, dag_run=None) -> int:
        from pipelines.population import flow

        return flow.start(data_interval_start, data_interval_end, "population_daily", dag_run.run_id)

    @task
    def list_sources() -> list[str]:
        from pipelines.population import flow

        return flow.source_ids()

    @task(max_active_tis_per_dagrun=2, retries=2)
    def extract(source_id: str, etl_run_id: int, data_interval_start=None, data_interval_end=None) -> dict:
        from pipelines.population import flow

        return flow.extract(source_id, etl_run_id, data_interval_start, data_interval_end)

    @task
    def validate(etl_run_id: int, staged: list[dict], data_interval_end=None) -> dict:
        from pipelines.population import flow

        return flow.validate(etl_run_id, data_interval_end)

    @task
    def reconcile(etl_run_id: int, checked: dict) -> dict:
        from pipelines.population import flow

        return flow.reconcile(etl_run_id)

    @task(retries=0)
    def quality_gate(etl_run_id: int, accounting: dict) -> dict:
        from pipelines.population import flow

        return flow.quality_gate(etl_run_id)

    @task(outlets=[POPULATION_PERSON])
    def publish_golden(etl_run_id: int, gate: dict, outlet_events=None) -> dict:
        from pipelines.population import flow

        summary = flow.finish(etl_run_id)
        # the run travels with the Asset event, so the publication knows which run it releases
        outlet_events[POPULATION_PERSON].extra = {"run_id": etl_run_id}
        return summary

    etl_run_id = start_run()
    staged = extract.partial(etl_run_id=etl_run_id).expand(source_id=list_sources())
    checked = validate(etl_run_id, staged)
    accounting = reconcile(etl_run_id, checked)
    gate = quality_gate(etl_run_id, accounting)
    publish_golden(etl_run_id, gate)


population_daily()

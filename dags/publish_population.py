"""实有人口库 open data: privacy review, approval and versioned release of the approved subsets."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import dag, task

from pipelines.airflow import tags
from pipelines.airflow.assets import POPULATION_OPEN_DATA, POPULATION_PERSON

DOC = """
### 实有人口库 · publish_population (开放数据发布)

**Owner:** 市大数据中心 open-data team; provider of the datasets: 市公安局 and the other population departments.

**What it does.** Scheduled on the Asset `population.person` (a population run that passed its quality gate). For
every open dataset defined in `datasets/population/` that is due (every daily dataset; a weekly or monthly one
once per period of its `update_frequency`), one mapped `prepare_release` task each, it builds the rows from the golden tables, runs the automatic
privacy and confidentiality review (保密审查: no direct identifiers, small-cell suppression with complementary
suppression, k-anonymity for record-level data, a scan of every file for ID-number and phone patterns) and writes
a versioned release (CSV with BOM, XLSX, XML, JSON, manifest) that is not yet served.
- A release of a 无条件开放 dataset whose review passed cleanly is **approved automatically** and published.
- A 有条件开放 dataset, or any release whose review raised a warning, **waits for a person** in the Airflow UI
  (Required actions → `approve`), with the review report in front of them: Approve publishes, Reject does not.
- A release the review blocked is never published.
Publishing is atomic (table `publish.<code>`, the `current` symlink, the catalog and DCAT, a changelog line);
readers see the previous release until the new one is complete. Each published dataset updates its Asset
`publish.<code>` (through the alias `population.open_data`).

**Interval semantics:** "latest": it publishes the state of the golden tables as of the run that triggered it.

**Re-run / rollback:** re-running prepares a new release version (idempotent for the data); to return to the
previous release: `python -m pipelines publish rollback <dataset_code>`. See docs/publication.md.
"""


@dag(
    dag_id="publish_population",
    schedule=[POPULATION_PERSON],
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC,
    tags=[tags.POPULATION, tags.PUBLISH],
    default_args={"owner": "open-data-team", "retries": 0},
)
def publish_population():
    @task
    def source_runs(triggering_asset_events=None) -> list[int]:
        from pipelines.publish import dag_steps

        return dag_steps.runs_to_publish(triggering_asset_events)

    @task
    def dataset_codes(run_ids: list[int]) -> list[str]:
        from pipelines.publish import dag_steps

        return dag_steps.dataset_codes(run_ids)

    # one mapped task per dataset: the releases are prepared in parallel (as many at a time as the executor runs)
    @task(map_index_template="{{ dataset_code }}")
    def prepare_release(dataset_code: str, run_ids: list[int]) -> dict:
        from airflow.sdk import get_current_context

        from pipelines.publish import dag_steps

        get_current_context()["dataset_code"] = dataset_code  # the mapped task's label in the UI
        return dag_steps.prepare_one(dataset_code, run_ids)

    @task
    def publish_approved(prepared: list[dict]) -> list[str]:
        from pipelines.publish import dag_steps

        return dag_steps.publish_auto_approved(prepared)

    @task
    def approval_requests(prepared: list[dict]) -> list[dict]:
        from pipelines.publish import dag_steps

        return dag_steps.approval_requests(prepared)

    @task(trigger_rule="all_done")
    def apply_decisions(prepared: list[dict], ti=None) -> list[str]:
        from pipelines.publish import dag_steps

        pending = dag_steps.pending(prepared)
        decisions = [ti.xcom_pull(task_ids="approve", map_indexes=i) for i in range(len(pending))]
        return dag_steps.apply_decisions(pending, decisions)

    runs = source_runs()
    prepared = prepare_release.partial(run_ids=runs).expand(dataset_code=dataset_codes(runs))
    # one Human-in-the-loop request per release that needs a person (subject + body = the review report)
    approve = HITLOperator.partial(
        task_id="approve",
        options=["Approve", "Reject"],
        response_timeout=timedelta(days=7),
    ).expand_kwargs(approval_requests(prepared))

    @task(outlets=[POPULATION_OPEN_DATA], trigger_rule="all_done")
    def announce(auto: list[str], decided: list[str], outlet_events=None) -> list[str]:
        from pipelines.airflow.assets import open_data_asset

        published = sorted(set(auto or []) | set(decided or []))
        for code in published:
            outlet_events[POPULATION_OPEN_DATA].add(open_data_asset(code))
        return published

    auto = publish_approved(prepared)
    decided = apply_decisions(prepared)
    approve >> decided
    announce(auto, decided)


publish_population()

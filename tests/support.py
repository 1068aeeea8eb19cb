"""Helpers shared by the integration and end-to-end tests."""

from __future__ import annotations

from pipelines.warehouse import connect

SNAPSHOT_QUERIES = {
    "person": "SELECT * FROM population.person ORDER BY person_id",
    "history": "SELECT * FROM population.person_history ORDER BY person_id, version",
    "source_record": "SELECT * FROM population.source_record ORDER BY source_record_id",
    "xref": "SELECT * FROM population.person_xref ORDER BY source_id, source_key",
    "discrepancy": "SELECT * FROM population.discrepancy ORDER BY person_id, attribute, source_id",
    "review": "SELECT run_id, source_id, seq, reason, candidate_person_ids, evidence, status"
              " FROM population.review_queue ORDER BY 1, 2, 3",
    "quarantine": "SELECT run_id, source_id, seq, reasons, payload FROM quarantine.population_record ORDER BY 1, 2, 3",
    "duplicates": "SELECT * FROM staging.population_duplicate ORDER BY 1, 2, 3",
    "accounting": "SELECT * FROM audit.row_accounting ORDER BY 1, 2",
    "watermark": "SELECT source_id, high_watermark FROM audit.watermark ORDER BY 1",
}


def rows(url, query, *params):
    with connect(url) as conn:
        return conn.execute(query, params).fetchall()


def snapshot(url) -> dict[str, list]:
    """Everything a re-run must leave exactly as it was (surrogate ids included; times of receipt excluded)."""
    return {name: rows(url, q) for name, q in SNAPSHOT_QUERIES.items()}

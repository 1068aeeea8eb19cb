"""The per-run scorecard an owning department reads: JSON for machines, one small bilingual HTML page for people.

Written to ``<reports_dir>/quality/<run_id>/scorecard.{json,html}``: the verdict, passed/total per GB/T 36344
dimension, per suite, and every failed rule with its Chinese description and counts (never personal values).
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.quality.suites import DIMENSIONS

if TYPE_CHECKING:
    from pipelines.quality.gate import Failure, GateResult
    from pipelines.quality.suites import Suite

SEVERITY_LABEL = {"blocking": "阻断 blocking", "warning": "警告 warning"}

_CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",Arial,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.35em .7em;text-align:left}
th{background:#f3f3f3}.ok{color:#1a7f37;font-weight:bold}.bad{color:#c62828;font-weight:bold}
.warn{color:#b26a00;font-weight:bold}small{color:#666}
"""


def _rate(passed: int, total: int) -> str:
    return f"{100.0 * passed / total:.1f}%" if total else "—"


def write_scorecard(result: GateResult, suites: list[Suite]) -> tuple[Path, Path]:
    out = result.scorecard_json.parent
    out.mkdir(parents=True, exist_ok=True)
    data = result.to_dict()
    data["dimensions"] = {d: {"en": en, **result.scorecard[d]} for d, en in DIMENSIONS.items()}
    data["suite_files"] = {s.name: str(s.path) for s in suites}
    _atomic_write(result.scorecard_json, json.dumps(data, ensure_ascii=False, indent=2, default=str))
    _atomic_write(result.scorecard_html, _html(result))
    return result.scorecard_json, result.scorecard_html


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _failure_rows(failures: list[Failure]) -> str:
    if not failures:
        return "<p>无 None</p>"
    rows = "".join(
        f"<tr><td>{escape(f.suite)}</td><td><code>{escape(f.expectation)}</code></td><td>{escape(f.description)}</td>"
        f"<td>{escape(f.dimension)} {escape(DIMENSIONS[f.dimension])}</td><td>{escape(f.column or '')}</td>"
        f"<td>{escape(f.observed_text())}</td></tr>"
        for f in failures
    )
    return (
        "<table><tr><th>规则集 Suite</th><th>规则 Rule</th><th>说明 Description</th><th>维度 Dimension</th>"
        f"<th>字段 Column</th><th>观测 Observed</th></tr>{rows}</table>"
    )


def _html(result: GateResult) -> str:
    verdict = (
        '<span class="ok">通过 PASSED</span>' if result.passed
        else '<span class="bad">未通过 (阻断发布) FAILED — publication blocked</span>'
    )
    dims = "".join(
        f"<tr><td>{escape(d)}</td><td>{escape(en)}</td><td>{result.scorecard[d]['passed']} / "
        f"{result.scorecard[d]['total']}</td><td>{_rate(result.scorecard[d]['passed'], result.scorecard[d]['total'])}"
        "</td></tr>"
        for d, en in DIMENSIONS.items()
    )
    suites = "".join(
        f"<tr><td>{escape(s.suite)}</td><td>{escape(s.table)}</td>"
        f"<td class=\"{'ok' if s.success else 'bad'}\">{'通过 passed' if s.success else '未通过 failed'}</td>"
        f"<td>{s.evaluated}</td><td>{s.blocking_failed}</td><td>{s.warning_failed}</td><td>{s.seconds:.1f} s</td>"
        f"<td>{_link(s.data_docs_page, '数据文档 Data Docs')}</td></tr>"
        for s in result.suites
    )
    start = escape(str(result.parameters.get("run_interval_start")))
    end = escape(str(result.parameters.get("run_interval_end")))
    validated = escape(result.validated_at.isoformat(timespec="seconds"))
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>数据质量评分卡 Data-quality scorecard — run {result.run_id}</title><style>{_CSS}</style></head>
<body>
<h1>实有人口库 数据质量评分卡<br><small>Resident-population database — data-quality scorecard</small></h1>
<p>运行编号 Run: <b>{result.run_id}</b> · 数据区间 Interval: {start} — {end} · 校验时间 Validated: {validated}
 · 用时 Time: {result.seconds:.1f} s</p>
<p>结论 Verdict: {verdict}</p>
<h2>按质量维度 By dimension <small>(GB/T 36344-2018)</small></h2>
<table><tr><th>维度</th><th>Dimension</th><th>通过/总数 Passed/total</th><th>通过率 Rate</th></tr>{dims}</table>
<h2>规则集 Suites</h2>
<table><tr><th>规则集 Suite</th><th>表 Table</th><th>结果 Result</th><th>规则数 Rules</th><th>阻断失败 Blocking failed</th>
<th>警告 Warnings</th><th>用时 Time</th><th></th></tr>{suites}</table>
<h2 class="bad">阻断性问题 Blocking failures</h2>
{_failure_rows(result.blocking_failures)}
<h2 class="warn">警告 Warnings</h2>
{_failure_rows(result.warnings)}
<p><small>只含计数, 不含个人信息。Counts only; no personal data. {_link(result.data_docs_index, 'GX 数据文档 Data Docs')}</small></p>
</body></html>
"""


def _link(path: Path | str | None, label: str) -> str:
    if not path:
        return ""
    return f'<a href="{escape(Path(path).as_uri())}">{escape(label)}</a>'

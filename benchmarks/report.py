"""The report of one ``make bench``: every entry with the machine it came from, as JSON and Markdown.

``benchmarks/results/<YYYY-MM-DD>-<host>[-<suffix>].json`` holds the environment
(:func:`benchmarks.environment.describe`: device, host, date, versions), ``entries`` (each with the
``benchmark`` module it came from), ``benchmarks`` (per module: status, seconds, details) and
``failed`` (modules that did not finish); the ``.md`` file beside it holds :func:`markdown`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

TABLE_COLUMNS = ("benchmark", "what", "value", "baseline", "ratio", "goal", "met", "notes")
MET_TEXT = {True: "yes", False: "**no**", None: "n/a"}


def result_stem(report: Mapping, suffix: str = "") -> str:
    """``<YYYY-MM-DD>-<host>`` (``-<suffix>`` appended when given) from the report's date and host."""
    stem = f"{report['date'][:10]}-{report['host']}"
    return f"{stem}-{suffix}" if suffix else stem


def _cell(text: object) -> str:
    """A Markdown table cell: ``|`` escaped, newlines flattened."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _number(value: float, unit: str) -> str:
    return f"{value:.4g} {unit}".strip()


def table_rows(report: Mapping) -> list[tuple[str, ...]]:
    """One row per entry (columns :data:`TABLE_COLUMNS`), then one per failed module."""
    rows = []
    for entry in report["entries"]:
        goal = "none" if entry["goal"] is None else f"{entry['goal_op']} {entry['goal']:g}"
        rows.append(
            (
                entry["name"],
                entry["what"],
                _number(entry["value"], entry["unit"]),
                _number(entry["baseline"], entry["unit"]),
                f"{entry['ratio']:.3g}",
                goal,
                MET_TEXT[entry["goal_met"]],
                entry["notes"],
            )
        )
    for name in report["failed"]:
        status = report["benchmarks"][name]
        rows.append((name, "failed", "", "", "", "", MET_TEXT[False], status.get("error", "")))
    return rows


def markdown(report: Mapping) -> str:
    """The report as Markdown: a heading naming the device, host and date, the versions, the table."""
    versions = ", ".join(f"{name} {version}" for name, version in report["versions"].items())
    lines = [
        f"Benchmarks on {report['device']}, host {report['host']}, {report['date']}"
        + (" (--quick: tiny sizes, not comparable)" if report.get("quick") else ""),
        "",
        f"Versions: {versions}.",
        "",
        "| " + " | ".join(TABLE_COLUMNS) + " |",
        "|" + "---|" * len(TABLE_COLUMNS),
    ]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in table_rows(report)]
    return "\n".join(lines) + "\n"


def write_report(report: Mapping, results_dir: Path, suffix: str = "") -> tuple[Path, Path]:
    """Writes ``<results_dir>/<stem>.json`` and ``.md`` (:func:`result_stem`); returns both paths."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = result_stem(report, suffix)
    json_path, markdown_path = results_dir / f"{stem}.json", results_dir / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    markdown_path.write_text(markdown(report))
    return json_path, markdown_path

"""Benchmark entries (ratio, goal) and the report's Markdown table and files."""

from __future__ import annotations

import json

import pytest

from benchmarks.entries import ENTRY_FIELDS, make_entry, read_result, write_result
from benchmarks.report import TABLE_COLUMNS, markdown, result_stem, write_report


def test_an_entry_holds_the_ratio_and_whether_its_goal_is_met():
    entry = make_entry("input pipeline, x", "fed / in memory", 3.8, 4.0, "steps/s", goal=0.95)
    assert tuple(entry) == ENTRY_FIELDS
    assert (entry["ratio"], entry["goal_op"], entry["goal_met"]) == (0.95, ">=", True)
    assert make_entry("p50", "rest / in process", 2.0, 1.0, "ms", 1.3, "<=")["goal_met"] is False
    assert make_entry("p50", "rest / in process", 1.2, 1.0, "ms", 1.3, "<=")["goal_met"] is True
    no_goal = make_entry("efficiency", "a / b", 1.0, 3.0, "GFLOP/s", goal=None, notes="why none")
    assert (no_goal["ratio"], no_goal["goal_met"]) == (0.333, None)


@pytest.mark.parametrize(
    ("baseline", "goal_op", "message"),
    [(0.0, ">=", "baseline must be a positive number"), (1.0, ">", "goal_op must be one of")],
)
def test_an_entry_without_a_usable_baseline_or_goal_op_is_refused(baseline, goal_op, message):
    with pytest.raises(ValueError, match=f"entry 'x': {message}"):
        make_entry("x", "a / b", 1.0, baseline, "ms", 1.0, goal_op)


def test_a_result_file_round_trips_and_a_malformed_one_is_named(tmp_path):
    entry = make_entry("renderer", "a / b", 40.0, 20.0, "scenes/s", 1.0)
    write_result(tmp_path / "r.json", [entry], {"scenes": 5})
    assert read_result(tmp_path / "r.json") == ([entry], {"scenes": 5})
    (tmp_path / "bad.json").write_text(json.dumps({"entries": [{"name": "half"}]}))
    with pytest.raises(ValueError, match=r"bad\.json: entry 'half' lacks what, value"):
        read_result(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ValueError, match=r"list\.json: expected"):
        read_result(tmp_path / "list.json")


def report_with(entries: list[dict], failed: dict[str, str]) -> dict:
    return {
        "device": "CPU X (2 cores)",
        "host": "box.example",
        "date": "2026-01-02T03:04:05+00:00",
        "versions": {"python": "3.11", "git_commit": "abc"},
        "entries": entries,
        "benchmarks": {name: {"status": "failed", "error": error} for name, error in failed.items()},
        "failed": list(failed),
    }


def test_the_markdown_table_has_a_row_per_entry_and_per_failed_module(tmp_path):
    entries = [
        make_entry("serving REST p50", "a | b", 2.5, 2.0, "ms", 1.3, "<=", notes="over"),
        make_entry("efficiency", "c / d", 1.0, 2.0, "GFLOP/s", None, notes="no goal"),
    ]
    report = report_with(entries, {"bench_serving": "exit status 1: boom"})
    text = markdown(report)
    lines = text.splitlines()
    assert lines[0] == "Benchmarks on CPU X (2 cores), host box.example, 2026-01-02T03:04:05+00:00"
    header = lines.index("| " + " | ".join(TABLE_COLUMNS) + " |")
    rows = lines[header + 2 :]
    assert rows == [
        "| serving REST p50 | a \\| b | 2.5 ms | 2 ms | 1.25 | <= 1.3 | yes | over |",
        "| efficiency | c / d | 1 GFLOP/s | 2 GFLOP/s | 0.5 | none | n/a | no goal |",
        "| bench_serving | failed |  |  |  |  | **no** | exit status 1: boom |",
    ]
    json_path, markdown_path = write_report(report, tmp_path / "results")
    assert json_path.name == "2026-01-02-box.example.json" == f"{result_stem(report)}.json"
    assert json.loads(json_path.read_text()) == report
    assert markdown_path.read_text() == text
    assert write_report(report, tmp_path / "results", "gpu")[0].name == "2026-01-02-box.example-gpu.json"

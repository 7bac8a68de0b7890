"""What the entries' notes say limits a ratio, from the numbers the benchmarks measured."""

from __future__ import annotations

from benchmarks.bench_serving import batching_notes, serving_entries
from benchmarks.bench_training import pipeline_notes, preset_entries


def training_result(fed: float, in_memory: float, reader: float) -> dict:
    return {
        "steps_per_s_fed_by_reader": fed,
        "steps_per_s_in_memory": in_memory,
        "reader_alone_batches_per_s": reader,
        "reader_alone_unaugmented_batches_per_s": 2 * reader,
        "global_batch": 32,
        "train_gflop_per_image": 0.16,
        "achieved_gflop_per_s": 60.0,
    }


def test_the_input_pipeline_notes_name_the_reader_or_the_shared_cores():
    assert "is the limit on 2 cores" in pipeline_notes(training_result(4.0, 10.0, 6.0), cores=2)
    assert "share 2 cores" in pipeline_notes(training_result(4.0, 10.0, 30.0), cores=2)
    met = pipeline_notes(training_result(9.8, 10.0, 30.0), cores=2)
    assert met.startswith("reader alone 30 batches/s (60 without augmentation)")


def test_training_entries_hold_the_input_pipeline_goal_and_no_compute_goal():
    pipeline, compute = preset_entries(
        "x", training_result(4.0, 10.0, 6.0), {"size": 64, "gflop_per_s": 120.0}, 2
    )
    assert (pipeline["ratio"], pipeline["goal"], pipeline["goal_met"]) == (0.4, 0.95, False)
    assert (compute["ratio"], compute["goal"], compute["goal_met"]) == (0.5, None, None)


def serving_result(unbatched_rps: float, batched_rps: float, server_busy: float, mean_batch: float) -> dict:
    def load(rps: float, busy: float, per_call: float | None) -> dict:
        return {
            "requests_per_s": rps,
            "server_cores_busy": busy,
            "client_cores_busy": 0.2,
            "mean_requests_per_call": per_call,
            "server_cpu_ms_per_request": 5.0,
        }

    return {
        "throughput": {
            "unbatched": load(unbatched_rps, server_busy, 1.0),
            "batched": load(batched_rps, 1.0, mean_batch),
        },
        "rest_ms": {"p50": 9.0, "p99": 14.0},
        "in_process_ms": {"p50": 4.0, "p99": 7.0},
        "in_process_bytes_ms": {"p50": 4.5, "p99": 7.0},
        "status_ms": {"p50": 1.5, "p99": 3.0},
    }


def test_the_batching_notes_tell_full_cores_from_small_batches_from_python_work():
    assert batching_notes(serving_result(100, 110, 1.8, 8.0), cores=2).startswith("no spare parallelism")
    assert batching_notes(serving_result(100, 110, 0.5, 1.5), cores=2).startswith("batches stay small")
    assert "per-request Python work" in batching_notes(serving_result(100, 110, 0.5, 8.0), cores=2)
    assert batching_notes(serving_result(100, 200, 0.5, 8.0), cores=2).startswith(
        "unbatched, the server kept"
    )


def test_the_serving_entries_compare_rest_with_the_in_process_call():
    p50, p99, batching = serving_entries(serving_result(100, 160, 1.8, 8.0), cores=2)
    assert (p50["ratio"], p50["goal_op"], p50["goal_met"]) == (2.25, "<=", False)
    assert p50["notes"].startswith("REST adds 5 ms: 0.5 ms decoding the PNG")
    assert (p99["goal"], batching["ratio"], batching["goal_met"]) == (None, 1.6, True)

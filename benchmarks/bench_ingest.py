"""Ingest throughput: the Beam pipeline against the same per-record work in one process.

Renders ``--scenes`` synthetic scenes through the ingest stage (Beam
DirectRunner, ``--workers`` processes) and, separately, times the per-record
work (load, validate, resize, encode, gzip at Beam's default level) for
``--serial-records`` of them in a plain loop. The ratio ``parallel_efficiency`` = pipeline records/s /
(workers x serial records/s) is the share of the workers' time spent on records
rather than on Beam (start-up, shuffles, writing shards); 1.0 is the ideal.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import zlib
from pathlib import Path

from components.base import StageContext
from components.ingest.component import run
from components.ingest.pipeline_beam import encode_stored, to_stored
from components.ingest.validate import validate_record
from keras_depth.config import SyntheticRoomsConfig
from keras_depth.sources.registry import make_source
from pipeline.config import PipelineConfig


def serial_records_per_second(config, num_records: int) -> float:
    """Records/s of load -> validate -> resize -> encode -> gzip in this process."""
    source = make_source(config.source, config)
    keys = source.list_keys()[:num_records]
    started = time.monotonic()
    for key in keys:
        record = source.load(key)
        validate_record(record)
        zlib.compress(encode_stored(to_stored(record, config), source.name), zlib.Z_DEFAULT_COMPRESSION)
    return len(keys) / (time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="result JSON file")
    parser.add_argument("--scenes", type=int, default=200, help="synthetic scenes to ingest")
    parser.add_argument("--height", type=int, default=240, help="render and storage height (pixels)")
    parser.add_argument("--width", type=int, default=320, help="render and storage width (pixels)")
    parser.add_argument("--workers", type=int, default=2, help="DirectRunner worker processes")
    parser.add_argument("--serial-records", type=int, default=20, help="records timed in one process")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    config = PipelineConfig()
    ingest = config.ingest
    ingest.synthetic = SyntheticRoomsConfig(num_scenes=args.scenes, height=args.height, width=args.width)
    ingest.storage_height, ingest.storage_width = args.height, args.width
    ingest.direct_num_workers, ingest.direct_running_mode = args.workers, "multi_processing"
    serial = serial_records_per_second(ingest, args.serial_records)
    with tempfile.TemporaryDirectory() as temp:
        output_dir = Path(temp) / "out"
        output_dir.mkdir()
        context = StageContext(
            config=config,
            output_dir=output_dir,
            work_dir=Path(temp) / "work",
            inputs={},
            run_root=Path(temp),
            fingerprint="bench",
        )
        started = time.monotonic()
        counts = run(context)
        seconds = time.monotonic() - started
    records_per_second = counts["records_read"] / seconds
    result = {
        "scenes": args.scenes,
        "size": [args.height, args.width],
        "workers": args.workers,
        "seconds": round(seconds, 2),
        "records_per_second": round(records_per_second, 2),
        "serial_records_per_second": round(serial, 2),
        "parallel_efficiency": round(records_per_second / (args.workers * serial), 3),
        "counts": counts,
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The model server: ``python -m serving.server`` (console script ``keras-depth-serve``).

Flags use TF Serving's ``tensorflow_model_server`` names and defaults::

    python -m serving.server --rest_api_port=8501 --model_name=depth --model_base_path=/models/depth
    python -m serving.server --model_config_file=models.config --file_system_poll_wait_seconds=1
    python -m serving.server ... --enable_batching --max_batch_size=16 --batch_timeout_ms=5

Differences from TF Serving: REST only (no gRPC ``--port``); ``--host`` picks the bind address
(default 127.0.0.1, TF Serving binds all interfaces); batching is configured with
``--max_batch_size``/``--batch_timeout_ms`` instead of ``--batching_parameters_file``; requests are
bounded (TF Serving has none of these): ``--max_body_bytes``, ``--max_rows_per_request``,
``--max_pixels_per_image``, ``--max_pixels_per_request`` (413), ``--request_header_timeout_seconds``
and ``--request_body_timeout_seconds`` (408, connection closed), ``--max_connections`` (503),
``--keep_alive_timeout_seconds``; outputs listed in ``--opt_in_outputs`` (default ``depth_full``)
are computed only for requests naming them in ``output_filter``; the model config file is
read once at start (no ``--model_config_file_poll_wait_seconds``). SIGTERM/SIGINT stop accepting
connections, let running requests finish (up to ``GRACEFUL_SHUTDOWN_S``), stop polling, and then
the process ends with that signal's status (uvicorn re-raises it), e.g. 143 / -15 for SIGTERM.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import uvicorn

from serving.access_log import ACCESS_LOGGER
from serving.batching import BatchingOptions, InferenceRunner
from serving.connection_guard import ConnectionLimits, GuardedH11Protocol
from serving.metrics import Metrics
from serving.model_config import ModelConfig, ModelConfigError, is_valid_model_name, load_model_config
from serving.model_registry import ModelRegistry
from serving.request_limits import RequestLimits
from serving.rest_api import ApiOptions, create_app

DEFAULT_REST_API_PORT = 8501
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MODEL_NAME = "default"  # TF Serving's --model_name default
DEFAULT_POLL_WAIT_S = 1.0
DEFAULT_KEEP_ALIVE_TIMEOUT_S = 5.0  # uvicorn's default
WORKER_THREADS = max(4, os.cpu_count() or 1)
GRACEFUL_SHUTDOWN_S = 30
SHUTDOWN_MESSAGE = "Model server stopped: polling ended, worker pool drained"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}

logger = logging.getLogger(__name__)


def _bool_flag(text: str) -> bool:
    """TF Serving style boolean flag values (``--enable_batching=true``)."""
    lowered = text.lower()
    if lowered not in _TRUE | _FALSE:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return lowered in _TRUE


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _name_list(text: str) -> tuple[str, ...]:
    """A comma-separated list of names ("" for none)."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.server",
        description="TF Serving-compatible REST model server for SavedModels.",
    )
    parser.add_argument(
        "--rest_api_port", type=int, default=DEFAULT_REST_API_PORT, help="HTTP port (default 8501)."
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="Bind address (default 127.0.0.1; 0.0.0.0 for all interfaces)."
    )
    parser.add_argument(
        "--model_name",
        default=None,
        help=f"Name of the single served model (default {DEFAULT_MODEL_NAME!r}).",
    )
    parser.add_argument(
        "--model_base_path", default=None, help="Directory of <integer version>/saved_model.pb."
    )
    parser.add_argument(
        "--model_config_file",
        default=None,
        help="ModelServerConfig text proto (instead of --model_name/--model_base_path).",
    )
    parser.add_argument(
        "--file_system_poll_wait_seconds",
        type=float,
        default=DEFAULT_POLL_WAIT_S,
        help="Seconds between scans for new/removed versions (0 disables polling).",
    )
    limits = parser.add_argument_group("request limits (HTTP 413 when exceeded, 408/503 for connections)")
    limits.add_argument(
        "--max_body_bytes",
        type=_positive_int,
        default=ApiOptions.max_body_bytes,
        help=f"Largest request body (default {ApiOptions.max_body_bytes}); larger get HTTP 413.",
    )
    limits.add_argument(
        "--max_rows_per_request",
        type=_positive_int,
        default=RequestLimits.max_rows_per_request,
        help=f"Most examples (batch rows) in one predict request (default {RequestLimits.max_rows_per_request}).",
    )
    limits.add_argument(
        "--max_pixels_per_image",
        type=_positive_int,
        default=RequestLimits.max_pixels_per_image,
        help="Most pixels in one example, read from an encoded image's header before it is decoded, "
        f"or H*W of an [N, H, W, C] float input (default {RequestLimits.max_pixels_per_image} = 4096x4096).",
    )
    limits.add_argument(
        "--max_pixels_per_request",
        type=_positive_int,
        default=RequestLimits.max_pixels_per_request,
        help=f"Most pixels of all examples of one request (default {RequestLimits.max_pixels_per_request}).",
    )
    limits.add_argument(
        "--max_connections",
        type=_positive_int,
        default=ConnectionLimits.max_connections,
        help=f"Open connections served at once; requests on further ones get HTTP 503 "
        f"(default {ConnectionLimits.max_connections}).",
    )
    limits.add_argument(
        "--request_header_timeout_seconds",
        type=_positive_float,
        default=ConnectionLimits.header_timeout_s,
        help="Seconds a connection may take to send a request's headers, from connecting or from the "
        f"previous response; then it is closed (default {ConnectionLimits.header_timeout_s:g}).",
    )
    limits.add_argument(
        "--request_body_timeout_seconds",
        type=_positive_float,
        default=ApiOptions.body_timeout_s,
        help="Seconds to receive a predict body after its headers; then HTTP 408 and the connection "
        f"is closed (default {ApiOptions.body_timeout_s:g}).",
    )
    limits.add_argument(
        "--keep_alive_timeout_seconds",
        type=_positive_float,
        default=DEFAULT_KEEP_ALIVE_TIMEOUT_S,
        help=f"Seconds an idle keep-alive connection stays open (default {DEFAULT_KEEP_ALIVE_TIMEOUT_S:g}).",
    )
    parser.add_argument(
        "--opt_in_outputs",
        type=_name_list,
        default=ApiOptions.opt_in_outputs,
        help="Comma-separated outputs computed and returned only when a predict request names them in "
        f"'output_filter' (default {','.join(ApiOptions.opt_in_outputs)}; '' for none).",
    )
    parser.add_argument(
        "--enable_batching",
        type=_bool_flag,
        nargs="?",
        const=True,
        default=False,
        help="Merge concurrent predict requests.",
    )
    parser.add_argument(
        "--max_batch_size",
        type=_positive_int,
        default=BatchingOptions.max_batch_size,
        help="Rows per merged call.",
    )
    parser.add_argument(
        "--batch_timeout_ms",
        type=float,
        default=BatchingOptions.batch_timeout_ms,
        help="Longest wait for a batch to fill, in ms.",
    )
    return parser


def model_configs_from_args(args: argparse.Namespace) -> list[ModelConfig]:
    """The served models: from ``--model_config_file``, or one from ``--model_name``/``--model_base_path``.

    Raises:
        ModelConfigError: On conflicting or missing flags, or an invalid config file.
    """
    if args.model_config_file:
        if args.model_base_path or args.model_name:
            raise ModelConfigError(
                "give either --model_config_file or --model_name/--model_base_path, not both"
            )
        return load_model_config(args.model_config_file)
    if not args.model_base_path:
        raise ModelConfigError("--model_base_path (or --model_config_file) is required")
    name = args.model_name or DEFAULT_MODEL_NAME
    if not is_valid_model_name(name):
        raise ModelConfigError(f"--model_name {name!r}: use letters, digits and _.- (no '..', '/' or ':')")
    return [ModelConfig(name=name, base_path=str(Path(args.model_base_path).absolute()))]


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    access = logging.getLogger(ACCESS_LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.propagate = False


def main(argv: list[str] | None = None) -> int:
    """Runs the server until SIGTERM/SIGINT.

    Returns:
        0 when the server stops without a signal; after SIGTERM/SIGINT the process ends with the
        signal's status instead. Invalid flags or model config exit with 2.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configs = model_configs_from_args(args)
    except ModelConfigError as error:
        parser.error(str(error))
    _configure_logging()
    registry = ModelRegistry(configs)
    registry.refresh()
    registry.start_polling(args.file_system_poll_wait_seconds)
    metrics = Metrics()
    batching = BatchingOptions(args.max_batch_size, args.batch_timeout_ms) if args.enable_batching else None
    executor = ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="inference")

    def shutdown() -> None:
        registry.stop()
        executor.shutdown(wait=True, cancel_futures=True)
        logger.info("%s", SHUTDOWN_MESSAGE)

    runner = InferenceRunner(executor, metrics, batching)
    options = ApiOptions(
        max_body_bytes=args.max_body_bytes,
        body_timeout_s=args.request_body_timeout_seconds,
        limits=RequestLimits(
            args.max_rows_per_request, args.max_pixels_per_image, args.max_pixels_per_request
        ),
        opt_in_outputs=args.opt_in_outputs,
    )
    connection_limits = ConnectionLimits(args.max_connections, args.request_header_timeout_seconds)
    app = create_app(registry, runner, metrics, executor, options, on_shutdown=shutdown)
    logger.info(
        "Serving %s on http://%s:%d (batching: %s)",
        ", ".join(registry.model_names()),
        args.host,
        args.rest_api_port,
        batching,
    )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.rest_api_port,
        access_log=False,
        http=functools.partial(GuardedH11Protocol, limits=connection_limits),
        timeout_keep_alive=args.keep_alive_timeout_seconds,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        log_config=None,
    )
    try:
        uvicorn.Server(config).run()
    finally:  # idempotent; covers a server that failed to start (e.g. port in use)
        shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

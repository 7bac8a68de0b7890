"""Running signatures off the event loop, with optional server-side batching.

Without batching every request is one signature call on a worker thread. With batching,
concurrent requests for the same loaded version, signature and requested outputs whose inputs
have the same dtypes and per-example shapes are concatenated along the batch axis, run once, and the outputs are split
back by row counts. A batch is dispatched when it reaches ``max_batch_size`` rows or
``batch_timeout_ms`` after its first request arrived, whichever comes first.

Encoded images (string inputs) are merged only when their headers report one image size, since a
bytes signature decodes a batch into a single [N, H, W, 3] tensor. If a merged call fails (e.g. one
request carries bytes that are not an image) or returns outputs without the shared batch axis,
each request is re-run on its own so that errors reach only the request that caused them.

This is a simplification of TF Serving's ``--enable_batching`` with a batching parameters file:
one queue per (version, signature, shape) key, no padding, no ``allowed_batch_sizes``, and
``num_batch_threads`` is the size of the shared worker pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from serving.errors import ServingError
from serving.metrics import Metrics
from serving.request_limits import image_size
from serving.servable import Servable

MILLISECONDS = 1e-3


@dataclass(frozen=True)
class BatchingOptions:
    """Server-side batching parameters.

    Attributes:
        max_batch_size: Most rows (examples) merged into one call.
        batch_timeout_ms: Longest a request waits for others to join its batch, in milliseconds.
    """

    max_batch_size: int = 32
    batch_timeout_ms: float = 5.0


@dataclass
class _Request:
    inputs: Mapping[str, np.ndarray]
    rows: int
    future: asyncio.Future


@dataclass
class _OpenBatch:
    servable: Servable
    signature_name: str
    output_names: tuple[str, ...] | None
    requests: list[_Request] = field(default_factory=list)
    rows: int = 0
    timer: asyncio.TimerHandle | None = None


def _rows(inputs: Mapping[str, np.ndarray]) -> int | None:
    """The shared batch size of the inputs, or None when they have none."""
    sizes = {array.shape[0] if array.ndim else None for array in inputs.values()}
    return sizes.pop() if len(sizes) == 1 and None not in sizes else None


def _image_size(encoded: bytes) -> tuple[int, int] | None:
    """(width, height) read from an encoded image's header, or None when it is not a readable image."""
    try:
        return image_size(encoded)
    except ServingError:
        return None


def _shape_key(name: str, array: np.ndarray) -> tuple | None:
    if array.dtype != object:
        return (name, array.dtype.str, array.shape[1:])
    sizes = {_image_size(item) for item in array.reshape(-1)}
    if len(sizes) != 1 or None in sizes:
        return None
    return (name, "encoded-image", array.shape[1:], sizes.pop())


def _split(outputs: Mapping[str, np.ndarray], rows: list[int]) -> list[dict[str, np.ndarray]]:
    total = sum(rows)
    if any(np.ndim(array) == 0 or np.shape(array)[0] != total for array in outputs.values()):
        raise ValueError("outputs do not share the batch axis")
    offsets = np.cumsum([0, *rows])
    return [
        {name: array[start:stop] for name, array in outputs.items()}
        for start, stop in zip(offsets[:-1], offsets[1:], strict=True)
    ]


def _run_batch(batch: _OpenBatch) -> list[dict | ServingError]:
    """Runs merged requests (blocking); per-request results or errors, in order."""
    servable, signature_name, output_names = batch.servable, batch.signature_name, batch.output_names
    requests = batch.requests
    if len(requests) > 1:
        names = list(requests[0].inputs)
        merged = {name: np.concatenate([request.inputs[name] for request in requests]) for name in names}
        try:
            outputs = servable.run(signature_name, merged, output_names)
            return _split(outputs, [request.rows for request in requests])
        except (ServingError, ValueError):
            pass  # fall back to one call per request so errors reach only their own request
    results: list[dict | ServingError] = []
    for request in requests:
        try:
            results.append(servable.run(signature_name, request.inputs, output_names))
        except ServingError as error:
            results.append(error)
    return results


class InferenceRunner:
    """Runs signature calls on a worker pool, batching concurrent requests when enabled.

    Must be used from one event loop (all batching state lives on it).

    Args:
        executor: Worker pool for the blocking TensorFlow calls.
        metrics: Receives one observation per dispatched batch (a request run alone is a batch of
            one) with the number of requests it served.
        batching: Batching parameters, or None to run each request on its own.
    """

    def __init__(self, executor: Executor, metrics: Metrics, batching: BatchingOptions | None = None):
        self._executor = executor
        self._metrics = metrics
        self._batching = batching
        self._open: dict[tuple, _OpenBatch] = {}
        self._tasks: set[asyncio.Task] = set()

    async def run(
        self,
        servable: Servable,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        output_names: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """The outputs of one request (see ``Servable.run``); raises its ``ServingError``."""
        loop = asyncio.get_running_loop()
        wanted = tuple(output_names) if output_names is not None else None
        if self._batching is not None:
            rows = _rows(inputs)
            key = self._batch_key(servable, signature_name, wanted, inputs) if rows else None
            if key is not None and rows < self._batching.max_batch_size:
                group = _OpenBatch(servable, signature_name, wanted)
                return await self._enqueue(key, group, _Request(inputs, rows, loop.create_future()))
        try:
            return await loop.run_in_executor(self._executor, servable.run, signature_name, inputs, wanted)
        finally:
            self._metrics.observe_batch(servable.name, signature_name, requests=1)

    @staticmethod
    def _batch_key(
        servable: Servable,
        signature_name: str,
        output_names: tuple[str, ...] | None,
        inputs: Mapping[str, np.ndarray],
    ) -> tuple | None:
        shapes = tuple(_shape_key(name, inputs[name]) for name in sorted(inputs))
        return None if None in shapes else (id(servable), signature_name, output_names, shapes)

    async def _enqueue(self, key: tuple, new_batch: _OpenBatch, request: _Request) -> dict[str, np.ndarray]:
        """Adds ``request`` to the open batch of ``key``, opening ``new_batch`` when there is none."""
        options = self._batching
        batch = self._open.get(key)
        if batch is not None and batch.rows + request.rows > options.max_batch_size:
            self._dispatch(key)
            batch = None
        if batch is None:
            batch = new_batch
            batch.timer = asyncio.get_running_loop().call_later(
                options.batch_timeout_ms * MILLISECONDS, self._dispatch, key
            )
            self._open[key] = batch
        batch.requests.append(request)
        batch.rows += request.rows
        if batch.rows >= options.max_batch_size:
            self._dispatch(key)
        return await request.future

    def _dispatch(self, key: tuple) -> None:
        batch = self._open.pop(key, None)
        if batch is None:
            return
        batch.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._execute(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, batch: _OpenBatch) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._executor, _run_batch, batch)
        except Exception as error:  # an unexpected failure must still answer every waiting request
            results = [error] * len(batch.requests)
        self._metrics.observe_batch(batch.servable.name, batch.signature_name, requests=len(batch.requests))
        for request, result in zip(batch.requests, results, strict=True):
            if request.future.done():
                continue
            if isinstance(result, Exception):
                request.future.set_exception(result)
            else:
                request.future.set_result(result)

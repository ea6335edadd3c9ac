"""Dask set-up and chunking: where feature work runs. Knows no formulas.

``TECHNIC_DASK_ADDRESS`` connects to an existing scheduler; unset → a ``LocalCluster`` of
worker processes (one per core by default, one thread each: the numba kernels release the GIL
but the SQL reads and pandas glue do not). Tasks receive a symbol chunk and a date range and
read their own bars, so no large frame passes through the scheduler.

GPU routing: :func:`run_chunks` with ``gpu=True`` sends every chunk to the workers that
declare the Dask resource ``GPU`` (``dask worker --resources "GPU=1"``), through
``client.submit(..., resources={"GPU": 1})`` (explicit per task: annotations are dropped by
some wrappers), and the chunk function computes with ``device="gpu"``. The cluster is
checked first, since a task asking for a resource that no worker has waits forever: with no
GPU worker the chunks run on the CPU workers with ``device="cpu"`` after one warning. On the
worker, :func:`resolve_device` falls back to the CPU kernels (one warning per process) when
the worker declared a GPU but numba.cuda finds none.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from technic.config import Settings, get_settings

log = logging.getLogger(__name__)

#: The Dask worker resource that marks a worker with a GPU.
GPU_RESOURCE = "GPU"

_cuda_missing_warned = False


def chunked(items: Sequence[str], size: int) -> list[list[str]]:
    """Split ``items`` into consecutive chunks of at most ``size`` (``size`` ≥ 1).

    Raises:
        ValueError: ``size < 1``.
    """
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def chunk_size_for(client: Any, n_symbols: int, chunk_size: int) -> int:
    """Symbols per task: ``chunk_size``, or with a client smaller, so that each worker gets
    at least two tasks (every worker busy, a slow chunk never alone); ≥ 1.

    Args:
        client: a ``distributed.Client``, or None (chunks run in this process).
        n_symbols: symbols to split.
        chunk_size: the largest chunk (``TECHNIC_CHUNK_SIZE``).
    """
    if client is None:
        return chunk_size
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    return max(1, min(chunk_size, -(-n_symbols // (2 * workers))))


@contextmanager
def dask_client(settings: Settings | None = None) -> Iterator:
    """A ``distributed.Client``: to ``TECHNIC_DASK_ADDRESS`` or to a new ``LocalCluster``.

    The local cluster (and the client) are closed on exit; an external cluster is left
    running. The local cluster serves its dashboard at ``TECHNIC_DASK_DASHBOARD`` (default
    loopback, a free port; :func:`dashboard_link`).

    Raises:
        OSError: the scheduler at ``TECHNIC_DASK_ADDRESS`` cannot be reached (timeout 10 s).
    """
    from distributed import Client, LocalCluster

    s = settings or get_settings()
    if s.dask_address:
        client = Client(s.dask_address, timeout="10s")
        try:
            yield client
        finally:
            client.close()
        return
    n = s.dask_workers or max(1, os.cpu_count() or 1)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=s.dask_dashboard, silence_logs=logging.WARNING)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def dashboard_link(client: Any) -> str | None:
    """The URL of the Dask dashboard of ``client``'s scheduler (its status page, e.g.
    ``http://127.0.0.1:8787/status``), or None when the scheduler has no HTTP server.

    A scheduler without bokeh (a dependency of technic, ``dask[diagnostics]``) or started
    with the dashboard off still has an HTTP server; its link then answers 404."""
    try:
        services = client.scheduler_info().get("services", {})
    except Exception:  # noqa: BLE001 - no link is not an error
        return None
    if "dashboard" not in services:
        return None
    return client.dashboard_link


def gpu_workers(client: Any) -> list[str]:
    """Addresses of the workers that declare the ``GPU`` resource (``>= 1``), sorted.

    Args:
        client: a connected ``distributed.Client``.

    Returns:
        Worker addresses (``tcp://host:port``); empty when no worker has a GPU.
    """
    return sorted(addr for addr, w in _workers(client).items() if _has_gpu(w))


def _workers(client: Any) -> dict[str, dict]:
    return client.scheduler_info(n_workers=-1).get("workers", {})


def _has_gpu(worker_info: dict) -> bool:
    return float((worker_info.get("resources") or {}).get(GPU_RESOURCE, 0)) >= 1


def cuda_available() -> bool:
    """Whether this process can run the numba.cuda kernels (a CUDA device, or the simulator).

    Imports numba.cuda only when asked, so CPU-only processes never load it.
    """
    try:
        from technic.indicators.gpu import is_available
    except Exception:  # noqa: BLE001 - a broken CUDA install is "no GPU"
        return False
    return is_available()


def resolve_device(device: str, probe: Callable[[], bool] | None = None) -> str:
    """The device a chunk really computes on: ``"gpu"`` only when asked and usable.

    Args:
        device: ``"cpu"`` or ``"gpu"`` (what the planner asked for).
        probe: returns whether a GPU is usable here (default :func:`cuda_available`;
            injectable for tests).

    Returns:
        ``"gpu"`` or ``"cpu"``. A ``"gpu"`` request in a process without a usable GPU logs
        one warning per process and returns ``"cpu"``.

    Raises:
        ValueError: ``device`` is neither ``"cpu"`` nor ``"gpu"``.
    """
    global _cuda_missing_warned
    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    if device == "cpu":
        return "cpu"
    if (probe or cuda_available)():
        return "gpu"
    if not _cuda_missing_warned:
        _cuda_missing_warned = True
        log.warning("GPU requested but numba.cuda finds no usable device in this process; "
                    "computing on the CPU kernels")
    return "cpu"


def run_chunks(client: Any, fn: Callable[..., Any], args_list: Sequence[tuple],
               on_chunk_done: Callable[[int, int], None] | None = None, *,
               gpu: bool = False) -> list:
    """Run ``fn(*args)`` for every ``args`` of ``args_list``, on Dask or in this process.

    Args:
        client: a ``distributed.Client``, or ``None`` to run every chunk here, in order.
        fn: the chunk function (must be importable by the workers). With ``gpu=True`` it is
            called as ``fn(*args, device=...)`` and must accept that keyword.
        args_list: one positional-argument tuple per chunk.
        on_chunk_done: called as ``(done, total)`` after each chunk (progress bars).
        gpu: route the chunks to the GPU. With a client: when some worker declares the
            ``GPU`` resource every chunk is submitted with ``resources={"GPU": 1}`` (so it
            runs only on such workers) and ``device="gpu"``; otherwise ONE warning, and the
            chunks run on the CPU workers with ``device="cpu"`` (never a wait for a resource
            that no worker has). Without a client: ``device="gpu"`` when this process has a
            usable GPU, else ``"cpu"`` with one warning.

    Returns:
        The chunk results, in the order of ``args_list``.

    Raises:
        Whatever a chunk raised (the first one met while collecting).
    """
    total = len(args_list)
    kwargs: dict[str, Any] = {}
    resources = None
    if gpu:
        if client is None:
            kwargs["device"] = resolve_device("gpu")
        elif gpu_workers(client):
            kwargs["device"] = "gpu"
            resources = {GPU_RESOURCE: 1}
        else:
            log.warning("GPU requested but no Dask worker declares the %r resource; running "
                        "%d chunk(s) on the CPU workers", GPU_RESOURCE, total)
            kwargs["device"] = "cpu"
    if client is None:
        results = []
        for i, args in enumerate(args_list):
            results.append(fn(*args, **kwargs))
            if on_chunk_done:
                on_chunk_done(i + 1, total)
        return results
    from distributed import as_completed

    futures = [client.submit(fn, *args, pure=False, resources=resources, **kwargs)
               for args in args_list]
    index = {f.key: i for i, f in enumerate(futures)}
    out: list[Any] = [None] * total
    for done, fut in enumerate(as_completed(futures), start=1):
        out[index[fut.key]] = fut.result()
        if on_chunk_done:
            on_chunk_done(done, total)
    return out


def window_home(client: Any) -> str:
    """The worker an incremental refresh runs on, so that its bar window (kept in that
    worker's process cache, :mod:`technic.incremental`) is still there next time: the first
    worker by address, preferring workers without the ``GPU`` resource.

    Raises:
        RuntimeError: the cluster has no worker.
    """
    workers = _workers(client)
    if not workers:
        raise RuntimeError("the Dask cluster has no worker")
    return min(workers, key=lambda a: (_has_gpu(workers[a]), a))

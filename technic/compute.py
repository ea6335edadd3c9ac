"""Dask set-up and chunking: where feature work runs. Knows no formulas.

``TECHNIC_DASK_ADDRESS`` connects to an existing scheduler; unset → a ``LocalCluster`` of
worker processes (one per core by default, one thread each: the numba kernels release the GIL
but the SQL reads and pandas glue do not). Tasks receive a symbol chunk and a date range and
read their own bars, so no large frame passes through the scheduler.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from technic.config import Settings, get_settings

log = logging.getLogger(__name__)


def chunked(items: Sequence[str], size: int) -> list[list[str]]:
    """Split ``items`` into consecutive chunks of at most ``size`` (``size`` ≥ 1).

    Raises:
        ValueError: ``size < 1``.
    """
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


@contextmanager
def dask_client(settings: Settings | None = None) -> Iterator:
    """A ``distributed.Client``: to ``TECHNIC_DASK_ADDRESS`` or to a new ``LocalCluster``.

    The local cluster (and the client) are closed on exit; an external cluster is left
    running.

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
                           dashboard_address=None, silence_logs=logging.WARNING)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()

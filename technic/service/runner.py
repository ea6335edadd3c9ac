"""Scans started over HTTP: each runs in a worker thread, independent of any client, and
records its progress events for the Server-Sent Events streams that follow it.

A client that disconnects only stops reading; the scan goes on and is stored as any other.
The process keeps the events and ranked rows of its last :data:`KEEP_RUNS` runs; streams of
older runs, or of runs made by other processes (the CLI, a flow), are served from the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache

from technic.jobs.scan import ScanParams, run_scan, start_scan
from technic.store.db import DatabaseTarget, describe_database_error, first_line

log = logging.getLogger(__name__)

#: The stages :func:`technic.jobs.scan.run_scan` reports, in order (progress ``index``/``of``).
STAGES: tuple[str, ...] = ("read_features", "filter_score_rank", "regime", "alpha",
                           "write_results")
#: Runs whose events and rows this process keeps in memory.
KEEP_RUNS = 64


@dataclass
class RunState:
    """What a stream of one HTTP-started run replays: its events so far, and once it is
    over, its status, summary (``as_of, counts, timings_s``) and ranked rows (the
    ``technic scan --json`` row shape, rank order)."""

    run_id: int
    started: float = field(default_factory=time.perf_counter)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status: str = "running"
    summary: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, event: str, data: dict[str, Any]) -> None:
        """Append one event (thread-safe)."""
        with self._lock:
            self.events.append((event, data))

    def since(self, i: int) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
        """Events from index ``i`` on, and whether the run is over (then no more follow)."""
        with self._lock:
            return self.events[i:], self.status != "running"


class ScanRunner:
    """Runs scans in a small thread pool (``workers`` at a time; more wait their turn with
    their run row already ``running``).

    Args:
        target: the store.
        workers: scans that run at once (≥ 1).
        on_finished: called with the run id when a run is over (ok or failed), from the
            worker thread (cache invalidation).
    """

    def __init__(self, target: DatabaseTarget, workers: int = 2,
                 on_finished: Callable[[int], None] | None = None) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.target = target
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="technic-scan")
        self._runs: LRUCache[int, RunState] = LRUCache(maxsize=KEEP_RUNS)
        self._lock = threading.Lock()
        self._on_finished = on_finished

    def submit(self, params: ScanParams) -> int:
        """Store the run row (status ``running``) and queue the scan; return its run id.

        Raises:
            Whatever storing the run row raises (database errors).
        """
        run_id = start_scan(self.target, params)
        state = RunState(run_id)
        state.add("progress", {"stage": "queued", "index": 0, "of": len(STAGES),
                               "elapsed_s": 0.0})
        with self._lock:
            self._runs[run_id] = state
        self._pool.submit(self._run, state, params)
        return run_id

    def get(self, run_id: int) -> RunState | None:
        """The state of a run this process started (and still keeps), else None."""
        with self._lock:
            return self._runs.get(run_id)

    def _run(self, state: RunState, params: ScanParams) -> None:
        def on_stage(stage: str) -> None:
            state.add("progress", {
                "stage": stage, "index": STAGES.index(stage) + 1 if stage in STAGES else None,
                "of": len(STAGES), "elapsed_s": round(time.perf_counter() - state.started, 4)})

        summary: dict[str, Any] = {}
        rows: list[dict[str, Any]] = []
        error = None
        try:
            outcome = run_scan(self.target, params, on_stage=on_stage, run_id=state.run_id)
        except Exception as e:
            error = describe_database_error(e) or f"{type(e).__name__}: {first_line(e)}"
            log.warning("scan run %d failed: %s", state.run_id, error)
        else:
            summary = outcome.to_json(max(1, len(outcome.results)))
            rows = summary.pop("results") if len(outcome.results) else []
        # the run is stored: caches forget what it replaces before any stream says "done"
        if self._on_finished is not None:
            try:
                self._on_finished(state.run_id)
            except Exception:  # never let a callback hide the run's own outcome
                log.exception("scan run %d: on_finished failed", state.run_id)
        with state._lock:
            state.summary, state.rows, state.error = summary, rows, error
            state.status = "failed" if error else "ok"

    def shutdown(self) -> None:
        """Let queued and running scans finish (they are stored), then stop the threads."""
        self._pool.shutdown(wait=True)

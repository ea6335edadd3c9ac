"""Failures and concurrency: a killed Dask worker, concurrent scans."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from technic.cache import FrameCache
from technic.config import Settings
from technic.jobs.scan import ScanParams, run_scan
from technic.universe import UniverseRules


def test_killed_worker_mid_refresh_still_gives_complete_results(demo_target):
    from technic.compute import dask_client
    from technic.jobs.refresh import refresh_features

    _, expected = refresh_features(demo_target, chunk_size=100, write=False)
    with dask_client(Settings(dask_workers=2)) as client:
        pids = list(client.run(os.getpid).values())
        killed = []

        def kill_one(done: int, total: int) -> None:
            if done == 1 and not killed:  # the first chunk is back: kill a worker mid-run
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

        report, rows = refresh_features(demo_target, chunk_size=100, client=client,
                                        on_chunk_done=kill_one, write=False)
    assert killed, "no worker was killed"
    assert report.chunks >= 4
    pd.testing.assert_frame_equal(rows, expected, check_exact=True)


def test_concurrent_scans_equal_the_same_scans_alone(demo_target):
    params = [ScanParams(top=10, rules=UniverseRules(min_price=p, min_dollar_volume=v,
                                                     sectors=s))
              for p, v, s in [(5, 5e5, ()), (10, 1e6, ()), (1, 0, ()), (20, 5e6, ()),
                              (5, 5e5, ("Technology",)), (5, 5e5, ("Finance",)),
                              (50, 1e7, ()), (5, 5e5, ("Health Care", "Energy")),
                              (0, 0, ()), (100, 0, ())]]
    alone = [run_scan(demo_target, p, cache=FrameCache(None)) for p in params]
    with ThreadPoolExecutor(max_workers=10) as pool:
        together = list(pool.map(lambda p: run_scan(demo_target, p,
                                                    cache=FrameCache(None)), params))
    assert len({o.run_id for o in together}) == 10
    for a, b in zip(alone, together, strict=True):
        assert a.counts == b.counts
        pd.testing.assert_frame_equal(a.results, b.results, check_exact=True)

"""Cache layers against a real redis-server started by the test (and stopped mid-run)."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time

import pandas as pd
import pyarrow as pa
import pytest
import redis

from technic.cache import FrameCache, from_ipc, to_ipc
from technic.jobs.scan import ScanParams, run_scan
from technic.store.db import get_engine

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throwaway redis-server on a free loopback port (no persistence)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture()
def redis_server():
    srv = RedisServer()
    srv.start()
    yield srv
    srv.stop()


def _table(n: int = 1000) -> pa.Table:
    return pa.table({"symbol": [f"S{i}" for i in range(n)], "x": [float(i) for i in range(n)]})


def test_ipc_roundtrip_and_no_pickle():
    t = _table()
    data = to_ipc(t)
    assert data[:4] != b"\x80\x04\x95"[:4]  # not a pickle
    assert from_ipc(data).equals(t)


def test_layers_fill_and_serve(redis_server):
    loads = []

    def load():
        loads.append(1)
        return _table()

    a = FrameCache(redis_server.url, namespace="t1")
    assert a.get_or_load("k", load)[1] == "l3"
    assert a.get_or_load("k", load)[1] == "l1"
    b = FrameCache(redis_server.url, namespace="t1")  # another process: empty L1, shared L2
    table, layer = b.get_or_load("k", load)
    assert layer == "l2" and table.equals(_table()) and len(loads) == 1
    raw = redis.Redis(port=redis_server.port).get("t1:k")
    assert from_ipc(raw).equals(_table())
    s = b.stats()
    assert s.l2.hits == 1 and s.l2.bytes_read == len(raw) and s.l2_state == "up"


def test_redis_down_then_back(caplog):
    srv = RedisServer()
    srv.start()
    cache = FrameCache(srv.url, namespace="t2", retry_after_s=0.2, socket_timeout_s=0.3)
    cache.get_or_load("a", _table)
    srv.stop()  # Redis goes away mid-run
    with caplog.at_level(logging.WARNING, logger="technic.cache"):
        t, layer = cache.get_or_load("b", _table)  # L2 read fails → L3, one warning
        t2, layer2 = cache.get_or_load("c", _table)  # L2 skipped while marked down
    assert layer == layer2 == "l3" and t.equals(_table())
    warnings = [r for r in caplog.records if "unavailable" in r.message]
    assert len(warnings) == 1
    assert cache.stats().l2_state == "down" and cache.stats().l2.errors >= 1
    srv.proc = subprocess.Popen(["redis-server", "--port", str(srv.port), "--save", "",
                                 "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                redis.Redis(port=srv.port).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        time.sleep(0.25)  # past retry_after_s
        cache.get_or_load("d", _table)
        assert cache.stats().l2_state == "up"
        assert redis.Redis(port=srv.port).exists("t2:d")
    finally:
        srv.stop()


def test_unset_redis_uses_l1_and_database():
    cache = FrameCache(None)
    assert cache.get_or_load("x", _table)[1] == "l3"
    assert cache.get_or_load("x", _table)[1] == "l1"
    assert cache.stats().l2_state == "disabled"


def test_scan_records_cache_layer_and_survives_redis_loss(demo_target, redis_server):
    cache = FrameCache(redis_server.url, namespace=demo_target.cache_namespace())
    first = run_scan(demo_target, ScanParams(top=5), cache=cache)
    assert first.cache["features"] == "l3"
    other = FrameCache(redis_server.url, namespace=demo_target.cache_namespace())
    second = run_scan(demo_target, ScanParams(top=5), cache=other)
    assert second.cache["features"] == "l2"
    redis_server.stop()
    fresh = FrameCache(redis_server.url, namespace=demo_target.cache_namespace(),
                       socket_timeout_s=0.3)
    third = run_scan(demo_target, ScanParams(top=5), cache=fresh)
    assert third.cache == {**third.cache, "features": "l3", "l2_state": "down"}
    for out in (second, third):
        assert out.results["symbol"].tolist() == first.results["symbol"].tolist()
    with get_engine(demo_target).connect() as c:
        import sqlalchemy as sa

        stored = c.execute(sa.text("SELECT cache FROM scan_runs WHERE run_id = :r"),
                           {"r": third.run_id}).scalar()
    assert stored["features"] == "l3" and stored["l2_state"] == "down"
    # per-layer counts of each scan's own lookups
    assert first.cache["l1"]["misses"] == 1 and first.cache["l2"]["misses"] == 1
    assert first.cache["l3"]["hits"] == 1 and first.cache["l2"]["bytes_written"] > 0
    assert second.cache["l2"]["hits"] == 1 and second.cache["l2"]["bytes_read"] > 0
    assert second.cache["l3"]["hits"] == 0
    assert stored["l2"]["errors"] == 1 and stored["l3"]["hits"] == 1


def test_refresh_reads_bars_through_redis(demo_target, redis_server):
    """A second process-level refresh gets its chunks' bars from Redis, same rows."""
    from technic import cache as cache_mod
    from technic.jobs.refresh import refresh_features

    cache_mod._CACHES.clear()
    _, plain = refresh_features(demo_target, chunk_size=400, write=False)
    _, cold = refresh_features(demo_target, chunk_size=400, write=False, use_cache=True,
                               redis_url=redis_server.url)
    cache_mod._CACHES.clear()  # as if in a fresh process: L1 empty, Redis warm
    _, warm = refresh_features(demo_target, chunk_size=400, write=False, use_cache=True,
                               redis_url=redis_server.url)
    c = cache_mod.get_cache(redis_server.url, demo_target.cache_namespace()).stats()
    assert c.l2.hits == 3 and c.l3.hits == 0  # 1,000 symbols in 3 chunks, all from Redis
    for other in (cold, warm):
        pd.testing.assert_frame_equal(plain, other, check_exact=True)
    keys = redis.Redis(port=redis_server.port).keys(f"{demo_target.cache_namespace()}:bars:*")
    assert len(keys) == 3


def test_recording_counts_one_threads_lookups_per_layer(redis_server):
    import threading

    cache = FrameCache(redis_server.url, namespace="t-rec")
    cache.get_or_load("noise", _table)  # before the recording: not counted
    with cache.recording() as rec:
        cache.get_or_load("k", _table)  # L1 miss, L2 miss, L3 load (+ L2 write)
        cache.get_or_load("k", _table)  # L1 hit
        other = threading.Thread(target=lambda: cache.get_or_load("other", _table))
        other.start()
        other.join()  # another thread's lookups are not this recording's
    assert (rec.l1.hits, rec.l1.misses) == (1, 1)
    assert (rec.l2.hits, rec.l2.misses) == (0, 1) and rec.l2.bytes_written > 0
    assert rec.l3.hits == 1 and rec.l3.bytes_read == _table().nbytes
    assert rec.l2_state == "up"
    fresh = FrameCache(redis_server.url, namespace="t-rec")  # a new process: L2 serves it
    with fresh.recording() as rec2:
        fresh.get_or_load("k", _table)
    assert rec2.l2.hits == 1 and rec2.l2.bytes_read > 0 and rec2.l3.hits == 0

"""Cache layers against a real redis-server started by the test (and stopped mid-run)."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time

import pandas as pd
import pyarrow as pa
import pytest
import redis

from technic import cache as cache_mod
from technic.cache import MAGIC, FrameCache, from_ipc, seal, to_ipc, unseal
from technic.jobs.scan import ScanParams, run_scan
from technic.store.db import get_engine

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server not installed")

#: The run's HMAC secret (tests/conftest.py sets TECHNIC_CACHE_SECRET for every process).
SECRET = os.environ["TECHNIC_CACHE_SECRET"].encode()


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
    assert raw.startswith(MAGIC) and from_ipc(unseal(SECRET, "t1:k", raw)).equals(_table())
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



def test_get_many_fetches_in_parallel_in_key_order_and_counts_for_the_caller(redis_server):
    writer = FrameCache(redis_server.url, namespace="t-many")
    items = [(f"part{i}", _table(100 + i)) for i in range(9)]
    writer.put_many(items, l1=False, threads=3)
    reader = FrameCache(redis_server.url, namespace="t-many")  # a new process
    with reader.recording() as rec:
        got = reader.get_many([k for k, _ in items] + ["absent"], l1=False, threads=3)
    assert [layer for _, layer in got] == ["l2"] * 9 + ["miss"]
    for (_, want), (table, _) in zip(items, got, strict=False):
        assert table is not None and table.equals(want)
    # counted in the caller's recording although fetched on the pool's threads
    assert (rec.l2.hits, rec.l2.misses) == (9, 1) and rec.l2.bytes_read > 0
    assert rec.l1.hits == rec.l1.misses == 0  # l1=False: L1 neither read nor filled
    assert reader.get("part0")[1] == "l2"


# ----------------------------------------------------------------------------- authentication


def _other_table() -> pa.Table:
    """Valid Arrow IPC with the same schema and different numbers (what a writer would plant)."""
    t = _table()
    return t.set_column(1, "x", pa.array([-float(i) for i in range(t.num_rows)]))


def test_seal_binds_the_value_to_its_key_and_secret():
    payload = to_ipc(_table())
    value = seal(SECRET, "ns:k", payload)
    assert bytes(unseal(SECRET, "ns:k", value)) == payload
    assert unseal(SECRET, "ns:other", value) is None  # moved to another key
    assert unseal(b"another-secret-0123456789", "ns:k", value) is None
    assert unseal(SECRET, "ns:k", payload) is None  # bare IPC (no tag)
    flipped = bytearray(value)
    flipped[-10] ^= 1  # one bit of the payload
    assert unseal(SECRET, "ns:k", bytes(flipped)) is None
    assert unseal(SECRET, "ns:k", value[:20]) is None


def test_rewritten_values_are_rejected_recomputed_and_overwritten(redis_server, caplog):
    r = redis.Redis(port=redis_server.port)
    good = to_ipc(_table())
    bad = to_ipc(_other_table())
    forged = {
        "bare IPC": bad,
        "old tag, new payload": b"".join((MAGIC, seal(SECRET, "ta:k", good)[4:36], bad)),
        "another secret": seal(b"not-the-secret-0123456789", "ta:k", bad),
        "moved from another key": seal(SECRET, "ta:elsewhere", bad),
        "not Arrow at all": b"\x80\x04\x95 pickle-like",
    }
    cache_mod._WARNED.discard("rejected")
    with caplog.at_level(logging.WARNING, logger="technic.cache"):
        for what, value in forged.items():
            r.set("ta:k", value)
            cache = FrameCache(redis_server.url, namespace="ta")  # a new process: empty L1
            table, layer = cache.get_or_load("k", _table)
            assert layer == "l3" and table.equals(_table()), what  # never the planted value
            s = cache.stats()
            assert (s.l2.rejected, s.l2.misses, s.l2.hits, s.l2.errors) == (1, 1, 0, 0), what
            # recomputed and overwritten: the next process reads an authentic copy from L2
            assert from_ipc(unseal(SECRET, "ta:k", r.get("ta:k"))).equals(_table()), what
            again = FrameCache(redis_server.url, namespace="ta").get_or_load("k", _other_table)
            assert again[1] == "l2" and again[0].equals(_table()), what
    warnings = [rec for rec in caplog.records if "failed authentication" in rec.message]
    assert len(warnings) == 1 and "ta:k" in warnings[0].message


def test_redis_without_a_secret_is_not_used(redis_server, monkeypatch, caplog):
    from technic.config import get_settings

    r = redis.Redis(port=redis_server.port)
    r.set("tn:k", to_ipc(_other_table()))  # what an unauthenticated writer left there
    for value in (None, "short"):
        if value is None:
            monkeypatch.delenv("TECHNIC_CACHE_SECRET", raising=False)
        else:
            monkeypatch.setenv("TECHNIC_CACHE_SECRET", value)
        get_settings.cache_clear()
        cache_mod._WARNED.discard("no-secret")
        try:
            with caplog.at_level(logging.WARNING, logger="technic.cache"):
                caplog.clear()
                caches = [FrameCache(redis_server.url, namespace="tn") for _ in range(2)]
                for cache in caches:  # L1 and the database only, never the Redis value
                    assert cache.l2_state == "disabled"
                    table, layer = cache.get_or_load("k", _table)
                    assert layer == "l3" and table.equals(_table())
                    assert cache.get_or_load("k", _table)[1] == "l1"
            warnings = [rec for rec in caplog.records if "TECHNIC_CACHE_SECRET" in rec.message]
            assert len(warnings) == 1 and "L2) is off" in warnings[0].message
            assert ("unset" if value is None else "shorter than 16") in warnings[0].message
        finally:
            get_settings.cache_clear()
    assert r.keys("tn:*") == [b"tn:k"] and r.get("tn:k") == to_ipc(_other_table())  # no writes
    # an explicit secret turns L2 on whatever the environment says
    assert FrameCache(redis_server.url, secret=SECRET, namespace="tn").l2_state == "up"


def test_scan_ignores_a_feature_frame_rewritten_in_redis(demo_target, redis_server, caplog):
    """A third party rewrites the cached feature frame with valid Arrow IPC whose numbers
    would move symbols (the top and the bottom symbol swap features): the next scan rejects
    it, reads the database, and ranks exactly as the untampered run did."""
    import sqlalchemy as sa

    ns = demo_target.cache_namespace()
    first = run_scan(demo_target, ScanParams(top=5),
                     cache=FrameCache(redis_server.url, namespace=ns))
    assert first.cache["features"] == "l3"
    r = redis.Redis(port=redis_server.port)
    [key] = r.keys(f"{ns}:features:*")
    key = key.decode()
    original = from_ipc(unseal(SECRET, key, r.get(key)))
    df = original.to_pandas()
    top, bottom = first.results["symbol"].iloc[0], first.results["symbol"].iloc[-1]
    i, j = df.index[df["symbol"] == top][0], df.index[df["symbol"] == bottom][0]
    cols = [c for c in df.columns if c != "symbol" and df[c].dtype.kind == "f"]
    df.loc[[i, j], cols] = df.loc[[j, i], cols].to_numpy()
    planted = pa.Table.from_pandas(df, schema=original.schema, preserve_index=False)

    # what the planted frame would do if it were used (as before authentication)
    naive = FrameCache(None)
    naive.put(key.removeprefix(f"{ns}:"), planted)
    fooled = run_scan(demo_target, ScanParams(top=5), cache=naive)
    assert fooled.results["symbol"].tolist() != first.results["symbol"].tolist()

    cache_mod._WARNED.discard("rejected")
    cols_out = ["rank", "symbol", "tech_rating", "merit"]
    for value in (to_ipc(planted),  # bare IPC
                  b"".join((MAGIC, r.get(key)[4:36], to_ipc(planted)))):  # the old tag
        r.set(key, value)
        with caplog.at_level(logging.WARNING, logger="technic.cache"):
            again = run_scan(demo_target, ScanParams(top=5),
                             cache=FrameCache(redis_server.url, namespace=ns))
        assert again.cache["features"] == "l3" and again.cache["l2"]["rejected"] == 1
        pd.testing.assert_frame_equal(again.results[cols_out].reset_index(drop=True),
                                      first.results[cols_out].reset_index(drop=True))
        assert from_ipc(unseal(SECRET, key, r.get(key))).equals(original)  # overwritten
        with get_engine(demo_target).connect() as c:
            stored = c.execute(sa.text("SELECT cache FROM scan_runs WHERE run_id = :r"),
                               {"r": again.run_id}).scalar()
        assert stored["l2"]["rejected"] == 1
    assert sum("failed authentication" in rec.message for rec in caplog.records) == 1

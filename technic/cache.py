"""Cache layers for frames: L1 in-process TTL cache, L2 Redis (Arrow IPC), L3 the database.

Values are Arrow tables. L1 holds the objects themselves (``cachetools.TTLCache``); L2 holds
them as Arrow IPC stream bytes with a TTL (``SET … EX``) — never pickle, so a process that
can write to Redis cannot make a reader execute code. Keys carry a data version (e.g. the latest
``computed_at`` of the rows they hold), so a write to the store makes old keys unreachable
instead of stale.

Redis unset, down or slow (socket timeouts) never fails a read: the first failure logs one
warning, L2 is skipped for ``retry_after_s``, then tried again; when it answers again it is
used again (logged once). Every layer counts hits, misses, bytes and errors
(:meth:`FrameCache.stats`), stored with each scan in ``scan_runs.cache``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import pyarrow as pa
from cachetools import TTLCache

log = logging.getLogger(__name__)


@dataclass
class LayerStats:
    """Counters of one cache layer."""

    hits: int = 0
    misses: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    errors: int = 0


@dataclass
class CacheStats:
    """Counters of every layer, and whether L2 was usable."""

    l1: LayerStats = field(default_factory=LayerStats)
    l2: LayerStats = field(default_factory=LayerStats)
    l3: LayerStats = field(default_factory=LayerStats)
    l2_state: str = "disabled"  # "disabled" (no URL), "up", "down"

    def as_dict(self) -> dict:
        return asdict(self)


def to_ipc(table: pa.Table) -> bytes:
    """Serialise an Arrow table as an IPC stream (bytes)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def from_ipc(data: bytes) -> pa.Table:
    """Read an Arrow IPC stream written by :func:`to_ipc`.

    Raises:
        pyarrow.ArrowInvalid: the bytes are not an Arrow IPC stream.
    """
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


class FrameCache:
    """Read-through cache of Arrow tables over L1 (process), L2 (Redis) and L3 (the caller).

    Args:
        redis_url: ``redis://host:port/db``; ``None`` disables L2.
        namespace: prefix of every Redis key (e.g. the database schema).
        ttl_s: time to live of entries in L1 and L2, seconds.
        l1_max_bytes: L1 capacity in bytes of Arrow data (least recently used entries go
            first).
        socket_timeout_s: Redis connect/read timeout; a slow Redis counts as down.
        retry_after_s: after a Redis failure, skip L2 for this long before trying again.
    """

    def __init__(self, redis_url: str | None, *, namespace: str = "technic", ttl_s: int = 600,
                 l1_max_bytes: int = 256 * 2**20, socket_timeout_s: float = 0.5,
                 retry_after_s: float = 10.0) -> None:
        self.namespace = namespace
        self.ttl_s = ttl_s
        self.retry_after_s = retry_after_s
        self._l1: TTLCache = TTLCache(maxsize=l1_max_bytes, ttl=ttl_s,
                                      getsizeof=lambda t: max(1, t.nbytes))
        self._lock = threading.Lock()
        self._local = threading.local()
        self._local_objects: dict[str, object] = {}
        self._stats = CacheStats()
        self._down_until = 0.0
        self._redis = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=socket_timeout_s,
                                               socket_connect_timeout=socket_timeout_s)
            self._stats.l2_state = "up"

    def _count(self, layer: str, counter: str, n: int) -> None:
        # Callers hold self._lock. The thread's active recording (if any) counts too.
        setattr(getattr(self._stats, layer), counter,
                getattr(getattr(self._stats, layer), counter) + n)
        rec = getattr(self._local, "recording", None)
        if rec is not None:
            setattr(getattr(rec, layer), counter, getattr(getattr(rec, layer), counter) + n)

    @contextlib.contextmanager
    def recording(self) -> Iterator[CacheStats]:
        """Count the lookups made by this thread inside the ``with`` block only (one scan's
        hits, misses and bytes per layer, even while other threads use the same cache).

        Yields:
            A :class:`CacheStats` filled in as the block runs (``l2_state`` set at exit).
        """
        rec = CacheStats()
        prev = getattr(self._local, "recording", None)
        self._local.recording = rec
        try:
            yield rec
        finally:
            self._local.recording = prev
            rec.l2_state = self._stats.l2_state

    def stats(self) -> CacheStats:
        """A snapshot of the counters."""
        with self._lock:
            return CacheStats(**{k: (LayerStats(**asdict(v)) if isinstance(v, LayerStats) else v)
                                 for k, v in vars(self._stats).items()})

    def reset_stats(self) -> None:
        """Zero the counters (keeps the cached entries)."""
        with self._lock:
            state = self._stats.l2_state
            self._stats = CacheStats(l2_state=state)

    def get_local(self, key: str) -> object | None:
        """An object kept in this process only by :meth:`put_local` (counted as L1), or None.

        For working state that is not a table and must not be copied, such as the
        incremental refresh's bar window.
        """
        with self._lock:
            obj = self._local_objects.get(key)
            self._count("l1", "hits" if obj is not None else "misses", 1)
            return obj

    def put_local(self, key: str, obj: object | None) -> None:
        """Keep ``obj`` under ``key`` in this process (no TTL, one per key; None removes it).
        Never sent to Redis."""
        with self._lock:
            if obj is None:
                self._local_objects.pop(key, None)
            else:
                self._local_objects[key] = obj

    def _l1_put(self, key: str, table: pa.Table) -> None:
        with contextlib.suppress(ValueError):  # larger than all of L1: serve, do not keep
            self._l1[key] = table

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def _l2_usable(self) -> bool:
        return self._redis is not None and time.monotonic() >= self._down_until

    def _l2_failed(self, exc: Exception) -> None:
        with self._lock:
            self._count("l2", "errors", 1)
            was_up = self._stats.l2_state == "up"
            self._stats.l2_state = "down"
        self._down_until = time.monotonic() + self.retry_after_s
        if was_up:
            log.warning("Redis cache unavailable (%s: %s); continuing with the in-process cache "
                        "and the database, retrying Redis in %.0f s", type(exc).__name__, exc,
                        self.retry_after_s)

    @property
    def l2_state(self) -> str:
        """``"disabled"`` (no Redis URL), ``"up"`` or ``"down"``."""
        return self._stats.l2_state

    def _l2_ok(self) -> None:
        if self._stats.l2_state == "down":
            log.warning("Redis cache is back; using it again")
        self._stats.l2_state = "up"

    def get_or_load(self, key: str, load: Callable[[], pa.Table]) -> tuple[pa.Table, str]:
        """Return the table for ``key`` from the first layer that has it, else ``load()`` it
        (L3) and fill the faster layers.

        Returns:
            ``(table, layer)`` with ``layer`` one of ``"l1"``, ``"l2"``, ``"l3"``.

        Raises:
            Whatever ``load`` raises (cache failures never raise).
        """
        table, layer = self.get(key)
        if table is not None:
            return table, layer
        table = load()
        with self._lock:
            self._count("l3", "hits", 1)
            self._count("l3", "bytes_read", table.nbytes)
        self.put(key, table)
        return table, "l3"

    def get(self, key: str) -> tuple[pa.Table | None, str]:
        """Look ``key`` up in L1, then L2 (no loading).

        Returns:
            ``(table, layer)`` with ``layer`` ``"l1"`` or ``"l2"``, or ``(None, "miss")``.
        """
        import redis

        with self._lock:
            hit = self._l1.get(key)
            if hit is not None:
                self._count("l1", "hits", 1)
                return hit, "l1"
            self._count("l1", "misses", 1)
        if self._l2_usable():
            try:
                data = self._redis.get(self._key(key))
                self._l2_ok()
                if data is not None:
                    table = from_ipc(data)
                    with self._lock:
                        self._count("l2", "hits", 1)
                        self._count("l2", "bytes_read", len(data))
                        self._l1_put(key, table)
                    return table, "l2"
                with self._lock:
                    self._count("l2", "misses", 1)
            except (redis.RedisError, OSError) as e:
                self._l2_failed(e)
            except pa.ArrowInvalid as e:
                log.warning("ignoring unreadable cache entry %s: %s", key, e)
                with self._lock:
                    self._count("l2", "errors", 1)
        return None, "miss"

    def put(self, key: str, table: pa.Table, ttl_s: int | None = None, *,
            l1: bool = True, l2: bool = True) -> None:
        """Store ``table`` under ``key`` in L1 (unless ``l1`` is False) and in L2 (unless
        ``l2`` is False) for ``ttl_s`` (default the cache's TTL). Redis failures are logged
        once and counted, never raised."""
        import redis

        if l1:
            with self._lock:
                self._l1_put(key, table)
        if l2 and self._l2_usable():
            try:
                data = to_ipc(table)
                self._redis.set(self._key(key), data, ex=ttl_s or self.ttl_s)
                self._l2_ok()
                with self._lock:
                    self._count("l2", "bytes_written", len(data))
            except (redis.RedisError, OSError) as e:
                self._l2_failed(e)


_CACHES: dict[tuple[str | None, str], FrameCache] = {}


def get_cache(redis_url: str | None, namespace: str) -> FrameCache:
    """The process-wide cache for a Redis URL and namespace (created on first use)."""
    key = (redis_url, namespace)
    if key not in _CACHES:
        from technic.config import get_settings

        _CACHES[key] = FrameCache(redis_url, namespace=namespace,
                                  l1_max_bytes=get_settings().cache_l1_mb * 2**20)
    return _CACHES[key]

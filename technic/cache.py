"""Cache layers for frames: L1 in-process TTL cache, L2 Redis (Arrow IPC), L3 the database.

Values are Arrow tables. L1 holds the objects themselves (``cachetools.TTLCache``); L2 holds
them as Arrow IPC stream bytes with a TTL (``SET … EX``) — never pickle, so a process that
can write to Redis cannot make a reader execute code. Keys carry a data version (e.g. the latest
``computed_at`` of the rows they hold), so a write to the store makes old keys unreachable
instead of stale.

L2 values are authenticated, so that a process that can write to Redis cannot change results
either: each value is ``b"TCA1"`` + an HMAC-SHA256 tag (32 bytes) + the Arrow IPC stream, the
tag keyed by ``TECHNIC_CACHE_SECRET`` over the Redis key (``namespace:key``) and the payload
(RFC 2104, :mod:`hmac`; compared in constant time). A value whose tag does not verify
(altered, written without the secret or with another one, moved to another key) is never
used: it counts as ``l2.rejected`` and a miss, the first one per process logs a warning, and
the caller recomputes it and overwrites it. With a Redis URL but no secret (or one shorter
than ``MIN_SECRET_BYTES``) L2 stays off (``l2_state`` ``"disabled"``, one warning per
process): only L1 and the database serve. The tag binds a value to its key, not to a time: a
writer can put back an earlier value of the same key while it lives, which is why keys
carry the data version.

Redis unset, down or slow (socket timeouts) never fails a read: the first failure logs one
warning, L2 is skipped for ``retry_after_s``, then tried again; when it answers again it is
used again (logged once). Every layer counts hits, misses, bytes and errors
(:meth:`FrameCache.stats`), stored with each scan in ``scan_runs.cache``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pyarrow as pa
from cachetools import TTLCache

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)
R = TypeVar("R")


@dataclass
class LayerStats:
    """Counters of one cache layer."""

    hits: int = 0
    misses: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    errors: int = 0
    rejected: int = 0  # L2 values whose HMAC tag did not verify (ignored, recomputed)


@dataclass
class CacheStats:
    """Counters of every layer, and whether L2 was usable."""

    l1: LayerStats = field(default_factory=LayerStats)
    l2: LayerStats = field(default_factory=LayerStats)
    l3: LayerStats = field(default_factory=LayerStats)
    l2_state: str = "disabled"  # "disabled" (no URL or no secret), "up", "down"

    def as_dict(self) -> dict:
        return asdict(self)


def to_ipc(table: pa.Table) -> bytes:
    """Serialise an Arrow table as an IPC stream (bytes)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def from_ipc(data: bytes | memoryview) -> pa.Table:
    """Read an Arrow IPC stream written by :func:`to_ipc`.

    Raises:
        pyarrow.ArrowInvalid: the bytes are not an Arrow IPC stream.
    """
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


#: First bytes of every L2 value (format version 1: magic, tag, Arrow IPC stream).
MAGIC = b"TCA1"
TAG_BYTES = 32  # HMAC-SHA256
#: Shortest accepted ``TECHNIC_CACHE_SECRET`` (bytes of UTF-8).
MIN_SECRET_BYTES = 16


def _tag(secret: bytes, redis_key: str, payload: bytes | memoryview) -> bytes:
    """HMAC-SHA256 over the format magic, the length-prefixed Redis key and the payload."""
    k = redis_key.encode()
    mac = hmac.new(secret, MAGIC + len(k).to_bytes(4, "big") + k, hashlib.sha256)
    mac.update(payload)
    return mac.digest()


def seal(secret: bytes, redis_key: str, payload: bytes) -> bytes:
    """The L2 value for ``payload`` (Arrow IPC bytes) under ``redis_key``: magic + tag +
    payload."""
    return b"".join((MAGIC, _tag(secret, redis_key, payload), payload))


def unseal(secret: bytes, redis_key: str, value: bytes) -> memoryview | None:
    """The payload of an L2 value if its tag verifies for ``redis_key``, else None (wrong
    format, altered, written under another key or with another secret). No copy."""
    head = len(MAGIC) + TAG_BYTES
    if len(value) < head or value[:len(MAGIC)] != MAGIC:
        return None
    payload = memoryview(value)[head:]
    ok = hmac.compare_digest(value[len(MAGIC):head], _tag(secret, redis_key, payload))
    return payload if ok else None


_WARNED: set[str] = set()  # process-wide "warn once" topics


def _warn_once(topic: str, msg: str, *args: object) -> None:
    if topic not in _WARNED:
        _WARNED.add(topic)
        log.warning(msg, *args)


class FrameCache:
    """Read-through cache of Arrow tables over L1 (process), L2 (Redis) and L3 (the caller).

    Args:
        redis_url: ``redis://[:password@]host:port/db``; ``None`` disables L2.
        secret: key of the values' HMAC tags (see the module docstring); ``None`` →
            ``TECHNIC_CACHE_SECRET`` from the settings. With ``redis_url`` set, a missing
            secret or one shorter than ``MIN_SECRET_BYTES`` disables L2 (one warning).
        namespace: prefix of every Redis key (e.g. the database schema).
        ttl_s: time to live of entries in L1 and L2, seconds.
        l1_max_bytes: L1 capacity in bytes of Arrow data (least recently used entries go
            first).
        socket_timeout_s: Redis connect/read timeout; a slow Redis counts as down.
        retry_after_s: after a Redis failure, skip L2 for this long before trying again.
    """

    def __init__(self, redis_url: str | None, *, secret: str | bytes | None = None,
                 namespace: str = "technic", ttl_s: int = 600,
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
        self._redis: redis.Redis | None = None
        self._secret = b""
        if redis_url:
            if secret is None:
                from technic.config import get_settings

                configured = get_settings().cache_secret
                secret = configured.get_secret_value() if configured is not None else None
            self._secret = secret.encode() if isinstance(secret, str) else (secret or b"")
            if len(self._secret) < MIN_SECRET_BYTES:
                _warn_once("no-secret",
                           "TECHNIC_REDIS_URL is set but TECHNIC_CACHE_SECRET is %s: the shared "
                           "Redis cache (L2) is off, because values anyone with access to Redis "
                           "can rewrite must not feed results; using the in-process cache and "
                           "the database", "unset" if not self._secret
                           else f"shorter than {MIN_SECRET_BYTES} characters")
                return
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
            s = self._stats
            return CacheStats(l1=replace(s.l1), l2=replace(s.l2), l3=replace(s.l3),
                              l2_state=s.l2_state)

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

    def _l2_client(self) -> redis.Redis | None:
        """The Redis client while L2 is on and not in its retry pause after a failure, else
        None."""
        if self._redis is None or time.monotonic() < self._down_until:
            return None
        return self._redis

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
        """``"disabled"`` (no Redis URL, or no usable secret), ``"up"`` or ``"down"``."""
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

    def get(self, key: str, *, l1: bool = True) -> tuple[pa.Table | None, str]:
        """Look ``key`` up in L1, then L2 (no loading).

        Args:
            key: the cache key (without the namespace).
            l1: look in L1 and keep an L2 hit there; False for values that are copied into
                another structure at once (the parts of a bar window), so that L1 does not
                hold a second copy.

        Returns:
            ``(table, layer)`` with ``layer`` ``"l1"`` or ``"l2"``, or ``(None, "miss")``.
        """
        import redis

        if l1:
            with self._lock:
                hit = self._l1.get(key)
                if hit is not None:
                    self._count("l1", "hits", 1)
                    return hit, "l1"
                self._count("l1", "misses", 1)
        client = self._l2_client()
        if client is not None:
            try:
                # No decode_responses: values come back as bytes (redis-py types the result
                # of the sync and asyncio clients together).
                data = cast("bytes | None", client.get(self._key(key)))
                self._l2_ok()
                if data is None:
                    with self._lock:
                        self._count("l2", "misses", 1)
                    return None, "miss"
                payload = unseal(self._secret, self._key(key), data)
                if payload is None:  # not authentic: never used
                    self._reject(key)
                    return None, "miss"
                table = from_ipc(payload)
                with self._lock:
                    self._count("l2", "hits", 1)
                    self._count("l2", "bytes_read", len(data))
                    if l1:
                        self._l1_put(key, table)
                return table, "l2"
            except (redis.RedisError, OSError) as e:
                self._l2_failed(e)
            except pa.ArrowInvalid as e:
                log.warning("ignoring unreadable cache entry %s: %s", key, e)
                with self._lock:
                    self._count("l2", "errors", 1)
        return None, "miss"

    def _reject(self, key: str) -> None:
        """Count an L2 value whose tag did not verify (a miss); warn on the first one."""
        with self._lock:
            self._count("l2", "rejected", 1)
            self._count("l2", "misses", 1)
        _warn_once("rejected",
                   "Redis cache entry %s failed authentication (altered in Redis, or written "
                   "with another TECHNIC_CACHE_SECRET or none); it is ignored, recomputed and "
                   "overwritten. Later rejections are only counted (scan_runs.cache l2.rejected)",
                   self._key(key))

    def put(self, key: str, table: pa.Table, ttl_s: int | None = None, *,
            l1: bool = True, l2: bool = True) -> None:
        """Store ``table`` under ``key`` in L1 (unless ``l1`` is False) and in L2 (unless
        ``l2`` is False) for ``ttl_s`` (default the cache's TTL). Redis failures are logged
        once and counted, never raised."""
        import redis

        if l1:
            with self._lock:
                self._l1_put(key, table)
        client = self._l2_client() if l2 else None
        if client is not None:
            try:
                data = seal(self._secret, self._key(key), to_ipc(table))
                client.set(self._key(key), data, ex=ttl_s or self.ttl_s)
                self._l2_ok()
                with self._lock:
                    self._count("l2", "bytes_written", len(data))
            except (redis.RedisError, OSError) as e:
                self._l2_failed(e)

    def _in_threads(self, fn: Callable[[Any], R], items: Sequence[Any], threads: int) -> list[R]:
        # fn(item) for every item on up to `threads` threads, in order; the calling thread's
        # active recording (if any) counts the lookups made on the pool threads too.
        if threads <= 1 or len(items) <= 1:
            return [fn(x) for x in items]
        rec = getattr(self._local, "recording", None)

        def run(x: Any) -> R:
            self._local.recording = rec
            try:
                return fn(x)
            finally:
                self._local.recording = None

        with ThreadPoolExecutor(min(threads, len(items)),
                                thread_name_prefix="technic-cache") as pool:
            return list(pool.map(run, items))

    def get_many(self, keys: Sequence[str], *, l1: bool = True,
                 threads: int = 4) -> list[tuple[pa.Table | None, str]]:
        """:meth:`get` for each of ``keys``, the L2 values fetched over up to ``threads``
        Redis connections at once.

        Several values of a few MB each, fetched in parallel and authenticated as they
        arrive, come much faster than one large value: on the development machine 58 MB
        took 50 ms as 24 parts on 2 threads against 162 ms as one value (redis-py reads a
        large reply in many growing buffers; the HMAC check of one part overlaps the
        transfer of the next).

        Returns:
            ``(table, layer)`` per key, in the order of ``keys`` (see :meth:`get`).
        """
        return self._in_threads(lambda k: self.get(k, l1=l1), keys, threads)

    def put_many(self, items: Sequence[tuple[str, pa.Table]], ttl_s: int | None = None, *,
                 l1: bool = True, l2: bool = True, threads: int = 4) -> None:
        """:meth:`put` for each ``(key, table)`` of ``items``, on up to ``threads`` threads;
        returns when all are stored. Failures as in :meth:`put` (logged, counted)."""
        self._in_threads(lambda kt: self.put(kt[0], kt[1], ttl_s, l1=l1, l2=l2), items,
                         threads)


_CACHES: dict[tuple[str | None, str], FrameCache] = {}


def get_cache(redis_url: str | None, namespace: str) -> FrameCache:
    """The process-wide cache for a Redis URL and namespace (created on first use; the HMAC
    secret is ``TECHNIC_CACHE_SECRET`` of this process's settings)."""
    key = (redis_url, namespace)
    if key not in _CACHES:
        from technic.config import get_settings

        _CACHES[key] = FrameCache(redis_url, namespace=namespace,
                                  l1_max_bytes=get_settings().cache_l1_mb * 2**20)
    return _CACHES[key]

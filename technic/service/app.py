"""The FastAPI application of ``technic serve`` (endpoints and formats: docs/api.md).

Reads go through :mod:`technic.store.browse` and :mod:`technic.jobs.browse`; scans through
:class:`technic.service.runner.ScanRunner`. A successful run's results never change, so pages of
them are cached by run id (``cachetools``), and the id of the latest run for a few seconds:
``GET /v1/scans/latest?limit=100`` is served from memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from cachetools import LRUCache
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from technic.jobs.browse import SYMBOL_PATTERN, UnknownSymbolError, symbol_report
from technic.jobs.scan import SUMMARY_COLUMNS, check_industries, check_sectors, resolve_preset
from technic.screen import FilterError, Node, parse_filter, to_text
from technic.service.models import ScanRequest
from technic.service.runner import STAGES, ScanRunner
from technic.store.browse import (
    RESULT_FIELDS,
    get_scan_run,
    latest_run_id,
    list_scan_runs,
    read_scan_results,
    run_sectors,
)
from technic.store.db import DatabaseTarget, describe_database_error, first_line
from technic.store.migrations import DEFAULT_PRESET
from technic.store.presets import PresetNotFound
from technic.store.runs import mark_orphans
from technic.store.screen import check_result_filter

STATIC = Path(__file__).resolve().parent / "static"
#: Age (s) after which the remembered latest run id is refreshed in the background (runs
#: this process finishes replace it at once; runs of other processes show up about this late).
LATEST_TTL_S = 2.0
#: SSE: seconds between keep-alive comments while a run is quiet; between polls of the store
#: for runs of other processes.
KEEPALIVE_S = 15.0
DB_POLL_S = 0.5
#: Polls between checks that a followed run's process is still alive (technic.store.runs).
ORPHAN_CHECK_POLLS = 10

_PRESET = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


# Query parameters shared by the result pages.
Columns = Annotated[str | None, Query(
    description="Comma-separated result columns (default: those of `technic scan "
                "--json`), e.g. `rank,symbol,sector,close,tech_rating`.")]
Sort = Annotated[str, Query(description="Column to order by (NULLs last, ties by rank).")]
Order = Annotated[Literal["asc", "desc"], Query(description="Sort direction.")]
Sector = Annotated[list[str], Query(description="Keep only this sector (repeatable, "
                                                "case-insensitive).")]
MinPrice = Annotated[float | None, Query(ge=0, allow_inf_nan=False,
                                         description="Keep only close >= this, USD.")]
Where = Annotated[str | None, Query(
    max_length=2000, description="Screen filter over the stored result columns "
                                 "(docs/screens.md), e.g. `value_score > 70 and rsi_14 < 40`; "
                                 "evaluated by PostgreSQL with bound parameters. A bad filter "
                                 "or a column scan_results does not store: 422 naming `where`.")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Rows per page.")]
Offset = Annotated[int, Query(ge=0, description="Rows to skip.")]

#: Bytes of JSON the result-page cache and the latest-answer cache hold at most (LRU).
PAGE_CACHE_BYTES = 256 * 2**20
ANSWER_CACHE_BYTES = 64 * 2**20


def plotly_js() -> Path:
    """``plotly.min.js`` as shipped inside the ``plotly`` Python package (served at
    ``/static/vendor/plotly.min.js``: no CDN, no JS build step)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def _invalid(where: str, field: str, msg: str, value: Any = None) -> RequestValidationError:
    """A 422 in FastAPI's format, naming ``field`` (``where``: query, path or body)."""
    return RequestValidationError([{"type": "value_error", "loc": (where, field), "msg": msg,
                                    "input": value}])


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str).encode()


def _sse(event: str, data: Any, event_id: int) -> bytes:
    """One Server-Sent Event: ``event``, ``id`` and one ``data`` line of JSON."""
    return (f"event: {event}\nid: {event_id}\ndata: ".encode() + _dumps(data) + b"\n\n")


class _Caches:
    """Result pages (by run id and query), the latest run id (by preset) and, for the hot
    path, whole answers of ``/v1/scans/latest`` by raw query string; shared by the event
    loop and the scan threads.

    The latest id is served stale-while-revalidate: older than :data:`LATEST_TTL_S`, it is
    still answered while one background query (never one per request) refreshes it; a run
    this process finishes drops it at once (the next request waits for the one query).
    """

    def __init__(self, target: DatabaseTarget) -> None:
        self.target = target
        self.lock = threading.Lock()
        self.pages: LRUCache[tuple, bytes] = LRUCache(maxsize=PAGE_CACHE_BYTES, getsizeof=len)
        self.answers: LRUCache[bytes, tuple[str, int, bytes]] = LRUCache(
            maxsize=ANSWER_CACHE_BYTES, getsizeof=lambda v: len(v[2]))
        self._latest: dict[str, tuple[int, float]] = {}
        self._generation = 0
        self._refreshing: dict[str, asyncio.Task] = {}

    def run_finished(self, run_id: int) -> None:
        """A run ended in this process: forget the latest ids (any thread)."""
        with self.lock:
            self._latest.clear()
            self._generation += 1

    def latest_now(self, preset: str) -> int | None:
        """The remembered latest run id of ``preset`` without waiting (None: none known);
        starts a background refresh when it is stale. Call on the event loop."""
        with self.lock:
            hit = self._latest.get(preset)
        if hit is not None and time.monotonic() - hit[1] > LATEST_TTL_S:
            self._refresh(preset)
        return None if hit is None else hit[0]

    async def latest_id(self, preset: str) -> int | None:
        """The latest run id of ``preset`` (None: it has no successful run); waits for the
        store only when none is remembered."""
        known = self.latest_now(preset)
        if known is not None:
            return known
        return await asyncio.shield(self._refresh(preset))

    def _refresh(self, preset: str) -> asyncio.Task:
        task = self._refreshing.get(preset)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._query(preset))
            # a background refresh that fails is retried by the next request: its error is
            # read here so that asyncio does not report it as never retrieved
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._refreshing[preset] = task
        return task

    async def _query(self, preset: str) -> int | None:
        with self.lock:
            generation = self._generation
        try:
            run_id = await run_in_threadpool(latest_run_id, self.target, preset)
        except Exception:
            with self.lock:  # a failed background refresh: the next request tries again
                self._latest.pop(preset, None)
            raise
        finally:
            self._refreshing.pop(preset, None)
        with self.lock:
            if run_id is not None and generation == self._generation:
                self._latest[preset] = (run_id, time.monotonic())
        return run_id


class _LatestAnswers:
    """ASGI middleware: ``GET /v1/scans/latest`` with a query string answered before is
    answered from memory (the bytes the endpoint produced for it) while the latest run is
    still the one they came from, without routing or parameter parsing."""

    def __init__(self, app: Any, caches: _Caches) -> None:
        self.app = app
        self.caches = caches

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" \
                and scope["path"] == "/v1/scans/latest":
            with self.caches.lock:
                hit = self.caches.answers.get(scope["query_string"])
            if hit is not None and self.caches.latest_now(hit[0]) == hit[1]:
                body = hit[2]
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def create_app(target: DatabaseTarget, api_key: str | None = None,
               scan_workers: int = 2) -> FastAPI:
    """The application.

    Args:
        target: the store (schema already migrated).
        api_key: the key ``POST /v1/scans`` requires in ``X-API-Key``; None or empty: writes
            are refused (403), the API is read-only.
        scan_workers: scans that run at once (worker threads).
    """
    caches = _Caches(target)
    runner = ScanRunner(target, scan_workers, on_finished=caches.run_finished)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(runner.shutdown)

    # FastAPIOffline: FastAPI whose /docs (Swagger UI) and /redoc load their JS and CSS from
    # the fastapi-offline wheel instead of a CDN: the docs work without internet too.
    app = FastAPIOffline(
        title="technic", version="1",
        summary="Ranked market scans: stored runs and results, symbols, scans streamed as "
                "Server-Sent Events.",
        description="Read-only unless the server has an API key (`TECHNIC_API_KEY`): then "
                    "`POST /v1/scans` needs it in the `X-API-Key` header. See docs/api.md.",
        lifespan=lifespan)
    app.state.runner = runner
    app.state.caches = caches
    app.add_middleware(_LatestAnswers, caches=caches)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception) -> JSONResponse:
        db = describe_database_error(e)
        return JSONResponse({"detail": db or f"{type(e).__name__}: {first_line(e)}"},
                            status_code=503 if db else 500)

    # ------------------------------------------------------------------ helpers
    def require_key(x_api_key: Annotated[str | None, Header(
            description="The server's TECHNIC_API_KEY.")] = None) -> None:
        if not api_key:
            raise HTTPException(403, "writes are disabled: the server has no API key "
                                     "(set TECHNIC_API_KEY)")
        if x_api_key is None or not secrets.compare_digest(x_api_key.encode(),
                                                           api_key.encode()):
            raise HTTPException(401, "missing or wrong X-API-Key",
                                headers={"WWW-Authenticate": "X-API-Key"})

    async def run_or_404(run_id: int) -> dict[str, Any]:
        run = await run_in_threadpool(get_scan_run, target, run_id)
        if run is None:
            raise HTTPException(404, f"no scan run {run_id}")
        return run

    def parse_columns(columns: str | None) -> tuple[str, ...]:
        if not columns:
            return SUMMARY_COLUMNS
        cols = tuple(c.strip() for c in columns.split(",") if c.strip())
        bad = [c for c in cols if c not in RESULT_FIELDS]
        if bad or not cols:
            raise _invalid("query", "columns", f"unknown column(s): {', '.join(bad)}; known: "
                           f"{', '.join(RESULT_FIELDS)}", columns)
        return cols

    def parse_where(where: str | None) -> Node | None:
        try:
            node = parse_filter(where)
            check_result_filter(node)
        except FilterError as e:
            raise _invalid("query", "where", str(e), where) from None
        return node

    async def results_page(run_id: int, columns: str | None, sort: str, order: str,
                           sector: list[str], min_price: float | None, limit: int,
                           offset: int, where: str | None = None) -> tuple[bytes, bool]:
        """The page's JSON and whether it may be cached (its run is finished)."""
        cols = parse_columns(columns)
        if sort not in RESULT_FIELDS:
            raise _invalid("query", "sort", f"unknown column {sort!r}", sort)
        node = parse_where(where)
        key = (run_id, cols, sort, order, tuple(s.lower() for s in sector), min_price, limit,
               offset, to_text(node) if node is not None else None)
        with caches.lock:
            body = caches.pages.get(key)
        if body is not None:
            return body, True
        run = await run_or_404(run_id)

        def load() -> tuple[int, list[dict[str, Any]], list[str]]:
            total, rows = read_scan_results(target, run_id, cols, sort, order == "desc",
                                            sector, min_price, limit, offset, where=node)
            return total, rows, run_sectors(target, run_id)

        total, rows, sectors = await run_in_threadpool(load)
        body = _dumps({"run": run, "total": total, "offset": offset, "limit": limit,
                       "sort": sort, "order": order, "where": to_text(node) if node else None,
                       "columns": list(cols),
                       "sectors": sectors, "results": rows})
        if run["status"] != "ok":
            return body, False
        with caches.lock:  # a finished run's results never change
            caches.pages[key] = body
        return body, True

    # ------------------------------------------------------------------ endpoints
    @app.get("/v1/health", tags=["service"])
    async def health() -> dict[str, Any]:
        """Liveness and the database: answers 503 when the database does not."""
        latest = await run_in_threadpool(latest_run_id, target, DEFAULT_PRESET)
        return {"status": "ok", "database": target.describe(), "latest_run_id": latest,
                "writes": bool(api_key)}

    @app.get("/v1/scans", tags=["scans"])
    async def scans(limit: Limit = 50, offset: Offset = 0,
                    preset: Annotated[str | None, Query(pattern=_PRESET)] = None,
                    status: Literal["running", "ok", "failed"] | None = None
                    ) -> dict[str, Any]:
        """Scan runs, newest first: parameters, status, filter counts, per-stage timings."""
        total, runs = await run_in_threadpool(list_scan_runs, target, limit, offset, preset,
                                              status)
        return {"total": total, "offset": offset, "limit": limit, "runs": runs}

    @app.get("/v1/scans/latest", tags=["scans"])
    async def latest(request: Request, columns: Columns = None, sort: Sort = "rank",
                     order: Order = "asc",
                     sector: Sector = [],  # noqa: B006 (FastAPI copies defaults)
                     min_price: MinPrice = None, limit: Limit = 100, offset: Offset = 0,
                     preset: Annotated[str, Query(pattern=_PRESET, description=(
                         "Whose latest run: `default` = latest_scan_results."))] = DEFAULT_PRESET,
                     where: Where = None) -> Response:
        """A page of the latest successful run of `preset` (what `latest_scan_results`
        shows for `default`); same parameters and answer as `GET /v1/scans/{run_id}`."""
        run_id = await caches.latest_id(preset)
        if run_id is None:
            raise HTTPException(404, f"no successful scan of preset {preset!r} yet")
        body, cacheable = await results_page(run_id, columns, sort, order, sector, min_price,
                                             limit, offset, where)
        if cacheable:
            with caches.lock:
                caches.answers[request.scope["query_string"]] = (preset, run_id, body)
        return Response(body, media_type="application/json")

    @app.get("/v1/scans/{run_id}", tags=["scans"])
    async def scan_run(run_id: Annotated[int, PathParam(ge=1)], columns: Columns = None,
                       sort: Sort = "rank", order: Order = "asc",
                       sector: Sector = [],  # noqa: B006
                       min_price: MinPrice = None, limit: Limit = 100, offset: Offset = 0,
                       where: Where = None) -> Response:
        """The run (`run`: params, status, counts, timings) and a page of its ranked results
        (`results`; `total` rows pass the filters; `sectors`: the sectors in the run)."""
        body, _ = await results_page(run_id, columns, sort, order, sector, min_price, limit,
                                     offset, where)
        return Response(body, media_type="application/json")

    @app.post("/v1/scans", tags=["scans"], status_code=202,
              dependencies=[Depends(require_key)])
    async def start(body: ScanRequest) -> dict[str, Any]:
        """Start a scan (needs `X-API-Key`). Answers at once with its run id; follow it at
        `events` (Server-Sent Events) or poll `run`. A stored preset runs as itself. Bad
        parameters: 422 naming the field, nothing stored."""
        try:
            params = body.scan_params()
        except FilterError as e:
            raise _invalid("body", "where", str(e), body.where) from None
        except ValueError as e:
            field = "preset" if "preset" in str(e) else "body"
            raise _invalid("body", field, str(e), body.preset) from None
        if body.preset is not None:
            try:
                stored = await run_in_threadpool(resolve_preset, target, body.preset,
                                                 body.as_of)
            except PresetNotFound:  # not a stored preset: only the run's name
                stored = None
            except ValueError as e:
                raise _invalid("body", "preset", str(e), body.preset) from None
            if stored is not None:
                if body.has_filters:
                    raise _invalid("body", "preset", f"preset {body.preset!r} is a stored "
                                   "preset with its own filters: send it without filter "
                                   "fields", body.preset)
                params = dataclasses.replace(stored, with_options=params.with_options
                                             or stored.with_options)
        for field, check, value in (("sectors", check_sectors, params.rules.sectors),
                                    ("industries", check_industries, params.industries)):
            try:
                await run_in_threadpool(check, target, value)
            except ValueError as e:
                raise _invalid("body", field, str(e), list(value)) from None
        run_id = await run_in_threadpool(runner.submit, params)
        return {"run_id": run_id, "status": "running",
                "events": f"/v1/scans/{run_id}/events", "run": f"/v1/scans/{run_id}"}

    @app.get("/v1/scans/{run_id}/events", tags=["scans"], response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "`run`, `progress`…, `results`…, then `done` "
                                             "(or `failed`); docs/api.md"}})
    async def events(run_id: Annotated[int, PathParam(ge=1)],
                     chunk: Annotated[int, Query(ge=1, le=1000,
                                                 description="Rows per `results` event.")] = 100
                     ) -> StreamingResponse:
        """Server-Sent Events of one run: progress per stage, then every ranked result in
        rank order (chunks), then a summary. Disconnecting does not stop the run."""
        state = runner.get(run_id)
        run = await run_or_404(run_id) if state is None else None
        return StreamingResponse(
            _tracked(state, chunk) if state is not None else _stored(run or {}, chunk),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _tracked(state, chunk: int) -> AsyncIterator[bytes]:
        n = 0
        yield _sse("run", {"run_id": state.run_id, "status": "running"}, n)
        seen, quiet = 0, 0.0
        while True:
            new, over = state.since(seen)
            for name, data in new:
                n += 1
                yield _sse(name, {"run_id": state.run_id, **data}, n)
            seen += len(new)
            if over:
                break
            if new:
                quiet = 0.0
            elif quiet >= KEEPALIVE_S:
                yield b": keep-alive\n\n"
                quiet = 0.0
            await asyncio.sleep(0.05)
            quiet += 0.05
        if state.status != "ok":
            yield _sse("failed", {"run_id": state.run_id, "status": state.status,
                                 "error": state.error}, n + 1)
            return
        for off in range(0, len(state.rows), chunk):
            n += 1
            yield _sse("results", {"run_id": state.run_id, "offset": off,
                                   "rows": state.rows[off:off + chunk]}, n)
        yield _sse("done", {"run_id": state.run_id, "status": "ok", **state.summary,
                            "results": len(state.rows)}, n + 1)

    async def _stored(run: dict[str, Any], chunk: int) -> AsyncIterator[bytes]:
        run_id = run["run_id"]
        n = 0
        yield _sse("run", {"run_id": run_id, "status": run["status"]}, n)
        waited, polls = 0.0, 0
        while run["status"] == "running":  # another process's run: follow the store
            await asyncio.sleep(DB_POLL_S)
            waited += DB_POLL_S
            polls += 1
            if waited >= KEEPALIVE_S:
                yield b": keep-alive\n\n"
                waited = 0.0
            if polls % ORPHAN_CHECK_POLLS == 0:  # its process may have died: then it ends
                await run_in_threadpool(mark_orphans, target, "scan_runs")
            now: dict[str, Any] | None = await run_in_threadpool(get_scan_run, target, run_id)
            if now is not None:
                run = now
        timings = run.get("timings") or {}
        for i, stage in enumerate(STAGES, 1):
            if stage in timings:
                n += 1
                yield _sse("progress", {"run_id": run_id, "stage": stage, "index": i,
                                        "of": len(STAGES), "seconds": timings[stage]}, n)
        if run["status"] != "ok":
            yield _sse("failed", {"run_id": run_id, "status": run["status"],
                                 "error": run.get("error")}, n + 1)
            return
        off = 0
        while True:
            _, rows = await run_in_threadpool(read_scan_results, target, run_id,
                                              SUMMARY_COLUMNS, "rank", False, (), None,
                                              chunk, off)
            if not rows:
                break
            n += 1
            yield _sse("results", {"run_id": run_id, "offset": off, "rows": rows}, n)
            off += len(rows)
        yield _sse("done", {"run_id": run_id, "status": "ok", "as_of": run["as_of"],
                            "counts": run["counts"], "timings_s": timings, "results": off},
                   n + 1)

    @app.get("/v1/symbols/{symbol}", tags=["symbols"])
    async def symbol(symbol: Annotated[str, PathParam(pattern=SYMBOL_PATTERN)],
                     days: Annotated[int, Query(ge=1, le=5000,
                                                description="Daily bars to return.")] = 250
                     ) -> dict[str, Any]:
        """Daily bars (columnar), SMA 20/50, Bollinger Bands (20, 2) and RSI 14 aligned with
        them, the latest stored features, and the symbol's rank and TechRating in the latest
        `default` run of each scan date."""
        try:
            r = await run_in_threadpool(symbol_report, target, symbol, days)
        except UnknownSymbolError as e:
            raise HTTPException(404, str(e)) from None
        return {"symbol": r.reference["symbol"], "reference": r.reference, "bars": r.bars,
                "overlays": r.overlays, "features": r.features, "ranks": r.ranks}

    # ------------------------------------------------------------------ web page
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/symbol/{symbol}", include_in_schema=False)
    async def symbol_page(symbol: str) -> FileResponse:
        return FileResponse(STATIC / "symbol.html")

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    async def plotly() -> FileResponse:
        return FileResponse(plotly_js(), media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app

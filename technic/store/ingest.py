"""Bulk ingest: validated frame → Arrow → binary COPY (ADBC) into a staging table → upsert.

One ingest is one transaction on one connection: symbols, bars and rejects all land or none
do. The upsert never deletes: an existing bar is rewritten only when a value differs, so
re-running the same ingest changes nothing (``rows_unchanged`` counts those rows). Each call is
a row in ``ingest_runs`` (status ``running`` → ``ok``/``failed``) with counts and timings.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from technic.store import runs
from technic.store.db import DatabaseTarget, adbc_connect, get_engine
from technic.store.schema import ensure_partitions, refresh_rollups
from technic.validation import PriceBasis, frame_to_table, parse_flag

log = logging.getLogger(__name__)

#: Ingests that insert or update at least this many rows refresh the table's statistics.
ANALYZE_AFTER_ROWS = 100_000


@dataclass
class IngestReport:
    """Counts and timings of one ingest run (also stored in ``ingest_runs``)."""

    run_id: int
    source: str
    path: str | None
    rows_read: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_rejected: int = 0
    symbols_upserted: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    #: Earliest and latest date among the rows inserted or updated (None: nothing changed).
    #: Caches of bar windows use it to tell "a new day was appended" from "history changed".
    changed_from: dt.date | None = None
    changed_to: dt.date | None = None
    #: Tag written to the bars' ``source`` column (a row of ``bar_sources``); None = ``source``.
    bar_source: str | None = None
    #: Price basis of ``bar_source`` (recorded in ``bar_sources``; None: unknown / as stored).
    basis: PriceBasis | None = None

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("changed_from", "changed_to"):
            d[k] = d[k].isoformat() if d[k] else None
        if d["basis"] and d["basis"]["adjusted_as_of"]:
            d["basis"]["adjusted_as_of"] = d["basis"]["adjusted_as_of"].isoformat()
        return d


class BasisConflictError(ValueError):
    """Bars arrive under a source tag whose recorded price basis says otherwise."""


#: ``bars_daily.source`` of a daily bar built from the intraday bars of a session in progress;
#: any other ingest of that (symbol, date) replaces it, and it never replaces another bar.
PARTIAL_SOURCE = "intraday-partial"


def _widen(report: IngestReport, lo: dt.date | None, hi: dt.date | None) -> None:
    if lo is not None:
        report.changed_from = lo if report.changed_from is None else min(report.changed_from, lo)
    if hi is not None:
        report.changed_to = hi if report.changed_to is None else max(report.changed_to, hi)


def bars_to_arrow(bars: pd.DataFrame | pa.Table) -> pa.Table:
    """Validated bars → Arrow table ``symbol string, date date32 | ts timestamp[us, UTC],
    OHLCV float64`` (an Arrow table from :func:`technic.validation.validate_bars` is returned
    as it is)."""
    return bars if isinstance(bars, pa.Table) else frame_to_table(bars)


def _const_strings(value: str, n: int) -> pa.Array:
    """``n`` copies of ``value`` as an Arrow string array, built from buffers (no Python
    objects: ~0 s for millions of rows)."""
    b = value.encode()
    if n * len(b) >= 2**31:
        return pa.array([value] * n, type=pa.large_string())
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(len(b))
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.tobytes()),
                                                  pa.py_buffer(b * n)])


def _universe_to_arrow(u: pd.DataFrame) -> pa.Table:
    """Universe rows → Arrow for the ``symbols`` staging table. Flags are parsed strictly
    (:func:`technic.validation.parse_flag`: ``"false"``/``"no"``/``"0"``/``"N"`` are False);
    ``market_cap`` that is not a finite number ≥ 0 becomes NULL.

    Raises:
        ValueError: a flag that is not a boolean word (run
            :func:`technic.validation.validate_universe` first to reject such rows).
    """
    def opt_bool(s: pd.Series) -> pa.Array:
        return pa.array([parse_flag(x) for x in s.to_numpy(dtype=object)], type=pa.bool_())

    def opt_str(s: pd.Series) -> pa.Array:
        return pa.array([None if pd.isna(x) else str(x) for x in s], type=pa.string())

    with np.errstate(invalid="ignore"):
        cap = pd.to_numeric(u["market_cap"], errors="coerce").to_numpy(dtype="float64")
    return pa.table({
        "symbol": opt_str(u["symbol"]), "name": opt_str(u["name"]),
        "exchange": opt_str(u["exchange"]), "sector": opt_str(u["sector"]),
        "industry": opt_str(u["industry"]), "security_type": opt_str(u["security_type"]),
        "is_etf": opt_bool(u["is_etf"]), "active": opt_bool(u["active"]),
        "market_cap": pa.array(cap, type=pa.float64(), mask=~(np.isfinite(cap) & (cap >= 0))),
    })


# Update-then-insert (one transaction): bars whose values changed are rewritten, new bars are
# inserted, identical bars are left alone. (A single INSERT … ON CONFLICT cannot tell inserts
# from updates on a partitioned table: xmax is not available there.)
# One pass over stage ⟕ table keeps the rows that change something: new keys, changed
# values, and partial bars a complete one replaces. A re-ingest of unchanged bars then costs
# one join instead of two (update join + anti-join).
# Both statements carry constant time bounds ({lo}, {hi}: SQL literals of the staged, resp.
# changed, rows' range) so that only the partitions or hypertable chunks of those dates are
# read or written: on TimescaleDB an UPDATE decompresses every compressed batch its
# constant quals do not rule out (and fails past
# timescaledb.max_tuples_decompressed_per_dml_transaction), and the UPDATE is skipped when
# no stored row changes.
_DIFF_BARS = """
INSERT INTO _diff_bars
SELECT s.symbol, s.{t}, s.open, s.high, s.low, s.close, s.volume, b.symbol IS NULL
FROM _stage_bars AS s LEFT JOIN {table} AS b ON b.symbol = s.symbol AND b.{t} = s.{t}
    AND b.{t} >= {lo} AND b.{t} <= {hi}
WHERE b.symbol IS NULL
   OR (b.open, b.high, b.low, b.close, b.volume)
      IS DISTINCT FROM (s.open, s.high, s.low, s.close, s.volume)
   OR (b.source = 'intraday-partial' AND $1 <> 'intraday-partial')
"""

_UPDATE_BARS = """
WITH up AS (
    UPDATE {table} AS b SET
        open = d.open, high = d.high, low = d.low, close = d.close, volume = d.volume,
        source = $1, ingested_at = now()
    FROM _diff_bars AS d
    WHERE NOT d.is_new AND b.symbol = d.symbol AND b.{t} = d.{t}
      AND b.{t} >= {lo} AND b.{t} <= {hi}
    RETURNING b.{t}
)
SELECT count(*), min({t})::date, max({t})::date FROM up
"""

# A plain INSERT of the new keys: no speculative insertion (ON CONFLICT costs about 2x
# here). Safe because bar ingests take the advisory lock below, one at a time.
_INSERT_BARS = """
WITH ins AS (
    INSERT INTO {table} (symbol, {t}, open, high, low, close, volume, source)
    SELECT d.symbol, d.{t}, d.open, d.high, d.low, d.close, d.volume, $1
    FROM _diff_bars AS d WHERE d.is_new
    RETURNING {t}
)
SELECT count(*), min({t})::date, max({t})::date FROM ins
"""

_LOCK_BARS = "SELECT pg_advisory_xact_lock(hashtext('technic-ingest-{table}'))"

_UPSERT_SYMBOLS = """
WITH up AS (
    INSERT INTO symbols AS s (symbol, name, exchange, sector, industry, security_type, is_etf,
                              active, market_cap)
    SELECT symbol, name, exchange, sector, industry, security_type, is_etf, active, market_cap
    FROM _stage_symbols
    ON CONFLICT (symbol) DO UPDATE SET
        name = EXCLUDED.name, exchange = EXCLUDED.exchange, sector = EXCLUDED.sector,
        industry = EXCLUDED.industry, security_type = EXCLUDED.security_type,
        is_etf = EXCLUDED.is_etf, active = EXCLUDED.active, market_cap = EXCLUDED.market_cap,
        updated_at = now()
    WHERE (s.name, s.exchange, s.sector, s.industry, s.security_type, s.is_etf, s.active,
           s.market_cap)
          IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.exchange, EXCLUDED.sector,
                            EXCLUDED.industry, EXCLUDED.security_type, EXCLUDED.is_etf,
                            EXCLUDED.active, EXCLUDED.market_cap)
    RETURNING 1
)
SELECT count(*) FROM up
"""

def start_run(target: DatabaseTarget, source: str, path: str | None) -> int:
    """Insert an ``ingest_runs`` row with status ``running`` and return its ``run_id``.

    The run holds its run lock until :func:`finish_run` (see :mod:`technic.store.runs`):
    should the process die first, the next run (or ``technic ingest status``) marks the row
    failed. Earlier rows orphaned that way are marked now.
    """
    return runs.start_run_row(target, "ingest_runs", {"source": source, "path": path})


def finish_run(target: DatabaseTarget, report: IngestReport, error: str | None = None) -> None:
    """Record the outcome of an ingest run (``ok``, or ``failed`` with the error text) and
    free its run lock (also when the update fails)."""
    try:
        _finish_run(target, report, error)
    finally:
        runs.release(target, "ingest_runs", report.run_id)


def _finish_run(target: DatabaseTarget, report: IngestReport, error: str | None) -> None:
    with get_engine(target).begin() as conn:
        conn.execute(sa.text("""
            UPDATE ingest_runs SET finished_at = now(), status = :status, rows_read = :rr,
                rows_inserted = :ri, rows_updated = :ru, rows_unchanged = :un,
                rows_rejected = :rj, symbols_upserted = :su,
                rejects_by_reason = CAST(:rbr AS jsonb), timings = CAST(:t AS jsonb),
                error = :e, changed_from = :cf, changed_to = :ct
            WHERE run_id = :id"""), {
            "status": "failed" if error else "ok", "rr": report.rows_read,
            "ri": report.rows_inserted, "ru": report.rows_updated, "un": report.rows_unchanged,
            "rj": report.rows_rejected, "su": report.symbols_upserted,
            "rbr": json.dumps(report.rejects_by_reason), "t": json.dumps(report.timings),
            "e": error, "id": report.run_id,
            "cf": report.changed_from, "ct": report.changed_to})


def _new_row_mask(cur, bars: pa.Table, intraday: bool) -> np.ndarray | None:
    """Which rows cannot collide with a stored bar, so they may be copied straight in.

    Daily: rows on a date absent from ``trading_dates`` (every date with a stored bar is
    there, maintained in the same transaction as the bars). Intraday: rows in a UTC month
    with no stored bar at all (one probe per month, pruned to its partition or chunks). Must
    run under the table's advisory lock. Returns None when every row is new.
    """
    tcol = "ts" if intraday else "date"
    col = bars[tcol]
    if intraday:
        months = col.cast(pa.int64()).to_numpy().astype("datetime64[us]") \
            .astype("datetime64[M]")
        old = []
        for m in np.unique(months):
            lo = f"{m.astype('datetime64[D]')} 00:00:00+00"
            hi = f"{(m + 1).astype('datetime64[D]')} 00:00:00+00"
            cur.execute("SELECT EXISTS (SELECT 1 FROM bars_intraday WHERE ts >= $1::timestamptz "
                        "AND ts < $2::timestamptz)", parameters=(lo, hi))
            if cur.fetchone()[0]:
                old.append(m)
        if not old:
            return None
        return ~np.isin(months, np.array(old, dtype="datetime64[M]"))
    lo, hi = pc.min_max(col).values()
    cur.execute("SELECT date FROM trading_dates WHERE date >= $1 AND date <= $2",
                parameters=(lo.as_py(), hi.as_py()))
    stored = cur.fetch_arrow_table()["date"]
    if len(stored) == 0:
        return None
    return ~pc.is_in(col, value_set=stored.combine_chunks()).to_numpy(zero_copy_only=False)


def _changed_range(cur, bars: pa.Table, intraday: bool) -> tuple[dt.date, dt.date]:
    """Earliest and latest date of ``bars``; for intraday bars ``ts::date`` as the server
    casts it (session time zone), like the upsert's ``RETURNING``."""
    lo, hi = pc.min_max(bars["ts" if intraday else "date"]).values()
    if not intraday:
        return lo.as_py(), hi.as_py()
    cur.execute("SELECT $1::timestamptz::date, $2::timestamptz::date",
                parameters=(lo.as_py().isoformat(), hi.as_py().isoformat()))
    a, b = cur.fetchone()
    return a, b


class _StoredKeyHit(Exception):
    """The direct COPY met a stored key (``trading_dates`` lagged the bars): redo the
    transaction with every row staged."""


def _copy_new_bars(cur, table: str, bars: pa.Table, source: str) -> None:
    """Binary COPY of bars known to be new straight into ``table``.

    Raises:
        _StoredKeyHit: a key was stored after all (unique violation; the transaction is
            aborted and must be rolled back).
    """
    rows = bars.append_column("source", _const_strings(source, bars.num_rows))
    try:
        cur.adbc_ingest(table, rows, mode="append")
    except Exception as e:
        if "23505" in str(e) or "duplicate key" in str(e):
            raise _StoredKeyHit(str(e)) from e
        raise


def _literal(value: dt.date | dt.datetime, intraday: bool) -> str:
    """An SQL literal of a bar time (``date``, or a tz-aware ``timestamptz``)."""
    if intraday and isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return f"TIMESTAMPTZ '{value.isoformat()}'"
    return f"DATE '{value.isoformat()}'"


def _upsert_staged(cur, report: IngestReport, bars: pa.Table, table: str, tcol: str,
                   intraday: bool, source: str) -> None:
    """Stage ``bars`` in a temporary table, rewrite changed bars, insert new ones."""
    t = time.perf_counter()
    cur.adbc_ingest("_stage_bars", bars, mode="replace", temporary=True)
    report.timings["stage_copy_s"] = round(time.perf_counter() - t, 4)
    t = time.perf_counter()
    # Temporary tables have no statistics: without them the planner guesses a tiny
    # stage and may pick nested-loop probes for millions of rows.
    cur.execute("ANALYZE _stage_bars")
    if not intraday:
        cur.execute("INSERT INTO trading_dates SELECT DISTINCT date FROM _stage_bars "
                    "ON CONFLICT DO NOTHING")
    cur.execute("CREATE TEMPORARY TABLE _diff_bars ON COMMIT DROP AS "
                "SELECT *, true AS is_new FROM _stage_bars WITH NO DATA")
    lo, hi = pc.min_max(bars[tcol]).values()
    cur.execute(_DIFF_BARS.format(table=table, t=tcol, lo=_literal(lo.as_py(), intraday),
                                  hi=_literal(hi.as_py(), intraday)), parameters=(source,))
    cur.execute("ANALYZE _diff_bars")
    cur.execute(f"SELECT count(*), min({tcol}), max({tcol}) FROM _diff_bars WHERE NOT is_new")
    n_changed, lo, hi = cur.fetchone()
    report.timings["diff_s"] = round(time.perf_counter() - t, 4)
    if n_changed:
        t = time.perf_counter()
        # TimescaleDB: stored bars of these dates may sit in compressed chunks; the bounds
        # keep the decompression to the batches of those dates, so let it run whatever the
        # row limit (a correction must not fail because its year was compressed).
        cur.execute("SELECT current_setting('timescaledb.max_tuples_decompressed_per_dml_"
                    "transaction', true) IS NOT NULL")
        if cur.fetchone()[0]:
            cur.execute("SET LOCAL timescaledb.max_tuples_decompressed_per_dml_transaction = 0")
        cur.execute(_UPDATE_BARS.format(table=table, t=tcol, lo=_literal(lo, intraday),
                                        hi=_literal(hi, intraday)), parameters=(source,))
        n, lo, hi = cur.fetchone()
        report.rows_updated += int(n)
        _widen(report, lo, hi)
        report.timings["update_s"] = round(time.perf_counter() - t, 4)
    t = time.perf_counter()
    cur.execute(_INSERT_BARS.format(table=table, t=tcol), parameters=(source,))
    n, lo, hi = cur.fetchone()
    report.rows_inserted += int(n)
    _widen(report, lo, hi)
    report.timings["insert_s"] = round(time.perf_counter() - t, 4)


def _basis_row(cur, source: str) -> PriceBasis | None:
    cur.execute("SELECT split_adjusted, dividend_adjusted, adjusted_as_of, vendor, note "
                "FROM bar_sources WHERE source = $1", parameters=(source,))
    row = cur.fetchone()
    return None if row is None else PriceBasis(*row)


def record_source(cur, source: str, basis: PriceBasis | None) -> PriceBasis:
    """Create or complete the ``bar_sources`` row of ``source`` (ADBC cursor, inside the
    ingest's transaction) and return the basis now recorded.

    Known fields are never overwritten by unknown ones; a later ``adjusted_as_of`` moves the
    row forward (a newer snapshot of the same vendor).

    Raises:
        BasisConflictError: the row says split/dividend adjusted and ``basis`` says not, or
            the reverse: bars of two bases must not share one tag.
    """
    old = _basis_row(cur, source)
    basis = basis or PriceBasis()
    if old is not None and old.conflicts_with(basis):
        raise BasisConflictError(
            f"bars tagged {source!r} are recorded as split_adjusted={old.split_adjusted}, "
            f"dividend_adjusted={old.dividend_adjusted}; these say "
            f"split_adjusted={basis.split_adjusted}, dividend_adjusted="
            f"{basis.dividend_adjusted}: store them under another source tag")
    if old is None or any(getattr(basis, f) is not None and getattr(basis, f) != getattr(old, f)
                          for f in ("split_adjusted", "dividend_adjusted", "adjusted_as_of",
                                    "vendor", "note")):
        cur.execute("""
            INSERT INTO bar_sources AS b (source, split_adjusted, dividend_adjusted,
                                          adjusted_as_of, vendor, note)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (source) DO UPDATE SET
                split_adjusted = coalesce(EXCLUDED.split_adjusted, b.split_adjusted),
                dividend_adjusted = coalesce(EXCLUDED.dividend_adjusted, b.dividend_adjusted),
                adjusted_as_of = greatest(EXCLUDED.adjusted_as_of, b.adjusted_as_of),
                vendor = coalesce(EXCLUDED.vendor, b.vendor),
                note = coalesce(EXCLUDED.note, b.note), updated_at = now()""",
                    parameters=(source, basis.split_adjusted, basis.dividend_adjusted,
                                basis.adjusted_as_of, basis.vendor, basis.note))
    return _basis_row(cur, source) or basis


def _adjust_for_applied_splits(cur, bars: pa.Table, basis: PriceBasis,
                               intraday: bool) -> pa.Table:
    """Put incoming bars on the basis of the stored ones: splits already applied to stored
    history (``corporate_actions.applied_at``) are applied to incoming bars before their
    ex-date when the incoming basis lacks them (prices ÷ ratio, volume × ratio), so
    re-ingesting an unadjusted file after a split changes nothing."""
    if basis.split_adjusted is True and basis.adjusted_as_of is None:
        return bars
    cur.execute("SELECT symbol, ex_date, split_from, split_to FROM corporate_actions "
                "WHERE kind = 'split' AND applied_at IS NOT NULL ORDER BY ex_date")
    splits = [r for r in cur.fetch_arrow_table().to_pylist() if basis.needs_split(r["ex_date"])]
    if not splits:
        return bars
    present = set(pc.unique(bars["symbol"]).to_pylist())
    splits = [r for r in splits if r["symbol"] in present]
    if not splits:
        return bars
    tcol = "ts" if intraday else "date"
    price_f = np.ones(bars.num_rows)
    sym = bars["symbol"]
    for r in splits:
        if intraday:
            edge = pd.Timestamp(r["ex_date"]).tz_localize("America/New_York").tz_convert("UTC")
            before = pc.less(bars[tcol], pa.scalar(edge.to_pydatetime(), bars[tcol].type))
        else:
            before = pc.less(bars[tcol], pa.scalar(r["ex_date"], pa.date32()))
        mask = pc.and_(pc.equal(sym, r["symbol"]), before).to_numpy(zero_copy_only=False)
        price_f[mask] *= r["split_from"] / r["split_to"]
    cols = {c: bars[c] for c in bars.column_names}
    for c in ("open", "high", "low", "close"):
        cols[c] = pa.array(bars[c].to_numpy() * price_f)
    cols["volume"] = pa.array(bars["volume"].to_numpy() / price_f)
    return pa.table(cols, schema=bars.schema)


def _store_bars(cur, report: IngestReport, bars: pa.Table, intraday: bool,
                stage_all: bool = False) -> None:
    table, tcol = ("bars_intraday", "ts") if intraday else ("bars_daily", "date")
    source = report.bar_source or report.source
    t = time.perf_counter()
    cur.execute(_LOCK_BARS.format(table=table))
    cur.fetchall()
    # Symbols without reference data get a bare row, so every bar references one.
    cur.adbc_ingest("_stage_symbols_seen", pa.table({"symbol": pc.unique(bars["symbol"])}),
                    mode="replace", temporary=True)
    cur.execute("INSERT INTO symbols (symbol) SELECT symbol FROM _stage_symbols_seen "
                "ON CONFLICT (symbol) DO NOTHING")
    basis = record_source(cur, source, report.basis)
    bars = _adjust_for_applied_splits(cur, bars, basis, intraday)
    new = np.zeros(bars.num_rows, dtype=bool) if stage_all else \
        _new_row_mask(cur, bars, intraday)
    report.timings["plan_s"] = round(time.perf_counter() - t, 4)
    direct = bars if new is None else bars.filter(pa.array(new))
    rest = None if new is None else bars.filter(pa.array(~new))
    if direct.num_rows:
        # Keys on dates (months) without any stored bar cannot collide: a plain COPY into
        # the table, no staging, no update, no anti-join.
        t = time.perf_counter()
        _copy_new_bars(cur, table, direct, source)
        if not intraday:
            cur.adbc_ingest("_stage_dates", pa.table({"date": pc.unique(direct["date"])}),
                            mode="replace", temporary=True)
            cur.execute("INSERT INTO trading_dates SELECT date FROM _stage_dates "
                        "ON CONFLICT DO NOTHING")
        report.rows_inserted += direct.num_rows
        _widen(report, *_changed_range(cur, direct, intraday))
        report.timings["copy_s"] = round(time.perf_counter() - t, 4)
    if rest is not None and rest.num_rows:
        _upsert_staged(cur, report, rest, table, tcol, intraday, source)
    report.rows_unchanged = bars.num_rows - report.rows_inserted - report.rows_updated


def _write_transaction(target: DatabaseTarget, report: IngestReport, bars: pa.Table | None,
                       rejects: pd.DataFrame | None, universe: pd.DataFrame | None,
                       intraday: bool, stage_all: bool = False) -> None:
    """Symbols, bars and rejects of one ingest in one transaction (rolled back on error)."""
    with adbc_connect(target) as conn, conn.cursor() as cur:
        if universe is not None and len(universe):
            t = time.perf_counter()
            cur.adbc_ingest("_stage_symbols", _universe_to_arrow(universe), mode="create",
                            temporary=True)
            cur.execute(_UPSERT_SYMBOLS)
            report.symbols_upserted = int(cur.fetchone()[0])
            report.timings["symbols_s"] = round(time.perf_counter() - t, 4)
        if bars is not None and bars.num_rows:
            t = time.perf_counter()
            _store_bars(cur, report, bars, intraday, stage_all)
            report.timings["upsert_s"] = round(time.perf_counter() - t, 4)
        if rejects is not None and len(rejects):
            t = time.perf_counter()
            stage = pa.table({"row": pa.array(rejects["row"].tolist(), type=pa.string()),
                              "reason": pa.array(rejects["reason"].tolist(), type=pa.string())})
            cur.adbc_ingest("_stage_rejects", stage, mode="create", temporary=True)
            cur.execute("INSERT INTO ingest_rejects (run_id, source, row, reason) "
                        "SELECT $1, $2, CAST(row AS jsonb), reason FROM _stage_rejects",
                        parameters=(report.run_id, report.source))
            report.timings["rejects_s"] = round(time.perf_counter() - t, 4)
        conn.commit()


def write_ingest(
    target: DatabaseTarget,
    report: IngestReport,
    bars: pa.Table | pd.DataFrame | None,
    rejects: pd.DataFrame | None = None,
    universe: pd.DataFrame | None = None,
) -> IngestReport:
    """Store validated bars, rejects and universe rows in one transaction; fill ``report``.

    Bars on dates (intraday: UTC months) that have no stored bar yet are copied straight
    into the table (binary COPY, no staging); the others go through a staging table and an
    update of changed bars plus an insert of new keys. Both run under one advisory lock per
    bars table, so concurrent ingests of the same table serialise.

    Args:
        target: where to write.
        report: the run's report (``run_id`` from :func:`start_run`); counts, timings and
            ``changed_from``/``changed_to`` are filled in.
        bars: validated bars (:attr:`technic.validation.ValidationResult.table`, or its
            pandas ``good``): ``symbol``, ``date`` or ``ts`` (bar start, UTC), OHLC (USD per
            share), ``volume`` (shares). Stored with source ``report.bar_source`` (default
            ``report.source``).
        rejects: columns ``row`` (JSON text) and ``reason``.
        universe: reference rows (see :func:`technic.providers.files.read_universe`).

    Raises:
        Exception: any database error; the transaction is rolled back, nothing is written.
    """
    t0 = time.perf_counter()
    if bars is not None:
        bars = bars_to_arrow(bars)
    intraday = bars is not None and "ts" in bars.column_names
    table, tcol = ("bars_intraday", "ts") if intraday else ("bars_daily", "date")
    if bars is not None and bars.num_rows:
        unit = "M" if intraday else "Y"
        # distinct times first (a hash, ~10 ms), then their periods
        raw = pc.unique(bars[tcol]).cast(pa.int64() if intraday else pa.int32()).to_numpy()
        when = raw.astype("datetime64[us]") if intraday else raw.astype("datetime64[D]")
        periods = np.unique(when.astype(f"datetime64[{unit}]"))
        with get_engine(target).begin() as conn:
            ensure_partitions(conn, target.schema, table, periods)
    report.timings["partitions_s"] = round(time.perf_counter() - t0, 4)

    try:
        _write_transaction(target, report, bars, rejects, universe, intraday)
    except _StoredKeyHit as e:
        log.warning("ingest run %d: direct copy met a stored key (%s); staging every row",
                    report.run_id, str(e).splitlines()[0])
        report.rows_inserted = report.rows_updated = report.rows_unchanged = 0
        report.changed_from = report.changed_to = None
        _write_transaction(target, report, bars, rejects, universe, intraday, stage_all=True)
    changed = report.rows_inserted + report.rows_updated
    if bars is not None and changed > 0:
        with get_engine(target).begin() as c:
            # Fresh statistics after bulk loads; a daily increment is left to autovacuum.
            # Only the key columns: every query filters or joins on them, and the sampled
            # OHLCV columns (NOT NULL float8) would only add ~30% to the ~1 s it takes.
            if changed >= ANALYZE_AFTER_ROWS:
                t = time.perf_counter()
                c.execute(sa.text(f"ANALYZE {table} (symbol, {tcol})"))
                report.timings["analyze_s"] = round(time.perf_counter() - t, 4)
    if bars is not None and changed > 0 and intraday:
        # after the commit: continuous aggregates refresh outside transactions
        t = time.perf_counter()
        lo, hi = pc.min_max(bars[tcol]).values()
        refresh_rollups(get_engine(target), target.schema, lo.as_py(), hi.as_py())
        report.timings["rollups_s"] = round(time.perf_counter() - t, 4)
    report.timings["store_s"] = round(time.perf_counter() - t0, 4)
    return report


def write_partial_daily(target: DatabaseTarget, report: IngestReport, day: dt.date,
                        start: dt.datetime, until: dt.datetime) -> IngestReport:
    """Aggregate ``bars_intraday`` with ``start <= ts < until`` into one daily bar per symbol
    for session ``day`` and upsert them into ``bars_daily`` with source ``intraday-partial``.

    A partial bar is written where ``(symbol, day)`` has no bar or only an older partial one
    (updated when its values changed); a stored complete bar is never replaced (counted as
    unchanged). Open = first bar's open, high/low = max/min, close = last bar's close, volume
    = sum. One transaction under the ``bars_daily`` ingest lock; ``trading_dates`` gets
    ``day``; ``report.changed_from``/``changed_to`` = ``day`` when anything changed. The
    ``intraday-partial`` row of ``bar_sources`` takes the basis of the intraday source.

    Args:
        day: the New York session date.
        start, until: tz-aware UTC bounds on bar starts (session open, the "as of" time).
    """
    t0 = time.perf_counter()
    with get_engine(target).begin() as c:
        ensure_partitions(c, target.schema, "bars_daily", [day.year])
    with get_engine(target).begin() as c:
        c.execute(sa.text(_LOCK_BARS.format(table="bars_daily")))
        c.execute(sa.text("""
            CREATE TEMPORARY TABLE _partial ON COMMIT DROP AS
            SELECT symbol, (array_agg(open ORDER BY ts))[1] AS open, max(high) AS high,
                   min(low) AS low, (array_agg(close ORDER BY ts DESC))[1] AS close,
                   sum(volume) AS volume, count(*) AS n_bars,
                   min(source) AS src_lo, max(source) AS src_hi
            FROM bars_intraday WHERE ts >= :a AND ts < :b GROUP BY symbol"""),
            {"a": start, "b": until})
        report.rows_read = int(c.execute(sa.text("SELECT count(*) FROM _partial")).scalar_one())
        srcs = c.execute(sa.text("SELECT DISTINCT src_lo FROM _partial UNION "
                                 "SELECT DISTINCT src_hi FROM _partial")).scalars().all()
        basis = None
        if len(srcs) == 1:
            row = c.execute(sa.text(
                "SELECT split_adjusted, dividend_adjusted, adjusted_as_of, vendor "
                "FROM bar_sources WHERE source = :s"), {"s": srcs[0]}).first()
            basis = PriceBasis(*row) if row else None
        note = ("daily bar of a session in progress, built from bars_intraday ("
                + ", ".join(sorted(srcs)) + "); replaced by the complete bar")
        c.execute(sa.text("""
            INSERT INTO bar_sources (source, split_adjusted, dividend_adjusted, adjusted_as_of,
                                     vendor, note)
            VALUES (:s, :sa, :da, :asof, :v, :n)
            ON CONFLICT (source) DO UPDATE SET split_adjusted = EXCLUDED.split_adjusted,
                dividend_adjusted = EXCLUDED.dividend_adjusted,
                adjusted_as_of = EXCLUDED.adjusted_as_of, vendor = EXCLUDED.vendor,
                note = EXCLUDED.note, updated_at = now()"""),
            {"s": PARTIAL_SOURCE, "sa": basis and basis.split_adjusted,
             "da": basis and basis.dividend_adjusted, "asof": basis and basis.adjusted_as_of,
             "v": basis and basis.vendor, "n": note})
        if report.rows_read:
            c.execute(sa.text("INSERT INTO symbols (symbol) SELECT symbol FROM _partial "
                              "ON CONFLICT (symbol) DO NOTHING"))
            c.execute(sa.text("INSERT INTO trading_dates VALUES (:d) ON CONFLICT DO NOTHING"),
                      {"d": day})
        report.rows_updated = c.execute(sa.text("""
            WITH up AS (
                UPDATE bars_daily b SET open = p.open, high = p.high, low = p.low,
                    close = p.close, volume = p.volume, ingested_at = now()
                FROM _partial p
                WHERE b.symbol = p.symbol AND b.date = :d AND b.source = :s
                  AND (b.open, b.high, b.low, b.close, b.volume)
                      IS DISTINCT FROM (p.open, p.high, p.low, p.close, p.volume)
                RETURNING 1)
            SELECT count(*) FROM up"""), {"d": day, "s": PARTIAL_SOURCE}).scalar_one()
        report.rows_inserted = c.execute(sa.text("""
            WITH ins AS (
                INSERT INTO bars_daily (symbol, date, open, high, low, close, volume, source)
                SELECT p.symbol, :d, p.open, p.high, p.low, p.close, p.volume, :s
                FROM _partial p
                WHERE NOT EXISTS (SELECT 1 FROM bars_daily b
                                  WHERE b.symbol = p.symbol AND b.date = :d)
                RETURNING 1)
            SELECT count(*) FROM ins"""), {"d": day, "s": PARTIAL_SOURCE}).scalar_one()
    report.rows_unchanged = report.rows_read - report.rows_inserted - report.rows_updated
    if report.rows_inserted + report.rows_updated:
        _widen(report, day, day)
    report.timings["store_s"] = round(time.perf_counter() - t0, 4)
    return report


def conflicting_daily_sources(target: DatabaseTarget, source: str) -> list[str]:
    """Other sources with bars in ``bars_daily`` whose recorded price basis disagrees with
    ``source``'s (split or dividend adjustment): feature windows that cross from one to the
    other splice two price bases. Empty when the bases agree or are unknown."""
    with get_engine(target).connect() as c:
        others = c.execute(sa.text("""
            SELECT o.source FROM bar_sources s JOIN bar_sources o ON o.source <> s.source
            WHERE s.source = :s AND o.source <> :partial
              AND ((s.split_adjusted IS NOT NULL AND o.split_adjusted IS NOT NULL
                    AND s.split_adjusted <> o.split_adjusted)
                OR (s.dividend_adjusted IS NOT NULL AND o.dividend_adjusted IS NOT NULL
                    AND s.dividend_adjusted <> o.dividend_adjusted))
            ORDER BY 1"""), {"s": source, "partial": PARTIAL_SOURCE}).scalars().all()
        return [o for o in others if c.execute(sa.text(
            "SELECT EXISTS (SELECT 1 FROM bars_daily WHERE source = :o)"), {"o": o}).scalar()]

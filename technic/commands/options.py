"""``technic options``: option metrics and Polygon option-chain snapshots.

Option-chain files are loaded by ``technic ingest files FILE`` (their metrics are computed
right after); these commands recompute the metrics (e.g. after more daily bars arrived, for
the IV / realized-vol ratio) and fetch live chains.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from technic.commands.common import fail, out, parse_date
from technic.commands.common import target as open_target

app = typer.Typer(help="Option chains and option metrics (docs/options.md).",
                  no_args_is_help=True, rich_markup_mode="markdown")


@app.command("metrics")
def metrics_cmd(
    start: Annotated[str | None, typer.Option(help="First session (YYYY-MM-DD); default: "
                                                   "the first stored chain.")] = None,
    end: Annotated[str | None, typer.Option(help="Last session (YYYY-MM-DD); default: the "
                                                 "last stored chain.")] = None,
) -> None:
    """Compute option_metrics (ATM IV 30/90 d, term slope, 25-delta skew, put/call ratios,
    volume / OI, expected move, IV / 20-day realized vol, IV rank) for the stored chains of
    the sessions in range, replacing earlier values."""
    from technic.jobs.options import compute_option_metrics

    a, b = parse_date(start, "--start"), parse_date(end, "--end")
    target, _ = open_target()
    n = compute_option_metrics(target, a, b)
    out.print(f"option_metrics: {n:,} (session, underlying) row(s) written")


@app.command("snapshot")
def snapshot_cmd(
    underlying: Annotated[list[str], typer.Argument(help="Underlying tickers, e.g. AAPL SPY.")],
    session: Annotated[str | None, typer.Option(help="Session the snapshot stands for "
                                                     "(default: today in New York).")] = None,
) -> None:
    """Fetch Polygon option-chain snapshots (/v3/snapshot/options/{underlying}, all pages)
    into option_chains and compute their metrics. Needs TECHNIC_POLYGON_API_KEY."""
    from technic.config import get_settings
    from technic.jobs.options import ingest_option_snapshot
    from technic.providers.polygon import PolygonClient, PolygonError

    day = parse_date(session, "--session")
    s = get_settings()
    try:  # the key comes from TECHNIC_POLYGON_API_KEY; a missing or malformed one: exit 2
        client = PolygonClient(base_url=s.polygon_base_url,
                               requests_per_minute=s.polygon_requests_per_minute)
    except PolygonError as e:
        raise fail(str(e), 2) from None
    target, _ = open_target()
    try:
        with client:
            reports = ingest_option_snapshot(target, client, [u.upper() for u in underlying],
                                             day)
    except PolygonError as e:
        raise fail(str(e)) from None
    t = Table("run", "underlying", "read", "inserted", "updated", "unchanged", "rejected",
              title="option chain snapshots")
    for r in reports:
        t.add_row(str(r.run_id), r.path or "", f"{r.rows_read:,}", f"{r.rows_inserted:,}",
                  f"{r.rows_updated:,}", f"{r.rows_unchanged:,}", f"{r.rows_rejected:,}")
    out.print(t)
    for r in reports:
        for reason, n in r.rejects_by_reason.items():
            out.print(f"  run {r.run_id}: {n:,} row(s) rejected: {reason}")


def options_table(results, top: int) -> Table:
    """The option columns of the best-ranked ``top`` symbols with a chain on the scan date
    (``technic scan --with-options``)."""
    t = Table("rank", "symbol", "IV 30d", "IV/RV 20", "IV rank", "skew 25Δ", "P/C vol",
              "exp. move", title="options: best-ranked symbols with a chain that day")

    def f(v, fmt):
        return "—" if v is None or v != v else fmt.format(v)

    if "opt_atm_iv_30d" not in results.columns:
        return t
    for r in results[results["opt_atm_iv_30d"].notna()].head(top).itertuples():
        t.add_row(str(r.rank), r.symbol, f(r.opt_atm_iv_30d, "{:.1%}"),
                  f(r.opt_iv_rv_20, "{:.2f}"), f(r.opt_iv_rank_252, "{:.2f}"),
                  f(r.opt_skew_25d, "{:+.3f}"),
                  f(r.opt_put_call_volume, "{:.2f}"), f(r.opt_expected_move_pct, "{:.1%}"))
    return t

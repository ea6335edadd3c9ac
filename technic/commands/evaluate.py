"""``technic evaluate`` and ``technic train``: the score evaluation (docs/evaluation) and
the walk-forward alpha models it evaluates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from technic.commands.common import console, fail, out, parse_date
from technic.commands.common import target as open_target
from technic.config import get_settings


def evaluate(
    start: Annotated[str | None, typer.Option(help="First scan date (YYYY-MM-DD); needed "
                                                   "unless --write-docs.")] = None,
    end: Annotated[str | None, typer.Option(help="Last scan date (YYYY-MM-DD); needed "
                                                 "unless --write-docs.")] = None,
    report: Annotated[Path, typer.Option(help="Markdown report to write (PNG plots and the "
                                              "per-date IC go next to it).")] = Path(
        "technic-evaluation.md"),
    oos: Annotated[Path | None, typer.Option(help="Out-of-sample alpha predictions "
                                                  "(oos_alpha.parquet of `technic train`) "
                                                  "to use instead of the walk-forward "
                                                  "models of the model folder "
                                                  "(TECHNIC_MODEL_DIR, default models/).")
                   ] = None,
    write_docs: Annotated[bool, typer.Option(
        "--write-docs", help="Regenerate docs/evaluation: the default-rank study on the real "
                             "bar files of --data (no database), design vs locked test.")
    ] = False,
    data: Annotated[Path, typer.Option(help="Folder with bars_daily.parquet, universe.parquet"
                                            " and bars_daily_2014_2016.parquet "
                                            "(--write-docs).")] = Path("../shared/data"),
    docs: Annotated[Path, typer.Option(help="Output folder of --write-docs.")] = Path(
        "docs/evaluation"),
    retrain: Annotated[bool, typer.Option(help="With --write-docs: refit the walk-forward "
                                               "models first (minutes) instead of using the "
                                               "stored ones.")] = False,
) -> None:
    """Score evaluation by the protocol of docs/evaluation/README.md: every score is reported
    on the store's design period and, separately, on its locked test period (the last 12
    months), labelled with the dates it was designed on: mean RankIC with Newey-West t and a
    block-bootstrap CI, spreads after 10 bps per side, RankIC by year and size tercile, decile
    returns, PNG plots. Alphas come from the walk-forward models trained before each date.
    Needs stored feature history (`technic features backfill`). With --write-docs: the
    default-rank study on the real bar files instead (one command for docs/evaluation)."""
    from technic.jobs.evaluate import SCORE_NAMES, write_evaluation
    from technic.jobs.evaluate import evaluate as run_evaluation

    if write_docs:
        from technic.jobs.study import CANDIDATES, run_study

        with console.status("default-rank study (minutes) …"):
            try:
                table, (score, cleared, reason) = run_study(
                    data, get_settings().model_dir, docs, train=retrain)
            except (FileNotFoundError, ValueError) as e:
                raise fail(str(e)) from None
        out.print(f"default rank: {CANDIDATES[score]} — {reason}")
        out.print(f"written: {docs}/default_rank.md (+ PNG, CSV)")
        return
    if start is None or end is None:
        raise fail("--start and --end are required (or use --write-docs)", 2)
    s_date, e_date = parse_date(start, "--start"), parse_date(end, "--end")
    target, _ = open_target()
    with console.status("evaluating …"):
        try:
            ev = run_evaluation(target, s_date, e_date, oos_path=oos)
        except LookupError as e:
            raise fail(str(e)) from None
    if ev.split is not None and not ev.protocol.empty:
        t = Table("period", "score (designed on)", "horizon", "dates", "mean RankIC", "NW t",
                  "95% CI", "top−bottom net", "top−median net",
                  title=f"Design {ev.split.design_start} … {ev.split.design_end} vs locked "
                        f"test {ev.split.test_start} … {ev.split.test_end} (10 bps per side)")
        for r in ev.protocol.itertuples():
            t.add_row(r.period, f"{SCORE_NAMES.get(r.score, r.score)} ({r.designed_on})",
                      f"{r.horizon} bars", str(r.dates), f"{r.mean_rank_ic:+.4f}",
                      f"{r.nw_t:+.2f}", f"[{r.ci_lo:+.3f}, {r.ci_hi:+.3f}]",
                      f"{r.top_bottom_net:+.3%}", f"{r.top_median_net:+.3%}")
        out.print(t)
    plots, ic_path = write_evaluation(ev, report, target.describe())
    out.print(f"report: {report}  plots: {', '.join(str(p) for p in plots)}  per-date IC: "
              f"{ic_path}")


def train(
    start: Annotated[str, typer.Option(help="First feature date (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option(help="Last feature date (YYYY-MM-DD).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the models, metrics and "
                                                        "card.")] = Path("models"),
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same models).")] = 0,
) -> None:
    """Train the XGBoost alpha models (5- and 10-bar forward excess return) on stored feature
    history (`technic features backfill` first) with purged, embargoed walk-forward folds;
    writes alpha_5d.json, alpha_10d.json, metrics.json and MODEL_CARD.md."""
    from technic.ml.train import train_models

    s_date, e_date = parse_date(start, "--start"), parse_date(end, "--end")
    target, _ = open_target()
    with console.status("training (walk-forward folds, then the final models) …"):
        try:
            metrics = train_models(target, s_date, e_date, out_dir, seed)
        except (LookupError, ValueError) as e:
            raise fail(str(e)) from None
    for h, hm in metrics["horizons"].items():
        sm = hm["summary"]
        out.print(f"{h}-bar walk-forward: mean RankIC {sm['mean_rank_ic']:+.4f} (ICIR "
                  f"{sm['rank_icir']:+.3f}), top−bottom decile {sm['mean_spread']:+.3%}")
    out.print(f"models, metrics and card written to {out_dir}/")

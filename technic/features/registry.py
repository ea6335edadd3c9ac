"""The feature registry: every stored feature defined once.

Each :class:`Feature` names its column, unit, the migration that added it, and either the
indicator value it is (``series``, a :class:`Series`: an indicator of
:mod:`technic.indicators` with its inputs and parameters, one of its outputs, optionally ``lag``
own bars back) or how it is derived elementwise from named series (``derive`` over ``needs``).
Helper series that are not stored themselves (e.g. ``obv``, ``close_lag_21``) are declared in
:data:`HELPER_SERIES`.

Everything else is generated from :data:`FEATURES`:

* :data:`FEATURE_COLUMNS` and :func:`columns_added_by` — the ``features_daily`` columns, in
  table order, and the DDL of each migration that adds some (:mod:`technic.store.migrations`);
* :data:`FEATURE_UNITS` and :func:`units_table` — the units table of docs/tables.md (a test
  checks that the document matches);
* :data:`SERIES` — every indicator value to compute, from which :mod:`technic.features.plans`
  builds the full-panel CPU plan, the GPU plan and the last-row (incremental) plan.

Adding a feature: append one :class:`Feature` (its migration adds the column with
:func:`columns_added_by`); if its indicator is new to the plans, add its step to
:mod:`technic.features.plans` (last-row opcode) as well.

This module imports only numpy: the store's schema builds its DDL from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

#: Raw inputs a series can read: the panel's fields, and ``dollar_volume`` = close * volume.
INPUTS: tuple[str, ...] = ("high", "low", "close", "volume", "dollar_volume")


@dataclass(frozen=True)
class Series:
    """One indicator value: ``technic.indicators.<indicator>(*inputs, *params)[output]``,
    taken ``lag`` own bars back (``indicator="bar"``: the input itself)."""

    indicator: str
    inputs: tuple[str, ...]
    params: tuple[float, ...] = ()
    output: int = 0
    lag: int = 0

    @property
    def call(self) -> tuple[str, tuple[str, ...], tuple[float, ...]]:
        """The indicator call this series is an output of (shared by its other outputs)."""
        return self.indicator, self.inputs, self.params


@dataclass(frozen=True)
class Feature:
    """A ``features_daily`` column (``double precision``)."""

    name: str
    unit: str
    migration: int
    series: Series | None = None
    derive: Callable[[Mapping[str, np.ndarray]], np.ndarray] | None = field(
        default=None, repr=False, compare=False)
    needs: tuple[str, ...] = ()


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b`` elementwise, NaN where that is not finite."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(a / b, dtype=np.float64)
    out[~np.isfinite(out)] = np.nan
    return out


def _lag_of(name: str, s: Series, k: int) -> tuple[str, Series]:
    return f"{name}_lag_{k}", Series(s.indicator, s.inputs, s.params, s.output, k)


_C = ("close",)
_HLC = ("high", "low", "close")
_BAR_C = Series("bar", _C)
_OBV = Series("obv", ("close", "volume"))
_AVG_VOL = Series("sma", ("volume",), (20,))

#: Indicator values the derivations use that are not stored columns themselves.
HELPER_SERIES: dict[str, Series] = dict([
    ("obv", _OBV),
    _lag_of("obv", _OBV, 20),
    *(_lag_of("close", _BAR_C, k) for k in (21, 63, 126, 252)),
    _lag_of("avg_volume_20", _AVG_VOL, 1),
])


def _ret(k: int) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    return lambda g: _ratio(g["close"], g[f"close_lag_{k}"]) - 1.0


def _direct(name: str, unit: str, series: Series, migration: int = 1) -> Feature:
    return Feature(name, unit, migration, series=series)


def _derived(name: str, unit: str, needs: tuple[str, ...],
             derive: Callable[[Mapping[str, np.ndarray]], np.ndarray],
             migration: int = 1) -> Feature:
    return Feature(name, unit, migration, derive=derive, needs=needs)


#: The stored features, in ``features_daily`` column order (new ones are appended).
FEATURES: tuple[Feature, ...] = (
    _direct("close", "USD per share, last bar", _BAR_C),
    _direct("volume", "shares, last bar", Series("bar", ("volume",))),
    _direct("sma_20", "USD, simple moving average of close over 20 bars",
            Series("sma", _C, (20,))),
    _direct("sma_50", "USD, SMA of close, 50 bars", Series("sma", _C, (50,))),
    _direct("sma_200", "USD, SMA of close, 200 bars", Series("sma", _C, (200,))),
    _direct("ema_12", "USD, EMA of close, 12 bars (TA-Lib seeding)", Series("ema", _C, (12,))),
    _direct("ema_26", "USD, EMA of close, 26 bars", Series("ema", _C, (26,))),
    _direct("rsi_14", "0-100, Wilder RSI over 14 bars", Series("rsi", _C, (14,))),
    _direct("macd", "USD, EMA12 - EMA26 of close (TA-Lib MACD)",
            Series("macd", _C, (12, 26, 9), 0)),
    _direct("macd_signal", "USD, EMA9 of macd", Series("macd", _C, (12, 26, 9), 1)),
    _direct("macd_hist", "USD, macd - macd_signal", Series("macd", _C, (12, 26, 9), 2)),
    _direct("bb_upper", "USD, Bollinger upper band (20 bars, 2 population std)",
            Series("bbands", _C, (20, 2.0), 0)),
    _direct("bb_middle", "USD, Bollinger middle band (SMA 20)",
            Series("bbands", _C, (20, 2.0), 1)),
    _direct("bb_lower", "USD, Bollinger lower band", Series("bbands", _C, (20, 2.0), 2)),
    _derived("bb_pctb",
             "fraction, (close - lower) / (upper - lower); 0 = lower band, 1 = upper",
             ("close", "bb_upper", "bb_lower"),
             lambda g: _ratio(g["close"] - g["bb_lower"], g["bb_upper"] - g["bb_lower"])),
    _derived("bb_width", "fraction, (upper - lower) / middle",
             ("bb_upper", "bb_middle", "bb_lower"),
             lambda g: _ratio(g["bb_upper"] - g["bb_lower"], g["bb_middle"])),
    _direct("atr_14", "USD, Wilder average true range over 14 bars",
            Series("atr", _HLC, (14,))),
    _derived("natr_14", "percent, 100 * atr_14 / close (TA-Lib NATR)", ("atr_14", "close"),
             lambda g: 100.0 * _ratio(g["atr_14"], g["close"])),
    _direct("adx_14", "0-100, Wilder ADX over 14 bars", Series("adx", _HLC, (14,))),
    _derived("obv_trend_20",
             "fraction in [-1, 1], change of OBV over 20 bars / volume of those bars",
             ("obv", "obv_lag_20", "avg_volume_20"),
             lambda g: _ratio(g["obv"] - g["obv_lag_20"], 20.0 * g["avg_volume_20"])),
    _direct("roc_10", "percent, TA-Lib ROC over 10 bars", Series("roc", _C, (10,))),
    _derived("ret_21d", "fraction, close / close 21 bars ago - 1 (about 1 month)",
             ("close", "close_lag_21"), _ret(21)),
    _derived("ret_63d", "fraction, 63-bar return (about 3 months)",
             ("close", "close_lag_63"), _ret(63)),
    _derived("ret_126d", "fraction, 126-bar return (about 6 months)",
             ("close", "close_lag_126"), _ret(126)),
    _derived("ret_252d", "fraction, 252-bar return (about 12 months)",
             ("close", "close_lag_252"), _ret(252)),
    _derived("ret_12_1", "fraction, return from 252 to 21 bars ago (12-1 momentum)",
             ("close_lag_21", "close_lag_252"),
             lambda g: _ratio(g["close_lag_21"], g["close_lag_252"]) - 1.0),
    _direct("avg_volume_20", "shares, mean volume over 20 bars", _AVG_VOL),
    _direct("dollar_volume_20", "USD, mean of close * volume over 20 bars",
            Series("sma", ("dollar_volume",), (20,))),
    _derived("rel_volume_20", "ratio, volume / mean volume of the 20 bars before",
             ("volume", "avg_volume_20_lag_1"),
             lambda g: _ratio(g["volume"], g["avg_volume_20_lag_1"])),
    _direct("realized_vol_20", "annualized fraction, std of 20 daily log returns * sqrt(252)",
            Series("realized_vol", _C, (20,))),
    _direct("realized_vol_60", "annualized fraction, std of 60 daily log returns * sqrt(252)",
            Series("realized_vol", _C, (60,))),
    _direct("high_52w", "USD, highest high of the last 252 bars",
            Series("rolling_max", ("high",), (252,))),
    _direct("low_52w", "USD, lowest low of the last 252 bars",
            Series("rolling_min", ("low",), (252,))),
    _derived("dist_52w_high", "fraction, close / high_52w - 1 (<= 0)", ("close", "high_52w"),
             lambda g: _ratio(g["close"], g["high_52w"]) - 1.0),
    _derived("dist_52w_low", "fraction, close / low_52w - 1 (>= 0)", ("close", "low_52w"),
             lambda g: _ratio(g["close"], g["low_52w"]) - 1.0),
    _direct("trend_r2_63",
            "fraction 0-1, R^2 of the least-squares line of the last 63 closes on the bar "
            "index (1 = every close on the line; says how straight, not which direction); "
            "NULL with fewer than 63 bars, when those 63 closes are all equal, and in rows "
            "written before migration 9",
            Series("linreg_r2", _C, (63,)), migration=9),
    _direct("mfi_14",
            "0-100, Money Flow Index over 14 bars (TA-Lib MFI: typical price (h + l + c) / 3 "
            "times volume, summed on up and on down bars; 100 * up / (up + down)); NULL with "
            "14 bars or fewer and in rows written before migration 15",
            Series("mfi", ("high", "low", "close", "volume"), (14,)), migration=15),
)

#: Columns of ``features_daily`` after (symbol, date), all ``double precision``, in table order.
FEATURE_COLUMNS: tuple[str, ...] = tuple(f.name for f in FEATURES)

#: Unit and meaning of each feature column (docs/tables.md: :func:`units_table`).
FEATURE_UNITS: dict[str, str] = {f.name: f.unit for f in FEATURES}

#: Every indicator value the features are made of, by name: the stored direct features and
#: :data:`HELPER_SERIES` (what the plans compute; the derivations read it).
SERIES: dict[str, Series] = {
    **{f.name: f.series for f in FEATURES if f.series is not None}, **HELPER_SERIES}

#: Bars of history a symbol needs for every feature to be defined (the longest lookback:
#: 252 + 1 for the 12-month return); fewer bars leave the longer features NaN.
FULL_HISTORY_BARS = 253


def columns_added_by(version: int) -> tuple[str, ...]:
    """The feature columns that schema migration ``version`` adds, in table order."""
    return tuple(f.name for f in FEATURES if f.migration == version)


def derive_features(g: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The :data:`FEATURE_COLUMNS` from the :data:`SERIES` values, elementwise.

    One definition for the full panels (``(T, N)``), the GPU path (rows copied back) and the
    last-row path of the incremental refresh (``(N,)``), so all give the same bits.

    Args:
        g: arrays of one shape named as :data:`SERIES` (NaN where undefined).

    Returns:
        ``{column: array}`` for every name of :data:`FEATURE_COLUMNS` (ratios that are not
        finite become NaN). Units: :data:`FEATURE_UNITS`.

    Raises:
        KeyError: a series is missing.
    """
    out: dict[str, np.ndarray] = {}
    for f in FEATURES:
        out[f.name] = g[f.name] if f.derive is None else f.derive(g)
    return out


def units_table() -> str:
    """The feature rows of docs/tables.md's ``features_daily`` table (Markdown)."""
    return "\n".join(f"| `{f.name}` | {f.unit} |" for f in FEATURES)


def _check() -> None:
    names = [f.name for f in FEATURES]
    if len(set(names)) != len(names):
        raise ValueError("duplicate feature names in the registry")
    for f in FEATURES:
        if (f.series is None) == (f.derive is None):
            raise ValueError(f"feature {f.name}: give exactly one of series and derive")
        missing = [n for n in f.needs if n not in SERIES]
        if missing:
            raise ValueError(f"feature {f.name} needs unknown series {missing}")
    for s in SERIES.values():
        bad = [i for i in s.inputs if i not in INPUTS]
        if bad:
            raise ValueError(f"series {s} reads unknown inputs {bad}")


_check()


if __name__ == "__main__":  # the features_daily rows of docs/tables.md
    print(units_table())

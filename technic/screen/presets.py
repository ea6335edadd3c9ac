"""Presets: named screens (filter, sort, columns, universe parameters) stored in
``scan_presets`` (migration 16). The built-in ones are declared here and inserted by the
migration (``builtin = true``; ``technic preset save`` cannot overwrite them).

Pure (no database): :class:`Preset` is the stored row; :func:`technic.jobs.scan.resolve_preset`
turns one into scan parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from technic.screen.columns import parse_columns
from technic.screen.filter import parse_filter

#: Preset names: letters, digits, ``_.-``, at most 64 characters (as ``scan_runs.preset``).
PRESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

#: Universe parameters a preset may hold (``scan_presets.params``), with their types.
PARAM_TYPES: dict[str, type | tuple[type, ...]] = {
    "top": int, "min_price": (int, float), "min_dollar_volume": (int, float),
    "valid_tickers": bool, "exclude_leveraged_etfs": bool, "sectors": list,
    "industries": list, "min_market_cap": (int, float),
}


def check_preset_name(name: str) -> str:
    """``name`` if it is a valid preset name.

    Raises:
        ValueError: one line saying what is allowed.
    """
    if not PRESET_NAME.match(name or ""):
        raise ValueError(f"preset name {name!r}: use letters, digits, '_', '.', '-' "
                         "(at most 64 characters, starting with a letter or digit)")
    return name


@dataclass(frozen=True)
class Preset:
    """A named screen (one ``scan_presets`` row).

    Attributes:
        name: see :data:`PRESET_NAME`.
        where: filter text (:mod:`technic.screen.filter`), "" for none.
        sort: column the results are ordered by (None: rank, i.e. TechRating).
        descending: sort direction (None: descending for numbers, ascending for ``rank``
            and text).
        columns: columns to show (empty: the default table).
        params: universe parameters (:data:`PARAM_TYPES`; missing = the defaults).
        description: one line.
        builtin: declared in code and inserted by migration 16 (read-only).
    """

    name: str
    where: str = ""
    sort: str | None = None
    descending: bool | None = None
    columns: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)
    description: str = ""
    builtin: bool = False

    def __post_init__(self) -> None:
        check_preset_name(self.name)
        parse_filter(self.where)
        if self.sort:
            parse_columns(self.sort)
        parse_columns(self.columns)
        for k, v in self.params.items():
            if k not in PARAM_TYPES:
                raise ValueError(f"preset {self.name}: unknown parameter {k!r} (known: "
                                 f"{', '.join(PARAM_TYPES)})")
            if not isinstance(v, PARAM_TYPES[k]) or (isinstance(v, bool) and
                                                     PARAM_TYPES[k] is not bool):
                raise ValueError(f"preset {self.name}: parameter {k} has the wrong type "
                                 f"({type(v).__name__})")


#: The built-in presets (inserted by migration 16; refreshed by later ``db init`` runs).
BUILTIN_PRESETS: tuple[Preset, ...] = (
    Preset("momentum-leaders",
           where="ret_12_1 > 0.2 and close > sma_50 and sma_50 > sma_200 and rsi_14 < 80",
           sort="ret_12_1", descending=True,
           columns=("rank", "symbol", "sector", "close", "tech_rating", "ret_12_1", "ret_63d",
                    "rsi_14"),
           description="12-1 momentum above 20 %, price above a rising 50/200-day trend, "
                       "not overbought (RSI < 80)", builtin=True),
    Preset("oversold-quality",
           where="rsi_14 < 40 and close > sma_200 and ics >= 55",
           sort="rsi_14", descending=False,
           columns=("rank", "symbol", "sector", "close", "rsi_14", "ics", "tech_rating",
                    "dist_52w_high"),
           description="short-term oversold (RSI < 40) in a long-term uptrend (close > SMA "
                       "200) with a solid institutional core score (ICS >= 55)", builtin=True),
    Preset("breakout-52w-high",
           where="dist_52w_high >= -0.02 and rel_volume_20 >= 1.2 and close > sma_50",
           sort="rel_volume_20", descending=True,
           columns=("rank", "symbol", "sector", "close", "dist_52w_high", "rel_volume_20",
                    "tech_rating", "adx_14"),
           description="within 2 % of the 52-week high on volume at least 1.2x its 20-day "
                       "average, above the 50-day SMA", builtin=True),
)

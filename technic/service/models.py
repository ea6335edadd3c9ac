"""Request bodies of the HTTP API (pydantic: a bad field is a 422 naming it)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from technic.jobs.scan import ScanParams
from technic.universe import DEFAULT_RULES, UniverseRules


class ScanRequest(BaseModel):
    """Parameters of ``POST /v1/scans`` (the options of ``technic scan``; unknown fields are
    refused). Every passing symbol is ranked and stored; the events stream returns them all.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"min_price": 10, "sectors": ["Technology"]}]})

    as_of: dt.date | None = Field(
        None, description="Scan date (YYYY-MM-DD); default: the latest feature date.")
    min_price: float = Field(DEFAULT_RULES.min_price, ge=0, allow_inf_nan=False,
                             description="Minimum last close, USD.")
    min_dollar_volume: float = Field(DEFAULT_RULES.min_dollar_volume, ge=0,
                                     allow_inf_nan=False,
                                     description="Minimum 20-day mean dollar volume, USD.")
    sectors: list[str] = Field(default_factory=list, max_length=64,
                               description="Keep only these sectors (case-insensitive); "
                                           "empty = all. Unknown sectors are refused.")
    all_tickers: bool = Field(False, description="Keep warrants, units, rights, preferreds "
                                                 "and notes.")
    keep_leveraged: bool = Field(False, description="Keep leveraged/inverse ETFs.")
    preset: str | None = Field(
        None, description="A stored preset (`technic preset list`) runs as itself: its "
                          "filter, sort and universe (no other filter field may be given "
                          "with it). Any other name is only stored with the run "
                          "(scan_runs.preset). Default: `default` "
                          "with the default filters, else none (a custom scan).")
    where: str | None = Field(
        None, max_length=2000,
        description="Screen filter applied after scoring (docs/screens.md), e.g. "
                    "`value_score > 70 and rsi_14 < 40`; a bad filter is a 422 naming "
                    "`where`. Naming an `opt_*` column turns `with_options` on.")
    industries: list[str] = Field(default_factory=list, max_length=256,
                                  description="Keep only these industries (case-insensitive); "
                                              "unknown ones are refused.")
    min_market_cap: float | None = Field(None, ge=0, allow_inf_nan=False,
                                         description="Minimum market cap, USD "
                                                     "(symbols.market_cap).")
    with_options: bool = Field(False, description="Add the opt_* option metrics of the scan "
                                                  "date (docs/options.md).")

    @property
    def has_filters(self) -> bool:
        """True when a filter field differs from its default (not allowed with a stored
        preset)."""
        return bool(set(self.model_dump(exclude_defaults=True))
                    - {"as_of", "preset", "with_options"})

    def scan_params(self) -> ScanParams:
        """The job's parameters.

        Raises:
            technic.screen.FilterError: a bad ``where`` (one line).
            ValueError: the combination is invalid (e.g. preset ``default`` with other
                filters); the message names the field.
        """
        return ScanParams(as_of=self.as_of, preset=self.preset, rules=UniverseRules(
            min_price=self.min_price, min_dollar_volume=self.min_dollar_volume,
            valid_tickers=not self.all_tickers, exclude_leveraged_etfs=not self.keep_leveraged,
            sectors=tuple(self.sectors)), where=self.where, industries=tuple(self.industries),
            min_market_cap=self.min_market_cap, with_options=self.with_options)

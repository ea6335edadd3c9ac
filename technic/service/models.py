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
        None, description="Name stored with the run (scan_runs.preset); default: `default` "
                          "with the default filters, else none (a custom scan).")

    def scan_params(self) -> ScanParams:
        """The job's parameters.

        Raises:
            ValueError: the combination is invalid (e.g. preset ``default`` with other
                filters); the message names the field.
        """
        return ScanParams(as_of=self.as_of, preset=self.preset, rules=UniverseRules(
            min_price=self.min_price, min_dollar_volume=self.min_dollar_volume,
            valid_tickers=not self.all_tickers, exclude_leveraged_etfs=not self.keep_leveraged,
            sectors=tuple(self.sectors)))

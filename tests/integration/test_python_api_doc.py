"""docs/python-api.md runs: every ```python block, in order, in one namespace, against the
bundled data (the demo schema), the database resolved from the environment as a user's
would be — and it writes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from technic.store.db import get_engine

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"


def test_python_api_walkthrough_runs(db_url, demo_target, monkeypatch, capsys):
    from technic.config import get_settings
    from technic.store import db as dbmod

    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 6
    monkeypatch.setenv("TECHNIC_DATABASE_URL", db_url)
    monkeypatch.setenv("TECHNIC_DB_SCHEMA", demo_target.schema)
    get_settings.cache_clear()
    dbmod._resolve.cache_clear()

    def counts():
        with get_engine(demo_target).connect() as c:
            return [c.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                    for t in ("scan_runs", "scan_results", "market_daily")]

    before = counts()
    try:
        ns: dict = {}
        for i, code in enumerate(blocks):
            exec(compile(code, f"{DOC.name}[block {i + 1}]", "exec"), ns)  # noqa: S102
    finally:
        get_settings.cache_clear()
        dbmod._resolve.cache_clear()
    assert counts() == before
    assert "momentum-leaders" in capsys.readouterr().out

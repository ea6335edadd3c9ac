"""``scan_presets`` (migration 16): named screens — save, read, list, delete.

Rows map to :class:`technic.screen.presets.Preset`. Built-in rows (``builtin = true``) are
inserted by the migration and are never overwritten or deleted through these functions.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from technic.screen.presets import Preset, check_preset_name
from technic.store.db import DatabaseTarget, get_engine
from technic.store.migrations import DEFAULT_PRESET

_COLS = "name, where_text, sort, descending, columns, params, description, builtin"


class PresetNotFound(LookupError):
    """No preset of that name; the message lists the stored ones."""


class PresetReadOnly(ValueError):
    """A built-in preset cannot be overwritten or deleted."""


def _row(r) -> Preset:
    return Preset(name=r[0], where=r[1] or "", sort=r[2], descending=r[3],
                  columns=tuple(r[4] or ()), params=dict(r[5] or {}), description=r[6] or "",
                  builtin=bool(r[7]))


def list_presets(target: DatabaseTarget) -> list[Preset]:
    """Every stored preset, built-in ones first, then by name."""
    with get_engine(target).connect() as c:
        rows = c.execute(sa.text(f"SELECT {_COLS} FROM scan_presets "
                                 "ORDER BY builtin DESC, name")).all()
    return [_row(r) for r in rows]


def get_preset(target: DatabaseTarget, name: str) -> Preset:
    """The preset called ``name``.

    Raises:
        PresetNotFound: no such preset (the message lists the stored names).
    """
    with get_engine(target).connect() as c:
        r = c.execute(sa.text(f"SELECT {_COLS} FROM scan_presets WHERE name = :n"),
                      {"n": name}).first()
        if r is None:
            names = list(c.execute(sa.text("SELECT name FROM scan_presets ORDER BY name"))
                         .scalars())
            raise PresetNotFound(f"unknown preset {name!r}; stored presets: "
                                 f"{', '.join(names) or 'none'}")
    return _row(r)


def save_preset(target: DatabaseTarget, p: Preset) -> bool:
    """Insert or replace a user preset.

    Returns:
        True when it was new, False when it replaced one of the same name.

    Raises:
        PresetReadOnly: the name is a built-in preset (or ``p.builtin`` is set), or
            ``default`` (reserved for default-filter scans).
        ValueError: an invalid name.
    """
    check_preset_name(p.name)
    if p.name == DEFAULT_PRESET:
        raise PresetReadOnly(f"{DEFAULT_PRESET!r} is reserved for scans with the default "
                             "filter (latest_scan_results); choose another name")
    if p.builtin:
        raise PresetReadOnly("built-in presets are declared in code, not saved")
    with get_engine(target).begin() as c:
        old = c.execute(sa.text("SELECT builtin FROM scan_presets WHERE name = :n FOR UPDATE"),
                        {"n": p.name}).first()
        if old is not None and old[0]:
            raise PresetReadOnly(f"preset {p.name!r} is built in; save under another name")
        c.execute(sa.text(
            "INSERT INTO scan_presets (name, where_text, sort, descending, columns, params, "
            "description, builtin) VALUES (:n, :w, :s, :d, :c, CAST(:p AS jsonb), :desc, false) "
            "ON CONFLICT (name) DO UPDATE SET where_text = EXCLUDED.where_text, "
            "sort = EXCLUDED.sort, descending = EXCLUDED.descending, "
            "columns = EXCLUDED.columns, params = EXCLUDED.params, "
            "description = EXCLUDED.description, updated_at = now()"),
            {"n": p.name, "w": p.where, "s": p.sort, "d": p.descending, "c": list(p.columns),
             "p": json.dumps(p.params), "desc": p.description})
    return old is None


def delete_preset(target: DatabaseTarget, name: str) -> None:
    """Delete a user preset (its past runs keep their name in ``scan_runs.preset``).

    Raises:
        PresetNotFound: no such preset. PresetReadOnly: a built-in one.
    """
    p = get_preset(target, name)
    if p.builtin:
        raise PresetReadOnly(f"preset {name!r} is built in and cannot be deleted")
    with get_engine(target).begin() as c:
        c.execute(sa.text("DELETE FROM scan_presets WHERE name = :n AND NOT builtin"),
                  {"n": name})

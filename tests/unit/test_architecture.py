"""The code's structure (docs/architecture.md), checked on the source text: the layers import
only downwards, no module imports itself back through others (no import circles), and SQL is
written only in ``technic/store/``. No database needed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Bottom to top. A module may import its own layer and the layers below it, never above.
#: (Package prefixes; the most specific prefix decides.)
LAYERS: tuple[tuple[str, ...], ...] = (
    # kernels, formulas and plain data types: no database, no Dask
    ("technic.config", "technic.panel", "technic.calendar", "technic.validation",
     "technic.universe", "technic.indicators", "technic.scoring", "technic.options",
     "technic.portfolio"),
    # the store (all SQL), the providers, the cache, the feature registry
    ("technic.store", "technic.providers", "technic.cache", "technic.features",
     "technic.screen"),
    # where and how compute runs: Dask set-up, the incremental window, the alpha models
    ("technic.compute", "technic.incremental", "technic.ml"),
    # the jobs the front ends call
    ("technic.jobs",),
    # the front ends: argument parsing and presentation only
    ("technic.cli", "technic.commands", "technic.api", "technic.service", "flows"),
)

#: Imports that break the rule today, each with the change that removes it. Keep this empty.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, Path]:
    out = {}
    for base in ("technic", "flows"):
        for p in sorted((ROOT / base).rglob("*.py")):
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = p
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module ``name`` refers to (a module, or the package holding a name)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> set[str]:
    """Every project module ``module`` imports, at the top or inside a function."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_pkg else 0)]
                src = ".".join(base + ([node.module] if node.module else []))
            else:
                src = node.module or ""
            names = [f"{src}.{a.name}" for a in node.names] + [src]
        for n in names:
            target = _resolve(n)
            if target and target != module:
                found.add(target)
    # ``from technic.store.db import X`` also names the package technic.store: keep only the
    # most specific module of each import.
    return {m for m in found if not any(o.startswith(m + ".") for o in found)}


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _layer(module: str) -> int | None:
    best, level = -1, None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, level = len(p), i
    return level


def test_every_module_has_a_layer():
    missing = [m for m in MODULES if m not in ("technic", "flows") and _layer(m) is None]
    assert not missing, f"modules without a layer in LAYERS: {missing}"


def test_layers_import_only_downwards():
    bad = []
    for m, deps in GRAPH.items():
        lm = _layer(m)
        for d in deps:
            ld = _layer(d)
            if lm is not None and ld is not None and ld > lm \
                    and (m, d) not in KNOWN_EXCEPTIONS:
                bad.append(f"{m} (layer {lm}) imports {d} (layer {ld})")
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    graph = {m: {d for d in deps if (m, d) not in KNOWN_EXCEPTIONS} for m, deps in GRAPH.items()}
    assert not _cycles(graph)


def test_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


_SQL = re.compile(r"^\s*(SELECT|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s|ALTER\s|"
                  r"DROP\s|TRUNCATE\s|COPY\s|WITH\s+\w+\s+AS)\b")
#: Modules and calls that run SQL; outside technic/store/ none may be imported or called.
_DB_MODULES = ("sqlalchemy", "psycopg", "adbc_driver_postgresql", "adbc_driver_manager")
_DB_CALLS = {"text", "exec_driver_sql", "fetch_frame", "execute", "executemany",
             "read_sql", "read_sql_query"}
#: SQL shown to the analyst (printed, never run).
_SHOWN = ("scan_results WHERE run_id", "latest_scan_results ORDER BY rank")


def _sql_outside_store(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    where = path.relative_to(ROOT)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) \
                else [node.module or ""]
            hits += [f"{where}:{node.lineno}: imports {m}" for m in mods
                     if m.split(".")[0] in _DB_MODULES]
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in _DB_CALLS:
                hits.append(f"{where}:{node.lineno}: calls {name}()")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            s = node.value
            if _SQL.match(s) and not any(x in s for x in _SHOWN):
                hits.append(f"{where}:{node.lineno}: SQL text {s[:40]!r}")
    return hits


@pytest.mark.parametrize("module", [m for m in MODULES if not m.startswith("technic.store")])
def test_no_sql_outside_store(module):
    assert not _sql_outside_store(MODULES[module])


def test_sql_finder_finds_sql(tmp_path, monkeypatch):
    p = ROOT / "technic" / "_probe_sql_check.py"
    src = ('import sqlalchemy as sa\n\ndef f(c):\n'
           '    return c.execute(sa.text("SELECT 1 FROM bars_daily"))\n')
    try:
        p.write_text(src)
        hits = _sql_outside_store(p)
    finally:
        p.unlink()
    assert len(hits) == 4, hits

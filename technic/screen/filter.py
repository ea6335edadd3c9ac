"""The screen filter language: ``rsi_14 < 30 and close > sma_200``.

Grammar (keywords case-insensitive)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" expr ")" | predicate
    predicate  := operand OP operand             OP: < <= > >= = == != <>
                | column ["not"] "in" "(" literal ("," literal)* ")"
                | column "is" ["not"] "null"
    operand    := column | literal
    literal    := number | 'text' | "text" | true | false
    number     := 12, -3.5, 1e9, 2.5B (suffixes K, M, B, T = 1e3, 1e6, 1e9, 1e12)

Every comparison involves at least one column; both sides must be of one kind (numbers with
numeric columns, text with text columns and only ``=``/``!=``/``in``, ``true``/``false`` with
boolean columns). Text compares case-insensitively (like ``--sector``). Columns are the
names of :data:`technic.screen.columns.COLUMNS` (``technic columns``).

NULL follows SQL: a comparison with a NULL (NaN) operand is unknown, ``not unknown`` is
unknown, and a row is kept only when the whole filter is true. The pandas evaluator
(:func:`evaluate`) and the SQL compiler (:mod:`technic.store.screen`) give the same rows.

The parser turns text into a small immutable AST; nothing of the text is ever pasted into SQL
(the SQL compiler maps column names through the registry and binds every literal).

Pure (no database).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from technic.screen.columns import COLUMNS, UnknownColumnError, check_column

#: Longest filter text accepted (characters) and deepest nesting of parentheses / ``not``.
MAX_LENGTH = 4000
MAX_DEPTH = 40

CMP_OPS = ("<", "<=", ">", ">=", "=", "!=")
_OP_ALIASES = {"==": "=", "<>": "!="}
_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
_KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false"}


class FilterError(ValueError):
    """A filter that does not parse or names an unknown column: one line, with the position."""


# ------------------------------------------------------------------------------------ AST
@dataclass(frozen=True)
class Col:
    """A column reference."""

    name: str


@dataclass(frozen=True)
class Lit:
    """A literal: ``float``, ``str`` or ``bool``."""

    value: float | str | bool


Operand = Col | Lit


@dataclass(frozen=True)
class Cmp:
    """``left op right`` (op one of :data:`CMP_OPS`)."""

    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True)
class In:
    """``column [not] in (values…)``."""

    column: Col
    values: tuple[float | str | bool, ...]
    negate: bool = False


@dataclass(frozen=True)
class IsNull:
    """``column is [not] null``."""

    column: Col
    negate: bool = False


@dataclass(frozen=True)
class And:
    """All of ``items``."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    """Any of ``items``."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """The negation of ``item`` (unknown stays unknown)."""

    item: Node


Node = Cmp | In | IsNull | And | Or | Not


def columns_of(node: Node) -> set[str]:
    """The column names a filter reads."""
    if isinstance(node, Cmp):
        return {x.name for x in (node.left, node.right) if isinstance(x, Col)}
    if isinstance(node, In | IsNull):
        return {node.column.name}
    if isinstance(node, Not):
        return columns_of(node.item)
    return set().union(*(columns_of(i) for i in node.items))


def _lit_text(v: float | str | bool) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))


def to_text(node: Node) -> str:
    """The canonical text of a filter (parses back to the same AST)."""
    def opnd(x: Operand) -> str:
        return x.name if isinstance(x, Col) else _lit_text(x.value)

    if isinstance(node, Cmp):
        return f"{opnd(node.left)} {node.op} {opnd(node.right)}"
    if isinstance(node, In):
        vals = ", ".join(_lit_text(v) for v in node.values)
        return f"{node.column.name} {'not in' if node.negate else 'in'} ({vals})"
    if isinstance(node, IsNull):
        return f"{node.column.name} is {'not null' if node.negate else 'null'}"
    if isinstance(node, Not):
        return f"not ({to_text(node.item)})"
    sep = " and " if isinstance(node, And) else " or "
    return sep.join(f"({to_text(i)})" if isinstance(i, And | Or) else to_text(i)
                    for i in node.items)


def conjoin(*nodes: Node | None) -> Node | None:
    """``a and b and …`` of the given filters (None ones skipped); None when none is left."""
    items: list[Node] = []
    for n in nodes:
        if n is None:
            continue
        items.extend(n.items if isinstance(n, And) else (n,))
    if not items:
        return None
    return items[0] if len(items) == 1 else And(tuple(items))


# ------------------------------------------------------------------------------------ lexer
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>[-+]?(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?[kKmMbBtT]?(?![A-Za-z0-9_]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<str>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<op><=|>=|==|!=|<>|<|>|=)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<comma>,)
""", re.VERBOSE)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _lex(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            raise FilterError(f"unexpected character {text[i]!r} at position {i}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tok = m.group()
            if kind == "ident" and tok.lower() in _KEYWORDS:
                kind, tok = "kw", tok.lower()
            out.append(_Tok(kind, tok, i))
        i = m.end()
    out.append(_Tok("end", "", len(text)))
    return out


def _number(text: str) -> float:
    t = text.replace("_", "")
    mult = 1.0
    if t[-1].lower() in _SUFFIX:
        mult, t = _SUFFIX[t[-1].lower()], t[:-1]
    v = float(t) * mult
    if not math.isfinite(v):
        raise FilterError(f"number {text!r} is not finite")
    return v


def _string(text: str) -> str:
    q = text[0]
    return text[1:-1].replace(q + q, q)


# ------------------------------------------------------------------------------------ parser
class _Parser:
    def __init__(self, text: str, allowed: frozenset[str] | set[str] | None) -> None:
        self.toks = _lex(text)
        self.i = 0
        self.allowed = allowed
        self.depth = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def _err(self, msg: str, tok: _Tok | None = None) -> FilterError:
        t = tok or self.tok
        where = "at the end" if t.kind == "end" else f"at position {t.pos} ({t.text!r})"
        return FilterError(f"{msg} {where}")

    def _accept(self, kind: str, text: str | None = None) -> _Tok | None:
        t = self.tok
        if t.kind == kind and (text is None or t.text == text):
            self.i += 1
            return t
        return None

    def _expect(self, kind: str, text: str | None, what: str) -> _Tok:
        t = self._accept(kind, text)
        if t is None:
            raise self._err(f"expected {what}")
        return t

    def parse(self) -> Node:
        node = self.expr()
        if self.tok.kind != "end":
            raise self._err("expected 'and', 'or' or the end")
        return node

    def expr(self) -> Node:
        items = [self.and_expr()]
        while self._accept("kw", "or"):
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self._accept("kw", "and"):
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self._err(f"nested deeper than {MAX_DEPTH} levels")
        try:
            if self._accept("kw", "not"):
                return Not(self.not_expr())
            if self._accept("lp"):
                node = self.expr()
                self._expect("rp", None, "')'")
                return node
            return self.predicate()
        finally:
            self.depth -= 1

    def column(self, tok: _Tok) -> Col:
        try:
            check_column(tok.text, self.allowed)
        except UnknownColumnError as e:
            raise FilterError(f"{e} (position {tok.pos})") from None
        return Col(tok.text)

    def operand(self) -> Operand:
        t = self.tok
        if t.kind == "ident":
            self.i += 1
            return self.column(t)
        return Lit(self.literal())

    def literal(self) -> float | str | bool:
        t = self.tok
        if t.kind == "num":
            self.i += 1
            return _number(t.text)
        if t.kind == "str":
            self.i += 1
            return _string(t.text)
        if t.kind == "kw" and t.text in ("true", "false"):
            self.i += 1
            return t.text == "true"
        raise self._err("expected a column, a number, 'text', true or false")

    def predicate(self) -> Node:
        start = self.tok
        left = self.operand()
        if isinstance(left, Col) and self.tok.kind == "kw" and self.tok.text in ("in", "not",
                                                                                  "is"):
            if self._accept("kw", "is"):
                neg = self._accept("kw", "not") is not None
                self._expect("kw", "null", "'null'")
                return IsNull(left, neg)
            neg = self._accept("kw", "not") is not None
            self._expect("kw", "in", "'in'")
            self._expect("lp", None, "'(' after 'in'")
            vals = [self.literal()]
            while self._accept("comma"):
                vals.append(self.literal())
            self._expect("rp", None, "')'")
            found = In(left, tuple(vals), neg)
            _check_in(found, start)
            return found
        op_tok = self.tok
        if op_tok.kind != "op":
            raise self._err("expected a comparison (<, <=, >, >=, =, !=), 'in' or 'is'")
        self.i += 1
        right = self.operand()
        node = Cmp(_OP_ALIASES.get(op_tok.text, op_tok.text), left, right)
        _check_cmp(node, start)
        return node


def _kind(x: Operand) -> str:
    if isinstance(x, Col):
        return COLUMNS[x.name].kind
    v = x.value
    return "bool" if isinstance(v, bool) else "text" if isinstance(v, str) else "num"


def _check_cmp(node: Cmp, tok: _Tok) -> None:
    if not isinstance(node.left, Col) and not isinstance(node.right, Col):
        raise FilterError(f"comparison of two values without a column at position {tok.pos}")
    kl, kr = _kind(node.left), _kind(node.right)
    if kl != kr:
        raise FilterError(f"cannot compare {kl} with {kr} at position {tok.pos} "
                          f"({to_text(node)})")
    if kl in ("text", "bool") and node.op not in ("=", "!="):
        raise FilterError(f"{kl} columns compare with = and != only (or 'in'), at position "
                          f"{tok.pos} ({to_text(node)})")


def _check_in(node: In, tok: _Tok) -> None:
    kind = COLUMNS[node.column.name].kind
    for v in node.values:
        if _kind(Lit(v)) != kind:
            raise FilterError(f"'{node.column.name} in (…)' needs {kind} values, got "
                              f"{_lit_text(v)} at position {tok.pos}")


def parse_filter(text: str | None, allowed: frozenset[str] | set[str] | None = None
                 ) -> Node | None:
    """Parse filter text into its AST, checking every column name and type.

    Args:
        text: the filter (see the module docstring); None or blank → None (no filter).
        allowed: column names allowed here (default: every column of the registry; outside a
            scan pass :data:`technic.screen.columns.FEATURE_SCOPE`).

    Returns:
        The AST (:data:`Node`), or None.

    Raises:
        FilterError: one line: what is wrong and where (unknown columns with their closest
            known names).
    """
    if text is None or not text.strip():
        return None
    if len(text) > MAX_LENGTH:
        raise FilterError(f"filter longer than {MAX_LENGTH} characters")
    return _Parser(text, allowed).parse()


# ------------------------------------------------------------------------------------ pandas
def _values(df: pd.DataFrame, x: Operand, kind: str) -> pd.Series | float | str | bool:
    if isinstance(x, Lit):
        return x.value.lower() if isinstance(x.value, str) else x.value
    s = df[x.name]
    if kind == "num":
        return pd.Series(pd.to_numeric(s, errors="coerce").to_numpy(np.float64,
                                                                     na_value=np.nan),
                         index=df.index)
    if kind == "text":
        return s.astype(object).map(lambda v: v.lower() if isinstance(v, str) else None)
    return s.astype(object).map(lambda v: None if v is None or v is pd.NA or
                                (isinstance(v, float) and v != v) else bool(v))


def _na(v: pd.Series | float | str | bool, index: pd.Index) -> np.ndarray:
    if isinstance(v, pd.Series):
        return v.isna().to_numpy()
    return np.zeros(len(index), dtype=bool)


def _kleene(values: np.ndarray, unknown: np.ndarray) -> pd.arrays.BooleanArray:
    return pd.arrays.BooleanArray(values.astype(bool) & ~unknown, unknown.astype(bool))


def _eval(node: Node, df: pd.DataFrame) -> pd.arrays.BooleanArray:
    if isinstance(node, Cmp):
        kind = _kind(node.left)
        a, b = _values(df, node.left, kind), _values(df, node.right, kind)
        unknown = _na(a, df.index) | _na(b, df.index)
        if kind == "num":
            x = np.asarray(a, dtype=np.float64) * np.ones(len(df))
            y = np.asarray(b, dtype=np.float64) * np.ones(len(df))
            with np.errstate(invalid="ignore"):
                r = {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y, "=": x == y,
                     "!=": x != y}[node.op]
        else:
            xa = a.to_numpy(object) if isinstance(a, pd.Series) else np.full(len(df), a, object)
            ya = b.to_numpy(object) if isinstance(b, pd.Series) else np.full(len(df), b, object)
            r = (xa == ya) if node.op == "=" else (xa != ya)
            r = np.asarray(r, dtype=bool)
        return _kleene(r, unknown)
    if isinstance(node, In):
        kind = COLUMNS[node.column.name].kind
        a = _values(df, node.column, kind)
        assert isinstance(a, pd.Series)
        vals = [v.lower() if isinstance(v, str) else v for v in node.values]
        hit = a.isin(vals).to_numpy(dtype=bool)
        r = ~hit if node.negate else hit
        return _kleene(r, a.isna().to_numpy())
    if isinstance(node, IsNull):
        a = _values(df, node.column, COLUMNS[node.column.name].kind)
        assert isinstance(a, pd.Series)
        isna = a.isna().to_numpy()
        return _kleene(~isna if node.negate else isna, np.zeros(len(df), dtype=bool))
    if isinstance(node, Not):
        return ~_eval(node.item, df)
    parts = [_eval(i, df) for i in node.items]
    out = parts[0]
    for p in parts[1:]:
        out = (out & p) if isinstance(node, And) else (out | p)
    return out


def evaluate(node: Node | None, df: pd.DataFrame) -> np.ndarray:
    """Rows of ``df`` for which the filter is true.

    Args:
        node: a parsed filter (None: every row).
        df: one row per symbol with the columns the filter reads (NaN/None = NULL).

    Returns:
        ``(len(df),) bool`` mask; unknown (NULL) counts as false, as in SQL.

    Raises:
        FilterError: the frame lacks a column the filter reads.
    """
    if node is None:
        return np.ones(len(df), dtype=bool)
    missing = sorted(columns_of(node) - set(df.columns))
    if missing:
        raise FilterError(f"the rows have no column(s) {', '.join(missing)} here")
    return _eval(node, df).to_numpy(dtype=bool, na_value=False)

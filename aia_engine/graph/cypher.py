"""A client's Cypher, made ready for grand-cypher. Pure: a lexer, not a parser.

grand-cypher (1.2) parses a useful read-only subset of Cypher, but it takes strings only in
double quotes (and `eval`s them), aggregate names only in capitals, and no `$parameters`. This
module reads the client's text token by token and hands grand-cypher a text it can take:

- string literals in Cypher's quoting (single or double quotes; escapes `\\' \\" \\\\ \\n \\t
  \\r \\b \\f \\uXXXX \\UXXXXXXXX`) are decoded and written back as one JSON string token;
- each `$name` is replaced by one literal token of its value (a list only after IN), and the
  parse tree is checked to hold each bound value as exactly one value token, so a parameter
  can never change the query's structure;
- comments are dropped, `count(...)` and the other aggregates are upper-cased, `[*..3]` reads
  `[*1..3]` and `[*2]` `[*2..2]`;
- what grand-cypher cannot do (writes, CALL, WITH, OPTIONAL MATCH, UNION, unbounded or deep
  variable-length patterns, backtick identifiers, ...) is refused by name (E031) before parsing,
  and a parse error becomes E030 with the line and column of the client's own text.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from grandcypher import _GrandCypherGrammar
from lark import Token, Tree
from lark.exceptions import UnexpectedEOF, UnexpectedInput

from aia_engine.errors import CypherSyntaxError, InvalidQueryParameters, UnsupportedCypher

MAX_HOPS = 3
"""The deepest variable-length relationship a query may ask for (`[*1..3]`)."""
AGGREGATES = frozenset({"COUNT", "SUM", "AVG", "MIN", "MAX", "COLLECT"})
VALUE_TOKENS = frozenset({"ESTRING", "NUMBER", "NULL", "TRUE", "FALSE"})

REFUSED_WORDS: dict[str, str] = {
    "CREATE": "CREATE (the query endpoint is read-only)",
    "MERGE": "MERGE (the query endpoint is read-only)",
    "SET": "SET (the query endpoint is read-only)",
    "DELETE": "DELETE (the query endpoint is read-only)",
    "DETACH": "DETACH DELETE (the query endpoint is read-only)",
    "REMOVE": "REMOVE (the query endpoint is read-only)",
    "DROP": "DROP (the query endpoint is read-only)",
    "CALL": "CALL (procedures and subqueries)",
    "YIELD": "YIELD (procedures)",
    "LOAD": "LOAD CSV",
    "FOREACH": "FOREACH",
    "UNWIND": "UNWIND",
    "WITH": "WITH",
    "OPTIONAL": "OPTIONAL MATCH",
    "UNION": "UNION",
    "USE": "USE (graph selection)",
    "CASE": "CASE expressions",
    "SHOW": "SHOW (administration commands)",
}

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*|[0-9]+)")
_WS = re.compile(r"\s+")
_HOPS = re.compile(r"\*\s*([0-9]+)?\s*(\.\.)?\s*([0-9]+)?")
_SIMPLE_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b",
                   "f": "\f"}  # fmt: skip


@dataclass(frozen=True)
class _Token:
    kind: str
    """ws, comment, string, param, word, number, hops, punct"""
    text: str
    """As the client wrote it."""
    start: int
    value: Any = None
    """A string's decoded value, a parameter's name."""


@dataclass(frozen=True)
class Prepared:
    """A query ready for grand-cypher: its text, where each bound parameter's tokens are in it,
    and the names of its RETURN columns as the client wrote them."""

    text: str
    columns: tuple[str, ...]
    param_spans: tuple[tuple[int, int, str], ...]
    """(start, end, name) of every literal token a parameter became."""
    offsets: tuple[tuple[int, int], ...]
    """(offset in text, offset in the client's query) at each token start."""
    source: str

    def source_position(self, offset: int) -> tuple[int, int]:
        """The line and column (1-based) in the client's query of an offset in `text`."""
        starts = [o[0] for o in self.offsets]
        i = max(bisect.bisect_right(starts, offset) - 1, 0)
        original = min(self.offsets[i][1] + (offset - self.offsets[i][0]), len(self.source))
        if i + 1 < len(self.offsets):
            original = min(original, max(self.offsets[i + 1][1] - 1, self.offsets[i][1]))
        line = self.source.count("\n", 0, original) + 1
        column = original - (self.source.rfind("\n", 0, original) + 1) + 1
        return line, column


def _position(source: str, offset: int) -> dict[str, int]:
    line = source.count("\n", 0, offset) + 1
    return {"line": line, "column": offset - (source.rfind("\n", 0, offset) + 1) + 1}


def _syntax(source: str, offset: int, message: str) -> CypherSyntaxError:
    where = _position(source, offset)
    return CypherSyntaxError(f"{message} (line {where['line']}, column {where['column']})", **where)


def _string(source: str, start: int) -> tuple[str, int]:
    """Decode the string literal opening at `start`; return its value and the end offset."""
    quote, i = source[start], start + 1
    out: list[str] = []
    while i < len(source):
        c = source[i]
        if c == quote:
            return _joined(out, source, start), i + 1
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = source[i + 1 : i + 2]
        if nxt in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[nxt])
            i += 2
        elif nxt in ("u", "U"):
            width = 4 if nxt == "u" else 8
            digits = source[i + 2 : i + 2 + width]
            if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise _syntax(source, i, f"\\{nxt} needs {width} hexadecimal digits")
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise _syntax(source, i, f"\\{nxt}{digits} is not a Unicode code point")
            out.append(chr(code))
            i += 2 + width
        else:
            raise _syntax(source, i, f"unknown escape \\{nxt} in a string")
    raise _syntax(source, start, "string literal is not closed")


def _joined(parts: list[str], source: str, start: int) -> str:
    """The decoded string, with UTF-16 surrogate pairs (\\uD83D\\uDE00) joined."""
    value = "".join(parts)
    try:
        return value.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        raise _syntax(source, start, "string holds a lone surrogate (\\uD800-\\uDFFF)") from None


def tokens(source: str) -> list[_Token]:
    """The client's query as tokens; raises E030 for text no Cypher reader would take and E031
    for backtick identifiers."""
    out: list[_Token] = []
    i = 0
    while i < len(source):
        tok, i = _token(source, i)
        out.append(tok)
    return out


def _token(source: str, i: int) -> tuple[_Token, int]:
    """The token at `i` and where it ends."""
    c = source[i]
    if c.isspace():
        m = _WS.match(source, i)
        assert m is not None
        return _Token("ws", m.group(), i), m.end()
    if source.startswith("//", i):
        end = source.find("\n", i)
        end = len(source) if end < 0 else end
        return _Token("comment", source[i:end], i), end
    if source.startswith("/*", i):
        end = source.find("*/", i + 2)
        if end < 0:
            raise _syntax(source, i, "block comment is not closed")
        return _Token("comment", source[i : end + 2], i), end + 2
    if c in "'\"":
        value, end = _string(source, i)
        return _Token("string", source[i:end], i, value), end
    if c == "`":
        raise UnsupportedCypher("backtick-quoted identifiers", **_position(source, i))
    if c == "$":
        m = _PARAM.match(source, i)
        if m is None:
            raise _syntax(source, i, "$ must be followed by a parameter name")
        return _Token("param", m.group(), i, m.group(1)), m.end()
    if (m := _WORD.match(source, i)) is not None:
        return _Token("word", m.group(), i), m.end()
    if (m := _NUMBER.match(source, i)) is not None:
        return _number(source, i, m.group()), m.end()
    return _Token("punct", c, i), i + 1


def _number(source: str, i: int, text: str) -> _Token:
    if len(text) > 40:
        raise _syntax(source, i, "number literal is too long")
    if len(text) > 1 and text[0] == "0" and text[1].isdigit():
        raise _syntax(source, i, f"number {text} has a leading zero")
    return _Token("number", text, i)


def _significant(toks: list[_Token], i: int, step: int) -> _Token | None:
    j = i + step
    while 0 <= j < len(toks):
        if toks[j].kind not in ("ws", "comment"):
            return toks[j]
        j += step
    return None


def _next_significant(toks: list[_Token], i: int) -> int | None:
    for j in range(i + 1, len(toks)):
        if toks[j].kind not in ("ws", "comment"):
            return j
    return None


def _literal(value: Any, name: str) -> str:
    """One Cypher literal token for a scalar parameter value."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        if abs(value) >= 2**63:
            raise InvalidQueryParameters(
                f"parameter ${name} is an integer outside 64 bits", parameter=name
            )
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidQueryParameters(
                f"parameter ${name} is not a finite number", parameter=name
            )
        return repr(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidQueryParameters(
                f"parameter ${name} holds a lone surrogate", parameter=name
            ) from None
        return json.dumps(value, ensure_ascii=False)
    raise InvalidQueryParameters(
        f"parameter ${name} is a {type(value).__name__}; parameters are strings, numbers, "
        "booleans, null, or (after IN) lists of those",
        parameter=name,
    )


def _check_word(toks: list[_Token], i: int, source: str) -> str:
    """The text grand-cypher gets for the word at `i` (refusing unsupported clauses)."""
    tok = toks[i]
    upper = tok.text.upper()
    before, after = _significant(toks, i, -1), _significant(toks, i, +1)
    is_name = (before is not None and before.text in (".", ":", "|")) or (
        after is not None and after.text == ":"
    )
    if is_name:
        if tok.text.startswith("__") and before is not None and before.text == ".":
            raise UnsupportedCypher(
                f"property names starting with __ ({tok.text}) are the engine's own",
                **_position(source, tok.start),
            )
        return tok.text
    if upper in REFUSED_WORDS and not (
        upper == "WITH" and before is not None and before.text.upper() in ("STARTS", "ENDS")
    ):
        raise UnsupportedCypher(REFUSED_WORDS[upper], **_position(source, tok.start))
    if upper == "IS" and after is not None and after.text.upper() == "NOT":
        raise UnsupportedCypher("IS NOT NULL (write NOT x IS NULL)", **_position(source, tok.start))
    if after is not None and after.text == "(" and (upper in AGGREGATES or upper == "EXISTS"):
        return upper
    if upper == "EXISTS" and after is not None and after.text == "{":
        return upper
    return tok.text


def _hops(source: str, start: int) -> tuple[str, int]:
    """A variable-length spec `*...` inside a relationship pattern: the bounded form
    grand-cypher takes, and where it ends."""
    m = _HOPS.match(source, start)
    assert m is not None
    low, dots, high = m.group(1), m.group(2), m.group(3)
    where = _position(source, start)
    if dots is None and low is None:
        raise UnsupportedCypher(
            f"unbounded variable-length relationship [*]: give bounds, at most *1..{MAX_HOPS}",
            **where,
        )
    if dots is not None and high is None:
        raise UnsupportedCypher(
            f"variable-length relationship without an upper bound: at most *1..{MAX_HOPS}",
            **where,
        )
    lo = int(low) if low is not None else 1
    hi = int(high) if high is not None else lo
    if hi > MAX_HOPS:
        raise UnsupportedCypher(
            f"variable-length relationship deeper than {MAX_HOPS} hops (*{lo}..{hi})", **where
        )
    if lo > hi:
        raise _syntax(source, start, f"variable-length bounds *{lo}..{hi} are reversed")
    return f"*{lo}..{hi}", m.end()


class _Writer:
    """The text for grand-cypher, written piece by piece, remembering where each piece came
    from in the client's query and where each bound value landed."""

    def __init__(self, query: str, params: dict[str, Any]) -> None:
        self.query, self.params = query, params
        self.parts: list[str] = []
        self.spans: list[tuple[int, int, str]] = []
        self.offsets: list[tuple[int, int]] = []
        self.size = 0
        self.used: set[str] = set()
        self.missing: set[str] = set()

    def emit(self, text: str, original: int) -> None:
        self.offsets.append((self.size, original))
        self.parts.append(text)
        self.size += len(text)

    def value(self, literal: str, name: str, original: int) -> None:
        self.spans.append((self.size, self.size + len(literal), name))
        self.emit(literal, original)

    def param(self, tok: _Token, before: _Token | None) -> None:
        name = tok.value
        if name not in self.params:
            self.missing.add(name)
            return
        self.used.add(name)
        value = self.params[name]
        self.emit(" ", tok.start)  # a bound value is never glued to its neighbours
        if not isinstance(value, (list, tuple)):
            self.value(_literal(value, name), name, tok.start)
        elif before is None or before.text.upper() != "IN":
            raise UnsupportedCypher(
                f"list parameter ${name} outside IN: a list parameter may only follow IN",
                **_position(self.query, tok.start),
            )
        else:
            self.emit("[", tok.start)
            for k, item in enumerate(value):
                if isinstance(item, (list, tuple, dict)):
                    raise InvalidQueryParameters(
                        f"parameter ${name} holds a nested {type(item).__name__}; a list "
                        "parameter holds strings, numbers, booleans or null",
                        parameter=name,
                    )
                self.emit(", " if k else "", tok.start)
                self.value(_literal(item, name), name, tok.start)
            self.emit("]", tok.start)
        self.emit(" ", tok.start)

    def check_parameters(self) -> None:
        if self.missing:
            names = sorted(self.missing)
            raise InvalidQueryParameters(
                f"the query uses parameters with no value: {', '.join('$' + m for m in names)}",
                missing=names,
            )
        unused = sorted(set(self.params) - self.used)
        if unused:
            raise InvalidQueryParameters(
                f"parameters not used by the query: {', '.join(unused)} (a typo?)", unused=unused
            )


def prepare(query: str, parameters: Mapping[str, Any] | None = None) -> Prepared:
    """The text grand-cypher gets for `query` with `parameters` bound; raises E030 (syntax),
    E031 (unsupported construct, named) or E032 (parameters)."""
    toks = _rejoined_hops(tokens(query), query)
    out = _Writer(query, dict(parameters or {}))
    skip: set[int] = set()
    for i, tok in enumerate(toks):
        if i in skip:
            continue
        if tok.kind == "comment":
            out.emit(" ", tok.start)
        elif tok.kind == "string":
            out.emit(json.dumps(tok.value, ensure_ascii=False), tok.start)
        elif tok.kind == "param":
            out.param(tok, _significant(toks, i, -1))
        elif tok.kind == "word":
            text = _check_word(toks, i, query)
            j = _next_significant(toks, i)
            if (
                text.upper() in ("STARTS", "ENDS")
                and j is not None
                and toks[j].text.upper() == "WITH"
            ):
                # grand-cypher's terminal is "starts with" with exactly one space
                text = f"{text} {toks[j].text}"
                skip.update(range(i + 1, j + 1))
            out.emit(text, tok.start)
        else:
            out.emit(tok.text, tok.start)
    out.check_parameters()
    return Prepared(
        text="".join(out.parts),
        columns=tuple(return_columns(toks)),
        param_spans=tuple(out.spans),
        offsets=tuple(out.offsets),
        source=query,
    )


def _rejoined_hops(toks: list[_Token], source: str) -> list[_Token]:
    """Replace each `*...` inside `[...]` of a relationship pattern by one `hops` token."""
    out: list[_Token] = []
    depth = 0  # inside a relationship pattern's brackets: "-[" opened it
    skip_until = -1
    for i, tok in enumerate(toks):
        if tok.start < skip_until:
            continue
        if tok.text == "[" and i > 0 and toks[i - 1].text == "-":
            depth += 1
        elif tok.text == "]" and depth:
            depth -= 1
        elif tok.text == "*" and depth:
            text, end = _hops(source, tok.start)
            out.append(_Token("hops", text, tok.start))
            skip_until = end
            continue
        out.append(tok)
    return out


def return_columns(toks: list[_Token]) -> list[str]:
    """The RETURN items of the outer query, as the client wrote them (or their alias)."""
    sig = [t for t in toks if t.kind not in ("ws", "comment")]
    start = _outer_return(sig)
    if start is None:
        return []
    if start < len(sig) and sig[start].kind == "word" and sig[start].text.upper() == "DISTINCT":
        start += 1
    items: list[list[_Token]] = [[]]
    depth = 0
    for t in sig[start:]:
        if depth == 0 and t.kind == "word" and t.text.upper() in ("ORDER", "SKIP", "LIMIT"):
            break
        if t.text in "([{":
            depth += 1
        elif t.text in ")]}":
            depth -= 1
        if depth == 0 and t.text == ",":
            items.append([])
            continue
        items[-1].append(t)
    return [_column(item) for item in items]


def _outer_return(sig: list[_Token]) -> int | None:
    """Where the items of the RETURN outside any { } (EXISTS subquery) begin."""
    brace = 0
    start = None
    for k, t in enumerate(sig):
        if t.text == "{":
            brace += 1
        elif t.text == "}":
            brace -= 1
        elif brace == 0 and t.kind == "word" and t.text.upper() == "RETURN":
            start = k + 1
    return start


def _column(item: list[_Token]) -> str:
    if len(item) >= 2 and item[-2].kind == "word" and item[-2].text.upper() == "AS":
        return item[-1].text
    return _spelled(item)


def _spelled(item: list[_Token]) -> str:
    text = ""
    for t in item:
        if text and (t.kind in ("word", "number", "string", "param") and text[-1].isalnum()):
            text += " "
        text += t.text
    return text


@lru_cache(maxsize=512)
def _parse_text(text: str) -> Tree[Token]:
    tree: Tree[Token] = _GrandCypherGrammar.parse(text)
    return tree


def parse(prepared: Prepared) -> Tree[Token]:
    """grand-cypher's parse tree of a prepared query (cached by text). Raises E030 with the
    client's line and column, or E031 when a parameter did not land as one value."""
    try:
        tree = _parse_text(prepared.text)
    except UnexpectedInput as exc:
        offset = len(prepared.text) if isinstance(exc, UnexpectedEOF) else exc.pos_in_stream or 0
        line, column = prepared.source_position(offset)
        expected = sorted(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or [])
        near = prepared.text[offset : offset + 20]
        message = (
            "the query ends too early"
            if isinstance(exc, UnexpectedEOF) or not near
            else f"unexpected {near.split()[0] if near.split() else near!r}"
        )
        raise CypherSyntaxError(
            f"Cypher syntax error at line {line}, column {column}: {message}"
            + (f"; expected one of {', '.join(expected[:8])}" if expected else ""),
            line=line,
            column=column,
            expected=expected[:20],
        ) from None
    _check_parameters(tree, prepared)
    return tree


def _check_parameters(tree: Tree[Token], prepared: Prepared) -> None:
    """Every bound parameter is exactly one value token of the tree, nothing else: the value
    cannot have become a name, a keyword or part of the pattern."""
    if not prepared.param_spans:
        return
    found: dict[tuple[int, int], str] = {}
    for tok in tree.scan_values(lambda v: isinstance(v, Token)):
        found[(tok.start_pos or 0, tok.end_pos or 0)] = tok.type
    for start, end, name in prepared.param_spans:
        kind = found.get((start, end))
        inside = [k for (s, e), k in found.items() if s < end and e > start]
        if kind not in VALUE_TOKENS or len(inside) != 1:
            raise UnsupportedCypher(
                f"parameter ${name} in this position: parameters stand for values only "
                "(comparisons, IN lists, property maps, LIMIT and SKIP)",
                parameter=name,
            )

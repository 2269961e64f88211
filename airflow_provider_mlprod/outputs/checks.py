"""The registry of output checks: one ``OutputCheck`` row per check, with a Python and a SQL form.

A check decides, for each prediction (one value of one column), whether it passes. The task-level
verdict compares the check's pass rate with ``min_pass_rate``. Adding a check is adding a row to
``OUTPUT_CHECKS``: its name, the value kinds it applies to, its default ``min_pass_rate``, a
``prepare`` function that validates the parameters (before any row is read), a vectorised Python form
(a pandas Series in, a boolean Series out) and, where one exists, a SQL form per dialect (a SQLAlchemy
boolean expression on the column).

A NULL (or NaN) value fails every check. The SQL form counts a row as passing only when its condition
is TRUE, so NULL fails there too. A text holding a NUL character (``\\x00``: corrupt output; PostgreSQL
cannot store one and SQLite's ``length`` and ``json_valid`` stop at it) fails every text check.

====================  =======  =====  ==============================================  ====================
name                  kinds    rate   passes when                                     SQL form
====================  =======  =====  ==============================================  ====================
``valid_json``        text     1.0    the text is strict JSON (RFC 8259: no NaN)      SQLite ``json_valid``;
                                                                                      PG 16+ ``IS JSON``
``json_schema``       text     1.0    the text is JSON matching ``schema``            none (Python)
``allowed_labels``    any      1.0    the value is one of ``labels``                  all dialects
``numeric_range``     numeric  1.0    ``min_value <= value <= max_value`` (NaN fails) all dialects
``not_empty``         text     0.99   it has a character outside `` \\t\\n\\r\\v\\f``    all dialects
``max_length``        text     0.99   at most ``max_chars`` characters                all dialects
``regex``             text     0.99   ``pattern`` is found (search, DOTALL)           PostgreSQL, DuckDB,
                                                                                      for the portable subset
``refusal``           text     0.95   contains none of ``phrases`` (ASCII,            PostgreSQL, SQLite,
                                      ASCII-case-insensitive, ``'`` also matches      DuckDB
                                      ``\u2019``)
``non_letter_share``  text     0.95   share of characters that are neither letters    PostgreSQL, DuckDB
                                      nor whitespace is at most ``max_share``
``repeated_ngrams``   text     0.95   share of repeated word ``n``-grams is at most   none (Python)
                                      ``max_share``
``word_count``        text     0.95   ``min_words <= words <= max_words`` (words:     PostgreSQL 15+,
                                      runs of non-whitespace)                         DuckDB
====================  =======  =====  ==============================================  ====================

``json_schema`` never fetches anything: a ``$ref`` that does not resolve within the schema (a URL, a
file) and a loop of ``$ref`` keywords are ``SpecError`` before any row is read; a document nested too deep to
check fails its row.

DuckDB's ``json_valid`` accepts ``NaN``, ``Infinity`` and trailing commas (and refuses a lone surrogate
escape), so ``valid_json`` runs in Python there.

Letters are what Python's ``[^\\W\\d_]`` matches (Unicode letters, plus the numerals of categories Nl and
No such as Roman numerals and superscripts); DuckDB reads them alike (``[\\p{L}\\p{Nl}\\p{No}]``).
PostgreSQL's ``[[:alpha:]]`` follows the server's ctype locale: under glibc it also counts non-ASCII
digits (``٣``) and Indic vowel signs as letters and superscripts and fractions (``²``, ``½``) as
non-letters, so ``non_letter_share`` may count such texts differently there; for Latin, Greek,
Cyrillic, CJK, Hangul, Arabic and Hebrew letters, emoji and combining accents it counts like Python.

Portable regex subset (evaluated in PostgreSQL and in DuckDB's RE2 with ``.`` matching a newline,
read alike by Python's ``re`` with DOTALL and ``$`` as end of text): literal characters, ``.``, ``^``,
``$``, ``*``, ``+``, ``?``, ``{m}``, ``{m,n}`` (bounds up to 255),
groups ``( )``, alternation ``|``, bracket expressions without backslashes inside (``[a-z0-9_]``,
``[^,]``), and a backslash before ASCII punctuation (``\\.``). Anything else (``\\d``, ``\\w``, lookarounds,
backreferences, ``(?...)``) runs in Python.

A pattern that repeats without bound a part that itself repeats without bound (``(a+)+``) is refused
(:func:`nested_unbounded_repetition`): Python's backtracking engine can take exponential time on it.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import SpecError
from airflow_provider_mlprod.outputs.row_values import RowValue

if TYPE_CHECKING:
    import pandas as pd

TEXT = "text"
NUMERIC = "numeric"
ANY = frozenset({TEXT, NUMERIC})
CRITICAL, WARNING = "critical", "warning"
SEVERITIES = (CRITICAL, WARNING)

NUL = "\x00"
"""A text holding this character fails every text check, in Python and in every database alike."""
WHITESPACE = " \t\n\r\x0b\x0c"
"""What "whitespace" means in every check and descriptor, in Python and in SQL alike."""

DEFAULT_REFUSAL_PHRASES = (
    "as an ai language model",
    "as an ai model",
    "i'm sorry, but",
    "i am sorry, but",
    "i cannot help with",
    "i can't help with",
    "i cannot assist",
    "i can't assist",
    "i am unable to",
    "i'm unable to",
)

ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_WORD = "[^" + WHITESPACE + "]+"
_LETTER_OR_SPACE_RUN_PY = r"(?:[^\W\d_]|[ \t\n\r\x0b\x0c])+"
_LETTER_OR_SPACE_RUN_SQL = "[[:alpha:]" + WHITESPACE + "]+"
_LETTER_OR_SPACE_RUN_RE2 = r"[\p{L}\p{Nl}\p{No}" + WHITESPACE + "]+"  # Python's [^\W\d_]: L, Nl, No


# --- the row type ---------------------------------------------------------------------------------

PythonForm = Callable[["pd.Series", Mapping[str, Any]], "pd.Series"]
SqlForm = Callable[[sa.ColumnElement[Any], Mapping[str, Any], "Dialect"], "sa.ColumnElement[bool] | None"]


@dataclass(frozen=True)
class Dialect:
    """The database a SQL form is built for: its name and server version (``(16, 2)``), if known."""

    name: str
    version: tuple[int, ...] = ()
    encoding: str = ""
    """The Python codec of the database's text (PostgreSQL's server encoding), if known: a text there
    holds only characters it encodes, and a search string with any other fails the whole statement."""

    @classmethod
    def of(cls, connection: sa.Connection) -> Dialect:
        info = connection.dialect.server_version_info or ()
        version = tuple(int(part) for part in info if isinstance(part, int))
        encoding = ""
        if connection.dialect.name == "postgresql":
            server = connection.execute(sa.text("SELECT current_setting('server_encoding')")).scalar()
            encoding = POSTGRESQL_CODECS.get(str(server).upper(), "")
        return cls(connection.dialect.name, version, encoding)

    def can_hold(self, text: str) -> bool:
        """Whether a text of this database can hold ``text`` (True when the encoding is unknown)."""
        if not self.encoding:
            return True
        try:
            text.encode(self.encoding)
        except UnicodeEncodeError:
            return False
        return True


POSTGRESQL_CODECS = {
    "LATIN1": "latin-1", "LATIN2": "iso8859-2", "LATIN3": "iso8859-3", "LATIN4": "iso8859-4",
    "LATIN5": "iso8859-9", "LATIN6": "iso8859-10", "LATIN7": "iso8859-13", "LATIN8": "iso8859-14",
    "LATIN9": "iso8859-15", "LATIN10": "iso8859-16", "WIN1250": "cp1250", "WIN1251": "cp1251",
    "WIN1252": "cp1252", "WIN1253": "cp1253", "WIN1254": "cp1254", "WIN1255": "cp1255", "WIN1256": "cp1256",
    "WIN1257": "cp1257", "WIN1258": "cp1258", "WIN866": "cp866", "WIN874": "cp874", "KOI8R": "koi8-r",
    "KOI8U": "koi8-u", "ISO_8859_5": "iso8859-5", "ISO_8859_6": "iso8859-6", "ISO_8859_7": "iso8859-7",
    "ISO_8859_8": "iso8859-8", "EUC_JP": "euc_jp", "EUC_KR": "euc_kr", "EUC_CN": "gb2312",
}  # fmt: skip
"""PostgreSQL server encodings that cannot hold every character, and their Python codecs (UTF8 and
SQL_ASCII hold anything; encodings not listed are taken as holding anything)."""


@dataclass(frozen=True)
class OutputCheck:
    """One row of the registry."""

    name: str
    kinds: frozenset[str]
    default_min_pass_rate: float
    prepare: Callable[[Mapping[str, Any]], dict[str, Any]]
    python: PythonForm
    sql: SqlForm | None
    description: str


@dataclass(frozen=True)
class CheckSpec:
    """One configured check on one column: registry row, prepared parameters, threshold, severity."""

    check: OutputCheck
    column: str
    params: Mapping[str, Any]
    min_pass_rate: float
    severity: str = CRITICAL
    label: str = field(default="")

    @property
    def name(self) -> str:
        """``check(column)``, or the user's label."""
        return self.label or f"{self.check.name}({self.column})"

    def passes(self, values: pd.Series) -> pd.Series:
        """Boolean Series: which values pass (NULL fails; a text with a NUL character fails a text check)."""
        mask = self.check.python(values, self.params).fillna(False).astype(bool) & values.notna()
        if self.check.kinds == {TEXT}:
            mask &= ~_text(values).str.contains(NUL, regex=False).fillna(False).astype(bool)
        return mask

    def sql_condition(self, column: sa.ColumnElement[Any], dialect: Dialect) -> sa.ColumnElement[bool] | None:
        """The SQL condition of a passing row on ``dialect``, or None when this check runs in Python there."""
        if self.check.sql is None:
            return None
        condition = self.check.sql(column, self.params, dialect)
        if condition is not None and not all(map(dialect.can_hold, _bound_texts(condition))):
            return None  # a label or pattern the database cannot even be sent: Python decides
        if condition is None or self.check.kinds != {TEXT}:
            return condition
        if dialect.name == "sqlite":  # length(), trim() and json_valid() stop at a NUL: look at the bytes
            nul = sa.literal(NUL.encode(), sa.LargeBinary)
            return sa.and_(condition, sa.func.instr(sa.cast(column, sa.LargeBinary), nul) == 0)
        if dialect.name == "duckdb":
            return sa.and_(condition, sa.func.strpos(column, sa.func.chr(0)) == 0)
        return condition  # PostgreSQL text cannot hold a NUL


def _bound_texts(condition: sa.ColumnElement[Any]) -> Iterator[str]:
    """The text values bound in ``condition`` (labels, patterns, search strings)."""
    from sqlalchemy.sql import visitors

    for element in visitors.iterate(condition):
        if isinstance(element, sa.BindParameter) and isinstance(element.value, str):
            yield element.value
        elif isinstance(element, RowValue):  # its expression is not among its children
            yield from _bound_texts(element.value)


# --- parameters -----------------------------------------------------------------------------------


def _number(params: Mapping[str, Any], key: str, check: str, *, default: Any = None, minimum=None) -> Any:
    value = params.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"check {check!r}: {key} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise SpecError(f"check {check!r}: {key} must be at least {minimum}, got {value!r}")
    return value


def _only(params: Mapping[str, Any], check: str, allowed: Sequence[str]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise SpecError(
            f"check {check!r}: unknown parameter(s) {', '.join(unknown)}; "
            f"it takes {', '.join(allowed) or 'none'}"
        )


def _no_params(name: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    def prepare(params: Mapping[str, Any]) -> dict[str, Any]:
        _only(params, name, ())
        return {}

    return prepare


def _prepare_json_schema(params: Mapping[str, Any]) -> dict[str, Any]:
    import jsonschema
    import referencing

    _only(params, "json_schema", ("schema",))
    schema = params.get("schema")
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise SpecError(f"check 'json_schema': the schema is not valid JSON: {exc}") from None
    if not isinstance(schema, (dict, bool)):
        raise SpecError("check 'json_schema': give schema as a JSON Schema object")
    validator_class = jsonschema.validators.validator_for(schema)
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise SpecError(f"check 'json_schema': malformed JSON schema: {exc.message}") from None
    # no retrieval: a $ref outside the schema (a URL, a file) is never fetched; it is an error
    validator = validator_class(schema, registry=referencing.Registry(retrieve=_refuse_retrieval))
    for ref in _schema_refs(schema):
        _follow_ref_chain(validator, ref)
    for probe in (None, True, 0, "", [], {}):  # a $ref loop or an unresolvable $ref reached at the top
        _validate_with_schema(validator, probe, probing=True)
    return {"schema": schema, "validator": validator}


def _refuse_retrieval(uri: str) -> Any:
    import referencing.exceptions

    raise referencing.exceptions.NoSuchResource(ref=uri)


def _schema_refs(schema: Any) -> list[str]:
    """Every ``$ref`` string of ``schema`` (at any depth), when the schema has no nested ``$id``.

    With a nested ``$id`` a relative reference resolves against that subschema's URI; such refs are
    then checked as rows reach them (:func:`_validate_with_schema`), not here.
    """
    refs: list[str] = []
    nested_ids = False

    def walk(node: Any, depth: int) -> None:
        nonlocal nested_ids
        if isinstance(node, dict):
            if depth and isinstance(node.get("$id"), str):
                nested_ids = True
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for key, value in node.items():
                if key not in ("const", "enum", "default", "examples"):
                    walk(value, depth + 1)
        elif isinstance(node, list):
            for value in node:
                walk(value, depth + 1)

    walk(schema, 0)
    return [] if nested_ids else refs


def _follow_ref_chain(validator: Any, ref: str) -> None:
    """Resolve ``ref`` from the schema's root and every ``$ref`` it leads to; fail on a missing target or
    a loop (a chain of references back to itself never reaches a keyword that checks the document)."""
    import referencing.exceptions

    resolver = validator._resolver  # jsonschema's resolver of this schema's registry (no retrieval)
    seen: list[str] = []
    while ref not in seen:
        seen.append(ref)
        try:
            resolved = resolver.lookup(ref)
        except referencing.exceptions.Unresolvable:
            raise SpecError(
                f"check 'json_schema': $ref {ref!r} does not resolve within the schema "
                "(references outside it, such as URLs, are not fetched)"
            ) from None
        target = resolved.contents
        if not isinstance(target, dict) or not isinstance(target.get("$ref"), str):
            return
        resolver, ref = resolved.resolver, target["$ref"]
    raise SpecError(f"check 'json_schema': $ref loop {' -> '.join([*seen, ref])}")


def _validate_with_schema(validator: Any, document: Any, *, probing: bool = False) -> bool:
    """Whether ``document`` matches; a $ref the schema cannot resolve or a $ref loop is a ``SpecError``."""
    import referencing.exceptions

    try:
        return validator.is_valid(document)
    except referencing.exceptions.Unresolvable as exc:
        raise SpecError(
            f"check 'json_schema': a $ref does not resolve within the schema ({exc}); references "
            "outside it, such as URLs, are not fetched"
        ) from None
    except RecursionError:
        if probing:
            raise SpecError("check 'json_schema': the schema's $refs loop back to themselves") from None
        return False  # a document nested too deep to check: it fails


def _prepare_labels(params: Mapping[str, Any]) -> dict[str, Any]:
    _only(params, "allowed_labels", ("labels",))
    labels = params.get("labels")
    if isinstance(labels, str) or not isinstance(labels, (list, tuple, set, frozenset)) or not labels:
        raise SpecError("check 'allowed_labels': labels must be a non-empty list")
    kinds = {type(label) for label in labels}
    if not kinds <= {str} and not kinds <= {int, float}:
        raise SpecError("check 'allowed_labels': labels must be all strings or all numbers")
    if kinds <= {int, float} and not all(math.isfinite(label) for label in labels):
        # NaN = NaN is true in PostgreSQL and DuckDB (a NaN would pass there and fail in Python)
        raise SpecError("check 'allowed_labels': numeric labels must be finite (no NaN or infinity)")
    return {"labels": sorted(set(labels))}


def _prepare_range(params: Mapping[str, Any]) -> dict[str, Any]:
    _only(params, "numeric_range", ("min_value", "max_value"))
    low = _number(params, "min_value", "numeric_range")
    high = _number(params, "max_value", "numeric_range")
    if low is None and high is None:
        raise SpecError("check 'numeric_range': give min_value, max_value or both")
    if low is not None and high is not None and low > high:
        raise SpecError(f"check 'numeric_range': min_value {low} is above max_value {high}")
    return {"min_value": low, "max_value": high}


def _prepare_max_length(params: Mapping[str, Any]) -> dict[str, Any]:
    _only(params, "max_length", ("max_chars",))
    value = _number(params, "max_chars", "max_length", minimum=0)
    if value is None or int(value) != value:
        raise SpecError("check 'max_length': max_chars must be a whole number")
    return {"max_chars": int(value)}


_PORTABLE_TOKEN = re.compile(
    r"\\[ -/:-@\[-`{-~]"  # escaped ASCII punctuation (RE2 refuses an escaped non-ASCII letter)
    r"|\[\^?\]?[^\]\\\[]*\]"  # bracket expression without backslashes or nested brackets
    r"|\{\d+(,\d*)?\}"  # bounds
    r"|\((?!\?)"  # a plain group
    r"|[^\\\[\](){}]"  # anything else literal or an operator character
    r"|[)]"
)


MAX_PORTABLE_REPEAT = 255
"""The largest ``{m,n}`` bound PostgreSQL accepts (DuckDB's RE2: 1000); larger bounds run in Python."""


def portable_regex(pattern: str) -> str | None:
    """The Python spelling of a portable ``pattern`` (``$`` becomes ``\\Z``); None outside the subset."""
    position, python = 0, []
    while position < len(pattern):
        match = _PORTABLE_TOKEN.match(pattern, position)
        if match is None:
            return None
        token = match.group(0)
        if token.startswith("{") and max(int(n) for n in re.findall(r"\d+", token)) > MAX_PORTABLE_REPEAT:
            return None
        python.append(r"\Z" if token == "$" else token)
        position = match.end()
    return "".join(python)


def nested_unbounded_repetition(pattern: str) -> bool:
    """Whether ``pattern`` repeats without bound a part that itself repeats without bound (``(a+)+``,
    ``(\\w+\\s*)*``, ``(.*x)+``): Python's backtracking engine can take exponential time on such a
    pattern (``(a+)+$`` on 40 ``a`` and a ``!`` runs for days). A possessive inner repetition (``a++``)
    or an atomic group (``(?>...)``) does not backtrack and is not counted. ``pattern`` must compile."""
    from re import _constants as sre
    from re import _parser

    repeats = (sre.MAX_REPEAT, sre.MIN_REPEAT)

    def children(argument: Any) -> Iterator[Any]:
        if isinstance(argument, _parser.SubPattern):
            yield argument
        elif isinstance(argument, (tuple, list)):
            for part in argument:
                yield from children(part)

    def unbounded_inside(subpattern: Any) -> bool:
        for op, argument in subpattern:
            if op in repeats and argument[1] == sre.MAXREPEAT:
                return True
            if op != sre.ATOMIC_GROUP and any(unbounded_inside(child) for child in children(argument)):
                return True
        return False

    def nested(subpattern: Any) -> bool:
        for op, argument in subpattern:
            if op in repeats and argument[1] == sre.MAXREPEAT and unbounded_inside(argument[2]):
                return True
            if any(nested(child) for child in children(argument)):
                return True
        return False

    return nested(_parser.parse(pattern))


def check_backtracking(pattern: str, where: str) -> None:
    """``SpecError`` naming ``where`` when ``pattern`` nests unbounded repetition (see
    :func:`nested_unbounded_repetition`); ``pattern`` must compile."""
    if nested_unbounded_repetition(pattern):
        raise SpecError(
            f"{where}: regex {pattern!r} repeats a part that itself repeats without bound (such as "
            "'(a+)+'): matching it can take exponential time on a long text; write it without the "
            "nesting, or make the inner repetition possessive ('a++') or an atomic group ('(?>...)')"
        )


def _prepare_regex(params: Mapping[str, Any]) -> dict[str, Any]:
    _only(params, "regex", ("pattern",))
    pattern = params.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise SpecError("check 'regex': pattern must be a non-empty string")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise SpecError(f"check 'regex': invalid regex {pattern!r}: {exc}") from None
    check_backtracking(pattern, "check 'regex'")
    portable = portable_regex(pattern)
    python = re.compile(portable if portable is not None else pattern, re.DOTALL)
    return {"pattern": pattern, "portable": portable is not None, "compiled": python}


def _prepare_refusal(params: Mapping[str, Any]) -> dict[str, Any]:
    _only(params, "refusal", ("phrases",))
    phrases = params.get("phrases", DEFAULT_REFUSAL_PHRASES)
    if isinstance(phrases, str) or not phrases or not all(isinstance(p, str) and p for p in phrases):
        raise SpecError("check 'refusal': phrases must be a non-empty list of non-empty strings")
    if not all(phrase.isascii() for phrase in phrases):
        raise SpecError("check 'refusal': phrases must be ASCII (they are matched ASCII-case-insensitively)")
    lowered = {phrase.translate(ASCII_LOWER) for phrase in phrases}
    variants = tuple(sorted({variant for phrase in lowered for variant in _apostrophe_variants(phrase)}))
    guards = phrase_guards(variants)
    return {"phrases": variants, "pattern": ascii_caseless_pattern(variants), "guards": guards}


APOSTROPHES = ("'", "\u2019")
"""An apostrophe in a refusal phrase also matches the typographic one (``I\u2019m sorry``), which models
write as often as the ASCII one."""


def _apostrophe_variants(phrase: str) -> list[str]:
    """``phrase`` with each apostrophe straight or typographic (all alike beyond three apostrophes)."""
    if phrase.count("'") > 3:
        return [phrase, phrase.replace("'", APOSTROPHES[1])]
    variants = [""]
    for char in phrase:
        options = APOSTROPHES if char == "'" else (char,)
        variants = [variant + option for variant in variants for option in options]
    return variants


GUARD_CHARS = 8
"""Length of the substrings :func:`phrase_guards` groups phrases by (a shorter phrase guards itself)."""
MAX_GROUPED_PHRASES = 32
"""Above this many phrases each phrase is its own guard (grouping costs time quadratic in their number)."""


def phrase_guards(phrases: Sequence[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Group ``phrases`` under guards: ``(guard, phrases containing it)``, every phrase in one group.

    A text holds one of the phrases only if it holds one of the guards, so a search for the few guards
    settles most texts, and the phrases of a group are searched only in texts holding its guard.
    Greedy set cover: the ``GUARD_CHARS``-character substring found in most remaining phrases makes the
    next group, whose guard is the longest substring common to all its phrases (a longer needle is
    found faster). The default phrases and their apostrophe variants (14) make 5 groups, such as
    ``"m sorry, but"`` for ``"i am sorry, but"`` and both apostrophes of ``"i'm sorry, but"``.
    """
    remaining = sorted(set(phrases))
    if len(remaining) > MAX_GROUPED_PHRASES:
        return tuple((phrase, (phrase,)) for phrase in remaining)
    groups = []
    while remaining:
        candidates = sorted(
            {
                phrase[start : start + size]
                for phrase in remaining
                for size in [min(GUARD_CHARS, len(phrase))]
                for start in range(len(phrase) - size + 1)
            }
        )
        best = max(candidates, key=lambda gram: sum(gram in phrase for phrase in remaining))
        members = tuple(phrase for phrase in remaining if best in phrase)
        groups.append((_longest_common_substring(members), members))
        remaining = [phrase for phrase in remaining if phrase not in members]
    return tuple(groups)


def _longest_common_substring(texts: Sequence[str]) -> str:
    shortest = min(texts, key=len)
    for size in range(len(shortest), 0, -1):
        for start in range(len(shortest) - size + 1):
            common = shortest[start : start + size]
            if all(common in text for text in texts):
                return common
    return ""


def ascii_caseless_pattern(phrases: Sequence[str]) -> str:
    """One regex finding any of the ``phrases``, ASCII-case-insensitively, read alike by PostgreSQL, DuckDB
    and Python (each ASCII letter a two-letter class, other ASCII characters escaped or literal, the
    rest literal: RE2 refuses an escaped non-ASCII character)."""
    alternatives = []
    for phrase in phrases:
        parts = []
        for char in phrase:
            if not char.isascii():
                parts.append(char)
            elif char.isalpha():
                parts.append(f"[{char.lower()}{char.upper()}]")
            elif char.isalnum() or char == " ":
                parts.append(char)
            else:
                parts.append("\\" + char)
        alternatives.append("".join(parts))
    return "|".join(alternatives)


def _prepare_share(name: str, default: float, extra: Sequence[str] = ()) -> Callable[..., dict[str, Any]]:
    def prepare(params: Mapping[str, Any]) -> dict[str, Any]:
        _only(params, name, ("max_share", *extra))
        share = _number(params, "max_share", name, default=default, minimum=0)
        if share > 1:
            raise SpecError(f"check {name!r}: max_share must be in [0, 1], got {share!r}")
        prepared = {"max_share": float(share)}
        if "n" in extra:
            n = _number(params, "n", name, default=3, minimum=1)
            if int(n) != n:
                raise SpecError(f"check {name!r}: n must be a whole number")
            prepared["n"] = int(n)
        return prepared

    return prepare


def _prepare_word_count(params: Mapping[str, Any]) -> dict[str, Any]:
    _only(params, "word_count", ("min_words", "max_words"))
    low = _number(params, "min_words", "word_count", minimum=0)
    high = _number(params, "max_words", "word_count", minimum=0)
    if low is None and high is None:
        raise SpecError("check 'word_count': give min_words, max_words or both")
    if low is not None and high is not None and low > high:
        raise SpecError(f"check 'word_count': min_words {low} is above max_words {high}")
    return {"min_words": low, "max_words": high}


# --- Python forms (vectorised where pandas offers it) ---------------------------------------------


def _text(values: pd.Series) -> pd.Series:
    return values.astype("string")


def parse_strict_json(text: Any) -> Any:
    """``json.loads`` refusing ``NaN`` and ``Infinity`` (not JSON by RFC 8259): ValueError then."""

    def reject(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=reject)


def is_strict_json(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    try:
        parse_strict_json(text)
    except (ValueError, RecursionError):
        return False
    return True


def _py_valid_json(values: pd.Series, _: Mapping[str, Any]) -> pd.Series:
    return values.map(is_strict_json, na_action="ignore")


def _py_json_schema(values: pd.Series, params: Mapping[str, Any]) -> pd.Series:
    validator = params["validator"]

    def ok(text: Any) -> bool:
        if not isinstance(text, str):
            return False
        try:
            document = parse_strict_json(text)
        except (ValueError, RecursionError):
            return False
        return _validate_with_schema(validator, document)

    return values.map(ok, na_action="ignore")


def _py_labels(values: pd.Series, params: Mapping[str, Any]) -> pd.Series:
    return values.isin(params["labels"])


def _py_range(values: pd.Series, params: Mapping[str, Any]) -> pd.Series:
    import pandas as pd

    if values.dtype == object:  # a number written as text is text, as in SQL: it fails (a bool too)
        import numpy as np

        not_numbers = values.map(lambda v: isinstance(v, (str, bytes, bool, np.bool_))).astype(bool)
        values = values.where(~not_numbers)
    numbers = pd.to_numeric(values, errors="coerce")
    mask = numbers.notna()
    if params["min_value"] is not None:
        mask &= numbers >= params["min_value"]
    if params["max_value"] is not None:
        mask &= numbers <= params["max_value"]
    return mask


def _py_not_empty(values: pd.Series, _: Mapping[str, Any]) -> pd.Series:
    return _text(values).str.strip(WHITESPACE).str.len() > 0


def _py_max_length(values: pd.Series, params: Mapping[str, Any]) -> pd.Series:
    return _text(values).str.len() <= params["max_chars"]


def _py_regex(values: pd.Series, params: Mapping[str, Any]) -> pd.Series:
    with warnings.catch_warnings():  # a pattern with groups is fine: only whether it is found counts
        warnings.filterwarnings("ignore", "This pattern is interpreted as a regular expression", UserWarning)
        return _text(values).str.contains(params["compiled"], regex=True)


def _py_refusal(values: pd.Series, params: Mapping[str, Any]) -> pd.Series:
    return ~_text(values).str.contains(params["pattern"], regex=True)


def non_letter_counts(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Per value: (characters that are neither letters nor whitespace, all characters)."""
    text = _text(values)
    lengths = text.str.len()
    return text.str.replace(_LETTER_OR_SPACE_RUN_PY, "", regex=True).str.len(), lengths


def _py_non_letter(values: pd.Series, params: Mapping[str, Any]) -> pd.Series:
    non_letters, lengths = non_letter_counts(values)
    return non_letters <= params["max_share"] * lengths


def word_counts(values: pd.Series) -> pd.Series:
    """Per value: the number of words (runs of non-whitespace characters)."""
    return _text(values).str.count(_WORD)


def _py_word_count(values: pd.Series, params: Mapping[str, Any]) -> pd.Series:
    words = word_counts(values)
    mask = words.notna()
    if params["min_words"] is not None:
        mask &= words >= params["min_words"]
    if params["max_words"] is not None:
        mask &= words <= params["max_words"]
    return mask


def repeated_ngram_share(text: str, n: int) -> float:
    """Share of a text's word ``n``-grams that repeat an earlier one (0 when it has no ``n``-gram)."""
    words = text.split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def _py_repeated(values: pd.Series, params: Mapping[str, Any]) -> pd.Series:
    n, limit = params["n"], params["max_share"]
    return values.map(lambda text: repeated_ngram_share(str(text), n) <= limit, na_action="ignore")


# --- SQL forms ------------------------------------------------------------------------------------


def _sql_valid_json(column: sa.ColumnElement[Any], _: Mapping[str, Any], dialect: Dialect):
    # DuckDB's json_valid is not strict (it accepts NaN, Infinity and trailing commas, and refuses a lone
    # surrogate escape that RFC 8259 parsers accept): the check runs in Python there.
    if dialect.name == "sqlite":
        return sa.func.json_valid(column) == 1
    if dialect.name == "postgresql" and dialect.version >= (16,):
        return column.op("IS", is_comparison=True)(sa.literal_column("JSON"))
    return None


def _sql_labels(column: sa.ColumnElement[Any], params: Mapping[str, Any], _: Dialect):
    # each label bound with its own type: an expanding IN takes one type for all, and psycopg casts
    # [1, 2.5] on a float column to INTEGER (2.5 became 2: 2.0 passed, 2.5 failed)
    labels = params["labels"]
    if isinstance(labels[0], str):
        label_type: sa.types.TypeEngine[Any] = sa.String()
    elif all(isinstance(label, int) for label in labels):
        label_type = sa.BigInteger()
    else:
        label_type = sa.Float()
    return column.in_([sa.literal(label, label_type) for label in labels])


def _sql_range(column: sa.ColumnElement[Any], params: Mapping[str, Any], dialect: Dialect):
    conditions = [column.is_not(None)]
    if params["min_value"] is not None:
        conditions.append(column >= params["min_value"])
    if params["max_value"] is not None:
        conditions.append(column <= params["max_value"])
    elif dialect.name in ("postgresql", "duckdb"):  # NaN sorts above infinity there: NaN fails, as in Python
        conditions.append(column <= sa.literal(math.inf, sa.Float))
    return sa.and_(*conditions)


def _trimmed(column: sa.ColumnElement[Any], dialect: Dialect) -> sa.ColumnElement[Any]:
    chars = sa.literal(WHITESPACE, sa.String)
    return sa.func.btrim(column, chars) if dialect.name == "postgresql" else sa.func.trim(column, chars)


def _sql_not_empty(column: sa.ColumnElement[Any], _: Mapping[str, Any], dialect: Dialect):
    if dialect.name == "postgresql":  # stops at the first non-whitespace character: 2-3x faster than btrim
        return column.op("~", is_comparison=True)(sa.literal("[^" + WHITESPACE + "]", sa.String))
    return sa.func.length(_trimmed(column, dialect)) > 0


def _sql_max_length(column: sa.ColumnElement[Any], params: Mapping[str, Any], _: Dialect):
    return sa.func.length(column) <= params["max_chars"]


def _sql_regex(column: sa.ColumnElement[Any], params: Mapping[str, Any], dialect: Dialect):
    if not params["portable"]:
        return None
    return sql_regex_found(column, params["pattern"], dialect)


def sql_regex_found(
    column: sa.ColumnElement[Any], pattern: str, dialect: Dialect
) -> sa.ColumnElement[bool] | None:
    """Whether the portable ``pattern`` is found in ``column`` (PostgreSQL ``~``; DuckDB ``regexp_matches``
    with ``.`` matching a newline, as in PostgreSQL), else None."""
    if dialect.name == "postgresql":
        return column.op("~", is_comparison=True)(sa.literal(pattern, sa.String))
    if dialect.name == "duckdb":
        return sa.func.regexp_matches(column, sa.literal(pattern, sa.String), sa.literal("s", sa.String))
    return None


def _sql_refusal(column: sa.ColumnElement[Any], params: Mapping[str, Any], dialect: Dialect):
    if dialect.name == "postgresql":
        # lower() under the "C" collation lowers ASCII letters only (as Python's ASCII_LOWER), computed
        # once per row for all the searches (a RowValue); strpos() skips through the text by the
        # needle's length (Boyer-Moore-Horspool), so a few long guards settle most texts and the
        # phrases of a group are searched only in texts holding its guard (see phrase_guards)
        lowered = RowValue(sa.func.lower(sa.collate(column, "C")))

        def holds(text: str) -> sa.ColumnElement[bool]:
            return sa.func.strpos(lowered, sa.literal(text, sa.String)) > 0

        guards = params["guards"]
        held = [phrase for phrase in params["phrases"] if dialect.can_hold(phrase)]
        if len(held) < len(params["phrases"]):  # a LATIN1 text never holds "i\u2019m sorry": not searched
            guards = phrase_guards(held) if held else ()
        found = [
            holds(guard) if guard in members else sa.and_(holds(guard), sa.or_(*map(holds, members)))
            for guard, members in guards
        ]
    elif dialect.name == "duckdb":  # one regex scan
        found = [sql_regex_found(column, params["pattern"], dialect)]
    elif dialect.name == "sqlite":  # instr is case-sensitive: compare with lower() of ASCII only
        found = [sa.func.instr(sa.func.lower(column), sa.literal(phrase)) > 0 for phrase in params["phrases"]]
    else:
        return None
    return sa.and_(column.is_not(None), sa.not_(sa.or_(sa.false(), *found)))


def sql_non_letter_count(column: sa.ColumnElement[Any], dialect: Dialect) -> sa.ColumnElement[Any] | None:
    """Characters that are neither letters nor whitespace, in SQL (PostgreSQL, DuckDB), else None.

    PostgreSQL 14+: an ASCII text (most outputs) is counted with byte arithmetic (see
    :func:`_sql_ascii_non_letters`); any other text by ``regexp_replace`` over runs of letters and
    whitespace (per match, PostgreSQL's regex engine costs about a microsecond).
    """
    forms = _sql_non_letter_forms(column, dialect)
    if forms is None:
        return None
    if forms.is_ascii is None:
        return forms.other_count
    return sa.case((forms.is_ascii, forms.ascii_count), else_=forms.other_count)


@dataclass(frozen=True)
class _NonLetterForms:
    """How a dialect counts non-letters: ``other_count`` for any text; on PostgreSQL 14+ also
    ``ascii_count`` (exact) and ``ascii_bound`` (at least the count) for texts where ``is_ascii``."""

    other_count: sa.ColumnElement[Any]
    is_ascii: sa.ColumnElement[bool] | None = None
    ascii_count: sa.ColumnElement[Any] | None = None
    ascii_bound: sa.ColumnElement[Any] | None = None


def _sql_non_letter_forms(column: sa.ColumnElement[Any], dialect: Dialect) -> _NonLetterForms | None:
    def regex_count(pattern: str) -> sa.ColumnElement[Any]:
        empty = sa.literal("", sa.String)
        return sa.func.length(
            sa.func.regexp_replace(column, sa.literal(pattern, sa.String), empty, sa.literal("g"))
        )

    if dialect.name == "duckdb":
        return _NonLetterForms(regex_count(_LETTER_OR_SPACE_RUN_RE2))
    if dialect.name != "postgresql":
        return None
    other_count = regex_count(_LETTER_OR_SPACE_RUN_SQL)
    if dialect.version and dialect.version < (14,):  # no bit_count(bytea) before 14
        return _NonLetterForms(other_count)
    return _NonLetterForms(other_count, *_sql_ascii_non_letters(column))


def _sql_ascii_non_letters(column: sa.ColumnElement[Any]) -> tuple[Any, Any, Any]:
    """(the text is ASCII, its non-letters, at least its non-letters) on PostgreSQL 14+.

    In ASCII, ``upper()`` and ``lower()`` under the "C" collation change exactly the letters, each by
    the bit 0x20: the popcount of the lowered bytes less that of the uppered bytes (``bit_count``, a
    machine popcount) is the number of letters, and the popcount of the text less that of the uppered
    bytes the number of lower-case letters. Whitespace is counted by byte lengths around ``replace``.
    Each is one pass over the bytes; the bound (every character that is not a lower-case letter nor a
    space) needs one ``upper()`` and one ``replace`` and settles most texts below a threshold, the
    exact count is needed only above it. The bytes are the text's own (``convert_to`` the
    ``SQL_ASCII`` pseudo-encoding converts nothing and never fails, whatever the server's encoding);
    a text is taken as ASCII when ``encode(..., 'escape')`` leaves its length alone: no byte above
    0x7F (every server encoding writes a non-ASCII character with such bytes) and no backslash (a text
    with a backslash is counted by the regex).
    """
    empty = sa.literal("", sa.String)

    def stored_bytes(text: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.func.convert_to(text, sa.literal("SQL_ASCII", sa.String))

    def popcount(text: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.func.bit_count(stored_bytes(text))

    escaped = sa.func.encode(stored_bytes(column), sa.literal("escape", sa.String))
    is_ascii = sa.func.octet_length(escaped) == sa.func.octet_length(column)
    uppered, lowered = sa.func.upper(sa.collate(column, "C")), sa.func.lower(sa.collate(column, "C"))
    no_whitespace: sa.ColumnElement[Any] = column
    for char in WHITESPACE:
        no_whitespace = sa.func.replace(no_whitespace, sa.literal(char, sa.String), empty)
    exact = sa.func.octet_length(no_whitespace) - popcount(lowered) + popcount(uppered)
    no_spaces = sa.func.replace(column, sa.literal(" ", sa.String), empty)
    bound = sa.func.octet_length(no_spaces) - popcount(column) + popcount(uppered)
    return is_ascii, exact, bound


def _sql_non_letter(column: sa.ColumnElement[Any], params: Mapping[str, Any], dialect: Dialect):
    forms = _sql_non_letter_forms(column, dialect)
    if forms is None:
        return None
    share = sa.literal(params["max_share"], sa.Float)
    other = forms.other_count <= share * sa.func.length(column)
    if forms.is_ascii is None:
        return other
    # an ASCII text's bytes are its characters (length() is 4x slower than octet_length())
    ascii_limit = share * sa.func.octet_length(column)
    return sa.case(
        (sa.not_(forms.is_ascii), other),
        (forms.ascii_bound <= ascii_limit, sa.true()),
        else_=forms.ascii_count <= ascii_limit,
    )


def sql_word_count(column: sa.ColumnElement[Any], dialect: Dialect) -> sa.ColumnElement[Any] | None:
    """Words (runs of non-whitespace) in SQL on PostgreSQL 15+ and DuckDB, else None.

    A text whose only whitespace is single spaces (the common case) has ``spaces + 1`` words, less a
    leading and a trailing space: counted with byte lengths around ``replace``, about 6x faster than
    ``regexp_count`` on 400-character texts. Any other text (a tab, a newline, two spaces in a row)
    is counted by ``regexp_count``. The tests pick the cheapest search PostgreSQL has for each: ``LIKE``
    for two spaces (``strpos`` skips poorly with a two-byte needle), ``strpos`` for one character, the
    last byte (``get_byte``, no scan) for a trailing space.
    """
    if dialect.name == "duckdb":
        return sa.func.len(sa.func.regexp_extract_all(column, sa.literal(_WORD, sa.String)))
    if dialect.name != "postgresql" or (dialect.version and dialect.version < (15,)):
        return None
    space = sa.literal(" ", sa.String)
    other_spacing = sa.or_(
        column.like(sa.literal("%  %", sa.String)),
        *(sa.func.strpos(column, sa.literal(char, sa.String)) > 0 for char in WHITESPACE[1:]),
    )
    spaces = sa.func.octet_length(column) - sa.func.octet_length(
        sa.func.replace(column, space, sa.literal("", sa.String))
    )
    # the text's own last byte (convert_to SQL_ASCII converts nothing); the text is not empty here
    last_byte = sa.func.get_byte(
        sa.func.convert_to(column, sa.literal("SQL_ASCII", sa.String)), sa.func.octet_length(column) - 1
    )
    single_spaced = (
        spaces
        + 1
        - sa.case((column.like(sa.literal(" %", sa.String)), 1), else_=0)
        - sa.case((last_byte == ord(" "), 1), else_=0)
    )
    return sa.case(
        (column == sa.literal("", sa.String), 0),
        (sa.not_(other_spacing), single_spaced),
        else_=sa.func.regexp_count(column, sa.literal(_WORD, sa.String)),
    )


def _sql_word_count(column: sa.ColumnElement[Any], params: Mapping[str, Any], dialect: Dialect):
    words = sql_word_count(column, dialect)
    if words is None:
        return None
    low, high = params["min_words"], params["max_words"]
    if dialect.name == "postgresql" and low is not None and high is not None:
        # one evaluation of the word count (``a <= w AND w <= b`` computes it twice); words are whole
        low, high = math.ceil(low), math.floor(high)
        if low > high:
            return sa.false()
        bounds = sa.func.int8range(sa.literal(low, sa.BigInteger), sa.literal(high, sa.BigInteger), "[]")
        return sa.and_(
            column.is_not(None), bounds.op("@>", is_comparison=True)(sa.cast(words, sa.BigInteger))
        )
    conditions = [column.is_not(None)]
    if low is not None:
        conditions.append(words >= low)
    if high is not None:
        conditions.append(words <= high)
    return sa.and_(*conditions)


# --- the registry ---------------------------------------------------------------------------------

OUTPUT_CHECKS: dict[str, OutputCheck] = {
    check.name: check
    for check in (
        OutputCheck(
            "valid_json", frozenset({TEXT}), 1.0, _no_params("valid_json"), _py_valid_json, _sql_valid_json,
            "the text parses as strict JSON",
        ),
        OutputCheck(
            "json_schema", frozenset({TEXT}), 1.0, _prepare_json_schema, _py_json_schema, None,
            "the text is JSON that matches the JSON Schema",
        ),
        OutputCheck(
            "allowed_labels", ANY, 1.0, _prepare_labels, _py_labels, _sql_labels,
            "the value is one of the allowed labels",
        ),
        OutputCheck(
            "numeric_range", frozenset({NUMERIC}), 1.0, _prepare_range, _py_range, _sql_range,
            "the number lies in [min_value, max_value]",
        ),
        OutputCheck(
            "not_empty", frozenset({TEXT}), 0.99, _no_params("not_empty"), _py_not_empty, _sql_not_empty,
            "the text has a non-whitespace character",
        ),
        OutputCheck(
            "max_length", frozenset({TEXT}), 0.99, _prepare_max_length, _py_max_length, _sql_max_length,
            "the text has at most max_chars characters",
        ),
        OutputCheck(
            "regex", frozenset({TEXT}), 0.99, _prepare_regex, _py_regex, _sql_regex,
            "the pattern is found in the text",
        ),
        OutputCheck(
            "refusal", frozenset({TEXT}), 0.95, _prepare_refusal, _py_refusal, _sql_refusal,
            "the text contains no refusal phrase",
        ),
        OutputCheck(
            "non_letter_share", frozenset({TEXT}), 0.95, _prepare_share("non_letter_share", 0.3),
            _py_non_letter, _sql_non_letter,
            "at most max_share of the characters are neither letters nor whitespace (gibberish)",
        ),
        OutputCheck(
            "repeated_ngrams", frozenset({TEXT}), 0.95, _prepare_share("repeated_ngrams", 0.5, ("n",)),
            _py_repeated, None, "at most max_share of the word n-grams repeat an earlier one (loops)",
        ),
        OutputCheck(
            "word_count", frozenset({TEXT}), 0.95, _prepare_word_count, _py_word_count, _sql_word_count,
            "the number of words lies in [min_words, max_words]",
        ),
    )
}  # fmt: skip

RESERVED_KEYS = ("check", "column", "min_pass_rate", "severity", "name")


def build_checks(
    specs: Sequence[Mapping[str, Any]], default_column: str | None = None
) -> tuple[CheckSpec, ...]:
    """Turn user specs (``{"check": "regex", "column": "answer", "pattern": "...", ...}``) into CheckSpecs.

    Every parameter is validated here, before any row is read; ``SpecError`` names the check and problem.

    :param specs: one dict per check: ``check`` (registry name), ``column`` (default ``default_column``),
        optional ``min_pass_rate`` (default: the check's), ``severity`` (``critical``/``warning``),
        ``name`` (a label for reports), and the check's own parameters.
    """
    if isinstance(specs, Mapping) or not isinstance(specs, Sequence) or not specs:
        raise SpecError("output checks must be a non-empty list of check specs")
    built, labels = [], set()
    for position, spec in enumerate(specs):
        if not isinstance(spec, Mapping):
            raise SpecError(f"output check #{position}: a spec must be a dict, got {type(spec).__name__}")
        name = spec.get("check")
        if name not in OUTPUT_CHECKS:
            raise SpecError(
                f"output check #{position}: unknown check {name!r}; known: {', '.join(sorted(OUTPUT_CHECKS))}"
            )
        row = OUTPUT_CHECKS[name]
        column = spec.get("column", default_column)
        if not isinstance(column, str) or not column:
            raise SpecError(f"output check {name!r}: give the column it checks")
        rate = spec.get("min_pass_rate", row.default_min_pass_rate)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise SpecError(
                f"output check {name!r} on {column!r}: min_pass_rate must be in [0, 1], got {rate!r}"
            )
        severity = spec.get("severity", CRITICAL)
        if severity not in SEVERITIES:
            raise SpecError(f"output check {name!r} on {column!r}: severity must be critical or warning")
        params = row.prepare({k: v for k, v in spec.items() if k not in RESERVED_KEYS})
        check = CheckSpec(row, column, params, float(rate), severity, str(spec.get("name") or ""))
        if check.name in labels:
            raise SpecError(f"output check {check.name!r} is given twice; set a distinct 'name'")
        labels.add(check.name)
        built.append(check)
    return tuple(built)


def value_kind(value: Any) -> str | None:
    """``text`` for a string, ``numeric`` for a finite int or float (not a bool), else None."""
    if isinstance(value, str):
        return TEXT
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return NUMERIC
    return None


def evaluate_values(check: CheckSpec, values: Sequence[Any]) -> list[bool]:
    """Evaluate one check on loose Python values (e.g. the fields of JSON responses), vectorised.

    Unlike a table column, such values can be of any type: a value of a kind the check does not apply
    to (a string for ``numeric_range``, a number for ``regex``, a bool, a list or a dict for any check)
    fails it, like NULL.
    """
    import pandas as pd

    if not values:
        return []
    kinds = check.check.kinds
    column = pd.Series([v if value_kind(v) in kinds else None for v in values], dtype=object)
    return check.passes(column).tolist()


def evaluate_value(checks: Sequence[CheckSpec], value: Any) -> dict[str, bool]:
    """Evaluate ``checks`` on ONE value (e.g. one HTTP response body); return check name -> passed.

    The column of each check is ignored: every check sees ``value`` (see :func:`evaluate_values`).
    """
    return {check.name: evaluate_values(check, [value])[0] for check in checks}

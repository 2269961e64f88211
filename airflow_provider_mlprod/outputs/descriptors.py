"""Text descriptors: numeric columns derived from a text column, for drift against a reference profile.

Per row of a text column ``c``, the descriptors are:

=======================  =================================================================  ===============
column                   value                                                              SQL form
=======================  =================================================================  ===============
``c.length``             characters                                                         all dialects
``c.word_count``         words (runs of non-whitespace, see ``checks.WHITESPACE``)          PostgreSQL 15+,
                                                                                            DuckDB
``c.non_letter_share``   share of characters that are neither letters nor whitespace (0     PostgreSQL,
                         for an empty text)                                                 DuckDB
``c.oov_share``          share of the text's letter-words (ASCII-lower-cased runs of        PostgreSQL
                         letters) absent from the reference vocabulary (0 without words)
``c.refusal``            1 when the text contains a refusal phrase, else 0 (its mean is     PostgreSQL,
                         the refusal share)                                                 SQLite, DuckDB
``c.json_valid``         1 when the text is strict JSON, else 0 (mean: JSON-valid share)    SQLite,
                                                                                            PostgreSQL 16+
=======================  =================================================================  ===============

A NULL text gives NULL descriptors (the drift engine's missing-value signal). The Python form
(:func:`text_descriptors`) and the SQL forms (:func:`descriptor_expressions`) give the same values;
a SQL form of ``None`` means the descriptor is computed in Python on that dialect. The SQL forms are
per-row expressions, so a profile (counts per bin with ``width_bucket``) is computed inside the
database without moving the text.

``oov_share`` needs the reference vocabulary: :func:`reference_vocabulary` builds it from the
reference texts (the most frequent words), and it is stored with the reference profile.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa

from airflow_provider_mlprod.frames import plain_arrow_series
from airflow_provider_mlprod.outputs.checks import (
    ASCII_LOWER,
    DEFAULT_REFUSAL_PHRASES,
    OUTPUT_CHECKS,
    Dialect,
    is_strict_json,
    non_letter_counts,
    sql_non_letter_count,
    sql_word_count,
    word_counts,
)

if TYPE_CHECKING:
    import pandas as pd

DESCRIPTORS = ("length", "word_count", "non_letter_share", "oov_share", "refusal", "json_valid")
_LETTER_WORD_PY = re.compile(r"[^\W\d_]+")
_LETTER_WORD_SQL = "[[:alpha:]]+"
_UPPER, _LOWER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"


def letter_words(text: str) -> list[str]:
    """The ASCII-lower-cased runs of letters of ``text`` (the words the vocabulary is made of)."""
    return _LETTER_WORD_PY.findall(text.translate(ASCII_LOWER))


def reference_vocabulary(texts: Iterable[str | None], max_words: int = 20_000) -> tuple[str, ...]:
    """The ``max_words`` most frequent letter-words of the reference texts, sorted."""
    counts: Counter[str] = Counter()
    for text in texts:
        if isinstance(text, str):
            counts.update(letter_words(text))
    return tuple(sorted(word for word, _ in counts.most_common(max_words)))


def text_descriptors(
    frame: pd.DataFrame,
    column: str,
    *,
    vocabulary: Sequence[str] | None = None,
    refusal_phrases: Sequence[str] = DEFAULT_REFUSAL_PHRASES,
) -> pd.DataFrame:
    """The descriptor columns (``<column>.<descriptor>``) of ``frame[column]``, vectorised with pandas.

    ``oov_share`` is present only when ``vocabulary`` is given.
    """
    import numpy as np
    import pandas as pd

    from airflow_provider_mlprod.exceptions import InputDataError

    if column not in frame.columns:
        raise InputDataError(f"text descriptors: column {column!r} not found")
    values = plain_arrow_series(frame[column])  # a pyarrow string_view column as plain text
    text = values.astype("string")
    missing = values.isna().to_numpy()
    non_letters, lengths = non_letter_counts(values)
    out = pd.DataFrame(index=frame.index)
    out[f"{column}.length"] = lengths.astype("Float64")
    out[f"{column}.word_count"] = word_counts(values).astype("Float64")
    share = (non_letters / lengths.where(lengths > 0)).fillna(0.0)
    out[f"{column}.non_letter_share"] = share.astype("Float64").mask(missing)
    if vocabulary is not None:
        known = set(vocabulary)
        words = text.str.translate(ASCII_LOWER).str.findall(_LETTER_WORD_PY).explode()
        present = words.notna() & (words != "")
        unknown = present & ~words.isin(known)
        totals = present.groupby(level=0).sum()
        oov = (unknown.groupby(level=0).sum() / totals.where(totals > 0)).fillna(0.0)
        out[f"{column}.oov_share"] = (
            pd.Series(oov.to_numpy(float), index=frame.index).astype("Float64").mask(missing)
        )
    refusal_check = OUTPUT_CHECKS["refusal"]
    no_refusal = refusal_check.python(values, refusal_check.prepare({"phrases": list(refusal_phrases)}))
    refusal = (~no_refusal.fillna(True)).astype("Float64")
    out[f"{column}.refusal"] = refusal.mask(missing)
    json_valid = pd.Series(np.array([is_strict_json(v) for v in values], dtype=float), index=frame.index)
    out[f"{column}.json_valid"] = json_valid.astype("Float64").mask(missing)
    return out


def descriptor_expressions(
    column: sa.ColumnElement[str],
    dialect: Dialect,
    *,
    vocabulary: Sequence[str] | None = None,
    refusal_phrases: Sequence[str] = DEFAULT_REFUSAL_PHRASES,
) -> dict[str, sa.ColumnElement[float] | None]:
    """Per-row SQL expressions of the descriptors on ``dialect`` (``None``: compute it in Python there).

    Keys are the descriptor names of :data:`DESCRIPTORS`; ``oov_share`` only with ``vocabulary``.
    Values are bound parameters, never text in the SQL.
    """
    is_null = column.is_(None)

    def indicator(condition: sa.ColumnElement[bool] | None) -> sa.ColumnElement[float] | None:
        if condition is None:
            return None
        return sa.case((is_null, sa.null()), (condition, 1.0), else_=0.0)

    length = sa.func.length(column)
    non_letters = sql_non_letter_count(column, dialect)
    non_letter_share = None
    if non_letters is not None:
        non_letter_share = sa.case(
            (is_null, sa.null()), (length == 0, 0.0), else_=sa.cast(non_letters, sa.Float) / length
        )
    words = sql_word_count(column, dialect)
    refusal_check = OUTPUT_CHECKS["refusal"]
    no_refusal = refusal_check.sql(column, refusal_check.prepare({"phrases": list(refusal_phrases)}), dialect)
    expressions: dict[str, sa.ColumnElement[float] | None] = {
        "length": sa.cast(length, sa.Float),
        "word_count": None if words is None else sa.cast(words, sa.Float),
        "non_letter_share": non_letter_share,
        "refusal": None if no_refusal is None else indicator(sa.not_(no_refusal)),
        "json_valid": indicator(OUTPUT_CHECKS["valid_json"].sql(column, {}, dialect)),
    }
    if vocabulary is not None:
        expressions["oov_share"] = _sql_oov_share(column, dialect, vocabulary)
    return expressions


def _sql_oov_share(
    column: sa.ColumnElement[str], dialect: Dialect, vocabulary: Sequence[str]
) -> sa.ColumnElement[float] | None:
    if dialect.name != "postgresql":
        return None
    from sqlalchemy.dialects import postgresql

    lowered = sa.func.translate(column, sa.literal(_UPPER), sa.literal(_LOWER))
    matches = (
        sa.func.regexp_matches(lowered, sa.literal(_LETTER_WORD_SQL), sa.literal("g"))
        .table_valued(sa.column("m", postgresql.ARRAY(sa.Text)))
        .render_derived(name="words")
    )
    word = matches.c.m[1]
    vocab = sa.literal(list(vocabulary), postgresql.ARRAY(sa.Text))
    unknown = sa.func.count().filter(sa.not_(word == sa.func.any(vocab)))
    share = (
        sa.select(sa.cast(unknown, sa.Float) / sa.func.nullif(sa.func.count(), 0))
        .select_from(matches)
        .scalar_subquery()
    )
    return sa.case((column.is_(None), sa.null()), else_=sa.func.coalesce(share, 0.0))

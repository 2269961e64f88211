"""Text-descriptor drift: a text column's descriptors compared with a reference by the drift engine.

Per text column ``c`` the descriptors of :mod:`airflow_provider_mlprod.outputs.descriptors` (length,
word count, non-letter share, out-of-vocabulary share, refusal, JSON-valid) become numeric columns
named ``c__<descriptor>`` (plain SQL identifiers, so the drift engine can profile them in SQL). The
reference side is a ``TextReference``: the drift engine's profile of those columns (quantile bins)
plus each column's vocabulary, saved together as JSON. The current side is profiled on the
reference's bins:

- in pandas (:func:`text_drift_frame`), or
- inside the database (:func:`text_drift_sql`): the descriptors are per-row SQL expressions and the
  drift engine's ``profile_sql`` counts them per bin in a read-only snapshot, so a week of outputs in
  the warehouse is checked without moving its text. Only the descriptors with a SQL form on the
  dialect are compared there (PostgreSQL 15: all but ``json_valid``, which needs 16+); the result
  lists the ones left out.

The comparison itself is the drift engine's :func:`~airflow_provider_mlprod.drift.compare.compare_datasets`
with its settings (tests, thresholds, ``must_not_drift``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import InputDataError, SpecError
from airflow_provider_mlprod.outputs.checks import Dialect
from airflow_provider_mlprod.outputs.descriptors import (
    DESCRIPTORS,
    descriptor_expressions,
    reference_vocabulary,
    text_descriptors,
)
from airflow_provider_mlprod.outputs.row_values import hoist_row_values
from airflow_provider_mlprod.sql.identifiers import check_identifier, split_table_name

if TYPE_CHECKING:
    import pandas as pd

    from airflow_provider_mlprod.drift.profile import DatasetProfile
    from airflow_provider_mlprod.drift.results import DriftResult
    from airflow_provider_mlprod.drift.settings import DriftSettings

SEPARATOR = "__"


def descriptor_column(column: str, descriptor: str) -> str:
    """``<column>__<descriptor>``: the name of a descriptor column."""
    return f"{column}{SEPARATOR}{descriptor}"


@dataclass(frozen=True)
class TextReference:
    """The reference of text-descriptor drift: the descriptors' profile and each column's vocabulary."""

    profile: DatasetProfile
    vocabularies: Mapping[str, tuple[str, ...]]

    @property
    def text_columns(self) -> list[str]:
        return list(self.vocabularies)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "profile": self.profile.to_dict(),
            "vocabularies": {c: list(words) for c, words in self.vocabularies.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TextReference:
        from airflow_provider_mlprod.drift.profile import DatasetProfile

        if not isinstance(data, Mapping) or "profile" not in data or "vocabularies" not in data:
            raise InputDataError("text reference: expected a mapping with 'profile' and 'vocabularies'")
        vocabularies = {str(c): tuple(words) for c, words in dict(data["vocabularies"]).items()}
        return cls(DatasetProfile.from_dict(data["profile"], source="text reference"), vocabularies)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


@dataclass(frozen=True)
class TextDrift:
    """The drift result of the descriptors, and the descriptors that could not be compared (and why)."""

    result: DriftResult
    compared: tuple[str, ...]
    left_out: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.result.to_dict(), "compared": list(self.compared), "left_out": dict(self.left_out)}


def _check_columns(text_columns: Sequence[str]) -> list[str]:
    if isinstance(text_columns, str) or not text_columns:
        raise SpecError("text drift: give a non-empty list of text columns")
    for column in text_columns:
        check_identifier(column, "text column", SpecError)
    if len(set(text_columns)) != len(text_columns):
        raise SpecError(f"text drift: a text column is given twice in {list(text_columns)}")
    return list(text_columns)


def descriptor_frame(frame: pd.DataFrame, vocabularies: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """The descriptor columns (``<column>__<descriptor>``) of each text column in ``vocabularies``."""
    import pandas as pd

    parts = []
    for column, vocabulary in vocabularies.items():
        descriptors = text_descriptors(frame, column, vocabulary=vocabulary)
        parts.append(descriptors.rename(columns=lambda name: name.replace(".", SEPARATOR, 1)))
    return pd.concat(parts, axis=1).astype("float64")


def text_reference(
    frame: pd.DataFrame,
    text_columns: Sequence[str],
    *,
    max_words: int = 20_000,
    n_bins: int | None = None,
) -> TextReference:
    """Build the reference from reference outputs: each column's vocabulary, then the descriptors' profile."""
    from airflow_provider_mlprod.drift.profile import DEFAULT_BINS, NUMERIC, profile_dataframe

    columns = _check_columns(text_columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputDataError(f"text drift: reference has no column(s) {missing}")
    if frame.empty:
        raise InputDataError("text drift: the reference outputs are empty")
    vocabularies = {c: reference_vocabulary(frame[c], max_words=max_words) for c in columns}
    descriptors = descriptor_frame(frame, vocabularies)
    profile = profile_dataframe(
        descriptors,
        column_kinds=dict.fromkeys(descriptors.columns, NUMERIC),
        n_bins=n_bins or DEFAULT_BINS,
    )
    return TextReference(profile, vocabularies)


def text_drift_frame(
    reference: TextReference, current: pd.DataFrame, settings: DriftSettings | None = None
) -> TextDrift:
    """Compare the descriptors of the current outputs (a DataFrame) with the reference, in pandas."""
    from airflow_provider_mlprod.drift.compare import compare_datasets
    from airflow_provider_mlprod.drift.profile import profile_dataframe

    missing = [c for c in reference.text_columns if c not in current.columns]
    if missing:
        raise InputDataError(f"text drift: current outputs have no column(s) {missing}")
    descriptors = descriptor_frame(current, reference.vocabularies)
    profile = profile_dataframe(descriptors, specs=reference.profile.spec())
    result = compare_datasets(reference.profile, profile, settings)
    return TextDrift(result, tuple(profile.columns))


def descriptor_query(
    dialect: Dialect,
    reference: TextReference,
    *,
    table: str,
    schema: str | None = None,
    window: tuple[str, datetime, datetime] | None = None,
) -> tuple[sa.Select, list[str], dict[str, str]]:
    """The SELECT of the descriptor columns that have a SQL form on ``dialect``.

    Returns (statement, descriptor columns in it, descriptors left out -> reason). ``window`` is
    (timestamp column, start, end): only rows with ``start <= timestamp < end``.
    """
    schema, table = split_table_name(table, schema)
    names = list(reference.text_columns)
    if window is not None:
        names.append(check_identifier(window[0], "timestamp column", SpecError))
    source = sa.table(table, *(sa.column(c) for c in names), schema=schema)
    selected, left_out = [], {}
    for column, vocabulary in reference.vocabularies.items():
        expressions = descriptor_expressions(source.c[column], dialect, vocabulary=vocabulary)
        for descriptor in DESCRIPTORS:
            name = descriptor_column(column, descriptor)
            if name not in reference.profile.columns:
                continue
            expression = expressions.get(descriptor)
            if expression is None:
                left_out[name] = f"no SQL form on {dialect.name} {'.'.join(map(str, dialect.version))}"
                continue
            selected.append((name, expression))
    if not selected:
        raise SpecError(f"text drift: no descriptor has a SQL form on {dialect.name}")
    rows_from, hoisted = hoist_row_values(source, [expression for _, expression in selected], dialect.name)
    labeled = [expression.label(name) for (name, _), expression in zip(selected, hoisted, strict=True)]
    statement = sa.select(*labeled).select_from(rows_from)
    if window is not None:
        moment = source.c[window[0]]
        start, end = (sa.literal(bound.isoformat(sep=" "), sa.String) for bound in window[1:])
        statement = statement.where(moment >= start, moment < end)
    return statement, [name for name, _ in selected], left_out


def text_drift_sql(
    engine: sa.Engine,
    reference: TextReference,
    *,
    table: str,
    schema: str | None = None,
    window: tuple[str, datetime, datetime] | None = None,
    settings: DriftSettings | None = None,
) -> TextDrift:
    """Compare the descriptors of a table's outputs with the reference, computed inside the database.

    :param window: (timestamp column, start, end): the current outputs are the rows in ``[start, end)``.
    :param settings: the drift engine's settings (default: compare every descriptor computed in SQL).
    """
    from airflow_provider_mlprod.drift.compare import compare_datasets
    from airflow_provider_mlprod.drift.settings import DriftSettings
    from airflow_provider_mlprod.drift.sql_profile import profile_sql

    with engine.connect() as connection:
        dialect = Dialect.of(connection)
    statement, names, left_out = descriptor_query(
        dialect, reference, table=table, schema=schema, window=window
    )
    query = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
    spec = reference.profile.spec()
    profile = profile_sql(engine, {name: spec[name] for name in names}, query=query)
    compared = tuple(names)
    settings = settings or DriftSettings()
    if settings.columns is None:
        settings = replace(settings, columns=compared)
    result = compare_datasets(reference.profile, profile, settings)
    return TextDrift(result, compared, left_out)

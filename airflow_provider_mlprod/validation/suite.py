"""Load and check an expectation suite: a GX suite JSON file, a suite dict, or a list of expectation configs.

GX drops an expectation whose type it does not know, logging it and keeping a shorter suite. Here
every expectation is checked before use: unknown types fail naming every one of them, a config GX
rejects fails with GX's reason, and an empty suite is an error.

Each expectation has a severity, ``critical`` (a failure fails the validation) or ``warning`` (a
failure is reported only), read from the expectation's ``severity`` key or ``meta.severity``, else
the default given to :func:`load_suite`. GX's own ``severity`` field does not change ``success``; the
policy is applied by the runner.

Public API: :func:`load_suite`, :class:`ValidationSuite`, :class:`ExpectationSpec`, :data:`SEVERITIES`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mlprod.exceptions import SpecError

if TYPE_CHECKING:
    import great_expectations as gx

# GX is imported lazily, inside the functions that use it; these loggers are quieted before its first
# import: the import logs ~200 INFO lines, its context more. Warnings still show.
for _logger_name in ("great_expectations", "great_expectations._docs_decorators"):
    logging.getLogger(_logger_name).setLevel(logging.WARNING)

CRITICAL = "critical"
WARNING = "warning"
SEVERITIES = (CRITICAL, WARNING)
"""Allowed severities: ``critical`` failures fail the validation, ``warning`` failures are reported only."""

POSITION_META_KEY = "mlprod_position"
"""Key added to each expectation's ``meta`` so a GX result can be matched to its expectation."""

COLUMN_KWARGS = ("column", "column_A", "column_B")
"""Expectation kwargs naming one column of the data."""

COLUMN_LIST_KWARGS = ("column_list",)
"""Expectation kwargs naming several columns of the data."""

RUN_OPTION_KWARGS = ("result_format", "catch_exceptions", "meta", "notes", "description")
"""Expectation kwargs that say how to run or describe it, not what it checks."""

COLUMN_PRESENCE_TYPES = frozenset(
    {
        "expect_column_to_exist",
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
        "expect_table_column_count_to_equal",
        "expect_table_column_count_to_be_between",
    }
)
"""Expectation types whose purpose is to check which columns exist: a missing column is their result."""


@dataclass(frozen=True)
class ExpectationSpec:
    """One checked expectation of a suite.

    :param position: its index in the suite (0-based), stable across GX's reordering of results.
    :param expectation_type: the GX type in snake case, e.g. ``expect_column_values_to_not_be_null``.
    :param kwargs: the expectation's arguments.
    :param severity: ``critical`` or ``warning``.
    :param meta: the expectation's meta, as given.
    """

    position: int
    expectation_type: str
    kwargs: Mapping[str, Any]
    severity: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column this expectation reads, in the order its kwargs name them."""
        names: list[str] = [self.kwargs[key] for key in COLUMN_KWARGS if self.kwargs.get(key) is not None]
        for key in COLUMN_LIST_KWARGS:
            names.extend(self.kwargs.get(key) or ())
        return tuple(names)

    @property
    def required_columns(self) -> tuple[str, ...]:
        """The columns the data must have for this expectation to be evaluated at all."""
        return () if self.expectation_type in COLUMN_PRESENCE_TYPES else self.columns

    @property
    def column_label(self) -> str | None:
        """The column(s) as shown to people: ``"amount"``, ``"start, end"``, or None for table checks."""
        return ", ".join(self.columns) or None

    @property
    def parameters(self) -> dict[str, Any]:
        """The arguments other than the column(s) and run options: bounds, value sets, ``mostly``."""
        skipped = {*COLUMN_KWARGS, *COLUMN_LIST_KWARGS, *RUN_OPTION_KWARGS}
        return {key: value for key, value in self.kwargs.items() if key not in skipped}

    @property
    def name(self) -> str:
        """A readable name: the type with its column(s), e.g. ``expect_column_values_to_be_unique(id)``."""
        label = self.column_label
        return f"{self.expectation_type}({label})" if label else self.expectation_type

    @cached_property
    def is_row_level(self) -> bool:
        """True for row-level (map) expectations, whose failures are individual rows."""
        from great_expectations.expectations.expectation import (
            ColumnMapExpectation,
            ColumnPairMapExpectation,
            MulticolumnMapExpectation,
        )
        from great_expectations.expectations.registry import get_expectation_impl

        implementation = get_expectation_impl(self.expectation_type)
        return issubclass(
            implementation, (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)
        )


@dataclass(frozen=True)
class ValidationSuite:
    """A checked suite: its name and its expectations, each with a severity."""

    name: str
    expectations: tuple[ExpectationSpec, ...]

    def __len__(self) -> int:
        return len(self.expectations)

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Every column some expectation needs, each once, in first-use order."""
        return tuple(dict.fromkeys(col for spec in self.expectations for col in spec.required_columns))

    def to_gx_suite(self) -> gx.ExpectationSuite:
        """Build the GX suite; raise :class:`SpecError` if GX rejects or drops any expectation."""
        import great_expectations as gx
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

        built = []
        for spec in self.expectations:
            config = ExpectationConfiguration(
                type=spec.expectation_type,
                kwargs=dict(spec.kwargs),
                meta={**spec.meta, POSITION_META_KEY: spec.position},
            )
            try:
                built.append(config.to_domain_obj())
            except Exception as exc:
                raise SpecError(
                    f"suite {self.name!r}: expectation #{spec.position} {spec.expectation_type} is invalid: "
                    f"{_first_line(exc)}"
                ) from exc
        gx_suite = gx.ExpectationSuite(name=self.name, expectations=built)
        if len(gx_suite.expectations) != len(self.expectations):
            raise SpecError(
                f"suite {self.name!r}: GX kept {len(gx_suite.expectations)} of {len(self.expectations)} "
                "expectations"
            )
        return gx_suite


def load_suite(
    source: str | os.PathLike[str] | Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    default_severity: str = CRITICAL,
    name: str | None = None,
) -> ValidationSuite:
    """Load and check a suite from a JSON file path, a suite dict, or a list of expectation configs.

    :param source: a path to a GX suite JSON file (``{"name": ..., "expectations": [...]}`` or a bare
        list), a suite dict, a list of expectation configs, or an already loaded :class:`ValidationSuite`.
    :param default_severity: severity of expectations that set none (``critical`` or ``warning``).
    :param name: the suite's name; defaults to the suite's own ``name``, the file stem, or ``"suite"``.
    :raises SpecError: malformed JSON, unknown expectation types (all named), an invalid config, a bad
        severity, or an empty suite.
    """
    if isinstance(source, ValidationSuite):
        return source
    default_severity = _check_severity(default_severity, "default_severity")
    where = "suite"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        where = f"suite file {str(path)!r}"
        source = _read_suite_file(path)
        name = name or (source.get("name") if isinstance(source, Mapping) else None) or path.stem
    if isinstance(source, Mapping):
        name = name or source.get("name")
        if "expectations" not in source:
            raise SpecError(f"{where}: a suite dict needs an 'expectations' list")
        configs = source["expectations"]
    else:
        configs = source
    if not isinstance(configs, Sequence) or isinstance(configs, (str, bytes)):
        raise SpecError(f"{where}: expectations must be a list of configs, got {type(configs).__name__}")
    name = name or "suite"
    if not configs:
        raise SpecError(f"{where} {name!r} has no expectations; an empty suite would validate nothing")
    specs = [
        _parse_config(config, position, default_severity, where) for position, config in enumerate(configs)
    ]
    unknown = sorted({spec.expectation_type for spec in specs if not _is_known_type(spec.expectation_type)})
    if unknown:
        raise SpecError(f"{where} {name!r}: unknown expectation type(s): {', '.join(unknown)}")
    _reject_duplicates(specs, f"{where} {name!r}")
    suite = ValidationSuite(name=str(name), expectations=tuple(specs))
    for spec in specs:
        for column in spec.columns:
            if not isinstance(column, str) or not column:
                raise SpecError(
                    f"{where} {name!r}: expectation #{spec.position} {spec.expectation_type} names column "
                    f"{column!r}; column names must be non-empty strings"
                )
    return suite


def _reject_duplicates(specs: list[ExpectationSpec], where: str) -> None:
    """Refuse the same expectation twice: it would be counted twice in the summary and the quarantine."""
    seen: dict[str, int] = {}
    for spec in specs:
        key = json.dumps([spec.expectation_type, spec.kwargs], sort_keys=True, default=str)
        if key in seen:
            raise SpecError(
                f"{where}: expectation #{spec.position} {spec.expectation_type} repeats expectation "
                f"#{seen[key]} (same type and arguments); remove one"
            )
        seen[key] = spec.position


def _read_suite_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"suite file {str(path)!r} does not exist") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"suite file {str(path)!r} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise SpecError(f"suite file {str(path)!r} cannot be read: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"suite file {str(path)!r} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def _parse_config(config: Any, position: int, default_severity: str, where: str) -> ExpectationSpec:
    if not isinstance(config, Mapping):
        raise SpecError(f"{where}: expectation #{position} must be a dict, got {type(config).__name__}")
    expectation_type = config.get("type", config.get("expectation_type"))
    if not isinstance(expectation_type, str) or not expectation_type:
        raise SpecError(f"{where}: expectation #{position} has no 'type'")
    kwargs = config.get("kwargs", {})
    if not isinstance(kwargs, Mapping):
        raise SpecError(f"{where}: expectation #{position} {expectation_type}: 'kwargs' must be a dict")
    meta = config.get("meta") or {}
    if not isinstance(meta, Mapping):
        raise SpecError(f"{where}: expectation #{position} {expectation_type}: 'meta' must be a dict")
    own, from_meta = config.get("severity"), meta.get("severity")
    if own is not None and from_meta is not None and str(own).lower() != str(from_meta).lower():
        raise SpecError(
            f"{where}: expectation #{position} {expectation_type} sets severity {own!r} and "
            f"meta.severity {from_meta!r}; set one"
        )
    chosen = own if own is not None else from_meta
    label = f"{where}: expectation #{position} {expectation_type} severity"
    severity = default_severity if chosen is None else _check_severity(chosen, label)
    return ExpectationSpec(position, expectation_type, dict(kwargs), severity, dict(meta))


def _check_severity(value: Any, label: str) -> str:
    severity = str(value).lower() if isinstance(value, str) else value
    if severity not in SEVERITIES:
        raise SpecError(f"{label} is {value!r}; expected one of {', '.join(SEVERITIES)}")
    return severity


def _is_known_type(expectation_type: str) -> bool:
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.registry import get_expectation_impl

    try:
        get_expectation_impl(expectation_type)
    except ExpectationNotFoundError:
        return False
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]

"""Load and check an expectation suite: a GX suite JSON file, a suite dict, or a list of expectation configs.

GX drops an expectation whose type it does not know, logging it and keeping a shorter suite. Here
every expectation is checked when the suite is loaded: unknown types fail naming every one of them
(with the closest known type), and each expectation's arguments are checked against its GX class, the
error naming the expectation, the argument and the fix: ``expectation #0
expect_column_values_to_be_between: unknown argument 'colum' (did you mean 'column'?)``, a missing
argument, or an argument of the wrong type with the value given. ``min_value`` above ``max_value`` (an
expectation no data can meet) is refused too. An empty suite is an error.

Each expectation has a severity, ``critical`` (a failure fails the validation) or ``warning`` (a
failure is reported only), read from the expectation's ``severity`` key or ``meta.severity``, else
the default given to :func:`load_suite`. GX's own ``severity`` field does not change ``success``; the
policy is applied by the runner.

Public API: :func:`load_suite`, :class:`ValidationSuite`, :class:`ExpectationSpec`, :data:`SEVERITIES`.
"""

from __future__ import annotations

import difflib
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
                    f"{_describe_config_error(exc, spec)}"
                ) from None
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
        raise SpecError(
            f"{where} {name!r}: unknown expectation type(s): {', '.join(unknown)}{_type_hints(unknown)}"
        )
    for spec in specs:
        _check_arguments(spec, f"{where} {name!r}")
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


INTERNAL_FIELDS = frozenset({"id", "meta", "notes", "rendered_content", "batch_id", "result_format"})
"""Fields of GX's expectation classes that are not expectation arguments (never suggested)."""


def _check_arguments(spec: ExpectationSpec, where: str) -> None:
    """Build the GX expectation from ``spec``; a refusal names the argument and the fix."""
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    config = ExpectationConfiguration(type=spec.expectation_type, kwargs=dict(spec.kwargs))
    try:
        config.to_domain_obj()
    except Exception as exc:
        problem = _describe_config_error(exc, spec)
        raise SpecError(f"{where}: expectation #{spec.position} {spec.expectation_type}: {problem}") from None
    low, high = spec.kwargs.get("min_value"), spec.kwargs.get("max_value")
    numbers = (int, float)
    if (
        isinstance(low, numbers)
        and isinstance(high, numbers)
        and not isinstance(low, bool)
        and not isinstance(high, bool)
        and low > high
    ):
        raise SpecError(
            f"{where}: expectation #{spec.position} {spec.expectation_type}: min_value {low!r} is greater "
            f"than max_value {high!r}; no value can be between them"
        )


def _describe_config_error(exc: BaseException, spec: ExpectationSpec) -> str:
    """GX's (pydantic's) refusal as one line per argument: unknown (with the closest known), missing, or
    of the wrong type (with the value given)."""
    errors = exc.errors() if callable(getattr(exc, "errors", None)) else None
    if not errors:
        return _first_line(exc)
    known = sorted(set(_argument_names(spec.expectation_type)) - INTERNAL_FIELDS)
    unknown: list[str] = []
    missing: list[str] = []
    wrong: dict[str, list[str]] = {}
    general: list[str] = []
    for error in errors:
        location = error.get("loc") or ()
        field_name = str(location[0]) if location else "__root__"
        kind = str(error.get("type", ""))
        message = str(error.get("msg", "invalid"))
        if field_name == "__root__":
            general.append(message)
        elif kind in ("value_error.extra", "extra_forbidden"):
            unknown.append(field_name)
        elif kind in ("value_error.missing", "missing"):
            missing.append(field_name)
        else:
            wrong.setdefault(field_name, [])
            if message not in wrong[field_name]:
                wrong[field_name].append(message)
    parts = []
    suggested = set()
    for name in unknown:
        match = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if match:
            suggested.add(match[0])
            parts.append(f"unknown argument {name!r} (did you mean {match[0]!r}?)")
        else:
            parts.append(f"unknown argument {name!r} (its arguments are: {', '.join(known)})")
    parts.extend(f"missing argument {name!r}" for name in missing if name not in suggested)
    for name, messages in wrong.items():
        value = spec.kwargs.get(name)
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:60] + "…"
        detail = messages[0]
        if len(messages) > 1 and ("not a valid" in detail or "type expected" in detail):
            detail += " (nor any other accepted type)"
        parts.append(f"argument {name!r} is {shown} ({type(value).__name__}): {detail}")
    if not parts:
        parts = general
    return "; ".join(parts) or _first_line(exc)


def _argument_names(expectation_type: str) -> list[str]:
    from great_expectations.expectations.registry import get_expectation_impl

    implementation = get_expectation_impl(expectation_type)
    fields = getattr(implementation, "__fields__", None) or getattr(implementation, "model_fields", {})
    return list(fields)


def _type_hints(unknown: Sequence[str]) -> str:
    from great_expectations.expectations.registry import list_registered_expectation_implementations

    known = list_registered_expectation_implementations()
    hints = []
    for name in unknown:
        match = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        if match:
            hints.append(f"{name!r}: did you mean {match[0]!r}?")
    return f" ({'; '.join(hints)})" if hints else ""


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

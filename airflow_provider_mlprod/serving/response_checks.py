"""Output checks on one response: status, JSON, a JSON schema, a numeric range, allowed labels.

A check list is a list of specs, each a mapping with a ``check`` key::

    [
        {"check": "status", "allowed": [200]},               # default: any 2xx
        {"check": "json"},                                   # the body parses as JSON
        {"check": "json_schema", "schema": {...}},           # validated with the jsonschema library
        {"check": "range", "field": "churn_probability", "min": 0, "max": 1},
        {"check": "labels", "field": "label", "allowed": ["churn", "stay"]},
    ]

``field`` is a dotted path into the JSON body (``prediction.score``). The interface is narrow on
purpose: ``ResponseChecks.from_spec(specs)`` once, then ``failures(status, body)`` per response,
returning the names of the checks that failed. Every check after ``status`` also fails when the body
is not JSON, so a gibberish reply never passes by omission.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_mlprod.exceptions import SpecError

_NOT_JSON = object()
DEFAULT_CHECKS: tuple[dict[str, Any], ...] = ({"check": "status"}, {"check": "json"})


@dataclass(frozen=True)
class _Check:
    name: str
    needs_json: bool
    test: Callable[[int, Any], bool]


class ResponseChecks:
    """A compiled check list (see the module docstring)."""

    def __init__(self, checks: Sequence[_Check]) -> None:
        self._checks = tuple(checks)
        self._needs_json = any(check.needs_json for check in self._checks)

    @property
    def names(self) -> list[str]:
        """The check names, in order."""
        return [check.name for check in self._checks]

    @classmethod
    def from_spec(cls, specs: Sequence[Mapping[str, Any]] | None) -> ResponseChecks:
        """Compile a check list; ``None`` means status 2xx and a JSON body. SpecError names a bad check."""
        if specs is None:
            specs = DEFAULT_CHECKS
        if isinstance(specs, (str, bytes)) or not isinstance(specs, Sequence):
            raise SpecError("output checks must be a list of check specs")
        checks, seen = [], set()
        for index, spec in enumerate(specs):
            check = _compile(index, spec)
            name, n = check.name, 2
            while name in seen:
                name, n = f"{check.name}#{n}", n + 1
            seen.add(name)
            checks.append(_Check(name, check.needs_json, check.test))
        return cls(checks)

    def failures(self, status: int, body: bytes) -> tuple[str, ...]:
        """The names of the checks this response fails (empty: it passes them all)."""
        document: Any = None
        if self._needs_json:
            try:
                document = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                document = _NOT_JSON
        return tuple(
            check.name
            for check in self._checks
            if (check.needs_json and document is _NOT_JSON) or not check.test(status, document)
        )


def _compile(index: int, spec: Any) -> _Check:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("check"), str):
        raise SpecError(f"output check #{index + 1}: expected a mapping with a 'check' name, got {spec!r}")
    kind = spec["check"]
    where = f"output check #{index + 1} ({kind})"
    known = {"status", "json", "json_schema", "range", "labels"}
    if kind not in known:
        raise SpecError(f"{where}: unknown check; known checks: {sorted(known)}")
    if kind == "status":
        allowed = spec.get("allowed")
        if allowed is None:
            return _Check("status", False, lambda status, _: 200 <= status < 300)
        if not isinstance(allowed, Sequence) or not all(isinstance(s, int) for s in allowed):
            raise SpecError(f"{where}: 'allowed' must be a list of HTTP status codes")
        codes = frozenset(allowed)
        return _Check("status", False, lambda status, _: status in codes)
    if kind == "json":
        return _Check("json", True, lambda _status, _doc: True)
    if kind == "json_schema":
        import jsonschema

        schema = spec.get("schema")
        if not isinstance(schema, Mapping):
            raise SpecError(f"{where}: 'schema' must be a JSON schema object")
        try:
            validator_class = jsonschema.validators.validator_for(schema)
            validator_class.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise SpecError(f"{where}: invalid JSON schema: {exc.message}") from None
        validator = validator_class(schema)
        return _Check("json_schema", True, lambda _status, doc: validator.is_valid(doc))
    path = _field_path(where, spec.get("field"))
    if kind == "range":
        low, high = _bound(where, spec, "min"), _bound(where, spec, "max")
        if low is None and high is None:
            raise SpecError(f"{where}: give 'min', 'max' or both")

        def in_range(_status: int, doc: Any) -> bool:
            value = _lookup(doc, path)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                return False
            return (low is None or value >= low) and (high is None or value <= high)

        return _Check(f"range:{'.'.join(path)}", True, in_range)
    allowed = spec.get("allowed")
    if not isinstance(allowed, Sequence) or isinstance(allowed, str) or not allowed:
        raise SpecError(f"{where}: 'allowed' must be a non-empty list of labels")
    labels = frozenset(allowed)
    return _Check(
        f"labels:{'.'.join(path)}", True, lambda _status, doc: _hashable(_lookup(doc, path)) in labels
    )


def _field_path(where: str, field: Any) -> tuple[str, ...]:
    if not isinstance(field, str) or not field or any(not part for part in field.split(".")):
        raise SpecError(f"{where}: 'field' must be a dotted path into the JSON body, got {field!r}")
    return tuple(field.split("."))


def _bound(where: str, spec: Mapping[str, Any], key: str) -> float | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"{where}: {key!r} must be a finite number, got {value!r}")
    return float(value)


_MISSING = object()


def _lookup(document: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(document, Mapping) or part not in document:
            return _MISSING
        document = document[part]
    return document


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return _MISSING
    return value

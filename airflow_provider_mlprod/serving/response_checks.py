"""Output checks on HTTP responses, evaluated through the output-check registry.

A check list is a list of specs, each a mapping with a ``check`` key::

    [
        {"check": "status", "allowed": [200]},               # default: any 2xx
        {"check": "json"},                                   # the body is strict JSON
        {"check": "json_schema", "schema": {...}},           # validated with the jsonschema library
        {"check": "range", "field": "churn_probability", "min": 0, "max": 1},
        {"check": "labels", "field": "label", "allowed": ["churn", "stay"]},
        {"check": "refusal", "field": "answer"},             # any check of outputs.checks.OUTPUT_CHECKS
    ]

``status`` is the one HTTP check. Every other check is a row of the output-check registry
(:mod:`airflow_provider_mlprod.outputs.checks`), which also checks prediction tables, so a check means
the same and rejects the same bad parameters everywhere. ``json``, ``range`` and ``labels`` are
short names of the registry's ``valid_json``, ``numeric_range`` (``min``/``max`` for
``min_value``/``max_value``) and ``allowed_labels`` (``allowed`` for ``labels``); any registry check
can be named directly with its own parameters.

A check sees the body text, or with ``field`` (a dotted path into the JSON body:
``prediction.score``) the value there. A body that is not strict JSON (RFC 8259: no ``NaN``) has no
field, and a missing field, or a value of a kind the check does not apply to (a string for
``range``, a list for ``labels``), fails the check: a gibberish reply never passes by omission.

``ResponseChecks.from_spec(specs)`` once; then ``evaluate(responses)`` on a batch of
``(status, body)`` pairs (the registry's vectorised forms run once per batch), or ``failures(status,
body)`` on one. Both return the names of the checks each response failed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_mlprod.exceptions import SpecError

if TYPE_CHECKING:
    from airflow_provider_mlprod.outputs.checks import CheckSpec

DEFAULT_CHECKS: tuple[dict[str, Any], ...] = ({"check": "status"}, {"check": "json"})

#: Short names: (registry check, {short parameter name: registry parameter name}).
SHORT_NAMES: dict[str, tuple[str, dict[str, str]]] = {
    "json": ("valid_json", {}),
    "range": ("numeric_range", {"min": "min_value", "max": "max_value"}),
    "labels": ("allowed_labels", {"allowed": "labels"}),
}
#: Checks that read JSON text: a JSON object or array found at a ``field`` is checked as its JSON text.
JSON_TEXT_CHECKS = frozenset({"valid_json", "json_schema"})
_NOT_ALLOWED = ("column", "min_pass_rate", "severity", "name")
_NOT_JSON = object()


@dataclass(frozen=True)
class _Check:
    name: str
    path: tuple[str, ...] | None  # None: the body text
    output_check: CheckSpec | None  # None: the status check
    statuses: frozenset[int] | None = None  # status check: the allowed codes (None: any 2xx)

    def status_passes(self, status: int) -> bool:
        return status in self.statuses if self.statuses is not None else 200 <= status < 300


class ResponseChecks:
    """A compiled check list (see the module docstring)."""

    def __init__(self, checks: Sequence[_Check]) -> None:
        self._checks = tuple(checks)

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
            checks.append(_Check(name, check.path, check.output_check, check.statuses))
        return cls(checks)

    def failures(self, status: int, body: bytes) -> tuple[str, ...]:
        """The names of the checks this response fails (empty: it passes them all)."""
        return self.evaluate([(status, body)])[0]

    def evaluate(self, responses: Sequence[tuple[int, bytes]]) -> list[tuple[str, ...]]:
        """Per response ``(status, body)``: the names of the checks it fails, in check order."""
        from airflow_provider_mlprod.outputs.checks import evaluate_values, parse_strict_json

        texts: list[str | None] = []
        for _, body in responses:
            try:
                texts.append(body.decode("utf-8"))
            except UnicodeDecodeError:
                texts.append(None)
        documents: list[Any] | None = None
        failed: list[list[str]] = [[] for _ in responses]
        for check in self._checks:
            if check.output_check is None:
                passed = [check.status_passes(status) for status, _ in responses]
            elif check.path is None:
                passed = evaluate_values(check.output_check, texts)
            else:
                if documents is None:
                    documents = [_parse(parse_strict_json, text) for text in texts]
                path, as_text = check.path, check.output_check.check.name in JSON_TEXT_CHECKS
                values = [_lookup(document, path, as_text) for document in documents]
                passed = evaluate_values(check.output_check, values)
            for names, ok in zip(failed, passed, strict=True):
                if not ok:
                    names.append(check.name)
        return [tuple(names) for names in failed]


def _compile(index: int, spec: Any) -> _Check:
    from airflow_provider_mlprod.outputs.checks import OUTPUT_CHECKS, build_checks

    if not isinstance(spec, Mapping) or not isinstance(spec.get("check"), str):
        raise SpecError(f"output check #{index + 1}: expected a mapping with a 'check' name, got {spec!r}")
    kind = spec["check"]
    where = f"output check #{index + 1} ({kind})"
    if kind == "status":
        return _status_check(where, spec)
    registry_name, renamed = SHORT_NAMES.get(kind, (kind, {}))
    if registry_name not in OUTPUT_CHECKS:
        known = sorted({"status", *SHORT_NAMES, *OUTPUT_CHECKS})
        raise SpecError(f"{where}: unknown check; known checks: {known}")
    misplaced = [key for key in _NOT_ALLOWED if key in spec]
    if misplaced:
        raise SpecError(
            f"{where}: {', '.join(misplaced)} do(es) not apply to a response check; name a body value "
            "with 'field' and gate the load test on output_check_pass_rate"
        )
    if kind in ("range", "labels") and "field" not in spec:
        raise SpecError(f"{where}: 'field' must be a dotted path into the JSON body, got None")
    path = _field_path(where, spec["field"]) if "field" in spec else None
    params = {renamed.get(key, key): value for key, value in spec.items() if key not in ("check", "field")}
    try:
        (output_check,) = build_checks(
            [{"check": registry_name, "column": ".".join(path) if path else "body", **params}]
        )
    except SpecError as exc:
        raise SpecError(f"{where}: {_in_short_names(str(exc), registry_name, renamed)}") from None
    name = kind if path is None else f"{kind}:{'.'.join(path)}"
    return _Check(name, path, output_check)


def _status_check(where: str, spec: Mapping[str, Any]) -> _Check:
    unknown = sorted(set(spec) - {"check", "allowed"})
    if unknown:
        raise SpecError(f"{where}: unknown parameter(s) {', '.join(unknown)}; it takes allowed")
    allowed = spec.get("allowed")
    if allowed is None:
        return _Check("status", None, None)
    if (
        isinstance(allowed, (str, bytes))
        or not isinstance(allowed, Sequence)
        or not allowed
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in allowed)
    ):
        raise SpecError(f"{where}: 'allowed' must be a list of HTTP status codes")
    return _Check("status", None, None, frozenset(allowed))


def _in_short_names(message: str, registry_name: str, renamed: Mapping[str, str]) -> str:
    """The registry's message in the words of the spec the user wrote (its short parameter names)."""
    prefix = f"check {registry_name!r}: "
    if message.startswith(prefix):
        message = message[len(prefix) :]
    for short, full in renamed.items():
        message = message.replace(full, repr(short))
    return message


def _field_path(where: str, field: Any) -> tuple[str, ...]:
    if not isinstance(field, str) or not field or any(not part for part in field.split(".")):
        raise SpecError(f"{where}: 'field' must be a dotted path into the JSON body, got {field!r}")
    return tuple(field.split("."))


def _parse(parse: Any, text: str | None) -> Any:
    if text is None:
        return _NOT_JSON
    try:
        return parse(text)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _lookup(document: Any, path: tuple[str, ...], as_text: bool) -> Any:
    """The value at ``path`` in the parsed body; None (which fails every check) when there is none."""
    if document is _NOT_JSON:
        return None
    for part in path:
        if not isinstance(document, Mapping) or part not in document:
            return None
        document = document[part]
    if as_text and isinstance(document, (dict, list)):
        return json.dumps(document)
    return document

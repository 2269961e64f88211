"""Hostile inputs to the output checks: schemas that reach out or loop, type mismatches, odd characters."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from airflow_provider_mlprod.exceptions import SpecError
from airflow_provider_mlprod.outputs.checks import build_checks, evaluate_value


@pytest.fixture
def schema_server():
    """A real local HTTP server serving a permissive schema; ``hits`` lists every request it got."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = json.dumps({"type": "string"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("nested", [False, True])
def test_a_remote_schema_ref_is_refused_and_never_fetched(schema_server, nested):
    base, hits = schema_server
    ref = {"$ref": f"{base}/schema.json"}
    schema = {"properties": {"a": ref}} if nested else ref
    with pytest.raises(SpecError, match=r"does not resolve within the schema .*not fetched"):
        build_checks([{"check": "json_schema", "column": "p", "schema": schema}])
    assert hits == []


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"$ref": "#"}, r"\$ref loop # -> #"),
        (
            {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
            r"\$ref loop #/\$defs/a -> #/\$defs/b -> #/\$defs/a",
        ),
        ({"properties": {"a": {"$ref": "#/properties/a"}}}, r"\$ref loop"),
        ({"allOf": [{"$ref": "#"}]}, "loop back to themselves"),
        ({"$ref": "#/$defs/missing"}, r"\$ref '#/\$defs/missing' does not resolve"),
    ],
)
def test_schema_ref_loops_and_dangling_refs_fail_before_any_row(schema, message):
    with pytest.raises(SpecError, match=message):
        build_checks([{"check": "json_schema", "column": "p", "schema": schema}])


def test_recursive_schemas_that_descend_still_work_and_deep_documents_fail_their_row():
    tree = {
        "type": "object",
        "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#"}}},
    }
    checks = build_checks([{"check": "json_schema", "column": "p", "schema": tree}])
    deep = '{"v": 1, "kids": [' * 400 + '{"v": 1}' + "]}" * 400
    verdicts = [
        evaluate_value(checks, doc)["json_schema(p)"]
        for doc in ('{"v": 1, "kids": [{"v": 2, "kids": []}]}', '{"v": 1, "kids": [{"v": "x"}]}', deep)
    ]
    assert verdicts == [True, False, False]
    nested_id = {
        "$id": "https://example.com/root",
        "$defs": {
            "n": {"$id": "https://example.com/n", "$defs": {"i": {"type": "integer"}}, "$ref": "#/$defs/i"}
        },
        "$ref": "n",
    }
    checks = build_checks([{"check": "json_schema", "column": "p", "schema": nested_id}])
    assert [evaluate_value(checks, doc)["json_schema(p)"] for doc in ("1", '"x"')] == [True, False]

"""Per-row values shared by several predicates: computed once per row on PostgreSQL, in parallel."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from airflow_provider_mlprod.outputs.checks import DEFAULT_REFUSAL_PHRASES, build_checks, phrase_guards
from airflow_provider_mlprod.outputs.row_values import LATERAL_NAME, RowValue, hoist_row_values
from airflow_provider_mlprod.outputs.runner import check_frame, check_sql, failing_sql_rows
from tests.outputs.conftest import generate_edge_corpus
from tests.outputs.test_checks import load

REFUSALS = [
    {"check": "refusal", "column": "answer"},
    {"check": "refusal", "column": "answer", "phrases": ["unable to", "a.i."], "name": "other phrases"},
    {"check": "refusal", "column": "payload", "name": "refusal in payload"},
]


def _sent(engine: sa.Engine, run) -> list[tuple[str, object]]:
    """(statement, parameters) of each statement ``run()`` sends through ``engine``."""
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    return sent


def test_one_lower_per_column_and_row_for_all_refusal_searches(postgres_url):
    rows = generate_edge_corpus(ctype_dependent=False)
    engine, table = load(postgres_url, rows)
    checks = build_checks(REFUSALS)
    with engine.connect() as connection:
        sent = _sent(engine, lambda: check_sql(connection, table, checks, dataset="p", sample_size=0))
        (counts,) = [statement for statement, _ in sent if "count(*)" in statement]
        # two columns: two lowered values, whatever the number of phrases, guards and checks
        assert counts.count("lower(") == 2, counts
        assert "LEFT OUTER JOIN LATERAL (SELECT lower(" in counts
        assert f") AS {LATERAL_NAME} ON true" in counts
        summary = check_sql(connection, table, checks, dataset="p", sample_size=3)
        failing = failing_sql_rows(connection, table, checks, key_columns=["id"])
    python, positions = check_frame(pd.DataFrame(rows), checks)
    assert [r.passed_rows for r in summary.results] == [r.passed_rows for r in python.results]
    assert all(r.failing_examples for r in summary.results if r.failed_rows)
    failing_ids = {rows[p]["id"] for parts in positions.values() for p in parts}
    assert set(failing["id"].astype(int)) == failing_ids
    engine.dispose()


def test_the_hoisted_count_still_runs_in_parallel(postgres_url):
    """A correlated subquery in the select list would make PostgreSQL aggregate in the leader only;
    the LATERAL join keeps a Partial Aggregate over a Parallel Seq Scan, lower() computed in the scan."""
    engine, table = load(postgres_url, generate_edge_corpus(ctype_dependent=False))
    (check,) = build_checks(REFUSALS[:1])
    with engine.connect() as connection:
        sent = _sent(engine, lambda: check_sql(connection, table, [check], dataset="p", sample_size=0))
        ((counts, parameters),) = [(st, pa) for st, pa in sent if "count(*)" in st]
        for setting in ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size"):
            connection.exec_driver_sql(f"SET LOCAL {setting} = 0")  # a parallel plan even on a few rows
        explained = connection.exec_driver_sql("EXPLAIN (VERBOSE, COSTS OFF) " + counts, parameters)
        plan = "\n".join(row[0] for row in explained)
    assert "Partial Aggregate" in plan, plan
    assert "Parallel Seq Scan" in plan, plan
    assert "lower(" in plan.split("Parallel Seq Scan", 1)[1], plan  # computed by the scan, in each worker
    engine.dispose()


def test_hoisting_leaves_other_dialects_and_plain_expressions_alone():
    source = sa.table("t", sa.column("a", sa.Text))
    value = RowValue(sa.func.lower(source.c.a))
    condition = sa.func.strpos(value, "x") > 0
    assert hoist_row_values(source, [condition, None], "duckdb") == (source, [condition, None])
    assert hoist_row_values(source, [source.c.a == "x"], "postgresql")[0] is source
    joined, (hoisted, same) = hoist_row_values(
        source, [condition, sa.func.strpos(RowValue(sa.func.lower(source.c.a)), "y") > 0], "postgresql"
    )
    sql = str(sa.select(sa.func.count()).where(hoisted, same).select_from(joined))
    assert sql.count("lower(") == 1, sql
    assert str(condition).startswith("strpos(lower(t.a), ")  # not hoisted: computed where it stands


def test_phrase_guards_cover_every_phrase_once():
    (check,) = build_checks([{"check": "refusal", "column": "a"}])
    groups = check.params["guards"]
    assert len(groups) == 5 < len(check.params["phrases"]) == 14
    members = [phrase for _, group in groups for phrase in group]
    assert sorted(members) == sorted(check.params["phrases"])
    for guard, group in groups:
        assert len(guard) >= 8, guard
        assert all(guard in phrase for phrase in group), (guard, group)
    assert len(DEFAULT_REFUSAL_PHRASES) == 10
    assert phrase_guards(["n/a", "n/a please", "sorry"]) == (
        ("n/a", ("n/a", "n/a please")),
        ("sorry", ("sorry",)),
    )
    many = [f"phrase {i:03d} of many" for i in range(40)]
    assert phrase_guards(many) == tuple((p, (p,)) for p in sorted(many))


def test_grouped_phrases_count_like_python_for_random_phrase_lists(postgres_url):
    """Phrases sharing words in many ways (so groups of several phrases under one guard) count alike."""
    import random

    from tests.outputs.conftest import WORDS

    rng = random.Random(5)
    rows = generate_edge_corpus(ctype_dependent=False)
    engine, table = load(postgres_url, rows)
    specs = []
    for i in range(4):
        phrases = {
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3))) + rng.choice(["", " ", "'s", ","])
            for _ in range(12)
        }
        specs.append({"check": "refusal", "column": "answer", "phrases": sorted(phrases), "name": f"r{i}"})
    checks = build_checks(specs)
    assert any(len(group) > 1 for check in checks for _, group in check.params["guards"])
    with engine.connect() as connection:
        summary = check_sql(connection, table, checks, dataset="p", sample_size=0)
    python, _ = check_frame(pd.DataFrame(rows), checks)
    assert [r.passed_rows for r in summary.results] == [r.passed_rows for r in python.results]
    assert all(0 < r.passed_rows < r.rows for r in python.results)
    engine.dispose()

"""Shared data for the validation tests: a small orders batch as a DataFrame or a database table."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

STATUSES = ["new", "paid", "shipped", "new", "paid", "shipped", "new", "paid", "shipped", "new"]
CODES = ["ABC", "DEF", "GHI", "ABC", "DEF", "GHI", "ABC", "DEF", "GHI", "ABC"]


def make_orders() -> pd.DataFrame:
    """Ten orders: unique ids, amounts 1..10, three statuses, three codes, an all-null note."""
    return pd.DataFrame(
        {
            "id": list(range(1, 11)),
            "amount": [float(value) for value in range(1, 11)],
            "status": STATUSES,
            "code": CODES,
            "note": [None] * 10,
            "start_day": list(range(0, 10)),
            "end_day": list(range(1, 11)),
        }
    ).astype({"note": "object"})


@pytest.fixture
def orders() -> pd.DataFrame:
    """The orders batch as a fresh DataFrame."""
    return make_orders()


def write_table(url: str, name: str, frame: pd.DataFrame) -> None:
    """Create table ``name`` holding ``frame`` (note typed as text) in the database at ``url``."""
    engine = sa.create_engine(url)
    try:
        frame.to_sql(name, engine, index=False, dtype={"note": sa.String(20)})
    finally:
        engine.dispose()


@pytest.fixture
def orders_table(db_url: str) -> str:
    """The database URL, with the orders batch in table ``orders``."""
    write_table(db_url, "orders", make_orders())
    return db_url

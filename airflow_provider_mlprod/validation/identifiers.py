"""Moved to :mod:`airflow_provider_mlprod.sql.identifiers`; kept importable under this name."""

from airflow_provider_mlprod.sql.identifiers import (
    PLAIN_IDENTIFIER,
    check_identifier,
    check_identifier_length,
    split_table_name,
)

__all__ = ["PLAIN_IDENTIFIER", "check_identifier", "check_identifier_length", "split_table_name"]

"""The one SQL access layer of the provider: how user SQL is checked and read.

Modules:

- :mod:`~airflow_provider_mlprod.sql.statements`: the parser barrier, ``check_select`` accepts exactly one
  read-only ``SELECT`` (or ``WITH ... SELECT``) statement before anything runs.
- :mod:`~airflow_provider_mlprod.sql.session`: ``read_only_snapshot(engine)``, a read-only connection whose
  reads share one snapshot (PostgreSQL ``REPEATABLE READ READ ONLY`` with a read-only session, SQLite
  ``PRAGMA query_only`` inside one transaction), reset before the pooled connection is reused.
"""

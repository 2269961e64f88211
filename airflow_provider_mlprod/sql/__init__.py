"""The one SQL access layer of the provider: how user SQL is checked and read.

Modules:

- :mod:`~airflow_provider_mlprod.sql.statements`: the parser barrier, ``check_select`` accepts exactly one
  read-only ``SELECT`` (or ``WITH ... SELECT``) statement before anything runs.
- :mod:`~airflow_provider_mlprod.sql.session`: ``read_only_snapshot(engine)``, a read-only connection whose
  reads share one snapshot (PostgreSQL ``REPEATABLE READ READ ONLY`` with a read-only session, SQLite
  ``PRAGMA query_only`` inside one transaction), reset before the pooled connection is reused;
  ``export_snapshot`` / ``sharing_snapshot`` let other engines read the same PostgreSQL snapshot;
  ``read_only_url`` for libraries that open their own connections.
- :mod:`~airflow_provider_mlprod.sql.source`: ``SqlSource``, a table or query on a connection with its bind
  ``parameters`` and ``hook_params``, checked when built; builds FROM clauses and reads column names and
  row counts on a caller's connection. The shell builds its engine with
  ``airflow_provider_mlprod.hooks.sql_sources.engine_for_source(source)``.
- :mod:`~airflow_provider_mlprod.sql.errors`: one classifier of database errors (retryable or final).
- :mod:`~airflow_provider_mlprod.sql.identifiers`: plain identifiers and the dialect's length limit.
"""

"""Data validation with Great Expectations Core: suites, sources, runs, summaries, quarantine, reports.

This package imports nothing heavy; import a submodule to use it:

- ``suite``: load and check an expectation suite (JSON file, dict or list of configs), severities.
- ``sources``: read CSV, Parquet or JSON-lines files from a path or an object with ``.open()``.
- ``runner``: validate a pandas DataFrame, a file, or a SQL table or query (inside the database).
- ``summary``: the JSON-safe ``ValidationSummary`` every run returns.
- ``quarantine``: split failing rows from passing rows (files and frames) or record their keys (SQL).
- ``report``: a self-contained HTML report of a summary.
- ``identifiers``: the check that SQL identifiers are plain names before any SQL runs.
"""

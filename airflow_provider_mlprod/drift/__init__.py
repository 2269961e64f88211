"""Drift detection engine: reference profiles, a registry of statistical tests, comparison and reports.

Modules (import them directly; this package imports nothing heavy):

- ``profile``: ``DatasetProfile`` and its column profiles (bin edges and counts, top-K category counts),
  built from pandas DataFrames, merged across partitions, saved as JSON.
- ``sql_profile``: the same profiles computed inside a database with ``GROUP BY`` queries.
- ``stattests``: the registry of drift tests (KS, chi-square, Jensen-Shannon, PSI, normalised
  Wasserstein, L-infinity, missing-value rate, unseen-category share) and the default test choice.
- ``settings``: ``DriftSettings``, per-column overrides and dataset-level thresholds.
- ``compare``: ``compare_datasets``, the reference-versus-current comparison returning ``DriftResult``.
- ``results``: the ``DriftResult`` / ``ColumnDrift`` dataclasses with JSON-safe ``to_dict()``.
- ``report``: a self-contained HTML report with one inline SVG plot per column.
"""

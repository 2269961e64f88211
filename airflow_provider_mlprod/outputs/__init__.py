"""Output guardrails: checks on predictions (structured and text), text descriptors, golden-set scoring.

Engine code: no Airflow import. ``checks`` holds the registry, ``runner`` evaluates it on DataFrames
and SQL, ``descriptors`` turns text into numeric columns for drift, ``golden`` scores a golden set,
``report`` renders the HTML report.
"""

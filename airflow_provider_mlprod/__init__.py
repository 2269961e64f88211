"""Guardrails for ML pipelines on Apache Airflow: data validation, drift, model gates and alerts."""

__version__ = "0.1.0"

"""Airflow triggers behind the deferrable sensors: poll asynchronously and serialize cleanly."""

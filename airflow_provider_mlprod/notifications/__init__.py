"""Airflow notifiers: ``MlprodNotifier`` sends alerts from task callbacks and deadline alerts."""

"""Airflow hooks: the connections of the metrics store, the alert channels and SQL data sources."""

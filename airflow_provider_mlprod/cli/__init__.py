"""``airflow mlprod ...``: the provider's CLI commands, registered through ``cli`` in provider info."""

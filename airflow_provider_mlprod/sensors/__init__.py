"""Airflow sensors: wait for fresh data and for ground-truth labels, in poke or deferrable mode."""

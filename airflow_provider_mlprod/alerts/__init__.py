"""Alert engine (no Airflow): ``message``, ``summaries`` (alerts from typed summaries), ``channels``
(targets, payload builders, their registry), ``delivery`` (the one sender), ``routing`` (the one router)."""

"""Alert engine (no Airflow): ``message`` (the alert), ``summaries`` (alerts from typed summaries),
``channels`` (each channel's target and payload builder, and the registry of kinds), ``delivery``
(the one HTTP sender, retries and deadlines) and ``routing`` (the one router: where, dedup, history)."""

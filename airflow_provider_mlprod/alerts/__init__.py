"""Alert engine (no Airflow): ``message`` (the alert), ``summaries`` (alerts from typed summaries),
``channels`` (the registry of channel kinds and the one send) with one payload builder per channel
module (``slack``, ``teams``, ``pagerduty``, ``webhook``), ``delivery`` (the one HTTP sender with
retries and deadlines) and ``routing`` (the one router: where, dedup, history, all-failed)."""

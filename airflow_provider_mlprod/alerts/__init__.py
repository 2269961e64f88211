"""Alert engine: alert messages, channel payloads, reliable HTTP delivery, routing and dedup.

Nothing here imports Airflow. The notifier, hooks and operator build an
:class:`~airflow_provider_mlprod.alerts.message.Alert` (directly or from a validation, drift or gate
summary with :mod:`~airflow_provider_mlprod.alerts.summaries`), pick channel targets from their
connections, and hand both to :class:`~airflow_provider_mlprod.alerts.routing.AlertRouter`.

Modules:

- ``message``: the :class:`Alert` dataclass and its severity levels.
- ``summaries``: alerts built from validation, drift and gate summaries, and telling their kind.
- ``slack``, ``teams``, ``webhook``, ``pagerduty``, ``log_channel``: one channel each (target config,
  payload builder).
- ``channels``: the registry of channel kinds (kind -> target type, payload builder, URL, headers,
  secrets, severity map) and the one sender of every channel.
- ``delivery``: HTTP POST with timeout, retries (tenacity), backoff, deadline, secret-free results.
- ``dedup``: the dedup store and delivery history interfaces, and an in-memory dedup store.
- ``store_dedup``: dedup state and delivery history in the metrics store.
- ``routing``: per-severity routing over several channels sent concurrently with per-channel
  deadlines, dedup, history and the all-failed rule; ``dispatch_alert``, the one call the shell makes.
"""

"""Server-rendered HTML of the model-health view (inline CSS and SVG; nothing loaded from elsewhere)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from html import escape
from urllib.parse import quote

from airflow_provider_mlprod.plugin import svg
from airflow_provider_mlprod.plugin.health_data import AlertDelivery, DatasetHealth, ModelHealth, RunRef

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem;color:#1d1d1d}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}.pass{color:#2e7d32;font-weight:600}.fail{color:#c62828;font-weight:600}
nav a{margin-right:1rem}.muted{color:#666}svg.plot{display:block;margin:.5rem 0;background:#fff}
"""

HEATMAP_COLUMNS = 40
"""At most this many columns in the drift heatmap (drifted ones first), so a wide table stays readable."""

Link = Callable[[str], str]
"""Maps a route of the plugin (``/health/...``) to its address under ``[api] base_url``."""


def _page(title: str, body: str, link: Link) -> str:
    nav = (
        f'<nav><a href="{escape(link("/health/"))}">Models and datasets</a>'
        f'<a href="{escape(link("/health/alerts"))}">Alert deliveries</a></nav>'
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{nav}<h1>{escape(title)}</h1>{body}</body></html>"
    )


def _table(
    headers: Iterable[str], rows: Iterable[Iterable[str]], empty: str = "Nothing recorded yet."
) -> str:
    rows = list(rows)
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict(passed: bool, yes: str = "pass", no: str = "fail") -> str:
    return f'<span class="{"pass" if passed else "fail"}">{yes if passed else no}</span>'


def _run(run: RunRef) -> str:
    if not run.dag_id:
        return '<span class="muted">manual</span>'
    return escape(f"{run.dag_id} / {run.run_id} / {run.task_id}")


def _ref(path: str, text: str) -> str:
    return f'<a href="{escape(path)}">{escape(text)}</a>'


def index_page(models: list[str], datasets: list[str], link: Link, title: str = "Model health") -> str:
    body = "<h2>Models</h2>" + _table(
        ["model"], [[_ref(link(f"/health/models/{quote(name, safe='')}"), name)] for name in models]
    )
    body += "<h2>Datasets</h2>" + _table(
        ["dataset"], [[_ref(link(f"/health/datasets/{quote(name, safe='')}"), name)] for name in datasets]
    )
    return _page(title, body, link)


def model_page(health: ModelHealth, link: Link) -> str:
    champion = health.champion
    parts = [
        "<p>"
        + (
            f"Champion: <strong>{escape(champion.version)}</strong> "
            f"(registered {champion.created_at:%Y-%m-%d %H:%M} UTC)"
            if champion
            else '<span class="fail">no champion</span>'
        )
        + f" &middot; {health.versions} versions registered &middot; aliases: "
        + (", ".join(f"{escape(a)} &rarr; {escape(v)}" for a, v in health.aliases.items()) or "none")
        + "</p>"
    ]
    if champion and champion.metrics:
        parts.append(
            "<h2>Champion's registered metrics</h2>"
            + _table(
                ["metric", "value"], [[escape(k), f"{v:.6g}"] for k, v in sorted(champion.metrics.items())]
            )
        )
    parts.append("<h2>Alias timeline</h2>")
    if health.older_changes:
        parts.append(
            f'<p class="muted">The newest {len(health.timeline)} alias changes; older ones are not shown.</p>'
        )
    changes = [
        (entry.at, entry.version, entry.event != "promoted")
        for entry in health.timeline
        if entry.alias == "champion"
    ]
    parts.append(svg.step_timeline(f"champion of {health.name} over time", changes))
    parts.append(
        _table(
            ["when (UTC)", "what", "alias", "version", "previous", "who (DAG / run / task)"],
            [
                [
                    f"{entry.at:%Y-%m-%d %H:%M:%S}",
                    escape(entry.event.replace("_", " ")),
                    escape(entry.alias),
                    escape(entry.version),
                    escape(entry.previous_version or "-"),
                    _run(entry.run)
                    + (f"<br>approved by {escape(entry.approved_by)}" if entry.approved_by else ""),
                ]
                for entry in reversed(health.timeline[-50:])
            ],
            "No promotion yet.",
        )
    )
    parts.append("<h2>Gate verdicts</h2>")
    parts.append(
        _table(
            ["when (UTC)", "version", "verdict", "baseline", "per metric"],
            [
                [
                    f"{verdict.at:%Y-%m-%d %H:%M:%S}",
                    escape(verdict.version),
                    _verdict(verdict.passed),
                    escape(verdict.baseline_version or "-"),
                    "<br>".join(
                        f"{escape(str(metric.get('metric')))}: {_verdict(metric.get('verdict') == 'pass')} "
                        f"{escape(str(metric.get('reason') or ''))}"
                        for metric in verdict.metrics
                    ),
                ]
                for verdict in health.verdicts
            ],
            "No gate verdict yet.",
        )
    )
    parts.append("<h2>Metric trends (monitoring and recorded metrics)</h2>")
    if not health.metrics:
        parts.append('<p class="muted">No metric recorded for this model yet.</p>')
    if health.more_metrics:
        parts.append(
            f'<p class="muted">The first {len(health.metrics)} metrics by name; '
            f"{health.more_metrics} more are recorded (see the newest with "
            "<code>MetricsStore.metric_history</code>).</p>"
        )
    for series in health.metrics:
        parts.append(f"<h3>{escape(series.name)}</h3>")
        parts.append(
            svg.line_chart(
                f"{series.name} of {health.name}", [(t, v) for t, v, _ in series.points], series.name
            )
        )
        latest = series.points[-1]
        parts.append(
            f'<p class="muted">latest {latest[1]:.6g} (version {escape(latest[2] or "-")}, '
            f"{latest[0]:%Y-%m-%d %H:%M} UTC)</p>"
        )
    return _page(f"Model {health.name}", "".join(parts), link)


def dataset_page(health: DatasetHealth, link: Link, report_link: Callable[[str], str]) -> str:
    def report(location: str) -> str:
        url = report_link(location)
        return _ref(url, "report") if url else '<span class="muted">-</span>'

    parts = ["<h2>Validation history</h2>"]
    parts.append(
        _table(
            ["when (UTC)", "verdict", "result", "run (DAG / run / task)", "report"],
            [
                [
                    f"{record.at:%Y-%m-%d %H:%M:%S}",
                    _verdict(record.success, "passed", "failed"),
                    escape(record.headline),
                    _run(record.run),
                    report(record.report_location),
                ]
                for record in reversed(health.validations)
            ],
            "No validation recorded.",
        )
    )
    parts.append("<h2>Drift history</h2>")
    columns = sorted({column for record in health.drifts for column in record.columns})
    if len(columns) > HEATMAP_COLUMNS:
        drifted = {c for record in health.drifts for c, (flag, _) in record.columns.items() if flag}
        kept = sorted(columns, key=lambda column: (column not in drifted, column))[:HEATMAP_COLUMNS]
        parts.append(f'<p class="muted">{len(kept)} of {len(columns)} columns, those that drifted first.</p>')
        columns = sorted(kept)
    parts.append(
        svg.heatmap(
            f"drift of {health.name} per column and run",
            columns,
            [(f"{record.at:%Y-%m-%d %H:%M}", record.columns) for record in health.drifts],
        )
    )
    parts.append(
        _table(
            ["when (UTC)", "verdict", "result", "run (DAG / run / task)", "report"],
            [
                [
                    f"{record.at:%Y-%m-%d %H:%M:%S}",
                    _verdict(record.success, "no drift", "drift"),
                    escape(record.headline),
                    _run(record.run),
                    report(record.report_location),
                ]
                for record in reversed(health.drifts)
            ],
            "No drift check recorded.",
        )
    )
    return _page(f"Dataset {health.name}", "".join(parts), link)


def alerts_page(deliveries: list[AlertDelivery], link: Link) -> str:
    body = _table(
        ["sent (UTC)", "alert", "channel", "delivered", "attempts", "status", "error"],
        [
            [
                f"{d.sent_at:%Y-%m-%d %H:%M:%S}",
                escape(d.dedup_key),
                escape(d.channel),
                _verdict(d.delivered, "yes", "no"),
                str(d.attempts),
                escape(str(d.status_code or "-")),
                escape(d.error or ""),
            ]
            for d in deliveries
        ],
        "No alert delivered yet.",
    )
    return _page("Alert deliveries", body, link)


def not_found_page(what: str, link: Link) -> str:
    return _page("Not found", f"<p>{escape(what)}</p>", link)

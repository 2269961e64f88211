"""A self-contained HTML load-test report: verdict, numbers per endpoint, latency histogram and CDF.

No script, no external resource: CSS in one ``<style>`` block, plots as inline ``<svg>``. Every text
that comes from the user or the endpoint (model name, URLs, check names, reasons) is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

WIDTH, HEIGHT, MARGIN = 640, 240, 40
COLOURS = {"candidate": "#ee7733", "champion": "#4477aa"}
STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
.fail { color: #b00020; font-weight: bold; }
.pass { color: #1b7a1b; font-weight: bold; }
.legend span { display: inline-block; width: 1em; height: 0.8em; margin: 0 0.3em 0 1em; }
"""


def render_serving_report(summary: Mapping[str, Any], load_test: Mapping[str, Any]) -> str:
    """The page of a load-test gate: ``summary`` (verdict, thresholds) and ``load_test`` (the run).

    ``load_test`` is ``LoadTestResult.to_dict(with_distribution=True)``.
    """
    e = html.escape
    passed = summary.get("passed")
    verdict = '<span class="pass">passed</span>' if passed else '<span class="fail">failed</span>'
    title = f"Serving load test: {summary.get('model_name', '')} {summary.get('model_version', '')}"
    endpoints = load_test.get("endpoints", [])
    plan = load_test.get("plan", {})
    plan_text = ", ".join(f"{k}={v}" for k, v in plan.items() if v is not None)
    rates = f"achieved {load_test.get('achieved_rate_rps', 0):.1f} requests/s"
    if load_test.get("target_rate_rps"):
        lag = load_test["max_send_lag_ms"]
        rates += f" of {load_test['target_rate_rps']:g} targeted (max send lag {lag:.1f} ms)"
    head = [
        ("Verdict", verdict),
        ("Champion version", e(str(summary.get("champion_version") or "none"))),
        ("Plan", e(plan_text)),
        ("Rate", e(rates)),
        ("Output checks", e(", ".join(load_test.get("checks", [])) or "none")),
    ]
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in head)
    verdict_rows = "".join(
        f'<tr><td>{e(m["metric"])}</td><td class="{e(m["verdict"])}">{e(m["verdict"])}</td>'
        f"<td>{e(m['reason'])}</td></tr>"
        for m in summary.get("metrics", [])
    )
    endpoint_rows = "".join(_endpoint_row(endpoint) for endpoint in endpoints)
    legend = "".join(
        f'<span style="background:{_colour(ep["name"])}"></span>{e(ep["name"])}' for ep in endpoints
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{e(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{e(title)}</h1><table>{rows}</table>"
        "<h2>Thresholds</h2><table><thead><tr><th>Metric</th><th>Verdict</th><th>Reason</th></tr></thead>"
        f"<tbody>{verdict_rows}</tbody></table>"
        "<h2>Endpoints</h2><table><thead><tr><th>Endpoint</th><th>URL</th><th>Requests</th>"
        "<th>p50 ms</th><th>p90 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th><th>Throughput/s</th>"
        "<th>Error rate</th>"
        "<th>Timeout rate</th><th>Checks passed</th><th>Outcomes</th><th>Check failures</th>"
        f"</tr></thead><tbody>{endpoint_rows}</tbody></table>"
        f'<p class="legend">{legend}</p>'
        f"<h2>Latency histogram</h2>{_histogram_svg(endpoints)}"
        f"<h2>Latency CDF</h2>{_cdf_svg(endpoints)}"
        "</body></html>\n"
    )


def _colour(name: str) -> str:
    return COLOURS.get(name, "#888888")


def _number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}"


def _endpoint_row(endpoint: Mapping[str, Any]) -> str:
    e = html.escape
    latency = endpoint.get("latency_ms") or {}
    url = e(endpoint["url"])
    if endpoint.get("tls_verified") is False:
        url += " <strong>(TLS certificate not verified)</strong>"
    cells = [
        e(endpoint["name"]),
        url,
        str(endpoint["requests"]),
        *(_number(latency.get(k)) for k in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")),
        _number(endpoint.get("throughput_rps")),
        _number(endpoint.get("error_rate"), 4),
        _number(endpoint.get("timeout_rate"), 4),
        _number(endpoint.get("output_check_pass_rate"), 4),
        e(", ".join(f"{k}: {v}" for k, v in endpoint.get("outcomes", {}).items())),
        e(", ".join(f"{k}: {v}" for k, v in endpoint.get("check_failures", {}).items()) or "none"),
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _log_x(value: float, low: float, high: float) -> float:
    span = math.log(high) - math.log(low) or 1.0
    return MARGIN + (math.log(max(value, low)) - math.log(low)) / span * (WIDTH - 2 * MARGIN)


def _axis(low: float, high: float, y_label: str) -> str:
    e = html.escape
    ticks = []
    tick = 10 ** math.floor(math.log10(low))
    while tick <= high * 1.0001:
        for factor in (1, 2, 5):
            value = tick * factor
            if low <= value <= high:
                x = _log_x(value, low, high)
                ticks.append(
                    f'<line x1="{x:.1f}" y1="{HEIGHT - MARGIN}" x2="{x:.1f}" y2="{HEIGHT - MARGIN + 4}" '
                    f'stroke="#444"/><text x="{x:.1f}" y="{HEIGHT - MARGIN + 16}" font-size="10" '
                    f'text-anchor="middle">{value:g}</text>'
                )
        tick *= 10
    bottom = HEIGHT - MARGIN
    return (
        f'<line x1="{MARGIN}" y1="{bottom}" x2="{WIDTH - MARGIN}" y2="{bottom}" stroke="#444"/>'
        f'<line x1="{MARGIN}" y1="{MARGIN / 2}" x2="{MARGIN}" y2="{HEIGHT - MARGIN}" stroke="#444"/>'
        + "".join(ticks)
        + f'<text x="{WIDTH / 2}" y="{HEIGHT - 4}" font-size="11" text-anchor="middle">'
        + "latency (ms, log scale)</text>"
        + f'<text x="10" y="{MARGIN / 2}" font-size="11">{e(y_label)}</text>'
    )


def _histogram_svg(endpoints: list[Mapping[str, Any]]) -> str:
    bins = [b for ep in endpoints for b in ep.get("histogram", [])]
    if not bins:
        return "<p>No successful response: no latency to draw.</p>"
    low, high = min(b["low_ms"] for b in bins), max(b["high_ms"] for b in bins)
    shares = {}
    for ep in endpoints:
        total = sum(b["count"] for b in ep.get("histogram", [])) or 1
        shares[ep["name"]] = [(b, b["count"] / total) for b in ep.get("histogram", [])]
    tallest = max(share for pairs in shares.values() for _, share in pairs) or 1.0
    shapes = []
    for ep in endpoints:
        for b, share in shares[ep["name"]]:
            if not b["count"]:
                continue
            x0, x1 = _log_x(b["low_ms"], low, high), _log_x(b["high_ms"], low, high)
            height = share / tallest * (HEIGHT - 1.5 * MARGIN)
            shapes.append(
                f'<rect x="{x0:.1f}" y="{HEIGHT - MARGIN - height:.1f}" width="{max(x1 - x0, 0.5):.1f}" '
                f'height="{height:.1f}" fill="{_colour(ep["name"])}" fill-opacity="0.5"/>'
            )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img">'
        f"{_axis(low, high, 'share of requests')}{''.join(shapes)}</svg>"
    )


def _cdf_svg(endpoints: list[Mapping[str, Any]]) -> str:
    points = [p for ep in endpoints for p in ep.get("cdf", [])]
    if not points:
        return "<p>No successful response: no latency to draw.</p>"
    low = max(min(p["latency_ms"] for p in points), 0.01)
    high = max(max(p["latency_ms"] for p in points), low * 1.01)
    lines = []
    for ep in endpoints:
        coords = " ".join(
            f"{_log_x(p['latency_ms'], low, high):.1f},"
            f"{HEIGHT - MARGIN - p['share'] * (HEIGHT - 1.5 * MARGIN):.1f}"
            for p in ep.get("cdf", [])
        )
        if coords:
            lines.append(
                f'<polyline points="{coords}" fill="none" stroke="{_colour(ep["name"])}" stroke-width="2"/>'
            )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img">'
        f"{_axis(low, high, 'share at or below')}{''.join(lines)}</svg>"
    )

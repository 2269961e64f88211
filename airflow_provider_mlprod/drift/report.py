"""A self-contained HTML drift report: dataset summary on top, then one inline SVG plot per column.

The page needs no network: no script, no external style sheet or font, all CSS inline in one
``<style>`` block, plots as inline ``<svg>``. Every text taken from the data (column names,
categories, notes) is escaped with ``html.escape``.

Numeric columns are drawn as overlaid density histograms on the reference bins (bar area = share of
the column's finite values; the outer bins reach the smallest / largest value seen on either side).
Categorical columns are drawn as pairs of bars (reference, current) of category shares.
"""

from __future__ import annotations

import html
from pathlib import Path

from airflow_provider_mlprod.drift.profile import NUMERIC
from airflow_provider_mlprod.drift.results import ColumnDistribution, ColumnDrift, DriftResult

WIDTH, HEIGHT, MARGIN = 640, 220, 30
#: equal-width bins a numeric distribution is drawn on
DISPLAY_BINS = 40
REFERENCE_COLOUR, CURRENT_COLOUR = "#4477aa", "#ee7733"
AXIS_LINE = (
    f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" y2="{HEIGHT - MARGIN}" stroke="#444"/>'
)
STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
.drift { color: #b00020; font-weight: bold; }
.stable { color: #1b7a1b; font-weight: bold; }
section { border-top: 1px solid #ddd; margin-top: 1.5em; padding-top: 0.5em; }
.legend span { display: inline-block; width: 1em; height: 0.8em; margin: 0 0.3em 0 1em; }
"""


def render_html_report(result: DriftResult, title: str = "Data drift report") -> str:
    """The report of ``result`` as one HTML string."""
    e = html.escape
    verdict = _verdict(result.dataset_drift, "dataset drift", "no dataset drift")
    summary_rows = [
        ("Verdict", verdict),
        (
            "Drifted columns",
            e(
                f"{len(result.drifted_columns)} of {len(result.columns)} "
                f"({result.drifted_share:.1%}; dataset drifts from {result.drift_share_threshold:.1%})"
            ),
        ),
        ("Drifted", e(", ".join(result.drifted_columns) or "none")),
        (
            "Must not drift",
            e(", ".join(result.must_not_drift) or "none")
            + (
                f" (drifted: {e(', '.join(result.must_not_drift_drifted))})"
                if result.must_not_drift_drifted
                else ""
            ),
        ),
        ("Rows", e(f"reference {result.reference_rows:,}, current {result.current_rows:,}")),
    ]
    if result.columns_only_in_current:
        summary_rows.append(("Only in current (not compared)", e(", ".join(result.columns_only_in_current))))
    overview = "".join(
        f"<tr><td>{e(c.column)}</td><td>{e(c.kind)}</td><td>{e(c.test)}</td><td>{_number(c.statistic)}</td>"
        f"<td>{_number(c.p_value)}</td><td>{_number(c.threshold)}</td>"
        f"<td>{_verdict(c.drifted, 'drift', 'ok')}</td></tr>"
        for c in result.columns
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<table>" + "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in summary_rows) + "</table>",
        "<table><tr><th>Column</th><th>Kind</th><th>Test</th><th>Statistic</th><th>p-value</th>"
        f"<th>Threshold</th><th>Verdict</th></tr>{overview}</table>",
        f'<p class="legend"><span style="background:{REFERENCE_COLOUR}"></span>reference'
        f'<span style="background:{CURRENT_COLOUR}"></span>current</p>',
    ]
    parts.extend(_column_section(column) for column in result.columns)
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html_report(result: DriftResult, path: str | Path, title: str = "Data drift report") -> Path:
    """Write the report of ``result`` to ``path`` (UTF-8) and return the path."""
    target = Path(path)
    target.write_text(render_html_report(result, title), encoding="utf-8")
    return target


def _verdict(drifted: bool, yes: str, no: str) -> str:
    return (
        f'<span class="drift">{html.escape(yes)}</span>'
        if drifted
        else f'<span class="stable">{html.escape(no)}</span>'
    )


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    return html.escape(f"{value:.4g}")


def _judged(column: ColumnDrift) -> str:
    return "p-value" if column.drift_when == "p_value_below" else "statistic"


def _column_section(column: ColumnDrift) -> str:
    e = html.escape
    facts = [
        ("Test", f"{column.test} ({column.units}; drift when {column.drift_when.replace('_', ' ')})"),
        (
            "Statistic",
            f"{_number(column.statistic)}"
            + (f", p-value {_number(column.p_value)}" if column.p_value is not None else ""),
        ),
        ("Threshold", _number(column.threshold)),
        (
            "Method",
            column.method
            + (f", error bound {_number(column.error_bound)}" if column.error_bound else "")
            + (
                f"; WITHIN THE BINNING ERROR: the exact {_judged(column)} lies in "
                f"[{_number(column.statistic_range[0])}, {_number(column.statistic_range[1])}], "
                "on both sides of the threshold"
                if column.within_binning_error and column.statistic_range
                else ""
            ),
        ),
        (
            "Missing share change",
            f"{_number(column.missing.statistic)} (threshold {_number(column.missing.threshold)}); "
            f"null rate {column.null_rate_reference:.2%} → {column.null_rate_current:.2%}, "
            f"±inf rate {column.infinite_rate_reference:.2%} → {column.infinite_rate_current:.2%}",
        ),
    ]
    if column.unseen is not None:
        facts.append(
            (
                "Unseen categories",
                f"{_number(column.unseen_share)} of current values "
                f"(threshold {_number(column.unseen.threshold)})",
            )
        )
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts)
    notes = "".join(f"<li>{e(note)}</li>" for note in column.notes)
    return (
        f"<section><h2>{e(column.column)} {_verdict(column.drifted, 'drift', 'ok')}</h2>"
        f"<table>{rows}</table>{f'<ul>{notes}</ul>' if notes else ''}"
        f"{_svg(column.distribution, column.column, bool(column.within_binning_error))}</section>"
    )


def _svg(distribution: ColumnDistribution | None, column: str, within_binning_error: bool = False) -> str:
    drawable = (
        distribution is not None and sum(distribution.reference_counts + distribution.current_counts) > 0
    )
    if not drawable:
        body = f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no values to draw</text>'
    elif distribution.kind == NUMERIC:
        body = _histogram_bars(distribution) + _axis_titles(f"value of {column}")
    else:
        body = _category_bars(distribution) + _axis_titles(None)
    if within_binning_error:
        # the verdict is not certain: say so on the plot itself, not only in the table above it
        body += (
            f'<text class="binning-error" x="{WIDTH - MARGIN}" y="{MARGIN - 10}" font-size="11" '
            'text-anchor="end" fill="#b26a00">verdict within the binning error</text>'
        )
    label = html.escape(f"distribution of {column}: reference vs current", quote=True)
    return (
        f'<svg width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{label}"><title>{html.escape(column)}</title>{body}</svg>'
    )


def _axis_titles(x_title: str | None) -> str:
    """The y axis title (what the bar heights mean) and, for numeric columns, the x axis title."""
    y_middle = HEIGHT / 2
    titles = (
        f'<text class="axis-title" x="12" y="{y_middle:.0f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {y_middle:.0f})">share of rows</text>'
    )
    if x_title:
        titles += (
            f'<text class="axis-title" x="{WIDTH / 2:.0f}" y="{HEIGHT - 8}" font-size="11" '
            f'text-anchor="middle">{html.escape(x_title)}</text>'
        )
    return titles


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def _rebin(shares: list[float], points: list[float], display_edges: list[float]) -> list[float]:
    """Shares of bins ``points[i]..points[i+1]`` moved onto ``display_edges``, uniform within a bin."""
    out = [0.0] * (len(display_edges) - 1)
    last = len(out) - 1
    step = (display_edges[-1] - display_edges[0]) / len(out)
    for share, left, right in zip(shares, points, points[1:], strict=False):
        if share <= 0:
            continue
        if right <= left:  # a bin of one value: all of it in the display bin holding that value
            out[min(max(int((left - display_edges[0]) / step), 0), last)] += share
            continue
        first = min(max(int((left - display_edges[0]) / step), 0), last)
        final = min(max(int((right - display_edges[0]) / step), 0), last)
        for index in range(first, final + 1):
            overlap = min(right, display_edges[index + 1]) - max(left, display_edges[index])
            if overlap > 0:
                out[index] += share * overlap / (right - left)
    return out


def _histogram_bars(distribution: ColumnDistribution) -> str:
    edges = distribution.edges
    low = distribution.low if distribution.low is not None else (edges[0] if edges else 0.0)
    high = distribution.high if distribution.high is not None else (edges[-1] if edges else 1.0)
    points = [min(low, edges[0]), *edges, max(high, edges[-1])] if edges else [low, high]
    span = points[-1] - points[0] or 1.0
    plot_width, plot_height = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    # Profile bins are quantile bins of very different widths; drawn as they are, narrow bins of a
    # small sample look like spikes. Spread each bin's share evenly over its width and redraw it on
    # DISPLAY_BINS equal-width bins, so both series are comparable histograms.
    display_edges = [points[0] + span * i / DISPLAY_BINS for i in range(DISPLAY_BINS + 1)]
    series = [
        _rebin(_shares(counts), points, display_edges)
        for counts in (distribution.reference_counts, distribution.current_counts)
    ]
    top = max((share for shares in series for share in shares), default=0.0) or 1.0
    bar_width = plot_width / DISPLAY_BINS
    shapes = []
    for colour, shares in zip((REFERENCE_COLOUR, CURRENT_COLOUR), series, strict=True):
        for index, share in enumerate(shares):
            if share <= 0:
                continue
            height = share / top * plot_height
            shapes.append(
                f'<rect x="{MARGIN + index * bar_width:.2f}" y="{HEIGHT - MARGIN - height:.2f}" '
                f'width="{bar_width:.2f}" height="{height:.2f}" fill="{colour}" fill-opacity="0.5"/>'
            )
    axis = (
        AXIS_LINE
        + f'<text x="{MARGIN}" y="{HEIGHT - 8}" font-size="11">{html.escape(f"{points[0]:.4g}")}</text>'
        f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - 8}" font-size="11" text-anchor="end">'
        f"{html.escape(f'{points[-1]:.4g}')}</text>"
    )
    return "".join(shapes) + axis


def _category_bars(distribution: ColumnDistribution) -> str:
    labels = distribution.labels
    reference, current = _shares(distribution.reference_counts), _shares(distribution.current_counts)
    top = max(reference + current, default=0.0) or 1.0
    plot_height = HEIGHT - 2 * MARGIN
    slot = (WIDTH - 2 * MARGIN) / max(len(labels), 1)
    bar = slot * 0.4
    shapes = []
    for index, label in enumerate(labels):
        x = MARGIN + index * slot
        for offset, colour, share in (
            (0.1, REFERENCE_COLOUR, reference[index]),
            (0.5, CURRENT_COLOUR, current[index]),
        ):
            height = share / top * plot_height
            shapes.append(
                f'<rect x="{x + offset * slot:.2f}" y="{HEIGHT - MARGIN - height:.2f}" width="{bar:.2f}" '
                f'height="{height:.2f}" fill="{colour}">'
                f"<title>{html.escape(f'{label}: {share:.2%}')}</title></rect>"
            )
        short = label if len(label) <= 12 else label[:11] + "…"
        shapes.append(
            f'<text x="{x + slot / 2:.2f}" y="{HEIGHT - 12}" font-size="10" text-anchor="middle">'
            f"{html.escape(short)}</text>"
        )
    return "".join(shapes) + AXIS_LINE

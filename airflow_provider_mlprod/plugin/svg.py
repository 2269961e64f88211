"""Inline SVG plots for the model-health view: no JavaScript, no external resources."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 16, 40
PASS_COLOUR, FAIL_COLOUR, LINE_COLOUR = "#2e7d32", "#c62828", "#1f5fa8"


def _scale(value: float, low: float, high: float, start: float, end: float) -> float:
    if high == low:
        return (start + end) / 2
    return start + (value - low) / (high - low) * (end - start)


def _frame(
    title: str, body: str, x_label: str, y_label: str, y_low: str, y_high: str, extra: str = ""
) -> str:
    plot_bottom, plot_right = HEIGHT - BOTTOM, WIDTH - RIGHT
    return (
        f'<svg class="plot" role="img" aria-label="{escape(title)}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>"
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{plot_bottom}" stroke="#555"/>'
        f'<line x1="{LEFT}" y1="{plot_bottom}" x2="{plot_right}" y2="{plot_bottom}" stroke="#555"/>'
        f'<text x="{LEFT - 4}" y="{TOP + 4}" font-size="10" text-anchor="end">{escape(y_high)}</text>'
        f'<text x="{LEFT - 4}" y="{plot_bottom}" font-size="10" text-anchor="end">{escape(y_low)}</text>'
        f'<text x="{(LEFT + plot_right) / 2}" y="{HEIGHT - 6}" font-size="11" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text x="12" y="{(TOP + plot_bottom) / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {(TOP + plot_bottom) / 2})">{escape(y_label)}</text>'
        f"{extra}{body}</svg>"
    )


def _time_axis(times: Sequence[datetime]) -> str:
    plot_bottom, plot_right = HEIGHT - BOTTOM, WIDTH - RIGHT
    first, last = times[0], times[-1]
    return (
        f'<text x="{LEFT}" y="{plot_bottom + 14}" font-size="10">{first:%Y-%m-%d %H:%M}</text>'
        f'<text x="{plot_right}" y="{plot_bottom + 14}" font-size="10" text-anchor="end">'
        f"{last:%Y-%m-%d %H:%M}</text>"
    )


def line_chart(title: str, points: Sequence[tuple[datetime, float]], y_label: str) -> str:
    """A time series as a line with a dot per point (UTC times on the x axis)."""
    if not points:
        return ""
    times = [t for t, _ in points]
    values = [v for _, v in points]
    low, high = min(values), max(values)
    t0, t1 = times[0].timestamp(), times[-1].timestamp()
    xy = [
        (
            _scale(t.timestamp(), t0, t1, LEFT + 6, WIDTH - RIGHT - 6),
            _scale(v, low, high, HEIGHT - BOTTOM - 6, TOP + 6),
        )
        for t, v in points
    ]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(xy))
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{LINE_COLOUR}"/>' for x, y in xy[-200:])
    body = f'<path d="{path}" fill="none" stroke="{LINE_COLOUR}" stroke-width="1.5"/>{dots}'
    return _frame(title, body, "recorded at (UTC)", y_label, f"{low:.4g}", f"{high:.4g}", _time_axis(times))


def step_timeline(title: str, changes: Sequence[tuple[datetime, str, bool]]) -> str:
    """Which version an alias pointed at over time: one step per change (rollbacks in red)."""
    if not changes:
        return ""
    versions = list(dict.fromkeys(version for _, version, _ in changes))
    rank = {version: i for i, version in enumerate(versions)}
    times = [t for t, _, _ in changes]
    t0, t1 = times[0].timestamp(), times[-1].timestamp()
    plot_right = WIDTH - RIGHT
    top, bottom = HEIGHT - BOTTOM - 6, TOP + 6
    marks, path = [], []
    for i, (at, version, is_rollback) in enumerate(changes):
        x = _scale(at.timestamp(), t0, t1, LEFT + 6, plot_right - 6)
        y = _scale(rank[version], 0, max(len(versions) - 1, 1), top, bottom)
        path.append(f"M{x:.1f},{y:.1f}" if i == 0 else f"H{x:.1f} V{y:.1f}")
        colour = FAIL_COLOUR if is_rollback else PASS_COLOUR
        if i >= len(changes) - 200:
            marks.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
                f"<title>{escape(version)} at {at:%Y-%m-%d %H:%M:%S}</title></circle>"
            )
    last_x = plot_right - 6
    body = (
        f'<path d="{" ".join(path)} H{last_x:.1f}" fill="none" stroke="{LINE_COLOUR}" stroke-width="1.5"/>'
        + "".join(marks)
    )
    return _frame(
        title, body, "changed at (UTC)", "version (n-th promoted)", "1", str(len(versions)), _time_axis(times)
    )


def heatmap(
    title: str, columns: Sequence[str], runs: Sequence[tuple[str, dict[str, tuple[bool, float | None]]]]
) -> str:
    """Drift per column (rows) and run (columns): red drifted, green stable, grey not checked."""
    if not columns or not runs:
        return ""
    cell_w = max(6, min(40, (WIDTH - 160) // len(runs)))
    cell_h = 18
    width = 160 + cell_w * len(runs) + 10
    height = 20 + cell_h * len(columns) + 10
    cells = []
    for row, column in enumerate(columns):
        y = 20 + row * cell_h
        cells.append(
            f'<text x="154" y="{y + 13}" font-size="11" text-anchor="end">{escape(column[:24])}</text>'
        )
        for index, (label, verdicts) in enumerate(runs):
            x = 160 + index * cell_w
            verdict = verdicts.get(column)
            colour = "#cccccc" if verdict is None else FAIL_COLOUR if verdict[0] else PASS_COLOUR
            statistic = "" if verdict is None or verdict[1] is None else f" statistic {verdict[1]:.4g}"
            cells.append(
                f'<rect x="{x}" y="{y}" width="{cell_w - 1}" height="{cell_h - 1}" fill="{colour}">'
                f"<title>{escape(column)} in {escape(label)}:"
                f"{' not checked' if verdict is None else (' drifted' if verdict[0] else ' stable')}"
                f"{statistic}</title></rect>"
            )
    return (
        f'<svg class="plot heatmap" role="img" aria-label="{escape(title)}" '
        f'width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f'<text x="160" y="12" font-size="11">runs, oldest to newest</text>{"".join(cells)}</svg>'
    )

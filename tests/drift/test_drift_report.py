"""The HTML report: self-contained, escaped, one SVG plot per column."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from airflow_provider_mlprod.drift.compare import compare_datasets
from airflow_provider_mlprod.drift.profile import profile_dataframe
from airflow_provider_mlprod.drift.report import render_html_report, write_html_report


def frames():
    rng = np.random.default_rng(0)
    hostile = "<script>alert(1)</script>"
    reference = pd.DataFrame(
        {
            "amount": rng.normal(0, 1, 2000),
            hostile: rng.choice(np.array(["a", "b", "<b>bold</b>"], dtype=object), 2000),
            "flat": np.full(2000, 2.0),
            "empty": [np.nan] * 2000,
        }
    )
    current = pd.DataFrame(
        {
            "amount": rng.normal(1, 1, 1500),
            hostile: rng.choice(np.array(["a", "b", "https://evil.example/x.js"], dtype=object), 1500),
            "flat": np.full(1500, 3.0),
            "empty": [np.nan] * 1500,
        }
    )
    return reference, current


def test_report_has_one_svg_per_column_and_a_summary(tmp_path):
    reference, current = frames()
    result = compare_datasets(reference, current)
    html_text = render_html_report(result, title="Drift <weekly>")
    assert html_text.count("<svg") == len(result.columns) == 4
    assert html_text.count("</svg>") == 4
    summary = html_text.index("dataset drift")
    assert summary < html_text.index("<svg")
    assert "Drift &lt;weekly&gt;" in html_text
    for column in result.columns:
        assert column.test in html_text
    path = write_html_report(result, tmp_path / "drift.html", title="Drift <weekly>")
    assert path.read_text(encoding="utf-8") == html_text


def test_report_is_self_contained_and_escaped():
    reference, current = frames()
    html_text = render_html_report(compare_datasets(reference, current))
    assert "<script" not in html_text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_text
    assert "<b>bold</b>" not in html_text
    assert not re.search(r"<(script|link|img|iframe)\b", html_text)
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", html_text)
    assert "@import" not in html_text
    assert "url(" not in html_text


def test_report_draws_bars_for_both_sides():
    reference, current = frames()
    result = compare_datasets(profile_dataframe(reference), current)
    html_text = render_html_report(result)
    sections = html_text.split("<section>")[1:]
    assert len(sections) == 4
    amount = sections[0]
    assert amount.count("#4477aa") > 10
    assert amount.count("#ee7733") > 10
    categorical = sections[1]
    assert categorical.count("<rect") == 2 * len(result.columns[1].distribution.labels)
    assert "no values to draw" in sections[3]
    assert ">share of rows</text>" in amount  # y axis titles
    assert ">share of rows</text>" in categorical
    assert ">value of amount</text>" in amount  # x axis title of a numeric column

"""A generated corpus of model outputs with planted gibberish, refusals, truncated JSON, schema violations."""

from __future__ import annotations

import json
import random

import pytest

WORDS = [
    "the",
    "model",
    "predicts",
    "a",
    "churn",
    "risk",
    "for",
    "this",
    "customer",
    "because",
    "usage",
    "fell",
    "sharply",
    "over",
    "weeks",
]
ACCENTED = ["café", "naïve", "Über", "señor", "façade"]


def generate_corpus(rows: int = 400, seed: int = 7) -> list[dict]:
    """Rows of (id, answer text, json payload, label, score) with planted bad outputs; ``kind`` says which."""
    rng = random.Random(seed)
    corpus = []
    for i in range(rows):
        words = [rng.choice(WORDS + ACCENTED) for _ in range(rng.randint(4, 30))]
        answer = " ".join(words).capitalize() + "."
        payload = json.dumps({"label": rng.choice(["churn", "stay"]), "score": round(rng.random(), 3)})
        label, score, kind = rng.choice(["churn", "stay"]), rng.random(), "clean"
        planted = i % 10
        if planted == 1:
            answer, kind = "".join(rng.choice("#$%&*@!?0123456789") for _ in range(60)), "gibberish"
        elif planted == 2:
            answer, kind = "I'm sorry, but I cannot help with that request.", "refusal"
        elif planted == 3:
            payload, kind = payload[: rng.randint(1, len(payload) - 1)], "truncated_json"
        elif planted == 4:
            payload, kind = json.dumps({"label": "maybe", "score": 2.5}), "schema_violation"
        elif planted == 5:
            answer, kind = " \t\n ", "empty"
        elif planted == 6:
            answer, kind = ("buy now " * 20).strip(), "loop"
        elif planted == 7:
            label, score, kind = "unknown", -0.5, "bad_label"
        elif planted == 8 and i % 20 == 8:
            answer, payload, label, score, kind = None, None, None, None, "null"
        elif planted == 9 and i % 30 == 9:
            payload, kind = '{"label": "churn", "score": NaN}', "nan_json"
        corpus.append(
            {"id": i, "answer": answer, "payload": payload, "label": label, "score": score, "kind": kind}
        )
    return corpus


@pytest.fixture
def corpus() -> list[dict]:
    return generate_corpus()


EDGE_ANSWERS = [
    "",
    " ",
    "\x0b\x0c",
    "\u00a0",  # a no-break space is not whitespace here: one non-letter character
    "Привет, это ответ модели о клиенте.",  # noqa: RUF001
    "Καλημέρα κόσμε, η πρόβλεψη είναι σταθερή.",
    "中文回答没有空格。",
    "고객 이탈 위험이 높습니다",
    "😀😀😀 emoji 👩‍👩‍👧 only",
    "e\u0301te\u0301 de\u0301compose\u0301 accents",
    "As an AI language model, I cannot say.",
    "AS AN AI MODEL I CAN'T ASSIST",
    "i am sorry, but no",
    "I am unable to\nanswer that",
    "a\tb\nc\r\nd  e   f",
    "Ends with a newline.\n",
    "Line one.\nLine two.",
    "x" * 130,
    "word " * 40,
    "12345 67890 !!!!! ?????",
    "[]a] brackets, {braces}, (parens) and $dollars^",
    '{"label": "churn", "score": 0.4}',
    "We are 100% sure, says snake_case",
    "We are 1000 sure, says snakeXcase",
    "MOSTLY UPPER CASE TEXT, SHOUTED",
    "Tab\tnew\nline\rreturn\x0bvertical\x0cfeed 1",
    "ctrl\x01char\x1fand\x7fdelete",
    "~`^_|{}[]@\\<>=+*&%$#",
    "~`^_|{}[]@<>=+*&%$# no backslash",
    "ASCII words then one caf\u00e9",
    "Tom sorry, but you can't help with the mum unable to",
    "I\u2019M UNABLE TO say; AS AN AI, no",
]
"""Texts every engine reads alike: empty and whitespace-only texts, scripts without spaces, emoji,
combining accents, refusals in other cases, every whitespace character, long and bracket-laden texts,
upper-case and control characters and every ASCII punctuation mark (PostgreSQL counts ASCII texts by
byte arithmetic: a bound first, the exact count above the threshold), an ASCII text with one accent,
texts holding the guards of refusal phrases (``m sorry, but``) but not the phrases, a typographic
apostrophe in upper case."""

CTYPE_DEPENDENT_ANSWERS = [
    "٣٤٥ ١٢ Arabic-Indic digits",
    "हिन्दी में उत्तर",
    "x² + y² = ½ z",
]
"""Texts whose letters PostgreSQL counts by the server's ctype locale (glibc counts non-ASCII digits and
Indic vowel signs as letters, superscripts and fractions as non-letters): the non_letter_share SQL form
there may disagree with Python; DuckDB and SQLite (Python) agree."""

EDGE_PAYLOADS = [
    "",
    "   ",
    "NaN",
    '{"label": "churn", "score": NaN}',
    '{"label": "stay", "score": Infinity}',
    '{"label": "churn", "score": 0.5,}',
    "[1, 2,]",
    "{'label': 'churn'}",
    '{"label": "churn", "score": 0.5} trailing',
    ' {"label": "stay", "score": 0.25} \n',
    "1",
    '"just a string"',
    "null",
    "true",
    '{"label": "churn", "note": "\\ud800 lone surrogate", "score": 0.1}',
    '{"label": "churn", "note": "caf\\u00e9 \u00e9t\u00e9", "score": 0.9}',
    '{"label": "churn", "note": "tab\there", "score": 0.3}',
    '{"label": "stay", "score": 1e400}',
    '{"label": "stay", "score": -0}',
    '{"label": "churn", "score": 0.5, "label": "stay"}',
    '{"label": "churn", "score": 0.',
    "\ufeff{}",
]
"""JSON corner cases: NaN/Infinity, trailing commas, single quotes, trailing text, top-level scalars,
escapes (a lone surrogate too), a control character in a string, huge numbers, duplicate keys."""


def generate_edge_corpus(*, ctype_dependent: bool = True, seed: int = 11) -> list[dict]:
    """The generated corpus plus rows of :data:`EDGE_ANSWERS` and :data:`EDGE_PAYLOADS` (kind ``edge``).

    Labels and scores of the edge rows include unicode labels, NaN, infinities and bounds.
    """
    rows = generate_corpus(seed=seed)
    answers = EDGE_ANSWERS + (CTYPE_DEPENDENT_ANSWERS if ctype_dependent else [])
    labels = ["churn", "stay", "Churn", "churn ", "", "stay\u00e9", None]
    scores = [0.0, 1.0, -0.0, 1.0000001, float("nan"), float("inf"), float("-inf"), None, 0.5]
    for i in range(max(len(answers), len(EDGE_PAYLOADS))):
        rows.append(
            {
                "id": len(rows),
                "answer": answers[i % len(answers)],
                "payload": EDGE_PAYLOADS[i % len(EDGE_PAYLOADS)],
                "label": labels[i % len(labels)],
                "score": scores[i % len(scores)],
                "kind": "edge",
            }
        )
    return rows

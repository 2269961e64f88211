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

"""Output guardrails: a batch of model answers is checked before anything downstream uses it.

1. ``generate_answers`` stands in for a batch-inference job of a text (LLM) model: it writes the
   answers (text) and structured payloads (JSON) of 200 requests as JSON lines under
   ``$AIRFLOW_HOME/mlprod/outputs/<run_id>/answers.jsonl``.
2. ``check_answers`` (``PredictionOutputCheckOperator`` on ``file_path``) runs output checks: the
   payload is valid JSON matching its schema, the label is allowed, the answer is not empty, not too
   long, not a refusal, not gibberish (non-letter share), not a loop (repeated n-grams). Failing rows go
   to a quarantine folder next to the answers with the checks they failed; the HTML report shows
   escaped examples of failing outputs.

Scenario Param ``scenario``: ``clean`` (passes); ``gibberish`` (a quarter of the answers degenerate
into symbol soup and repeated phrases, some payloads are truncated: the check fails the run).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from airflow_provider_mlprod.operators.outputs import PredictionOutputCheckOperator

PAYLOAD_SCHEMA = {
    "type": "object",
    "required": ["label", "confidence"],
    "properties": {
        "label": {"enum": ["churn", "stay"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
}

OUTPUT_CHECKS = [
    {"check": "valid_json", "column": "payload"},
    {"check": "json_schema", "column": "payload", "schema": PAYLOAD_SCHEMA},
    {"check": "not_empty", "column": "answer"},
    {"check": "max_length", "column": "answer", "max_chars": 600},
    {"check": "refusal", "column": "answer", "severity": "warning"},
    {"check": "non_letter_share", "column": "answer", "max_share": 0.3, "min_pass_rate": 0.97},
    {"check": "repeated_ngrams", "column": "answer", "n": 3, "max_share": 0.5, "min_pass_rate": 0.97},
]


@dag(
    dag_id="mlprod_output_checks",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mlprod", "example"],
    params={"scenario": Param("clean", enum=["clean", "gibberish"], description="What to simulate")},
    default_args={"retries": 0},
)
def mlprod_output_checks():
    @task
    def generate_answers(params=None, run_id=None) -> str:
        """Write 200 answers as JSON lines; in the gibberish scenario a quarter of them degenerate."""
        import json
        import os
        import random
        import re
        from pathlib import Path

        rng = random.Random(17)
        reasons = ["usage fell over the last weeks", "support tickets piled up", "the contract ends soon"]
        safe_run = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)
        folder = Path(os.environ.get("AIRFLOW_HOME", ".")) / "mlprod" / "outputs" / safe_run
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(200):
            label = rng.choice(["churn", "stay"])
            answer = f"Customer {i} will probably {label} because {rng.choice(reasons)}."
            payload = json.dumps({"label": label, "confidence": round(rng.uniform(0.5, 1), 3)})
            if params["scenario"] == "gibberish" and i % 4 == 0:
                answer = "".join(rng.choice("#$%&*@!?{}[]0123456789") for _ in range(80))
                if i % 8 == 0:
                    answer = "the the model the model the model " * 6
                    payload = payload[: len(payload) // 2]
            rows.append({"request_id": i, "answer": answer, "payload": payload})
        path = folder / "answers.jsonl"
        path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
        return str(path)

    answers = generate_answers()
    check_answers = PredictionOutputCheckOperator(
        task_id="check_answers",
        checks=OUTPUT_CHECKS,
        file_path="{{ ti.xcom_pull(task_ids='generate_answers') }}",
        quarantine_folder="{{ ti.xcom_pull(task_ids='generate_answers') "
        "| replace('answers.jsonl', 'quarantine') }}",
        dataset_name="churn_explanations",
        emit_asset=True,
        on_failure="fail",
    )
    answers >> check_answers


mlprod_output_checks()

"""Which errors end a task for good (no retry) and which stay retryable, through the operators."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_mlprod.exceptions import StoreError
from airflow_provider_mlprod.operators.gate import ModelMetricsGateOperator
from airflow_provider_mlprod.operators.outcome import FINAL_ERRORS, final_errors_fail_the_task
from airflow_provider_mlprod.operators.registry import RegisterModelOperator

HUGE = 10**400  # a valid JSON and Python int that no float can hold


@pytest.fixture
def artifact(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights")
    return str(path)


def register(task_context, artifact, version, **metrics_source):
    task = RegisterModelOperator(
        task_id="register", model_name="churn", model_version=version, artifact_uri=artifact, **metrics_source
    )
    return task.execute(task_context(task_id="register", run_id=f"run_{version}"))


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"auc": float("nan")}, "metric 'auc' must be finite, got nan"),
        ({"auc": float("inf")}, "metric 'auc' must be finite, got inf"),
        ({"auc": HUGE}, "metric 'auc' must be finite, got a number too large for a float"),
    ],
)
def test_unusable_metric_at_registration_fails_without_retry(
    task_context, isolated_store, artifact, metrics, message
):
    with pytest.raises(AirflowFailException, match=message) as raised:
        register(task_context, artifact, "1", metrics=metrics)
    assert isinstance(raised.value.__cause__, StoreError)
    # nothing was registered: a fixed metric registers the same version afterwards
    assert register(task_context, artifact, "1", metrics={"auc": 0.9})["metrics"] == {"auc": 0.9}


def test_huge_metric_at_the_gate_fails_the_gate_naming_it(task_context, isolated_store, artifact):
    register(task_context, artifact, "1", metrics={"auc": 0.9})
    gate = ModelMetricsGateOperator(
        task_id="gate",
        model_name="churn",
        model_version="1",
        thresholds={"auc": {"min": 0.5}},
        metrics={"auc": HUGE},
    )
    with pytest.raises(AirflowFailException, match="metric 'auc' is too large for a float"):
        gate.execute(task_context(task_id="gate", run_id="run_1"))


def test_huge_threshold_is_refused_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="threshold spec for 'auc': min is too large for a float"):
        ModelMetricsGateOperator(
            task_id="gate", model_name="churn", model_version="1", thresholds={"auc": {"min": HUGE}}
        )


def test_metrics_file_that_is_a_directory_fails_without_retry(
    task_context, isolated_store, artifact, tmp_path
):
    folder = tmp_path / "metrics.json"
    folder.mkdir()
    with pytest.raises(AirflowFailException, match=r"metrics file '.*metrics.json' is a directory") as raised:
        register(task_context, artifact, "1", metrics_file=str(folder))
    assert "Errno" not in str(raised.value)


def test_metrics_file_under_a_file_and_not_utf8_fail_without_retry(
    task_context, isolated_store, artifact, tmp_path
):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    with pytest.raises(AirflowFailException, match="a parent of it is a file"):
        register(task_context, artifact, "1", metrics_file=str(plain / "metrics.json"))
    latin = tmp_path / "latin.json"
    latin.write_bytes(json.dumps({"caf\u00e9": 1}, ensure_ascii=False).encode("latin-1"))
    with pytest.raises(AirflowFailException, match="is not UTF-8 text"):
        register(task_context, artifact, "1", metrics_file=str(latin))


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (OverflowError("int too large to convert to float"), "a number is too large for a float"),
        (IsADirectoryError(21, "Is a directory", "/data/out.csv"), "Is a directory: '/data/out.csv'"),
        (NotADirectoryError(20, "Not a directory", "/data/f/x"), "Not a directory: '/data/f/x'"),
        (StoreError("metric 'auc' must be finite, got nan"), "metric 'auc' must be finite, got nan"),
    ],
)
def test_deterministic_errors_are_final(error, message):
    assert isinstance(error, FINAL_ERRORS)
    with pytest.raises(AirflowFailException, match=message) as raised, final_errors_fail_the_task():
        raise error
    assert raised.value.__cause__ is error


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError("timed out"),
        OSError(28, "No space"),
    ],
)
def test_transient_errors_stay_retryable(error):
    with pytest.raises(type(error)), final_errors_fail_the_task():
        raise error

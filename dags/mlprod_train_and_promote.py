"""Train a model, gate it on thresholds and against the champion, register, promote and deploy it.

Runs on embedded defaults: the metrics store is the SQLite file under ``$AIRFLOW_HOME/mlprod/``,
artifacts go to ``$AIRFLOW_HOME/mlprod/models/`` and the deployed champion to
``$AIRFLOW_HOME/mlprod/serving/`` (override both with the ``artifact_root`` and ``serving_uri``
Params, e.g. ``s3://...``). The data is generated deterministically with scikit-learn.

Scenario Param ``model_quality``: ``good`` trains on the full data and beats (or ties) the champion;
``worse`` trains on a small, noisy slice, so the gate rejects it and the champion stays.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Param, dag, task

from airflow_provider_mlprod.operators.deployment import CopyArtifactDeployment
from airflow_provider_mlprod.operators.release import release_tasks

MODEL_NAME = "churn_classifier"
_MLPROD_HOME = os.path.join(os.path.expanduser(os.environ.get("AIRFLOW_HOME", "~/airflow")), "mlprod")


@dag(
    dag_id="mlprod_train_and_promote",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    tags=["mlprod", "example"],
    params={
        "model_quality": Param(
            "good", enum=["good", "worse"], description="Scenario: train a good or a worse model."
        ),
        "artifact_root": Param(
            f"file://{_MLPROD_HOME}/models",
            type="string",
            description="Where trained model artifacts are written (any ObjectStoragePath URI; shared "
            "storage when tasks run on more than one machine).",
        ),
        "serving_uri": Param(
            f"file://{_MLPROD_HOME}/serving/{MODEL_NAME}.pkl",
            type="string",
            description="Where a promoted model's artifact is copied for serving (ObjectStoragePath URI).",
        ),
        "require_approval": Param(
            False,
            type="boolean",
            description="Ask a human to approve the promotion under Required Actions (off: unattended).",
        ),
    },
)
def mlprod_train_and_promote():
    @task
    def train(params=None, run_id=None) -> dict:
        """Train on deterministic data; write the artifact; return its metrics."""
        import pickle

        from airflow.sdk import ObjectStoragePath
        from sklearn.datasets import make_classification
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
        from sklearn.model_selection import train_test_split

        features, labels = make_classification(
            n_samples=4000, n_features=12, n_informative=6, class_sep=2.0, random_state=7
        )
        x_train, x_test, y_train, y_test = train_test_split(features, labels, test_size=0.3, random_state=7)
        if params["model_quality"] == "worse":  # a small, noisy slice of the data
            x_train, y_train = x_train[:60], (y_train[:60] + (features[:60, 0] > 1)) % 2
        model = LogisticRegression(max_iter=500).fit(x_train, y_train)
        scores = model.predict_proba(x_test)[:, 1]
        version = run_id.replace(":", "-").replace("+", "-")
        artifact = ObjectStoragePath(params["artifact_root"]) / f"{MODEL_NAME}-{version}.pkl"
        artifact.parent.mkdir(parents=True, exist_ok=True)
        artifact.write_bytes(pickle.dumps(model))
        return {
            "version": version,
            "artifact_uri": str(artifact),
            "metrics": {
                "roc_auc": float(roc_auc_score(y_test, scores)),
                "accuracy": float(accuracy_score(y_test, scores > 0.5)),
                "log_loss": float(log_loss(y_test, scores)),
            },
        }

    trained = train()
    version = "{{ ti.xcom_pull(task_ids='train')['version'] }}"
    release = release_tasks(
        model_name=MODEL_NAME,
        model_version=version,
        artifact_uri="{{ ti.xcom_pull(task_ids='train')['artifact_uri'] }}",
        training_data="sklearn.make_classification(n_samples=4000, class_sep=2.0, random_state=7)",
        metrics_task_id="train",
        metrics_key="metrics",
        thresholds={
            "roc_auc": {"min": 0.8, "min_absolute_change": -0.005},
            "log_loss": {"max": 0.6, "greater_is_better": False},
        },
        if_no_baseline="pass",
        deployment=CopyArtifactDeployment("{{ params.serving_uri }}"),
        require_approval="{{ params.require_approval }}",
    )
    trained >> release.group


mlprod_train_and_promote()

"""The customer-churn demo used by the example DAGs: deterministic data, a scikit-learn model, artifacts.

The data stands in for a real source so the examples run anywhere; replace ``make_customers`` with
your own extraction and ``fit_churn_model`` with your own training when you adapt a DAG.
numpy, pandas and scikit-learn are imported when a function runs, never when a DAG is parsed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

MODEL_NAME = "customer_churn"
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "usage_gb", "plan"]
PLANS = ["basic", "standard", "premium", "family", "student", "business"]


def make_customers(rows: int, seed: int, shift: bool = False) -> pd.DataFrame:
    """Deterministic customer records with a churn label that depends on the features.

    :param shift: draw a drifted population (higher charges, more support calls and usage, mostly
        ``business`` plans).
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    plan_weights = [0.05, 0.1, 0.15, 0.1, 0.1, 0.5] if shift else [0.3, 0.3, 0.15, 0.1, 0.1, 0.05]
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(rows) + seed * 100_000,
            "tenure_months": rng.integers(0, 73, rows),
            "monthly_charges": rng.normal(95 if shift else 65, 20, rows).clip(5, 300).round(2),
            "support_calls": rng.poisson(3 if shift else 1.5, rows),
            "usage_gb": rng.gamma(2.0, 45 if shift else 15, rows).round(2),
            "plan": rng.choice(PLANS, rows, p=plan_weights),
        }
    )
    score = (
        -1.2
        - 0.05 * frame["tenure_months"]
        + 0.03 * frame["monthly_charges"]
        + 0.5 * frame["support_calls"]
        + (frame["plan"] == "basic") * 0.8
    )
    frame["churned"] = (rng.random(rows) < 1 / (1 + np.exp(-score))).astype(int)
    return frame


def fit_churn_model(data: pd.DataFrame, *, degrade: bool = False) -> tuple[Any, dict[str, float]]:
    """Fit the churn pipeline on 70 % of ``data``; return it with its metrics on the other 30 %.

    :param degrade: train on a small sample with a quarter of its labels flipped (a worse model).
    """
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x_train, x_test, y_train, y_test = train_test_split(
        data[FEATURES], data["churned"], test_size=0.3, random_state=7, stratify=data["churned"]
    )
    if degrade:
        x_train, y_train = x_train.iloc[:80], y_train.iloc[:80].copy()
        y_train.iloc[::4] = 1 - y_train.iloc[::4]
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["plan"]),
            (StandardScaler(), [f for f in FEATURES if f != "plan"]),
        ),
        LogisticRegression(max_iter=1000),
    ).fit(x_train, y_train)
    scores = model.predict_proba(x_test)[:, 1]
    metrics = {
        "roc_auc": float(roc_auc_score(y_test, scores)),
        "accuracy": float(accuracy_score(y_test, scores > 0.5)),
        "log_loss": float(log_loss(y_test, scores)),
    }
    return model, metrics


def version_from_run_id(run_id: str) -> str:
    """A model version (and file name part) made from a DAG run id."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)


def save_model(model: Any, artifact_root: str, version: str) -> str:
    """Pickle ``model`` to ``<artifact_root>/<MODEL_NAME>-<version>.pkl`` (any ObjectStoragePath URI)."""
    import pickle

    from airflow.sdk import ObjectStoragePath

    artifact = ObjectStoragePath(artifact_root) / f"{MODEL_NAME}-{version}.pkl"
    artifact.parent.mkdir(parents=True, exist_ok=True)
    artifact.write_bytes(pickle.dumps(model))
    return str(artifact)

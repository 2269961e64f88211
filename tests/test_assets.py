"""Assets of the data-aware loop, and outlets that keep the user's own."""

from __future__ import annotations

import pytest
from airflow.sdk import Asset

from airflow_provider_mlprod.assets import add_outlet, dataset_drift_asset, model_asset
from airflow_provider_mlprod.exceptions import ConfigurationError
from airflow_provider_mlprod.operators.drift import DataDriftOperator
from airflow_provider_mlprod.operators.registry import PromoteModelOperator


@pytest.mark.parametrize(
    "given", [None, Asset("s3://bucket/x"), [Asset("s3://bucket/x")], (Asset("s3://bucket/x"),)]
)
def test_add_outlet_keeps_what_the_user_gave(given):
    kwargs = {} if given is None else {"outlets": given}
    add_outlet(kwargs, model_asset("churn"))
    add_outlet(kwargs, model_asset("churn"))  # added once
    expected = [] if given is None else [Asset("s3://bucket/x")]
    assert kwargs["outlets"] == [*expected, model_asset("churn")]


def test_operators_add_their_asset_to_user_outlets():
    mine = Asset("s3://bucket/serving-manifest")
    promote = PromoteModelOperator(task_id="promote", model_name="churn", model_version="1", outlets=[mine])
    assert promote.outlets == [mine, model_asset("churn")]
    drift = DataDriftOperator(
        task_id="drift",
        reference_profile="ref",
        file_path="/tmp/x.csv",
        dataset_name="orders",
        emit_asset=True,
        outlets=[mine],
    )
    assert drift.outlets == [mine, dataset_drift_asset("orders")]


def test_asset_names_are_checked():
    with pytest.raises(ConfigurationError, match="cannot name an Asset"):
        model_asset("churn model; drop")


def test_slo_breach_and_outputs_checked_assets_have_fixed_names():
    from airflow_provider_mlprod.assets import (
        outputs_checked_alias,
        outputs_checked_asset,
        slo_breach_alias,
        slo_breach_asset,
    )

    assert slo_breach_asset("churn") == Asset(
        uri="mlprod://models/churn/slo_breach", name="mlprod-slo-breach-churn"
    )
    assert outputs_checked_asset("answers") == Asset(
        uri="mlprod://datasets/answers/outputs_checked", name="mlprod-outputs-checked-answers"
    )
    assert slo_breach_alias("churn").name == "mlprod-slo-breach-alias-churn"
    assert outputs_checked_alias("answers").name == "mlprod-outputs-checked-alias-answers"
    with pytest.raises(ConfigurationError, match="cannot name an Asset"):
        outputs_checked_asset("a/b")

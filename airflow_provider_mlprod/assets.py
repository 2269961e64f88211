"""The Airflow Assets of the data-aware loop: models, validated datasets, drift checks, degraded models.

URIs:

- ``mlprod://models/<name>``: an alias of the model (``champion``...) moved to another version;
- ``mlprod://datasets/<name>/validated``: a dataset passed its validation suite;
- ``mlprod://datasets/<name>/drift``: a drift check of a dataset completed (its extra says whether it
  drifted);
- ``mlprod://models/<name>/degraded``: a live model's performance fell below its tolerance;
- ``mlprod://models/<name>/slo_breach``: a served model breached its SLOs (latency, errors, cost...);
- ``mlprod://datasets/<name>/outputs_checked``: a batch of predictions passed its output checks.

Each Asset has a fixed name (``mlprod-model-<name>``, ``mlprod-validated-<name>``,
``mlprod-drift-<name>``, ``mlprod-degraded-<name>``, ``mlprod-slo-breach-<name>``,
``mlprod-outputs-checked-<name>``). Airflow identifies an Asset by its name and URI together, so a
DAG that schedules on one of these should build it with the function here rather than with
``Asset(uri)`` alone (whose name would default to the URI and make it a different Asset)::

    from airflow_provider_mlprod.assets import model_degraded_asset

    @dag(schedule=[model_degraded_asset("churn")])
    def retrain_churn(): ...

The degraded, SLO-breach, validated and outputs-checked Assets are emitted only when that happened,
each through an Asset alias (:func:`model_degraded_alias`, ...): a task emits an event for each
Asset it declares in its outlets every time it succeeds, but for an alias only when the task adds
an event to it.

The URI functions import nothing from Airflow; the Asset functions import ``airflow.sdk`` when called.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow_provider_mlprod.exceptions import ConfigurationError

if TYPE_CHECKING:
    from airflow.sdk import Asset, AssetAlias

SCHEME = "mlprod"
ASSET_NAME_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")


def add_outlet(operator_kwargs: dict[str, Any], outlet: Any) -> None:
    """Add ``outlet`` (an Asset or AssetAlias) to an operator's ``outlets`` argument, keeping the user's."""
    outlets = operator_kwargs.get("outlets")
    if outlets is None:
        outlets = []
    elif isinstance(outlets, (list, tuple)):
        outlets = list(outlets)
    else:
        outlets = [outlets]
    if outlet not in outlets:
        outlets.append(outlet)
    operator_kwargs["outlets"] = outlets


def check_asset_name_part(name: object, role: str) -> str:
    """Return ``name`` when it can be a URI path segment (letters, digits, ``_``, ``.``, ``-``).

    :param name: the dataset or model name.
    :param role: what it names, for the message (``"model name"``).
    """
    if not isinstance(name, str) or not ASSET_NAME_PART.fullmatch(name):
        raise ConfigurationError(
            f"{role} {name!r} cannot name an Asset: use letters, digits, '_', '.' and '-' "
            "(starting with a letter or digit, at most 200 characters)"
        )
    return name


def model_uri(model_name: str) -> str:
    """``mlprod://models/<model_name>``."""
    return f"{SCHEME}://models/{check_asset_name_part(model_name, 'model name')}"


def dataset_validated_uri(dataset_name: str) -> str:
    """``mlprod://datasets/<dataset_name>/validated``."""
    return f"{SCHEME}://datasets/{check_asset_name_part(dataset_name, 'dataset name')}/validated"


def dataset_drift_uri(dataset_name: str) -> str:
    """``mlprod://datasets/<dataset_name>/drift``."""
    return f"{SCHEME}://datasets/{check_asset_name_part(dataset_name, 'dataset name')}/drift"


def model_degraded_uri(model_name: str) -> str:
    """``mlprod://models/<model_name>/degraded``."""
    return f"{SCHEME}://models/{check_asset_name_part(model_name, 'model name')}/degraded"


def model_asset(model_name: str) -> Asset:
    """The Asset that changes whenever an alias of ``model_name`` moves (promotion, rollback)."""
    from airflow.sdk import Asset

    return Asset(uri=model_uri(model_name), name=f"mlprod-model-{model_name}")


def dataset_validated_asset(dataset_name: str) -> Asset:
    """The Asset of a dataset that passed validation."""
    from airflow.sdk import Asset

    return Asset(uri=dataset_validated_uri(dataset_name), name=f"mlprod-validated-{dataset_name}")


def dataset_drift_asset(dataset_name: str) -> Asset:
    """The Asset updated by each drift check of a dataset."""
    from airflow.sdk import Asset

    return Asset(uri=dataset_drift_uri(dataset_name), name=f"mlprod-drift-{dataset_name}")


def model_degraded_asset(model_name: str) -> Asset:
    """The Asset that receives an event when a live model's performance degrades."""
    from airflow.sdk import Asset

    return Asset(uri=model_degraded_uri(model_name), name=f"mlprod-degraded-{model_name}")


def dataset_validated_alias(dataset_name: str) -> AssetAlias:
    """The alias a validation task declares as outlet, so it emits the validated Asset only on success."""
    from airflow.sdk import AssetAlias

    return AssetAlias(name=f"mlprod-validated-alias-{check_asset_name_part(dataset_name, 'dataset name')}")


def model_degraded_alias(model_name: str) -> AssetAlias:
    """The alias a monitoring task declares as outlet, so it emits the degraded Asset only when it adds it."""
    from airflow.sdk import AssetAlias

    return AssetAlias(name=f"mlprod-degraded-alias-{check_asset_name_part(model_name, 'model name')}")


def slo_breach_uri(model_name: str) -> str:
    """``mlprod://models/<model_name>/slo_breach``."""
    return f"{SCHEME}://models/{check_asset_name_part(model_name, 'model name')}/slo_breach"


def slo_breach_asset(model_name: str) -> Asset:
    """The Asset that receives an event when a served model breaches its SLOs (schedule a rollback on it)."""
    from airflow.sdk import Asset

    return Asset(uri=slo_breach_uri(model_name), name=f"mlprod-slo-breach-{model_name}")


def slo_breach_alias(model_name: str) -> AssetAlias:
    """The alias an SLO monitor declares as outlet, so it emits the breach Asset only on a breach."""
    from airflow.sdk import AssetAlias

    return AssetAlias(name=f"mlprod-slo-breach-alias-{check_asset_name_part(model_name, 'model name')}")


def outputs_checked_uri(dataset_name: str) -> str:
    """``mlprod://datasets/<dataset_name>/outputs_checked``."""
    return f"{SCHEME}://datasets/{check_asset_name_part(dataset_name, 'dataset name')}/outputs_checked"


def outputs_checked_asset(dataset_name: str) -> Asset:
    """The Asset of a batch of predictions that passed its output checks."""
    from airflow.sdk import Asset

    return Asset(uri=outputs_checked_uri(dataset_name), name=f"mlprod-outputs-checked-{dataset_name}")


def outputs_checked_alias(dataset_name: str) -> AssetAlias:
    """The alias an output-check task declares as outlet, so it emits its Asset only on success."""
    from airflow.sdk import AssetAlias

    return AssetAlias(
        name=f"mlprod-outputs-checked-alias-{check_asset_name_part(dataset_name, 'dataset name')}"
    )

"""The request headers a load test takes from an Airflow ``http`` connection."""

from __future__ import annotations

import json

from airflow_provider_mlprod.operators.serving import http_endpoint


def test_session_options_are_not_sent_as_headers_and_a_headers_mapping_is(monkeypatch):
    """HttpHook reads ``proxy``, ``verify``, ``timeout``, ... as session options; sent as headers they
    would hand a proxy's credentials to the model endpoint. The golden-set gate reads a ``headers``
    mapping from the same connection: the load test sends it too."""
    extra = {
        "proxy": "http://user:pr0xy-pass@proxy.internal:3128",
        "proxies": {"https": "http://user:pr0xy-pass@proxy.internal:3128"},
        "verify": "/etc/ssl/internal-ca.pem",
        "cert": "/etc/ssl/client.pem",
        "timeout": 30,
        "max_redirects": 3,
        "X-Api-Key": "top-level-key",
        "headers": {"X-Tenant": "acme"},
    }
    conn = {"conn_type": "http", "host": "model.internal", "port": 8443, "schema": "https", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_MODEL_HEADERS", json.dumps(conn))
    endpoint = http_endpoint("model_headers", "/predict", "candidate")
    assert endpoint.url == "https://model.internal:8443/predict"
    assert dict(endpoint.headers) == {"X-Api-Key": "top-level-key", "X-Tenant": "acme"}

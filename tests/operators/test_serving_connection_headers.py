"""The request headers a load test takes from an Airflow ``http`` connection."""

from __future__ import annotations

import json

import trustme

from airflow_provider_mlprod.operators.serving import http_endpoint


def test_session_options_are_not_sent_as_headers_and_a_headers_mapping_is(monkeypatch, tmp_path):
    """HttpHook reads ``proxy``, ``verify``, ``timeout``, ... as session options; sent as headers they
    would hand a proxy's credentials to the model endpoint. The golden-set gate reads a ``headers``
    mapping from the same connection: the load test sends it too."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "internal-ca.pem"))
    ca.issue_cert("loader@example.com").private_key_and_cert_chain_pem.write_to_path(
        str(tmp_path / "client.pem")
    )
    extra = {
        "proxy": "http://user:pr0xy-pass@proxy.internal:3128",
        "proxies": {"https": "http://user:pr0xy-pass@proxy.internal:3128"},
        "verify": str(tmp_path / "internal-ca.pem"),
        "cert": str(tmp_path / "client.pem"),
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
    assert endpoint.tls.ca_path == extra["verify"]
    assert endpoint.tls.cert_path == endpoint.tls.key_path == extra["cert"]

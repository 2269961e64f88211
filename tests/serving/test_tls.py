"""TLS settings from an ``http`` connection's extra: what is accepted, what fails before any request."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from airflow_provider_mlprod.exceptions import ConnectionConfigError
from airflow_provider_mlprod.serving.tls import TlsSettings, default_tls, tls_settings


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A private CA, a client certificate it issued (together and apart), and files that are wrong."""
    folder = tmp_path_factory.mktemp("pki")
    ca, other_ca = trustme.CA(), trustme.CA()
    client = ca.issue_cert("loader@example.com")
    files = {name: str(folder / f"{name}.pem") for name in ("ca", "both", "cert", "key", "other_key")}
    ca.cert_pem.write_to_path(files["ca"])
    client.private_key_and_cert_chain_pem.write_to_path(files["both"])
    client.cert_chain_pems[0].write_to_path(files["cert"])
    client.private_key_pem.write_to_path(files["key"])
    other_ca.issue_cert("x@example.com").private_key_pem.write_to_path(files["other_key"])
    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), None)
    for name, form in (
        ("encrypted_key", serialization.PrivateFormat.PKCS8),
        ("encrypted_legacy_key", serialization.PrivateFormat.TraditionalOpenSSL),
    ):
        files[name] = str(folder / f"{name}.pem")
        encrypted = key.private_bytes(
            serialization.Encoding.PEM, form, serialization.BestAvailableEncryption(b"pass")
        )
        with open(files[name], "wb") as handle:
            handle.write(encrypted)
    files["text"] = str(folder / "notes.txt")
    with open(files["text"], "w") as handle:
        handle.write("not a certificate\n")
    files["damaged"] = str(folder / "damaged.pem")
    with open(files["damaged"], "w") as handle:
        handle.write("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    files["empty_dir"] = str(folder / "empty_dir")
    os.mkdir(files["empty_dir"])
    files["missing"] = str(folder / "missing.pem")
    files["key_text"] = client.private_key_pem.bytes().decode()
    return files


def test_defaults_verify_against_the_system_cas():
    for extra in ({}, {"verify": None}, {"verify": True}, {"verify": "true"}, {"verify_ssl": "True"}):
        settings = tls_settings(extra, "model")
        assert settings.verify is True
        assert settings.ca_path is None
        assert settings.context.verify_mode == ssl.CERT_REQUIRED
        assert settings.context.check_hostname is True
        assert settings.requests_options() == {"verify": True, "cert": None}
    assert default_tls().context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("value", [False, "false", "FALSE", " False "])
def test_verify_false_turns_verification_off(value):
    """A connection given as a URI holds its extra as strings: "false" is the boolean."""
    settings = tls_settings({"verify": value}, "model")
    assert settings.verify is False
    assert settings.context.verify_mode == ssl.CERT_NONE
    assert settings.context.check_hostname is False
    assert settings.requests_options() == {"verify": False, "cert": None}
    assert "NOT verified" in settings.describe()


def test_verify_takes_precedence_over_verify_ssl_as_in_http_hook(pki):
    settings = tls_settings({"verify": pki["ca"], "verify_ssl": False}, "model")
    assert (settings.verify, settings.ca_path) == (True, pki["ca"])
    assert tls_settings({"verify_ssl": False}, "model").verify is False


def test_a_ca_bundle_is_the_only_trust(pki):
    settings = tls_settings({"verify": pki["ca"]}, "model")
    assert settings.ca_path == pki["ca"]
    assert len(settings.context.get_ca_certs()) == 1  # the bundle's CA, not the system's as well
    assert settings.requests_options() == {"verify": pki["ca"], "cert": None}


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to hash the CA")
def test_a_hashed_ca_directory_is_accepted(pki, tmp_path):
    subject_hash = subprocess.run(
        ["openssl", "x509", "-noout", "-hash", "-in", pki["ca"]], capture_output=True, text=True, check=True
    ).stdout.strip()
    shutil.copy(pki["ca"], tmp_path / f"{subject_hash}.0")
    settings = tls_settings({"verify": str(tmp_path)}, "model")
    assert settings.ca_path == str(tmp_path)
    assert settings.requests_options()["verify"] == str(tmp_path)


def test_a_client_certificate_in_one_file_or_as_a_pair(pki):
    together = tls_settings({"cert": pki["both"]}, "model")
    assert together.cert_path == together.key_path == pki["both"]
    assert together.requests_options() == {"verify": True, "cert": pki["both"]}
    pair = tls_settings({"cert": [pki["cert"], pki["key"]], "verify": pki["ca"]}, "model")
    assert (pair.cert_path, pair.key_path) == (pki["cert"], pki["key"])
    assert pair.requests_options() == {"verify": pki["ca"], "cert": (pki["cert"], pki["key"])}
    assert "client certificate" in pair.describe()


def bad_inputs(pki):
    return [
        ({"verify": "maybe"}, "verify", "is 'maybe': neither true nor false, and no CA bundle"),
        ({"verify": ""}, "verify", "is empty"),
        (
            {"verify": 1},
            "verify",
            "must be true, false or the path of a CA bundle file or directory; got a number",
        ),
        ({"verify": ["a"]}, "verify", "got a list"),
        ({"verify_ssl": {"path": "x"}}, "verify_ssl", "got an object"),
        ({"verify": pki["missing"]}, "verify", "no CA bundle file or directory exists at that path"),
        ({"verify": pki["text"]}, "verify", "which is not PEM"),
        ({"verify": pki["key"]}, "verify", "which holds no certificate"),
        ({"verify": pki["damaged"]}, "verify", "which cannot be loaded"),
        ({"verify": pki["empty_dir"]}, "verify", "holds no CA file named by subject hash"),
        ({"cert": pki["missing"]}, "cert", "which does not exist"),
        ({"cert": pki["text"]}, "cert", "which is not PEM"),
        ({"cert": pki["cert"]}, "cert", "holds no private key"),
        ({"cert": pki["key"]}, "cert", "holds no certificate"),
        ({"cert": [pki["cert"], pki["other_key"]]}, "cert", "does not belong to the client certificate"),
        ({"cert": [pki["cert"], pki["encrypted_key"]]}, "cert", "which is encrypted"),
        ({"cert": [pki["cert"], pki["encrypted_legacy_key"]]}, "cert", "which is encrypted"),
        ({"cert": [pki["cert"], pki["missing"]]}, "cert", "which does not exist"),
        ({"cert": [pki["damaged"], pki["key"]]}, "cert", "cannot be loaded as PEM"),
        ({"cert": [pki["cert"]]}, "cert", "must be a pair of paths"),
        ({"cert": [pki["cert"], 7]}, "cert", "must be a pair of paths"),
        ({"cert": ""}, "cert", "is empty"),
        ({"cert": True}, "cert", "got a number"),
    ]


def test_each_bad_setting_names_the_connection_the_key_and_the_problem(pki):
    for extra, key, problem in bad_inputs(pki):
        with pytest.raises(ConnectionConfigError) as caught:
            tls_settings(extra, "staging_model")
        message = str(caught.value)
        assert message.startswith(f"connection 'staging_model': extra {key!r} "), message
        assert problem in message, message
        for line in pki["key_text"].splitlines()[1:-1]:
            assert line not in message


def test_an_encrypted_key_never_asks_for_a_passphrase(pki, monkeypatch):
    """Without a passphrase callback OpenSSL prompts on the terminal (a worker would hang or fail
    obscurely): the callback refuses, also for a key the header check would miss."""
    import re

    monkeypatch.setattr("airflow_provider_mlprod.serving.tls._ENCRYPTED_KEY", re.compile(rb"(?!)"))
    with pytest.raises(
        ConnectionConfigError, match=r"extra 'cert' names the private key file .* is encrypted"
    ):
        tls_settings({"cert": [pki["cert"], pki["encrypted_key"]]}, "model")


def test_settings_show_paths_but_never_the_context():
    assert "context" not in repr(TlsSettings())

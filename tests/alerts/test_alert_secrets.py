"""No secret (webhook URL, routing key, signing secret, auth header) leaks into logs, errors or results."""

from __future__ import annotations

import json
import logging
import traceback

import pytest
import requests
from pytest_httpserver import HTTPServer

from airflow_provider_mlprod.alerts.channels import (
    JsonWebhookTarget,
    PagerDutyTarget,
    SlackWebhookTarget,
    TeamsWebhookTarget,
)
from airflow_provider_mlprod.alerts.delivery import (
    TRANSPORT_LOGGERS,
    post_with_retries,
    secret_fragments,
    transport_log_guarded,
)
from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.alerts.routing import Channel, send_alert
from airflow_provider_mlprod.exceptions import DeliveryError

SLACK_PATH = "/services/T0SLACKWS/B0SLACKHK/xoxSlackToken1234567890"
TEAMS_PATH = "/workflows/teamsflow42/triggers/manual/paths/invoke"
TEAMS_QUERY = "sig=TeamsSignature0987654321"
WEBHOOK_PATH = "/hooks/generic-hook-path-secret"
ROUTING_KEY = "R0UTING0KEY0123456789abcdef0123"
SIGNING_SECRET = "s1gning-secret-value-42"
AUTH_TOKEN = "Bearer auth-header-token-777"


#: Per endpoint, a response body repeating the secrets that endpoint knows, as a careless server might.
ECHOED_BODIES = {
    SLACK_PATH: f"rejected {SLACK_PATH} token xoxSlackToken1234567890",
    TEAMS_PATH: f"rejected {TEAMS_PATH}?{TEAMS_QUERY}",
    WEBHOOK_PATH: f"rejected {WEBHOOK_PATH} signed with {SIGNING_SECRET}, auth {AUTH_TOKEN}",
    "/v2/enqueue": f"rejected routing_key {ROUTING_KEY}",
}


def _secrets(httpserver: HTTPServer, closed_port_url: str) -> list[str]:
    return [
        httpserver.url_for(SLACK_PATH),
        "xoxSlackToken1234567890",
        "T0SLACKWS",
        "TeamsSignature0987654321",
        "teamsflow42",
        "generic-hook-path-secret",
        ROUTING_KEY,
        SIGNING_SECRET,
        "auth-header-token-777",
        closed_port_url,
        "closed-port-token",
    ]


@pytest.mark.parametrize("status", [400, 500])
def test_no_secret_in_logs_errors_or_results(
    httpserver: HTTPServer,
    fast_policy,
    closed_port_url: str,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    caplog.set_level(logging.DEBUG)  # the HTTP transport's DEBUG lines included
    for path, body in ECHOED_BODIES.items():
        httpserver.expect_request(path).respond_with_data(body, status=status)
    channels = {
        "team-slack": SlackWebhookTarget(httpserver.url_for(SLACK_PATH)),
        "team-teams": TeamsWebhookTarget(httpserver.url_for(TEAMS_PATH) + "?" + TEAMS_QUERY),
        "hook": JsonWebhookTarget(
            httpserver.url_for(WEBHOOK_PATH),
            signing_secret=SIGNING_SECRET,
            headers={"Authorization": AUTH_TOKEN},
        ),
        "oncall": PagerDutyTarget(ROUTING_KEY, events_url=httpserver.url_for("/v2/enqueue")),
        "unreachable": SlackWebhookTarget(closed_port_url),
    }
    named = [Channel(name, target, fast_policy) for name, target in channels.items()]

    with pytest.raises(DeliveryError) as caught:
        send_alert(
            Alert(title="Data drift: orders", severity="critical", dag_id="etl", task_id="drift"), named
        )

    error = caught.value
    assert len(httpserver.log) >= 4  # the servers were really reached and echoed the secrets back
    assert all(name in str(error) for name in channels)
    # every record but the local test server's own access log
    logged = "\n".join(
        f"{record.getMessage()} {record.exc_text or ''}"
        for record in caplog.records
        if record.name != "werkzeug"
    )
    assert "alert channel 'oncall' (pagerduty): not delivered" in logged  # the log capture saw the sends
    assert "rejected routing_key ***" in logged  # with the echoed body, redacted
    captured = "\n".join(
        [
            str(error),
            repr(error),
            "".join(traceback.format_exception(error)),
            json.dumps(error.report.to_dict()),
            logged,
            repr(channels),
            repr(named),
        ]
    )
    assert "rejected ***" in captured  # the echoed body is kept, redacted
    assert "rejected routing_key ***" in captured
    for secret in _secrets(httpserver, closed_port_url):
        assert secret not in captured, f"a secret leaked: {secret[:4]}..."


def test_target_reprs_hide_secrets() -> None:
    text = repr(
        [
            SlackWebhookTarget("https://hooks.slack.com/services/T0/B0/xoxSlackToken1234567890"),
            TeamsWebhookTarget("https://x.logic.azure.com/workflows/1?" + TEAMS_QUERY),
            JsonWebhookTarget(
                "https://a.example/h", signing_secret=SIGNING_SECRET, headers={"Authorization": AUTH_TOKEN}
            ),
            PagerDutyTarget(ROUTING_KEY),
        ]
    )
    for secret in (
        "xoxSlackToken1234567890",
        "TeamsSignature0987654321",
        SIGNING_SECRET,
        AUTH_TOKEN,
        ROUTING_KEY,
    ):
        assert secret not in text
    assert "PagerDutyTarget(" in text


def _transport_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("urllib3"))


def test_direct_post_keeps_the_webhook_path_out_of_transport_debug_lines(
    httpserver: HTTPServer, fast_policy, caplog: pytest.LogCaptureFixture
) -> None:
    """Every caller of ``post_with_retries`` (e.g. a deployment webhook) is guarded, not only the router."""
    httpserver.expect_request(SLACK_PATH).respond_with_data("ok")
    url = httpserver.url_for(SLACK_PATH)
    caplog.set_level(logging.DEBUG)
    # Control: unguarded, the transport writes the request path at DEBUG, so a leak would be seen.
    requests.post(url, data=b"{}", timeout=2).close()
    assert "xoxSlackToken1234567890" in _transport_text(caplog)
    caplog.clear()

    result = post_with_retries(
        channel="deploy", kind="webhook", url=url, body=b"{}", headers={}, policy=fast_policy
    )

    assert result.delivered
    records = [record for record in caplog.records if record.name != "werkzeug"]
    assert records, "the capture saw the call"
    for record in records:
        assert "xoxSlackToken1234567890" not in record.getMessage()
        assert "T0SLACKWS" not in record.getMessage()
    assert all(not logging.getLogger(name).filters for name in TRANSPORT_LOGGERS)  # guard removed


def test_transport_lines_above_debug_are_kept_with_secrets_redacted(caplog: pytest.LogCaptureFixture) -> None:
    url = "https://hooks.example" + SLACK_PATH
    caplog.set_level(logging.DEBUG)
    with transport_log_guarded(secret_fragments(url)):
        logging.getLogger("urllib3.connectionpool").warning("Retrying after connection broken: %s", url)
        logging.getLogger("urllib3.util.retry").debug("Incremented Retry for (url='%s')", SLACK_PATH)
    text = _transport_text(caplog)
    assert "Retrying after connection broken: ***" in text
    assert "Incremented Retry" not in text
    assert "xoxSlackToken1234567890" not in text

"""Each channel delivers to a real local HTTP server in its documented format."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import pytest
from pytest_httpserver import HTTPServer

from airflow_provider_mlprod.alerts.channels import (
    CHANNEL_KINDS,
    JsonWebhookTarget,
    LogTarget,
    PagerDutyTarget,
    SlackWebhookTarget,
    TeamsWebhookTarget,
    build_pagerduty_payload,
    build_slack_payload,
    build_teams_payload,
    channel_kind_of,
    compute_signature,
    send_to_target,
    verify_signature,
)
from airflow_provider_mlprod.alerts.delivery import RetryPolicy
from airflow_provider_mlprod.alerts.message import Alert, AlertLink
from airflow_provider_mlprod.exceptions import ConfigurationError

ROUTING_KEY = "R0UTING0KEY0123456789abcdef0123"


def _only_request_json(httpserver: HTTPServer) -> dict:
    assert len(httpserver.log) == 1
    request, _ = httpserver.log[0]
    assert request.headers["Content-Type"].startswith("application/json")
    return json.loads(request.get_data())


def _assert_slack_blocks_valid(payload: dict) -> None:
    """Required keys and limits of Block Kit (header, section, context, actions)."""
    assert isinstance(payload["text"], str)
    assert payload["text"]
    blocks = payload["blocks"]
    assert 1 <= len(blocks) <= 50
    for block in blocks:
        kind = block["type"]
        if kind == "header":
            assert block["text"]["type"] == "plain_text"
            assert 1 <= len(block["text"]["text"]) <= 150
        elif kind == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert block["text"]["type"] in ("mrkdwn", "plain_text")
                assert 1 <= len(block["text"]["text"]) <= 3000
            if "fields" in block:
                assert 1 <= len(block["fields"]) <= 10
                assert all(len(item["text"]) <= 2000 for item in block["fields"])
        elif kind == "context":
            assert 1 <= len(block["elements"]) <= 10
            assert all(element["type"] in ("mrkdwn", "plain_text", "image") for element in block["elements"])
        elif kind == "actions":
            assert 1 <= len(block["elements"]) <= 25
            for button in block["elements"]:
                assert button["type"] == "button"
                assert button["text"]["type"] == "plain_text"
                assert len(button["text"]["text"]) <= 75
                assert button["url"].startswith("https://")
        else:
            pytest.fail(f"unexpected block type {kind}")


def test_slack_delivers_block_kit_message(httpserver: HTTPServer, sample_alert: Alert, fast_policy) -> None:
    httpserver.expect_request("/services/T0/B0/token", method="POST").respond_with_data("ok")
    target = SlackWebhookTarget(httpserver.url_for("/services/T0/B0/token"))

    result = send_to_target(target, sample_alert, channel="team-slack", policy=fast_policy)

    assert (result.delivered, result.attempts, result.status_code, result.error) == (True, 1, 200, None)
    assert result.channel == "team-slack"
    payload = _only_request_json(httpserver)
    _assert_slack_blocks_valid(payload)
    kinds = [block["type"] for block in payload["blocks"]]
    assert kinds == ["header", "section", "section", "context", "actions"]
    assert sample_alert.title in payload["blocks"][0]["text"]["text"]
    assert payload["blocks"][1]["text"]["text"].startswith("*CRITICAL*")
    assert {"type": "mrkdwn", "text": "*Failed*\n2"} in payload["blocks"][2]["fields"]
    assert [button["url"] for button in payload["blocks"][4]["elements"]] == [
        "https://reports.example/orders",
        "https://af.example/log",
    ]
    assert "dag etl" in payload["blocks"][3]["elements"][0]["text"]
    assert payload["text"].startswith("[CRITICAL] Validation failed")


def test_slack_respects_block_limits_and_escapes_mrkdwn() -> None:
    alert = Alert(
        title="T" * 400,
        severity="warning",
        summary="<b>&" + "s" * 10_000,
        facts={f"fact {index}": "v" * 3000 for index in range(45)},
        links=[AlertLink("L" * 100, "https://a.example/x")],
    )
    payload = build_slack_payload(None, alert)
    _assert_slack_blocks_valid(payload)
    section_text = payload["blocks"][1]["text"]["text"]
    assert "&lt;b&gt;&amp;" in section_text
    assert section_text.endswith("…")
    fact_sections = [block for block in payload["blocks"] if "fields" in block]
    assert sum(len(block["fields"]) for block in fact_sections) == 40
    assert "6 more facts not shown" in fact_sections[-1]["fields"][-1]["text"]


def test_teams_delivers_adaptive_card(httpserver: HTTPServer, sample_alert: Alert, fast_policy) -> None:
    httpserver.expect_request("/workflows/abc/triggers/manual/paths/invoke").respond_with_data("", status=202)
    target = TeamsWebhookTarget(httpserver.url_for("/workflows/abc/triggers/manual/paths/invoke"))

    result = send_to_target(target, sample_alert, policy=fast_policy)

    assert (result.delivered, result.status_code, result.kind, result.channel) == (
        True,
        202,
        "teams",
        "teams",
    )
    payload = _only_request_json(httpserver)
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["type"] == "AdaptiveCard"
    assert card["version"] in ("1.4", "1.5")
    assert all("type" in element for element in card["body"])
    title_block = card["body"][0]
    assert title_block["type"] == "TextBlock"
    assert title_block["text"] == sample_alert.title
    assert title_block["color"] == "Attention"
    (fact_set,) = [element for element in card["body"] if element["type"] == "FactSet"]
    assert {"title": "Failed", "value": "2"} in fact_set["facts"]
    assert all(set(fact) == {"title", "value"} for fact in fact_set["facts"])
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Report", "url": "https://reports.example/orders"},
        {"type": "Action.OpenUrl", "title": "Task log", "url": "https://af.example/log"},
    ]


def test_webhook_sends_alert_dict_with_verifiable_signature(
    httpserver: HTTPServer, sample_alert: Alert, fast_policy
) -> None:
    httpserver.expect_request("/hook").respond_with_data("accepted")
    secret = "s1gning-secret-value"
    target = JsonWebhookTarget(
        httpserver.url_for("/hook"), signing_secret=secret, headers={"X-Team": "ml-platform"}
    )

    result = send_to_target(target, sample_alert, policy=fast_policy)

    assert result.delivered
    request, _ = httpserver.log[0]
    body = request.get_data()
    assert json.loads(body) == sample_alert.to_dict()
    assert request.headers["X-Team"] == "ml-platform"
    timestamp = request.headers["X-Mlprod-Timestamp"]
    assert timestamp.isdigit()
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert request.headers["X-Mlprod-Signature"] == f"sha256={expected}"
    assert verify_signature(secret, timestamp, body, request.headers["X-Mlprod-Signature"])
    assert not verify_signature("other-secret", timestamp, body, request.headers["X-Mlprod-Signature"])
    assert not verify_signature(secret, timestamp, body + b" ", request.headers["X-Mlprod-Signature"])


def test_unsigned_webhook_has_no_signature_headers(httpserver: HTTPServer, sample_alert: Alert) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    result = send_to_target(JsonWebhookTarget(httpserver.url_for("/hook")), sample_alert)
    assert result.delivered
    request, _ = httpserver.log[0]
    assert "X-Mlprod-Signature" not in request.headers
    assert "X-Mlprod-Timestamp" not in request.headers


def test_webhook_rejects_reserved_headers_and_empty_secret() -> None:
    with pytest.raises(ConfigurationError, match=r"(?i)x-mlprod-signature"):
        JsonWebhookTarget("https://a.example/h", headers={"x-mlprod-signature": "forged"})
    with pytest.raises(ConfigurationError, match="signing_secret is empty"):
        JsonWebhookTarget("https://a.example/h", signing_secret="")


def test_pagerduty_trigger_has_v2_fields(httpserver: HTTPServer, sample_alert: Alert, fast_policy) -> None:
    httpserver.expect_request("/v2/enqueue", method="POST").respond_with_json(
        {"status": "success", "message": "Event processed", "dedup_key": sample_alert.dedup_key}, status=202
    )
    target = PagerDutyTarget(ROUTING_KEY, events_url=httpserver.url_for("/v2/enqueue"))

    result = send_to_target(target, sample_alert, channel="oncall", policy=fast_policy)

    assert (result.delivered, result.status_code) == (True, 202)
    event = _only_request_json(httpserver)
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "mlprod:validation:etl:validate:orders"
    payload = event["payload"]
    assert {"summary", "source", "severity"} <= set(payload)
    assert payload["severity"] == "critical"
    assert payload["source"] == "etl.validate"
    assert payload["summary"].startswith(sample_alert.title)
    assert len(payload["summary"]) <= 1024
    assert payload["custom_details"]["facts"]["Failed"] == "2"
    assert (payload["group"], payload["component"]) == ("etl", "validate")
    assert event["links"] == [
        {"href": "https://reports.example/orders", "text": "Report"},
        {"href": "https://af.example/log", "text": "Task log"},
    ]


@pytest.mark.parametrize(
    ("severity", "expected"), [("info", "info"), ("warning", "warning"), ("critical", "critical")]
)
def test_pagerduty_severity_mapping(severity: str, expected: str) -> None:
    alert = Alert(title="x", severity=severity, summary="y" * 5000)
    event = build_pagerduty_payload(PagerDutyTarget(ROUTING_KEY), alert)
    assert event["payload"]["severity"] == expected
    assert len(event["payload"]["summary"]) == 1024


def test_pagerduty_severity_override_and_validation() -> None:
    target = PagerDutyTarget(ROUTING_KEY, severity_map={"warning": "error"})
    event = build_pagerduty_payload(target, Alert(title="x", severity="warning"))
    assert event["payload"]["severity"] == "error"
    with pytest.raises(ConfigurationError, match="'fatal'"):
        PagerDutyTarget(ROUTING_KEY, severity_map={"warning": "fatal"})
    with pytest.raises(ConfigurationError, match="routing_key is empty"):
        PagerDutyTarget("  ")


def test_pagerduty_resolve_carries_only_key_fields(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v2/enqueue").respond_with_json({"status": "success"}, status=202)
    alert = Alert(title="Validation passed", severity="info", action="resolve", dedup_key="mlprod:k")
    result = send_to_target(PagerDutyTarget(ROUTING_KEY, events_url=httpserver.url_for("/v2/enqueue")), alert)
    assert result.delivered
    assert _only_request_json(httpserver) == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": "mlprod:k",
    }


def test_log_channel_writes_readable_text_at_severity_level(
    caplog: pytest.LogCaptureFixture, sample_alert: Alert
) -> None:
    caplog.set_level(logging.INFO, logger="mlprod.test.alerts")
    result = send_to_target(LogTarget("mlprod.test.alerts"), sample_alert)
    assert (result.delivered, result.kind, result.attempts) == (True, "log", 1)
    (record,) = [record for record in caplog.records if record.name == "mlprod.test.alerts"]
    assert record.levelno == logging.ERROR
    text = record.getMessage()
    assert text.startswith("[CRITICAL] Validation failed: orders")
    assert "  Failed: 2" in text
    assert "Report: https://reports.example/orders" in text
    assert "dag etl · run manual__2026-01-01 · task validate" in text


def test_registry_covers_every_kind_and_rejects_unknown_targets() -> None:
    assert set(CHANNEL_KINDS) == {"slack", "teams", "webhook", "pagerduty", "log"}
    assert channel_kind_of(LogTarget()).kind == "log"
    with pytest.raises(ConfigurationError, match="str is not a known channel kind"):
        send_to_target("https://hooks.example/x", Alert(title="x", severity="info"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url", ["", "ftp://a.example/x", "hooks.slack.com/services/x", "https:///services/no-host-token"]
)
def test_targets_reject_bad_urls_without_echoing_them(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SlackWebhookTarget(url)
    if url:
        assert url not in str(caught.value)


def test_default_policy_works(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    result = send_to_target(
        JsonWebhookTarget(httpserver.url_for("/hook")),
        Alert(title="x", severity="info"),
        policy=RetryPolicy(),
    )
    assert result.delivered


# -- size limits, escaping, header and signature checks ------------------------------------------


def _huge_alert(**kwargs) -> Alert:
    facts = {
        f"failed expectation {index}": "expect_column_values_to_match_regex " + "x" * 950
        for index in range(60)
    }
    return Alert(
        title="T" * 200,
        severity="critical",
        summary="s" * 3000,
        facts=facts,
        links=[AlertLink(f"link {index}", "https://a.example/" + "p" * 2000) for index in range(6)],
        **kwargs,
    )


@pytest.mark.parametrize("filler", ["x", "é☃"])
def test_teams_payload_of_a_huge_alert_stays_under_the_size_limit(
    httpserver: HTTPServer, fast_policy, filler: str
) -> None:
    alert = _huge_alert()
    if filler != "x":  # non-ASCII text is escaped by json.dumps and takes six bytes a character
        alert = Alert(
            title=filler * 200,
            severity="critical",
            summary=filler * 3000,
            facts={filler * 300 + str(index): filler * 1000 for index in range(40)},
        )
    httpserver.expect_request("/workflows/big").respond_with_data("", status=202)

    result = send_to_target(
        TeamsWebhookTarget(httpserver.url_for("/workflows/big")), alert, policy=fast_policy
    )

    assert result.delivered
    [(request, _)] = httpserver.log
    assert len(request.get_data()) <= 25_000
    payload = json.loads(request.get_data())
    assert payload == build_teams_payload(None, alert)
    card = payload["attachments"][0]["content"]
    assert card["body"][0]["text"].startswith(alert.title[:10])  # the title is still there
    facts = [block for block in card["body"] if block["type"] == "FactSet"]
    if facts:
        assert facts[0]["facts"][-1]["value"].endswith("more facts not shown")


def test_teams_payload_of_a_small_alert_is_not_shrunk(sample_alert: Alert) -> None:
    card = build_teams_payload(None, sample_alert)["attachments"][0]["content"]
    [fact_set] = [block for block in card["body"] if block["type"] == "FactSet"]
    assert len(fact_set["facts"]) == len(sample_alert.facts)
    assert len(card["actions"]) == 2


def test_slack_fallback_text_is_escaped_and_cuts_never_split_an_entity() -> None:
    prefix = "[WARNING] a &lt;b&gt; &amp; c: "
    # the 3000-character cut falls inside the second escaped "&" (after "&amp;&a")
    summary = "x" * (2999 - len(prefix) - 7) + "&&&&"
    text = build_slack_payload(None, Alert(title="a <b> & c", severity="warning", summary=summary))["text"]
    assert text.startswith(prefix)
    assert len(text) <= 3000
    assert text.endswith("x&amp;…")  # not "&amp;&a…"
    assert "<" not in text
    assert ">" not in text
    summary = "y" * (2999 - len("*INFO*  ") - 6) + "<<<<<"
    section = build_slack_payload(None, Alert(title="t", severity="info", summary=summary))
    section_text = section["blocks"][1]["text"]["text"]
    assert section_text.endswith("y&lt;…")
    assert len(section_text) <= 3000


def test_webhook_rejects_header_values_that_are_not_latin1_without_quoting_them() -> None:
    with pytest.raises(ConfigurationError, match=r"'X-Team'.* not latin-1") as caught:
        JsonWebhookTarget("https://a.example/h", headers={"X-Team": "équipe ☃ token-SECRET"})
    assert "SECRET" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="not latin-1 text on one line"):
        JsonWebhookTarget("https://a.example/h", headers={"X-Injected": "a\r\nX-Evil: 1"})
    assert (
        JsonWebhookTarget("https://a.example/h", headers={"X-Team": "équipe"}).headers["X-Team"] == "équipe"
    )


def test_verify_signature_refuses_non_ascii_signatures_without_raising() -> None:
    body = b'{"title":"x"}'
    good = compute_signature("secret", "1700000000", body)
    assert verify_signature("secret", "1700000000", body, good)
    assert verify_signature("secret", "1700000000", body, "sha256=é" + good[8:]) is False
    assert verify_signature("secret", "17000000é0", body, good) is False


# -- payload limits and hostile text per channel ---------------------------------------------------

HOSTILE = "**bold** [click](https://evil.example) _it_ <b>x</b> & `code`\n1. item\n# heading"


def test_pagerduty_event_of_a_megabyte_summary_fits_512_kb_and_says_so(
    httpserver: HTTPServer, fast_policy
) -> None:
    from airflow_provider_mlprod.alerts.channels import EVENT_MAX_BYTES

    alert = Alert(
        title="Huge",
        severity="critical",
        summary="s" * 1_000_000,
        facts={f"fact {index}": "v" * 5_000 for index in range(200)},
    )
    httpserver.expect_request("/v2/enqueue").respond_with_json({"status": "success"}, status=202)

    result = send_to_target(
        PagerDutyTarget(ROUTING_KEY, events_url=httpserver.url_for("/v2/enqueue")),
        alert,
        policy=fast_policy,
    )

    assert result.delivered
    [(request, _)] = httpserver.log
    assert len(request.get_data()) <= EVENT_MAX_BYTES < 512 * 1024
    details = json.loads(request.get_data())["payload"]["custom_details"]
    assert "shortened to fit PagerDuty's 500 KB event limit" in details["truncated"]
    assert details["summary"].endswith("…")


def test_pagerduty_event_of_a_small_alert_is_whole(sample_alert: Alert) -> None:
    event = build_pagerduty_payload(PagerDutyTarget(ROUTING_KEY), sample_alert)
    assert "truncated" not in event["payload"]["custom_details"]
    assert event["payload"]["custom_details"]["summary"] == sample_alert.summary


def test_teams_card_escapes_markdown_in_every_user_text() -> None:
    alert = Alert(
        title=HOSTILE, severity="critical", summary=HOSTILE, facts={HOSTILE: HOSTILE}, dag_id="d[x](y)"
    )
    card = build_teams_payload(None, alert)["attachments"][0]["content"]
    texts = [block["text"] for block in card["body"] if block["type"] == "TextBlock"]
    facts = next(block for block in card["body"] if block["type"] == "FactSet")["facts"]
    for text in [*texts, facts[0]["title"], facts[0]["value"]]:
        assert "[click](https" not in text
        assert "**bold**" not in text
        assert "\n1. item" not in text
    assert texts[0].startswith(r"\*\*bold\*\* \[click\](https://evil.example)")
    assert "\n1\\. item" in texts[0]
    assert r"d\[x\](y)" in texts[-1]  # the footer's ids too


def test_teams_card_shortened_to_fit_says_so(sample_alert: Alert) -> None:
    from airflow_provider_mlprod.alerts.channels import SHRUNK_NOTE

    big = build_teams_payload(None, _huge_alert())["attachments"][0]["content"]["body"]
    small = build_teams_payload(None, sample_alert)["attachments"][0]["content"]["body"]
    assert big[-1]["text"] == SHRUNK_NOTE
    assert all(block.get("text") != SHRUNK_NOTE for block in small)


def test_slack_blocks_of_hostile_text_stay_inside_limits_and_escaped() -> None:
    alert = Alert(
        title=HOSTILE * 50, severity="critical", summary=HOSTILE * 500, facts={HOSTILE: HOSTILE * 200}
    )
    payload = build_slack_payload(None, alert)
    header = payload["blocks"][0]["text"]["text"]
    assert len(header) <= 150
    for block in payload["blocks"][1:]:
        for text in [block.get("text", {}).get("text", "")] + [f["text"] for f in block.get("fields", [])]:
            assert len(text) <= 3000
            assert "<b>" not in text
    assert payload["text"].endswith("…")
    from airflow_provider_mlprod.alerts.channels import SHORTENED_NOTE

    assert payload["blocks"][-1]["elements"][-1]["text"] == SHORTENED_NOTE
    small = build_slack_payload(None, Alert(title="ok", severity="info", summary="fine", facts={"a": 1}))
    assert all(SHORTENED_NOTE not in json.dumps(block) for block in small["blocks"])

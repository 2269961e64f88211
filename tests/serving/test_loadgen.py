"""The load generator against real example-server processes on loopback."""

from __future__ import annotations

import pytest

from airflow_provider_mlprod.examples.model_server import ModelServerProcess
from airflow_provider_mlprod.exceptions import SpecError
from airflow_provider_mlprod.serving.loadgen import Endpoint, EndpointUnreachable, LoadPlan, run_load_test


def test_candidate_and_champion_get_the_same_requests(customers, scorer_file):
    with (
        ModelServerProcess(mode="healthy", scorer=scorer_file) as a,
        ModelServerProcess(mode="errors", error_share=1.0, scorer=scorer_file) as b,
    ):
        result = run_load_test(
            [Endpoint("candidate", a.url + "/predict"), Endpoint("champion", b.url + "/predict")],
            customers,
            LoadPlan(requests=40, concurrency=3, warmup_requests=7),
        )
    candidate, champion = result.endpoints
    assert (candidate.requests, candidate.warmup_requests) == (40, 7)
    assert (champion.requests, champion.warmup_requests) == (40, 7)
    assert candidate.outcomes == {"2xx": 40}
    assert champion.outcomes == {"5xx": 40}
    assert champion.error_rate == 1.0
    assert champion.metrics()["5xx_rate"] == 1.0
    assert candidate.metrics()["error_rate"] == 0.0


def test_open_loop_sees_the_stall_a_closed_loop_hides(customers, scorer_file):
    """Latency from the intended send time: requests due during a stall count its wait.

    With at most 2 requests in flight the generator itself must hold back sends while the server
    stalls; measured from the actual send, those held-back requests would look fast.
    """
    with ModelServerProcess(mode="stall", stall_ms=200, stall_every_s=1, scorer=scorer_file) as server:
        target = [Endpoint("candidate", server.url + "/predict")]
        plan = LoadPlan(mode="open", rate=100, requests=None, duration_s=2.5, max_in_flight=2)
        opened = run_load_test(target, customers, plan)
        closed = run_load_test(target, customers, LoadPlan(mode="closed", requests=400, concurrency=2))
    # ~20 % of the requests fall due during a stall and wait on average ~100 ms.
    assert opened.endpoints[0].latency.p90_ms >= 40
    assert opened.endpoints[0].latency.p99_ms >= 100
    # Two clients wait out each stall once: a handful of 400 requests, far from the p90.
    assert closed.endpoints[0].latency.p90_ms < 40


def test_a_hanging_server_is_bounded_by_the_timeout_in_both_modes(customers, scorer_file):
    with ModelServerProcess(mode="hang", scorer=scorer_file) as server:
        target = [Endpoint("candidate", server.url + "/predict")]
        closed = run_load_test(target, customers, LoadPlan(requests=4, concurrency=2, timeout_s=0.2))
        opened = run_load_test(
            target, customers, LoadPlan(mode="open", rate=50, requests=5, timeout_s=0.2, max_in_flight=2)
        )
    for result in (closed, opened):
        endpoint = result.endpoints[0]
        assert endpoint.timeout_rate == 1.0
        assert endpoint.latency.p50_ms >= 200  # each timeout waited its timeout_s
        assert endpoint.output_check_pass_rate == 0.0


def test_timeouts_count_in_the_latency_percentiles_at_least_as_their_timeout(customers, scorer_file):
    """An endpoint that mostly times out cannot pass a latency rule on the few fast replies it gives."""
    with ModelServerProcess(mode="stall", stall_ms=900, stall_every_s=1, scorer=scorer_file) as server:
        result = run_load_test(
            [Endpoint("candidate", server.url + "/predict")],
            customers,
            LoadPlan(requests=30, concurrency=2, timeout_s=0.2),
        )
    endpoint = result.endpoints[0]
    assert endpoint.timeout_rate > 0.1  # more than the 5 % above the p95
    assert endpoint.outcomes.get("2xx", 0) > 0
    assert endpoint.latency.count == endpoint.requests
    assert endpoint.metrics()["p95_latency_ms"] >= 200


def test_duration_stops_the_run(customers, scorer_file):
    with ModelServerProcess(mode="slow", slow_median_ms=20, scorer=scorer_file) as server:
        result = run_load_test(
            [Endpoint("candidate", server.url + "/predict")],
            customers,
            LoadPlan(requests=None, duration_s=0.5, concurrency=2),
        )
    assert 0 < result.endpoints[0].requests < 200


def test_unreachable_endpoint_gives_no_result(closed_port):
    import io

    from airflow_provider_mlprod.serving.request_sets import json_lines_request_set

    requests = json_lines_request_set("one", lambda: io.StringIO('{"plan": "basic"}\n'))
    address = f"127.0.0.1:{closed_port}/predict"
    with pytest.raises(EndpointUnreachable, match=f"{address} answered none of 3 requests"):
        run_load_test([Endpoint("candidate", f"http://{address}")], requests, LoadPlan(requests=3))


def test_display_url_hides_user_info_and_query():
    endpoint = Endpoint("candidate", "https://user:pw@example.test:8443/predict?token=abc", {"X-Key": "k"})
    assert endpoint.display_url == "https://example.test:8443/predict"
    assert "X-Key" not in repr(endpoint)


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (LoadPlan(mode="sideways"), "closed' or 'open"),
        (LoadPlan(requests=None, duration_s=None), "number of requests, a duration"),
        (LoadPlan(mode="open", rate=0), "positive target rate"),
        (LoadPlan(concurrency=0), "concurrency >= 1"),
        (LoadPlan(timeout_s=0), "timeout_s must be positive"),
    ],
)
def test_bad_plans_are_named(plan, message):
    with pytest.raises(SpecError, match=message):
        plan.check()

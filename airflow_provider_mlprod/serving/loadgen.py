"""The load generator: replay a request set against one or two endpoints, closed or open loop.

- **Closed loop** (``mode="closed"``): ``concurrency`` clients, each sending its next request when
  its previous one answered. Latency runs from the moment a request is sent.
- **Open loop** (``mode="open"``): requests are due at a fixed ``rate`` (request k at
  ``start + k / rate``) whatever the server does, and latency runs from each request's *intended*
  send time, so a server stall shows in the percentiles instead of silently slowing the generator
  (no coordinated omission). The achieved rate and the largest send lag are reported.

With two endpoints (candidate and champion) every request body is sent to both, the order flipping
from one body to the next, so both see the same requests under the same machine noise.

Output checks run after the run, on each endpoint's distinct replies (status and body, counted),
through the output-check registry's vectorised forms: their CPU time never delays a send or shows
in a latency. The distinct replies are held in memory until then, up to :data:`HELD_REPLY_BYTES` per
endpoint: beyond it the held replies are checked during the run (a pause of the generator, only for
endpoints whose replies are large and all different) and dropped. Each reply is at most
``MAX_REPLY_BYTES`` (a larger one is the outcome ``reply_too_large``).

The first ``warmup_requests`` per endpoint are sent but not measured. The run stops after
``requests`` measured requests per endpoint or ``duration_s`` seconds, whichever comes first; every
request is bounded by ``timeout_s``.

The client is this package's own HTTP/1.1 keep-alive client (:mod:`.http_client`: asyncio
protocols, replies parsed by llhttp through ``httptools``), on uvloop's event loop when uvloop is
installed. The latency clock stops in the protocol callback that completes a reply, and the closed
loop writes its next request from that callback: a reply is not timed late behind the client's
work on the other replies that arrived with it. Measured on a 2-core machine shared with other work
(load average 7-12), alternating runs against the example server with a 2 ms service time, 16
connections, 10,000 requests per run: client CPU per request ~90-120 us, against ~400-440 us for
the aiohttp client it replaced and ~30 us for ``wrk``; the medians of p50/p99 over four rounds were
+16 %/-2 % beside wrk's, against +209 %/+152 % for aiohttp (+101 %/+66 % for aiohttp on uvloop);
uvloop alone took ~10 % off this client's CPU per request. ``bench/serving.py`` prints the figures.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from array import array
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_mlprod.exceptions import MlprodError, SpecError
from airflow_provider_mlprod.serving.http_client import (
    CLIENT_LIMIT,
    CONNECTION_ERROR,
    REPLY_TOO_LARGE,
    TIMEOUT,
    EndpointClient,
    Target,
    prepare_target,
)
from airflow_provider_mlprod.serving.request_sets import RequestSet
from airflow_provider_mlprod.serving.response_checks import ResponseChecks
from airflow_provider_mlprod.serving.stats import (
    LatencySummary,
    latency_cdf,
    latency_histogram,
    summarize_latencies,
)
from airflow_provider_mlprod.serving.tls import TlsSettings

LoadMode = Literal["closed", "open"]
#: Distinct replies checked per call of the output-check registry after the run.
_CHECK_BATCH = 10_000
#: Bytes of distinct reply bodies an endpoint's tally holds before they are checked and dropped.
HELD_REPLY_BYTES = 64 * 1024 * 1024


class EndpointUnreachable(MlprodError):
    """No request reached the endpoint at all (connection refused, unknown host, ...): no verdict."""


class LoadGeneratorLimit(MlprodError):
    """The generator's own machine ran out of file descriptors: no verdict on the server."""


@dataclass(frozen=True)
class Endpoint:
    """An HTTP endpoint to load: its role name, its URL, its request headers (secret: never shown) and
    its TLS settings (default: the system's CAs, no client certificate)."""

    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    tls: TlsSettings | None = None

    @property
    def tls_verified(self) -> bool | None:
        """Whether the server's certificate is verified; None for a plain ``http`` URL."""
        return (self.tls or TlsSettings()).verified_for(self.url)

    @property
    def display_url(self) -> str:
        """The URL without user info or query string, safe to log."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _positive_finite(value: object) -> bool:
    """``value`` is a number (not a boolean), above 0 and finite."""
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and math.isfinite(value)
    )


@dataclass(frozen=True)
class LoadPlan:
    """How to load the endpoints (see the module docstring)."""

    mode: LoadMode = "closed"
    requests: int | None = 1000
    duration_s: float | None = None
    concurrency: int = 8
    rate: float | None = None
    warmup_requests: int = 0
    timeout_s: float = 5.0
    max_in_flight: int = 1000

    def check(self) -> LoadPlan:
        """Raise SpecError naming the first invalid setting; return the plan."""
        if self.mode not in ("closed", "open"):
            raise SpecError(f"load mode must be 'closed' or 'open', got {self.mode!r}")
        if self.requests is None and self.duration_s is None:
            raise SpecError("give a number of requests, a duration, or both")
        if self.requests is not None and (isinstance(self.requests, bool) or self.requests < 1):
            raise SpecError(f"requests must be a positive integer, got {self.requests!r}")
        if self.duration_s is not None and not _positive_finite(self.duration_s):
            raise SpecError(f"duration_s must be positive and finite, got {self.duration_s!r}")
        if self.mode == "closed" and not (isinstance(self.concurrency, int) and self.concurrency >= 1):
            raise SpecError(f"closed loop needs concurrency >= 1, got {self.concurrency!r}")
        if self.mode == "open" and not _positive_finite(self.rate):
            raise SpecError(f"open loop needs a positive target rate (requests/s), got {self.rate!r}")
        if self.warmup_requests < 0:
            raise SpecError(f"warmup_requests must be >= 0, got {self.warmup_requests!r}")
        if not _positive_finite(self.timeout_s):
            raise SpecError(f"timeout_s must be positive and finite, got {self.timeout_s!r}")
        if self.max_in_flight < 1:
            raise SpecError(f"max_in_flight must be >= 1, got {self.max_in_flight!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "mode": self.mode,
            "requests": self.requests,
            "duration_s": self.duration_s,
            "concurrency": self.concurrency if self.mode == "closed" else None,
            "rate": self.rate if self.mode == "open" else None,
            "warmup_requests": self.warmup_requests,
            "timeout_s": self.timeout_s,
        }


@dataclass
class _Tally:
    """What one endpoint saw during the run (measured requests only, except ``sent``)."""

    sent: int = 0
    latencies: array = field(default_factory=lambda: array("d"))
    statuses: Counter = field(default_factory=Counter)
    replies: Counter = field(default_factory=Counter)  # (status, body) of measured responses -> count
    held_bytes: int = 0  # bytes of the bodies in ``replies``
    checks_passed: int = 0  # responses whose checks ran and passed
    check_failures: Counter = field(default_factory=Counter)  # check name -> failing responses
    no_response: int = 0
    responses: int = 0
    connection_errors: int = 0
    first_start: float | None = None
    last_end: float | None = None
    error_examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EndpointResult:
    """One endpoint's measured outcome."""

    name: str
    url: str
    requests: int
    warmup_requests: int
    latency: LatencySummary | None
    throughput_rps: float
    outcomes: dict[str, int]
    error_rate: float | None
    timeout_rate: float | None
    output_check_pass_rate: float | None
    check_failures: dict[str, int]
    error_examples: list[str]
    histogram: list[dict[str, float]]
    cdf: list[dict[str, float]]
    tls_verified: bool | None = None  # None: plain http

    def metrics(self) -> dict[str, float]:
        """The numbers a threshold spec can name (latencies in ms, rates as shares of requests)."""
        metrics: dict[str, float] = {"requests": float(self.requests), "throughput_rps": self.throughput_rps}
        if self.latency is not None:
            for key in ("mean", "p50", "p90", "p95", "p99", "max"):
                metrics[f"{key}_latency_ms"] = getattr(self.latency, f"{key}_ms")
        for key in ("error_rate", "timeout_rate", "output_check_pass_rate"):
            value = getattr(self, key)
            if value is not None:
                metrics[key] = value
        if self.requests:
            for outcome, count in self.outcomes.items():
                metrics[f"{outcome}_rate"] = count / self.requests
        return metrics

    def to_dict(self, *, with_distribution: bool = False) -> dict[str, Any]:
        """JSON-safe form; the histogram and CDF only on request (they are for the report)."""
        data = {
            "name": self.name,
            "url": self.url,
            "requests": self.requests,
            "warmup_requests": self.warmup_requests,
            "latency_ms": self.latency.to_dict() if self.latency else None,
            "throughput_rps": self.throughput_rps,
            "outcomes": dict(self.outcomes),
            "error_rate": self.error_rate,
            "timeout_rate": self.timeout_rate,
            "output_check_pass_rate": self.output_check_pass_rate,
            "check_failures": dict(self.check_failures),
            "error_examples": list(self.error_examples),
            "tls_verified": self.tls_verified,
        }
        if with_distribution:
            data["histogram"] = self.histogram
            data["cdf"] = self.cdf
        return data


@dataclass(frozen=True)
class LoadTestResult:
    """The outcome of a run: the plan, the rates and one result per endpoint."""

    plan: LoadPlan
    duration_s: float
    achieved_rate_rps: float
    max_send_lag_ms: float
    endpoints: tuple[EndpointResult, ...]
    checks: tuple[str, ...]

    def endpoint(self, name: str) -> EndpointResult | None:
        """The result of the endpoint named ``name``."""
        return next((result for result in self.endpoints if result.name == name), None)

    def to_dict(self, *, with_distribution: bool = False) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "plan": self.plan.to_dict(),
            "duration_s": self.duration_s,
            "target_rate_rps": self.plan.rate if self.plan.mode == "open" else None,
            "achieved_rate_rps": self.achieved_rate_rps,
            "max_send_lag_ms": self.max_send_lag_ms,
            "checks": list(self.checks),
            "endpoints": [e.to_dict(with_distribution=with_distribution) for e in self.endpoints],
        }


def run_load_test(
    endpoints: Sequence[Endpoint],
    request_set: RequestSet,
    plan: LoadPlan,
    checks: ResponseChecks | None = None,
) -> LoadTestResult:
    """Run ``plan`` against ``endpoints`` (one, or candidate and champion) and return the result.

    Raises InputDataError for a bad request set (naming the line), EndpointUnreachable when an
    endpoint answered no request at all, SpecError for a bad plan or an endpoint URL or header that
    cannot be sent.
    """
    plan.check()
    if not 1 <= len(endpoints) <= 2:
        raise SpecError(f"a load test takes one or two endpoints, got {len(endpoints)}")
    if len({e.name for e in endpoints}) != len(endpoints):
        raise SpecError("endpoint names must differ")
    targets = [
        prepare_target(e.url, e.headers, label=f"{e.name} at {e.display_url}", tls=e.tls) for e in endpoints
    ]
    run = _Run(list(endpoints), targets, request_set, plan, checks or ResponseChecks.from_spec(None))
    # In a process that has imported a lot (an Airflow worker holds ~10^6 objects), a full garbage
    # collection during the run pauses the event loop for a few hundred milliseconds, and every
    # request due meanwhile would carry that pause as latency. The objects alive before the run are
    # moved out of the collector's sight for its duration, which makes such collections short.
    gc.freeze()
    try:
        return _run_on_new_loop(run.run())
    finally:
        gc.unfreeze()


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when it is installed (less time per I/O event), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _run_on_new_loop(coroutine: Any) -> Any:
    """``asyncio.run`` on the loop of :func:`_new_event_loop`."""
    loop = _new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        try:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


class _Run:
    def __init__(self, endpoints, targets, request_set, plan, checks) -> None:
        self.endpoints: list[Endpoint] = endpoints
        self.targets: list[Target] = targets
        self.request_set: RequestSet = request_set
        self.plan: LoadPlan = plan
        self.checks: ResponseChecks = checks
        self.tallies = [_Tally() for _ in endpoints]
        self.max_lag = 0.0
        self.sent = 0
        self.deadline: float | None = None

    def _schedule(self) -> Iterator[tuple[int, bytes, bool]]:
        """(endpoint index, body, measured) in sending order, until the request budget is spent."""
        per_endpoint = None if self.plan.requests is None else self.plan.requests + self.plan.warmup_requests
        order = list(range(len(self.endpoints)))
        for number, item in enumerate(self.request_set.cycle()):
            if per_endpoint is not None and number >= per_endpoint:
                return
            measured = number >= self.plan.warmup_requests
            for index in order if number % 2 == 0 else reversed(order):
                yield index, item.body, measured

    async def run(self) -> LoadTestResult:
        self.clients = [EndpointClient(target, self.plan.timeout_s) for target in self.targets]
        started = time.perf_counter()
        if self.plan.duration_s is not None:
            self.deadline = started + self.plan.duration_s
        schedule = self._schedule()
        try:
            if self.plan.mode == "closed":
                await self._closed(schedule)
            else:
                await self._open(schedule, started)
            dispatched = time.perf_counter()
        finally:
            for client in self.clients:
                client.close()
            await asyncio.sleep(0)  # let the transports finish closing
        return self._result(started, dispatched)

    async def _closed(self, schedule: Iterator[tuple[int, bytes, bool]]) -> None:
        """``concurrency`` clients; each writes its next request from the callback of its last reply."""
        finished = asyncio.get_running_loop().create_future()
        clients_left = self.plan.concurrency

        def next_request() -> None:
            nonlocal clients_left
            if finished.done():
                return
            try:
                item = None
                if self.deadline is None or time.perf_counter() < self.deadline:
                    item = next(schedule, None)
                if item is None:
                    clients_left -= 1
                    if clients_left == 0:
                        finished.set_result(None)
                    return
                index, body, measured = item
                self.sent += 1
                self.tallies[index].sent += 1
                self.clients[index].send(body, partial(answered, index, measured, time.perf_counter()))
            except BaseException as exc:  # a bad request set line: the run ends with it
                finished.set_exception(exc)

        def answered(index: int, measured: bool, start: float, *outcome: Any) -> None:
            try:
                self._record(self.tallies[index], measured, start, *outcome)
            except BaseException as exc:
                if not finished.done():
                    finished.set_exception(exc)
                return
            next_request()

        loop = asyncio.get_running_loop()
        for _ in range(self.plan.concurrency):
            loop.call_soon(next_request)
        await finished

    async def _open(self, schedule: Iterator[tuple[int, bytes, bool]], started: float) -> None:
        """Request k is due at ``started + k / rate``; its latency runs from then."""
        loop = asyncio.get_running_loop()
        interval = 1.0 / float(self.plan.rate)
        in_flight = 0
        slot_free: asyncio.Future | None = None
        failure: list[BaseException] = []

        def answered(index: int, measured: bool, intended: float, *outcome: Any) -> None:
            nonlocal in_flight
            in_flight -= 1
            try:
                self._record(self.tallies[index], measured, intended, *outcome)
            except BaseException as exc:
                failure.append(exc)
            if slot_free is not None and not slot_free.done():
                slot_free.set_result(None)

        for k, (index, body, measured) in enumerate(schedule):
            intended = started + k * interval
            if (self.deadline is not None and intended >= self.deadline) or failure:
                break
            delay = intended - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            # Waiting for a free slot delays the send, and that wait counts in the latency:
            # it is measured from ``intended``.
            while in_flight >= self.plan.max_in_flight:
                slot_free = loop.create_future()
                await slot_free
            self.max_lag = max(self.max_lag, time.perf_counter() - intended)
            self.sent += 1
            self.tallies[index].sent += 1
            in_flight += 1
            self.clients[index].send(body, partial(answered, index, measured, intended))
        while in_flight:
            slot_free = loop.create_future()
            await slot_free
        if failure:
            raise failure[0]

    def _record(self, tally, measured, start, status, payload, failure, error_name, end) -> None:
        """Count one finished request (its reply, timeout or connection error) in ``tally``."""
        if failure is None:
            tally.responses += 1
        elif failure == CLIENT_LIMIT:
            raise LoadGeneratorLimit(
                f"the load generator hit a limit of its own machine opening a connection ({error_name}): "
                "lower the concurrency or max_in_flight, or raise the open-files limit (ulimit -n); "
                "no verdict from this run"
            )
        else:
            if failure == CONNECTION_ERROR:
                tally.connection_errors += 1
            elif failure == REPLY_TOO_LARGE:
                tally.responses += 1  # the server answered, too much
            if (
                error_name is not None
                and len(tally.error_examples) < 3
                and error_name not in tally.error_examples
            ):
                tally.error_examples.append(error_name)
        if not measured:
            return
        if tally.first_start is None or start < tally.first_start:
            tally.first_start = start
        if tally.last_end is None or end > tally.last_end:
            tally.last_end = end
        if failure is None:
            tally.latencies.append(end - start)
            reply = (status, payload)
            count = tally.replies.get(reply)
            if count is None:
                tally.replies[reply] = 1
                tally.held_bytes += len(payload)
                if tally.held_bytes > HELD_REPLY_BYTES:
                    self._check_replies(tally)
            else:
                tally.replies[reply] = count + 1
            tally.statuses[f"{status // 100}xx"] += 1
        else:
            if failure == TIMEOUT:  # at least its timeout (an event-loop timer may fire a little early)
                tally.latencies.append(max(end - start, self.plan.timeout_s))
            tally.no_response += 1
            tally.statuses[failure] += 1

    def _check_replies(self, tally: _Tally) -> None:
        """Output checks on the endpoint's distinct replies held so far, counted in ``tally``; then
        the replies are dropped."""
        replies = list(tally.replies.items())
        tally.replies.clear()
        tally.held_bytes = 0
        for first in range(0, len(replies), _CHECK_BATCH):
            batch = replies[first : first + _CHECK_BATCH]
            verdicts = self.checks.evaluate([reply for reply, _ in batch])
            for (_, count), failed in zip(batch, verdicts, strict=True):
                if failed:
                    tally.check_failures.update(dict.fromkeys(failed, count))
                else:
                    tally.checks_passed += count

    def _result(self, started: float, dispatched: float) -> LoadTestResult:
        for endpoint, tally in zip(self.endpoints, self.tallies, strict=True):
            if tally.responses == 0 and tally.connection_errors > 0:
                kinds = ", ".join(sorted(set(tally.error_examples))) or "connection errors"
                raise EndpointUnreachable(
                    f"endpoint {endpoint.name} at {endpoint.display_url} answered none of "
                    f"{tally.sent} requests ({kinds}); no verdict without a response"
                )
        all_latencies = [value for tally in self.tallies for value in tally.latencies]
        low = min(all_latencies) * 1000 if all_latencies else None
        high = max(all_latencies) * 1000 if all_latencies else None
        results = []
        for endpoint, tally in zip(self.endpoints, self.tallies, strict=True):
            self._check_replies(tally)
            passed_checks, check_failures = tally.checks_passed, Counter(tally.check_failures)
            if tally.no_response:
                check_failures["no_response"] = tally.no_response
            measured = sum(tally.statuses.values())
            window = (tally.last_end - tally.first_start) if measured else 0.0
            bad = sum(n for outcome, n in tally.statuses.items() if outcome != "2xx")
            results.append(
                EndpointResult(
                    name=endpoint.name,
                    url=endpoint.display_url,
                    requests=measured,
                    warmup_requests=tally.sent - measured,
                    latency=summarize_latencies(tally.latencies),
                    throughput_rps=measured / window if window > 0 else 0.0,
                    outcomes=dict(sorted(tally.statuses.items())),
                    error_rate=bad / measured if measured else None,
                    timeout_rate=tally.statuses.get("timeout", 0) / measured if measured else None,
                    output_check_pass_rate=passed_checks / measured if measured else None,
                    check_failures=dict(sorted(check_failures.items())),
                    error_examples=list(tally.error_examples),
                    histogram=latency_histogram(tally.latencies, low_ms=low, high_ms=high),
                    cdf=latency_cdf(tally.latencies),
                    tls_verified=endpoint.tls_verified,
                )
            )
        send_window = dispatched - started
        return LoadTestResult(
            plan=self.plan,
            duration_s=send_window,
            achieved_rate_rps=self.sent / send_window if send_window > 0 else 0.0,
            max_send_lag_ms=self.max_lag * 1000,
            endpoints=tuple(results),
            checks=tuple(self.checks.names),
        )

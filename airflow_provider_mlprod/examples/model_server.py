"""A small HTTP model server for the example churn model, with scenario modes that break it on purpose.

Run it as its own process::

    python -m airflow_provider_mlprod.examples.model_server --mode healthy --port 8085

It prints one line ``listening on http://127.0.0.1:<port>`` once it accepts requests (``--port 0``
picks a free port), answers ``GET /health`` and ``POST /predict`` with a JSON customer record (the
features of ``airflow_provider_mlprod.examples.churn``) and replies
``{"churn_probability": 0.23, "label": "stay", "model_version": "..."}``.

The model is the scikit-learn churn pipeline (``--model`` a pickled pipeline, or ``--scorer`` its
exported coefficients, or by default one trained at start). The fitted pipeline (one-hot plan,
standard-scaled numbers, logistic regression) is turned into its plain-Python formula once at start,
checked against ``predict_proba``, so a request costs microseconds and the server can take the load
of a load test on a small machine.

Scenario modes (``--mode``), each making one serving guardrail fire:

- ``healthy``: answers at once (plus ``--service-ms``).
- ``slow``: a log-normal service time with median ``--slow-median-ms`` (latency thresholds fire).
- ``errors``: a share ``--error-share`` of requests get HTTP 500 (the error-rate threshold fires).
- ``gibberish``: 200 responses that are not JSON, out of range or with unknown labels (output checks).
- ``overload``: at most ``--concurrency-limit`` requests are served at a time, each taking
  ``--service-ms``; the rest queue, so latency climbs with load (the freeze under normal traffic).
- ``stall``: healthy, but every ``--stall-every-s`` seconds the server stalls ``--stall-ms``
  (a garbage-collection or lock pause; what an open-loop load test must see).
- ``hang``: accepts requests and never answers (timeouts fire).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import pickle
import random
import sys
import time
from dataclasses import dataclass
from typing import Any

MODES = ("healthy", "slow", "errors", "gibberish", "overload", "stall", "hang")
NUMERIC_FEATURES = ("tenure_months", "monthly_charges", "support_calls", "usage_gb")
LABELS = ("churn", "stay")


@dataclass(frozen=True)
class ChurnScorer:
    """The fitted churn pipeline as its formula: one-hot plan + standardised numbers -> logistic."""

    plans: tuple[str, ...]
    plan_weights: tuple[float, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    numeric_weights: tuple[float, ...]
    intercept: float

    @classmethod
    def from_pipeline(cls, model: Any) -> ChurnScorer:
        """Read the formula out of the example pipeline and check it against ``predict_proba``."""
        transformer, classifier = model.steps[0][1], model.steps[-1][1]
        encoder = transformer.named_transformers_["onehotencoder"]
        scaler = transformer.named_transformers_["standardscaler"]
        plans = tuple(str(p) for p in encoder.categories_[0])
        coef = [float(c) for c in classifier.coef_[0]]
        scorer = cls(
            plans=plans,
            plan_weights=tuple(coef[: len(plans)]),
            means=tuple(float(m) for m in scaler.mean_),
            scales=tuple(float(s) for s in scaler.scale_),
            numeric_weights=tuple(coef[len(plans) :]),
            intercept=float(classifier.intercept_[0]),
        )
        scorer._check_against(model)
        return scorer

    def _check_against(self, model: Any) -> None:
        from airflow_provider_mlprod.examples.churn import FEATURES, make_customers

        sample = make_customers(50, seed=3)
        expected = model.predict_proba(sample[FEATURES])[:, 1]
        for record, probability in zip(sample[FEATURES].to_dict("records"), expected, strict=True):
            if not math.isclose(self.probability(record), float(probability), abs_tol=1e-9):
                raise ValueError("the model is not the example churn pipeline (its formula does not match)")

    def probability(self, record: dict[str, Any]) -> float:
        """The churn probability of one customer record; ValueError names a bad field."""
        z = self.intercept
        plan = record.get("plan")
        if plan in self.plans:
            z += self.plan_weights[self.plans.index(plan)]
        for i, feature in enumerate(NUMERIC_FEATURES):
            value = record.get(feature)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"field {feature!r} must be a number, got {value!r}")
            z += self.numeric_weights[i] * (value - self.means[i]) / self.scales[i]
        return 1.0 / (1.0 + math.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (what ``--scorer`` reads)."""
        return {
            "plans": list(self.plans),
            "plan_weights": list(self.plan_weights),
            "means": list(self.means),
            "scales": list(self.scales),
            "numeric_weights": list(self.numeric_weights),
            "intercept": self.intercept,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChurnScorer:
        """The scorer from :meth:`to_dict` output."""
        return cls(**{key: tuple(v) if isinstance(v, list) else v for key, v in data.items()})


def default_scorer() -> ChurnScorer:
    """The example churn model trained on the deterministic demo data."""
    from airflow_provider_mlprod.examples.churn import fit_churn_model, make_customers

    model, _ = fit_churn_model(make_customers(3000, seed=11))
    return ChurnScorer.from_pipeline(model)


@dataclass
class Scenario:
    """How the server misbehaves (see the module docstring)."""

    mode: str = "healthy"
    service_ms: float = 0.0
    slow_median_ms: float = 120.0
    slow_sigma: float = 0.6
    error_share: float = 0.2
    gibberish_share: float = 0.5
    concurrency_limit: int = 4
    stall_ms: float = 200.0
    stall_every_s: float = 2.0
    seed: int = 7


def build_app(scorer: ChurnScorer, scenario: Scenario, model_version: str = "example"):
    """The aiohttp application serving ``scorer`` under ``scenario``."""
    from aiohttp import web

    if scenario.mode not in MODES:
        raise ValueError(f"unknown mode {scenario.mode!r}; known modes: {', '.join(MODES)}")
    rng = random.Random(scenario.seed)
    started = time.monotonic()
    limit = asyncio.Semaphore(max(1, scenario.concurrency_limit))
    gibberish = (
        (b"<html>Internal confusion</html>", "text/html"),
        (json.dumps({"churn_probability": 7.5, "label": "churn"}).encode(), "application/json"),
        (json.dumps({"churn_probability": 0.4, "label": "purple"}).encode(), "application/json"),
        (b'{"churn_probability": 0.4, "label": ', "application/json"),
    )

    async def service_time() -> None:
        if scenario.mode == "stall":
            phase = (time.monotonic() - started) % scenario.stall_every_s
            if phase < scenario.stall_ms / 1000:
                await asyncio.sleep(scenario.stall_ms / 1000 - phase)
        if scenario.mode == "slow":
            await asyncio.sleep(
                rng.lognormvariate(math.log(scenario.slow_median_ms), scenario.slow_sigma) / 1000
            )
        if scenario.service_ms > 0:
            await asyncio.sleep(scenario.service_ms / 1000)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "mode": scenario.mode, "model_version": model_version})

    async def predict(request: web.Request) -> web.Response:
        if scenario.mode == "hang":
            await asyncio.sleep(3600)
        try:
            record = json.loads(await request.read())
            if not isinstance(record, dict):
                raise ValueError("the request body must be a JSON object")
            probability = scorer.probability(record)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if scenario.mode == "overload":
            async with limit:
                await service_time()
        else:
            await service_time()
        if scenario.mode == "errors" and rng.random() < scenario.error_share:
            return web.json_response({"error": "model worker crashed"}, status=500)
        if scenario.mode == "gibberish" and rng.random() < scenario.gibberish_share:
            body, content_type = gibberish[rng.randrange(len(gibberish))]
            return web.Response(body=body, content_type=content_type)
        return web.json_response(
            {
                "churn_probability": round(probability, 6),
                "label": "churn" if probability >= 0.5 else "stay",
                "model_version": model_version,
            }
        )

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_post("/predict", predict)
    return app


def load_scorer(model_path: str | None, scorer_path: str | None) -> ChurnScorer:
    """The scorer from a pickled pipeline, an exported scorer JSON file, or trained at start."""
    if scorer_path:
        with open(scorer_path, encoding="utf-8") as handle:
            return ChurnScorer.from_dict(json.load(handle))
    if model_path:
        path = model_path.removeprefix("file://")
        with open(path, "rb") as handle:
            return ChurnScorer.from_pipeline(pickle.load(handle))
    return default_scorer()


async def _serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    scenario = Scenario(
        mode=args.mode,
        service_ms=args.service_ms,
        slow_median_ms=args.slow_median_ms,
        error_share=args.error_share,
        gibberish_share=args.gibberish_share,
        concurrency_limit=args.concurrency_limit,
        stall_ms=args.stall_ms,
        stall_every_s=args.stall_every_s,
    )
    app = build_app(load_scorer(args.model, args.scorer), scenario, args.model_version)
    runner = web.AppRunner(app, access_log=None, handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    print(f"listening on http://{args.host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if args.max_seconds:
        loop.call_later(args.max_seconds, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


class ModelServerProcess:
    """The model server as a child process on loopback: ``with ModelServerProcess(mode="slow") as s: s.url``.

    Options are the command-line flags without the dashes (``service_ms=2`` -> ``--service-ms 2``).
    The process is started on a free port and stopped (terminated, then killed) on exit.
    """

    def __init__(self, *, mode: str = "healthy", start_timeout: float = 60.0, **options: Any) -> None:
        self.mode = mode
        self.options = options
        self.start_timeout = start_timeout
        self.process = None
        self.stderr = None
        self.url = ""

    def start(self) -> ModelServerProcess:
        """Start the process and wait until it listens."""
        import subprocess

        argv = [sys.executable, "-m", "airflow_provider_mlprod.examples.model_server"]
        argv += ["--mode", self.mode, "--port", "0"]
        for key, value in self.options.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        # Its own session, so it outlives a task process that started it until the teardown stops it;
        # stderr into a file that nobody has to drain (a full pipe would block the server).
        import tempfile

        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self.stderr, text=True, start_new_session=True
        )
        deadline = time.monotonic() + self.start_timeout
        line = ""
        while time.monotonic() < deadline and self.process.poll() is None:
            line = self.process.stdout.readline()
            if line.startswith("listening on "):
                self.url = line.split("listening on ", 1)[1].strip()
                return self
        self.stderr.seek(0)
        last = (self.stderr.read().strip().splitlines() or [line.strip()])[-1]
        self.stop()
        raise RuntimeError(f"the model server did not start (mode {self.mode!r}): {last}")

    def stop(self) -> None:
        """Stop the process (terminate, then kill after 5 s)."""
        import subprocess

        if self.process is None or self.process.poll() is not None:
            self._close_stderr()
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self._close_stderr()

    def _close_stderr(self) -> None:
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None

    def __enter__(self) -> ModelServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def is_model_server_process(pid: int) -> bool:
    """Whether ``pid`` is, on this machine, a running example model server (read from ``/proc``).

    A pid names a process on one machine only: a teardown task that another worker runs must not
    signal whatever process holds that number there.
    """
    try:
        with open(f"/proc/{int(pid)}/cmdline", "rb") as cmdline:
            argv = cmdline.read().split(b"\0")
    except OSError:
        return False
    return b"airflow_provider_mlprod.examples.model_server" in argv


def stop_server_process(pid: int, timeout: float = 5.0) -> bool:
    """Stop a model server started earlier by pid (e.g. by a setup task): SIGTERM, then SIGKILL.

    Only a model server is signalled: on another machine than the one that started it (a teardown on
    another Celery worker), or once the number was reused, the pid is left alone and ``False`` is
    returned; the server then stops itself after its ``max_seconds``.
    """
    import os
    import signal

    if not is_model_server_process(pid):
        return False

    def gone() -> bool:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)  # our child: reap it
            return done == pid
        except ChildProcessError:  # not our child: is it still there?
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return False

    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone():
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=MODES, default="healthy")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--model", help="pickled example churn pipeline (path or file:// URI)")
    parser.add_argument("--scorer", help="scorer JSON written by ChurnScorer.to_dict")
    parser.add_argument("--export-scorer", help="write the scorer JSON here and exit")
    parser.add_argument("--model-version", default="example")
    parser.add_argument("--service-ms", type=float, default=0.0)
    parser.add_argument("--slow-median-ms", type=float, default=120.0)
    parser.add_argument("--error-share", type=float, default=0.2)
    parser.add_argument("--gibberish-share", type=float, default=0.5)
    parser.add_argument("--concurrency-limit", type=int, default=4)
    parser.add_argument("--stall-ms", type=float, default=200.0)
    parser.add_argument("--stall-every-s", type=float, default=2.0)
    parser.add_argument("--max-seconds", type=float, default=0.0, help="exit after this long (0: never)")
    args = parser.parse_args(argv)
    if args.export_scorer:
        with open(args.export_scorer, "w", encoding="utf-8") as handle:
            json.dump(load_scorer(args.model, args.scorer).to_dict(), handle)
        return
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()

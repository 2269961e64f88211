"""Benchmark of the serving load generator against the example model server, beside ``wrk``.

Three figures, each against a fresh example-server process on loopback (``examples/model_server.py``):

1. Generator capacity: closed loop, 32 clients, 20,000 requests against the server in ``healthy``
   mode; requests/s sustained (goal: at least 1,000/s on a 2-core machine). Generator and server share
   the machine, so this is a lower bound of the generator alone.
2. Accuracy beside ``wrk`` (closed loop): the server with a 2 ms service time, 16 connections, the
   same request count (10,000) for both tools, five rounds taking turns in this process (who goes
   first alternates; the machine is shared, so its load drifts between rounds); per round, the gap of
   our p50 and p99 to wrk's, and the median of those gaps must lie within 10 % (the gap of the two
   tools' medians is printed beside it). wrk stops after the count through a Lua ``response`` hook;
   needs ``wrk`` on the PATH (Debian package ``wrk``), else this part is skipped.
3. Open-loop correctness: 200 requests/s for 10 s against a server that stalls 200 ms every 2 s. The
   open loop measures from each request's intended send time, so its p99 must be at least 150 ms;
   a closed loop with 4 clients on the same server is printed beside it (it reports far less, as its
   clients stop sending while the server stalls: coordinated omission).

The generator's client (``serving/http_client.py``) stops the latency clock in the protocol
callback that completes a reply and writes the closed loop's next request from there; with the
aiohttp client it replaced, a reply waited behind the Python work of every other reply of the same
event batch, and the p99 was 24.5 % above wrk's on a quiet machine, 100 % at load average 3.7.
Each figure is printed with the load average.

Run from the repository root: ``python bench/serving.py [--skip-wrk]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

from airflow_provider_mlprod.examples.model_server import ModelServerProcess
from airflow_provider_mlprod.examples.model_server import main as server_main
from airflow_provider_mlprod.serving.loadgen import Endpoint, LoadPlan, run_load_test
from airflow_provider_mlprod.serving.request_sets import json_lines_request_set

BODY = {"tenure_months": 7, "monthly_charges": 72.5, "support_calls": 2, "usage_gb": 31.0, "plan": "basic"}
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
local count = 0
function response(status, headers, body)
  count = count + 1
  if count >= {per_thread} then wrk.thread:stop() end
end
"""


def request_set(folder: str):
    path = os.path.join(folder, "requests.jsonl")
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(1000):
            handle.write(json.dumps(BODY | {"tenure_months": i % 72}) + "\n")
    return json_lines_request_set(path, lambda: open(path, "rb"))


def capacity(scorer: str, requests) -> None:
    with ModelServerProcess(mode="healthy", scorer=scorer) as server:
        plan = LoadPlan(mode="closed", requests=20_000, concurrency=32, warmup_requests=500)
        result = run_load_test([Endpoint("candidate", server.url + "/predict")], requests, plan)
    endpoint = result.endpoints[0]
    verdict = "meets" if endpoint.throughput_rps >= 1000 else "MISSES"
    print(
        "1. capacity (closed, 32 clients, 20,000 requests, healthy): "
        f"{endpoint.throughput_rps:,.0f} requests/s ({verdict} the 1,000/s goal); "
        f"p50 {endpoint.latency.p50_ms:.2f} ms, p99 {endpoint.latency.p99_ms:.2f} ms, "
        f"outcomes {endpoint.outcomes}; {_load()}"
    )


def _load() -> str:
    return f"load average {os.getloadavg()[0]:.2f}"


def _wrk_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def beside_wrk(scorer: str, requests, folder: str, rounds: int = 5) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        print("2. accuracy beside wrk: skipped (wrk is not installed; apt-get install -y wrk)")
        return
    count, threads, connections = 10_000, 2, 16
    script = os.path.join(folder, "post.lua")
    with open(script, "w", encoding="utf-8") as handle:
        per_thread = str(count // threads)
        handle.write(WRK_SCRIPT.replace("{body}", json.dumps(BODY)).replace("{per_thread}", per_thread))
    figures: dict[str, list[tuple[float, float]]] = {"p50": [], "p99": []}
    loads: list[float] = []
    with ModelServerProcess(mode="healthy", service_ms=2, scorer=scorer) as server:
        url = server.url + "/predict"
        # The server warms up once; then the two tools take turns, so machine noise hits both alike.
        warm = LoadPlan(mode="closed", requests=2000, concurrency=connections)
        run_load_test([Endpoint("candidate", url)], requests, warm)
        plan = LoadPlan(mode="closed", requests=count, concurrency=connections, warmup_requests=200)
        command = [wrk, f"-t{threads}", f"-c{connections}", "-d60s", "--latency", "-s", script, url]
        for turn in range(rounds):

            def run_ours() -> tuple[float, float]:
                latency = run_load_test([Endpoint("candidate", url)], requests, plan).endpoints[0].latency
                return latency.p50_ms, latency.p99_ms

            def run_wrk() -> tuple[float, float]:
                done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
                output = done.stdout
                theirs = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, flags=re.MULTILINE))
                return _wrk_ms(theirs["50"]), _wrk_ms(theirs["99"])

            # Who goes first alternates, so a load that rises or falls through the run favours neither.
            if turn % 2 == 0:
                ours, theirs = run_ours(), run_wrk()
            else:
                theirs, ours = run_wrk(), run_ours()
            figures["p50"].append((ours[0], theirs[0]))
            figures["p99"].append((ours[1], theirs[1]))
            loads.append(os.getloadavg()[0])
    for name, pairs in figures.items():
        rounds_text = ", ".join(f"{mine:.2f}/{other:.2f}" for mine, other in pairs)
        gaps = [(mine - other) / other for mine, other in pairs]
        gap = statistics.median(gaps)
        mine, other = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
        verdict = "within" if abs(gap) <= 0.10 else "OUTSIDE"
        print(
            f"2. accuracy beside wrk (2 ms service, 16 connections, {count:,} requests, {rounds} rounds "
            f"taking turns): {name} ours/wrk per round {rounds_text} ms, gap per round "
            + ", ".join(f"{g:+.1%}" for g in gaps)
            + f"; median gap {gap:+.1%} ({verdict} 10 %); medians ours {mine:.2f} ms, wrk {other:.2f} ms "
            f"({(mine - other) / other:+.1%}); load average per round "
            + ", ".join(f"{load:.2f}" for load in loads)
        )


def open_loop(scorer: str, requests) -> None:
    with ModelServerProcess(mode="stall", stall_ms=200, stall_every_s=2, scorer=scorer) as server:
        target = [Endpoint("candidate", server.url + "/predict")]
        opened = run_load_test(
            target, requests, LoadPlan(mode="open", rate=200, requests=None, duration_s=10, warmup_requests=0)
        )
        closed = run_load_test(target, requests, LoadPlan(mode="closed", requests=2000, concurrency=4))
    o, c = opened.endpoints[0], closed.endpoints[0]
    verdict = "meets" if o.latency.p99_ms >= 150 else "MISSES"
    print(
        "3. open loop at 200/s vs a 200 ms stall every 2 s: "
        f"p99 {o.latency.p99_ms:.1f} ms ({verdict} >= 150 ms), p50 {o.latency.p50_ms:.2f} ms, "
        f"achieved {opened.achieved_rate_rps:.1f}/s, max send lag {opened.max_send_lag_ms:.1f} ms; {_load()}"
    )
    print(
        f"   closed loop (4 clients, 2,000 requests) on the same server: p99 {c.latency.p99_ms:.1f} ms, "
        f"p50 {c.latency.p50_ms:.2f} ms (coordinated omission hides the stalls)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-wrk", action="store_true")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as folder:
        scorer = os.path.join(folder, "scorer.json")
        server_main(["--export-scorer", scorer])
        requests = request_set(folder)
        capacity(scorer, requests)
        if not args.skip_wrk:
            beside_wrk(scorer, requests, folder)
        open_loop(scorer, requests)


if __name__ == "__main__":
    main()

"""Alert path benchmark: code size of the alert path, and one alert fanned out to four channels.

Default run: one critical alert to four channels (Slack, Teams, PagerDuty, generic webhook), each on
its own real local HTTP server (threaded ``http.server``); the webhook's server hangs (it answers
after 120 s). The webhook channel's deadline is ``--deadline`` seconds (default 5, one attempt of
that timeout). Printed: the normal time (the three healthy channels alone), when each healthy
channel's server received the alert in the fan-out, and the total time of the alert. Goal: the
healthy channels in their normal time and the total within the hanging channel's deadline plus 1 s.

``--lines``: the non-blank, non-comment line count of all alert-path code (``alerts/``,
``notifications/``, ``operators/alerts.py``, ``hooks/alert_channels.py``), as formatted by
``ruff format``, and the same count without docstring lines. The first count in shell::

    cat $(find airflow_provider_mlprod/alerts airflow_provider_mlprod/notifications \\
        airflow_provider_mlprod/operators/alerts.py airflow_provider_mlprod/hooks/alert_channels.py \\
        -name '*.py') | grep -v '^\\s*$' | grep -v '^\\s*#' | wc -l

Run from the repository root: ``python bench/alert_fanout.py`` (fan-out) or
``python bench/alert_fanout.py --lines``.
"""

from __future__ import annotations

import argparse
import ast
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALERT_PATH = (
    "airflow_provider_mlprod/alerts",
    "airflow_provider_mlprod/notifications",
    "airflow_provider_mlprod/operators/alerts.py",
    "airflow_provider_mlprod/hooks/alert_channels.py",
)
_BLANK_OR_COMMENT = re.compile(r"^\s*(#.*)?$")


def alert_path_lines(root: Path = ROOT) -> dict[str, tuple[int, int]]:
    """Per alert-path file: (non-blank non-comment lines, the same without docstring lines), after
    ``ruff format``."""
    counts: dict[str, tuple[int, int]] = {}
    for entry in ALERT_PATH:
        path = root / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            text = file.read_text(encoding="utf-8")
            code = {n for n, line in enumerate(text.splitlines(), 1) if not _BLANK_OR_COMMENT.match(line)}
            docstrings: set[int] = set()
            for node in ast.walk(ast.parse(text)):
                body = getattr(node, "body", None)
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and (
                    body
                    and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)
                ):
                    docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
            counts[str(file.relative_to(root))] = (len(code), len(code - docstrings))
    return counts


def _server(hang_seconds: float, received: dict[str, float], stop: threading.Event) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received[self.path] = time.monotonic()
            if stop.wait(hang_seconds):
                return  # the hanging server never answers; the client gave up long ago
            self.send_response(202 if self.path.startswith("/v2") else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def fan_out(deadline: float) -> None:
    """Send one alert to four channels, the webhook hanging; print the timings."""
    from airflow_provider_mlprod.alerts.channels import (
        JsonWebhookTarget,
        PagerDutyTarget,
        SlackWebhookTarget,
        TeamsWebhookTarget,
    )
    from airflow_provider_mlprod.alerts.delivery import RetryPolicy
    from airflow_provider_mlprod.alerts.message import Alert
    from airflow_provider_mlprod.alerts.routing import Channel, send_alert

    received: dict[str, float] = {}
    stop = threading.Event()
    healthy = [_server(0, received, threading.Event()) for _ in range(3)]
    hanging = _server(120, received, stop)

    def url(server: ThreadingHTTPServer, path: str) -> str:
        return f"http://127.0.0.1:{server.server_address[1]}{path}"

    normal = RetryPolicy(timeout_seconds=10, max_attempts=3, total_seconds=30)
    hung_policy = RetryPolicy(timeout_seconds=deadline, max_attempts=1, total_seconds=deadline)
    channels = [
        Channel("slack", SlackWebhookTarget(url(healthy[0], "/slack")), normal),
        Channel("teams", TeamsWebhookTarget(url(healthy[1], "/teams")), normal),
        Channel("pagerduty", PagerDutyTarget("r" * 32, events_url=url(healthy[2], "/v2/enqueue")), normal),
        Channel("webhook", JsonWebhookTarget(url(hanging, "/hook")), hung_policy),
    ]
    alert = Alert(title="Validation failed: orders", severity="critical", facts={"failed": 2}, run_id="r1")
    import_started = time.monotonic()
    import requests  # noqa: F401  (imported on the first send; timed apart from the fan-out)
    import tenacity  # noqa: F401

    print(f"first-use import of requests and tenacity {time.monotonic() - import_started:.3f} s")
    started = time.monotonic()
    send_alert(alert, channels[:3])
    print(f"normal time, the three healthy channels alone: {time.monotonic() - started:.3f} s")
    received.clear()
    alert = Alert(title="Validation failed: customers", severity="critical", run_id="r1")
    started = time.monotonic()
    report = send_alert(alert, channels)
    total = time.monotonic() - started
    stop.set()
    for path, name in (("/slack", "slack"), ("/teams", "teams"), ("/v2/enqueue", "pagerduty")):
        print(f"{name:10s} received after {received[path] - started:6.3f} s")
    statuses = {result.channel: result.status for result in report.results}
    print(f"statuses: {statuses}")
    print(f"total {total:.3f} s; hanging channel deadline {deadline:g} s; goal <= {deadline + 1:g} s")
    for server in (*healthy, hanging):
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", action="store_true", help="print the alert-path line count")
    parser.add_argument("--deadline", type=float, default=5.0, help="the hanging channel's deadline (s)")
    args = parser.parse_args()
    if args.lines:
        counts = alert_path_lines()
        print(" lines  without docstrings")
        for name, (count, code) in counts.items():
            print(f"{count:6d}  {code:6d}  {name}")
        print(f"{sum(c for c, _ in counts.values()):6d}  {sum(c for _, c in counts.values()):6d}  total")
    else:
        fan_out(args.deadline)


if __name__ == "__main__":
    main()

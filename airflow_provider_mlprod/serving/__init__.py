"""Serving guardrails: load-test a model endpoint before promotion, watch its SLOs after.

Plain Python (no Airflow): request-set readers (``request_sets``), the closed- and open-loop load
generator (``loadgen``), latency statistics (``stats``), output checks on response bodies
(``response_checks``), threshold evaluation against the champion (``evaluation``), SLO windows
computed in the database (``slo``) and the HTML report (``report``).
"""

"""Airflow operators: thin steps over the engine that write a JSON summary to XCom and decide the outcome."""

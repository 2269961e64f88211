#!/usr/bin/env bash
# Set up .venv if needed, then run the flagship example pipeline on embedded defaults (SQLite metrics
# store, local report folder, alerts in the task log) and print where everything went.
# Usage: bash scripts/example.sh [dag_id] (default: the flagship mlprod_ingest_to_deploy)
set -euo pipefail
cd "$(dirname "$0")/.."
dag_id=${1:-mlprod_ingest_to_deploy}
if [ "$dag_id" = mlprod_deadline_alert ]; then
    # `airflow dags test` runs no scheduler: the run has no queued time, so its deadline is never set
    # (and Airflow 3.3.2 then exits 1 after the run succeeded, apache/airflow#73428).
    echo "mlprod_deadline_alert needs a running Airflow (scheduler and triggerer): trigger it there with" \
        "{\"work_seconds\": 45} and the deadline alert goes out after 30 s" >&2
    exit 2
fi
source scripts/venv.sh
export AIRFLOW_HOME=${AIRFLOW_HOME:-$PWD/.airflow-home}
export AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags
export AIRFLOW__CORE__LOAD_EXAMPLES=False
# The example warehouse: a SQLite file, unless a connection mlprod_warehouse is configured already.
export AIRFLOW_CONN_MLPROD_WAREHOUSE=${AIRFLOW_CONN_MLPROD_WAREHOUSE:-"{\"conn_type\": \"sqlite\", \"host\": \"$AIRFLOW_HOME/mlprod/warehouse.db\"}"}
mkdir -p "$AIRFLOW_HOME/mlprod"
.venv/bin/airflow db migrate > "$AIRFLOW_HOME/db-migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/db-migrate.log"; exit 1; }
.venv/bin/airflow dags test "$dag_id"
.venv/bin/python - <<'PY'
from airflow_provider_mlprod import config
from airflow_provider_mlprod.hooks.store import MetricsStoreHook

print()
print(f"metrics store: {MetricsStoreHook().location}")
print(f"reports:       {config.report_folder()}")
print(f"alerts:        {', '.join(config.alert_conn_ids()) or 'the task log (no alert connection configured)'}")
print(f"models:        {config.airflow_home() / 'mlprod' / 'models'} (serving copy in .../mlprod/serving)")
print(f"warehouse:     {config.airflow_home() / 'mlprod' / 'warehouse.db'} (connection mlprod_warehouse)")
PY

#!/usr/bin/env bash
# Run the whole suite with one virtual environment; fail loudly if pytest collected nothing.
set -uo pipefail
venv="$1"
shift
export AIRFLOW_HOME="${AIRFLOW_HOME_BASE:-$PWD/.airflow-home}/$(basename "$venv")"
mkdir -p "$AIRFLOW_HOME"
echo "== $("$venv/bin/python" -c 'import airflow; print("Airflow", airflow.__version__)') =="
"$venv/bin/python" -m pytest -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: treating as a failure" >&2
    exit 1
fi
exit "$rc"

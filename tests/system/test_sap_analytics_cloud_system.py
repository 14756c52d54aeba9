"""The planning_close DAG (Anaplan -> SAC) under real Airflow processes: scheduler, triggerer, API server.

Reuses the process helpers of test_real_airflow.py: the sandbox runs as its own process and every
deferred wait (Anaplan export, SAC import job, Multi Action, data-management run) is completed by
the triggerer process.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.system import test_real_airflow as real

pytestmark = pytest.mark.system

airflow_stack = real.airflow_stack  # the same fixture: sandbox, scheduler, triggerer (and API server on 3.x)

DAG_ID = "planning_close"
DEFERRED = ("export_forecast", "import_forecast_into_sac", "roll_forecast_forward", "run_data_management_schedule")


def test_planning_close_runs_under_scheduler_and_triggerer(airflow_stack: tuple[real.Processes, Path, str]) -> None:
    procs, db, url = airflow_stack
    deadline = time.time() + real.DEADLINE_SECONDS
    while not real.query(db, "select dag_id from dag where dag_id = ?", DAG_ID):
        procs.check_alive()
        assert time.time() < deadline, f"{DAG_ID} was never parsed"
        time.sleep(2)
    subprocess.run(["airflow", "dags", "unpause", DAG_ID], env=procs.env, check=True, capture_output=True)
    subprocess.run(["airflow", "dags", "trigger", DAG_ID], env=procs.env, check=True, capture_output=True)

    state = None
    while time.time() < deadline:
        state = real.run_state(db, DAG_ID)
        if state in ("success", "failed"):
            break
        procs.check_alive()
        time.sleep(3)
    tasks = real.query(db, "select task_id, state, try_number from task_instance where dag_id = ?", DAG_ID)
    assert state == "success", f"run ended {state}: {tasks}\n{procs.log('scheduler')[-3000:]}"
    assert sorted(row[0] for row in tasks) == sorted(DEFERRED) and all(row[1] == "success" for row in tasks)

    trigger_logs = procs.log("triggerer") + "".join(
        path.read_text(errors="replace") for path in (db.parent / "logs").rglob("*trigger*")
    )
    for task_id in DEFERRED:
        fired = [line for line in trigger_logs.splitlines() if task_id in line and "'status': 'success'" in line]
        assert fired, f"no trigger event for {task_id} in the triggerer's logs:\n{trigger_logs[-3000:]}"

    with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=10) as response:
        stats = json.load(response)
    sac = {key: value for key, value in stats["tasks_started"].items() if key.startswith("sac:")}
    assert sac == {
        "sac:import:C9ZOF2L9O8JEEVDQ36A4J4Q0FG": 1,
        "sac:multiaction:t.G:CEEF5D0F8B3C4A5D9E7F": 1,
        "sac:schedule:F58CA15F78AA9039E200586F05E2BB93": 1,
    }

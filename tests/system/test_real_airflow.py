"""The example DAG under real Airflow processes: scheduler, DAG processor, triggerer (and API server on 3.x).

Everything is real: the sandbox runs as its own process, Airflow uses SQLite and LocalExecutor
(SequentialExecutor on 2.11, which refuses LocalExecutor with SQLite), and the deferred waits are
completed by the triggerer process. The run is observed through the metadata database.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_sapplan._compat import AIRFLOW_V_3_0_PLUS
from example_dags.run_demo import DAGS, sandbox_connections

pytestmark = pytest.mark.system

BIN = Path(sys.executable).parent
DEADLINE_SECONDS = 420


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    """Background processes in their own process groups, logged to files, always stopped."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs = logs
        self.env = env
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(list(args), env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.running[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def check_alive(self) -> None:
        for name, proc in self.running.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.log(name)[-4000:]}")

    def stop(self) -> None:
        for proc in self.running.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 20
        for proc in self.running.values():
            try:
                proc.wait(timeout=max(deadline - time.time(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def airflow_stack(tmp_path: Path) -> Iterator[tuple[Processes, Path, str]]:
    home = tmp_path / "airflow-home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor" if AIRFLOW_V_3_0_PLUS else "SequentialExecutor",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "SAPPLAN_DEMO_OUTPUT": str(tmp_path / "output"),
            "PYTHONPATH": str(DAGS.parent),
        }
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = Processes(logs, env)
    try:
        sandbox = procs.start("sandbox", sys.executable, "-m", "airflow_provider_sapplan.sandbox", "--port", "0")
        url = _wait_for_sandbox(procs)
        for conn_id, conn in sandbox_connections(url).items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
        subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True)
        if AIRFLOW_V_3_0_PLUS:
            port = free_port()
            env["AIRFLOW__API__PORT"] = str(port)
            env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{port}/execution/"
            procs.start("api-server", "airflow", "api-server", "--port", str(port))
            procs.start("dag-processor", "airflow", "dag-processor")
        procs.start("scheduler", "airflow", "scheduler")
        procs.start("triggerer", "airflow", "triggerer")
        assert sandbox.poll() is None
        yield procs, home / "airflow.db", url
    finally:
        procs.stop()


def _wait_for_sandbox(procs: Processes) -> str:
    deadline = time.time() + 30
    while time.time() < deadline:
        for line in procs.log("sandbox").splitlines():
            if line.startswith("SANDBOX READY "):
                return line.split()[-1]
        procs.check_alive()
        time.sleep(0.2)
    raise AssertionError("sandbox did not start")


def _query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return []


# DAG id -> its deferrable tasks, whose waits the triggerer must complete.
DEFERRED_TASKS = {
    "anaplan_planning_cycle": ("import_actuals", "monthly_close", "export_forecast"),
    "sap_job_scheduling_run": ("run_job_now",),
}


def test_example_dags_run_under_scheduler_and_triggerer(airflow_stack: tuple[Processes, Path, str]) -> None:
    procs, db, url = airflow_stack
    deadline = time.time() + DEADLINE_SECONDS
    for dag_id in DEFERRED_TASKS:
        while not _query(db, "select dag_id from dag where dag_id = ?", dag_id):
            procs.check_alive()
            assert time.time() < deadline, f"{dag_id} was never parsed"
            time.sleep(2)
        subprocess.run(["airflow", "dags", "unpause", dag_id], env=procs.env, check=True, capture_output=True)
        subprocess.run(["airflow", "dags", "trigger", dag_id], env=procs.env, check=True, capture_output=True)

    states: dict[str, str | None] = {}
    while time.time() < deadline:
        states = {dag_id: _run_state(db, dag_id) for dag_id in DEFERRED_TASKS}
        if all(state in ("success", "failed") for state in states.values()):
            break
        procs.check_alive()
        time.sleep(3)
    tasks = _query(db, "select dag_id, task_id, state, try_number from task_instance")
    assert all(state == "success" for state in states.values()), (
        f"runs ended {states}: {tasks}\n{procs.log('scheduler')[-3000:]}"
    )
    assert all(row[2] == "success" for row in tasks) and len(tasks) == 8

    # The deferred waits were completed by the triggerer process (its log lines land in the task logs
    # on Airflow 3, in the triggerer's own output on 2.11).
    trigger_logs = procs.log("triggerer") + "".join(
        path.read_text(errors="replace") for path in (db.parent / "logs").rglob("*trigger*")
    )
    for task_id in (task for group in DEFERRED_TASKS.values() for task in group):
        fired = [line for line in trigger_logs.splitlines() if task_id in line and "'status': 'success'" in line]
        assert fired, f"no trigger event for {task_id} in the triggerer's logs:\n{trigger_logs[-3000:]}"

    import urllib.request

    with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=10) as response:
        started = json.load(response)["tasks_started"]
    anaplan = {key: value for key, value in started.items() if not key.startswith("jss:")}
    assert anaplan == {"112000000001": 1, "118000000001": 1, "116000000001": 1}
    assert [value for key, value in started.items() if key.startswith("jss:")] == [1]  # exactly one job run


def _run_state(db: Path, dag_id: str) -> str | None:
    rows = _query(db, "select state from dag_run where dag_id = ?", dag_id)
    return rows[0][0] if rows else None

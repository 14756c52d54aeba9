"""A real Airflow stack for system tests, the soak and the crash tests: sandbox, scheduler, triggerer.

Everything is a real process in its own process group, logged to a file: the sandbox
(``python -m airflow_provider_sapplan.sandbox``), and Airflow's scheduler, triggerer, DAG processor
and API server (the last two on 3.x). Airflow uses SQLite and LocalExecutor (SequentialExecutor on
2.11, which refuses LocalExecutor with SQLite). Runs are observed through the metadata database and
the sandbox's control API; processes can be killed and restarted to test crashes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_sapplan._compat import AIRFLOW_V_3_0_PLUS
from example_dags.run_demo import DAGS, sandbox_connections

BIN = Path(sys.executable).parent
DEADLINE_SECONDS = 420
FINISHED = ("success", "failed")


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    """Background processes in their own process groups, logged to files, always stopped."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs = logs
        self.env = env
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.commands: dict[str, list[str]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start ``args`` as ``name``, appending its output to ``<logs>/<name>.log``."""
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(list(args), env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.running[name] = proc
        self.commands[name] = list(args)
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def check_alive(self) -> None:
        for name, proc in self.running.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.log(name)[-4000:]}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process group of ``name`` and wait for it to go."""
        proc = self.running.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Start ``name`` again with the command it was first started with."""
        return self.start(name, *self.commands[name])

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


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the SQLite metadata database; empty while it or the table does not exist."""
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return []


def run_state(db: Path, dag_id: str) -> str | None:
    """State of the first run of ``dag_id`` (None before it exists)."""
    rows = query(db, "select state from dag_run where dag_id = ?", dag_id)
    return rows[0][0] if rows else None


class AirflowStack:
    """Sandbox + Airflow processes on one temporary home; see the module docstring.

    ``sandbox_args`` are extra command-line options of the sandbox (``--time-scale``,
    ``--token-ttl``); ``connections`` maps the sandbox URL to Airflow connections (default: the
    demo's); ``env`` adds or overrides environment variables of every Airflow process.
    """

    def __init__(
        self,
        root: Path,
        *,
        sandbox_args: Sequence[str] = (),
        connections: Callable[[str], dict[str, dict[str, Any]]] = sandbox_connections,
        env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.home = root / "airflow-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.db = self.home / "airflow.db"
        self.sandbox_args = list(sandbox_args)
        self.connections = connections
        base = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        base.update(
            {
                "PATH": f"{BIN}{os.pathsep}{base.get('PATH', '')}",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor" if AIRFLOW_V_3_0_PLUS else "SequentialExecutor",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "SAPPLAN_DEMO_OUTPUT": str(root / "output"),
                "PYTHONPATH": str(DAGS.parent),
            }
        )
        base.update(env or {})
        self.logs = root / "logs"
        self.logs.mkdir(exist_ok=True)
        self.procs = Processes(self.logs, base)
        self.env = base
        self.url = ""
        self.api_url = ""

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> AirflowStack:
        """Start the sandbox, migrate the database, start the Airflow processes."""
        try:
            self.procs.start(
                "sandbox", sys.executable, "-m", "airflow_provider_sapplan.sandbox", "--port", "0", *self.sandbox_args
            )
            self.url = self._wait_for_sandbox()
            for conn_id, conn in self.connections(self.url).items():
                self.env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
            subprocess.run(["airflow", "db", "migrate"], env=self.env, check=True, capture_output=True)
            if AIRFLOW_V_3_0_PLUS:
                port = free_port()
                self.env["AIRFLOW__API__PORT"] = str(port)
                self.env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{port}/execution/"
                self.api_url = f"http://127.0.0.1:{port}"
                self.procs.start("api-server", "airflow", "api-server", "--port", str(port))
                self.procs.start("dag-processor", "airflow", "dag-processor")
            self.procs.start("scheduler", "airflow", "scheduler")
            self.procs.start("triggerer", "airflow", "triggerer")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.procs.stop()

    def __enter__(self) -> AirflowStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_for_sandbox(self) -> str:
        deadline = time.time() + 30
        while time.time() < deadline:
            for line in self.procs.log("sandbox").splitlines():
                if line.startswith("SANDBOX READY "):
                    return line.split()[-1]
            self.procs.check_alive()
            time.sleep(0.2)
        raise AssertionError("sandbox did not start")

    # -- Airflow -------------------------------------------------------------------------

    def airflow(self, *args: str) -> str:
        """Run an ``airflow`` CLI command; its stdout (raises with its output when it fails)."""
        done = subprocess.run(["airflow", *args], env=self.env, capture_output=True, text=True)
        if done.returncode:
            raise AssertionError(f"airflow {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return query(self.db, sql, *args)

    def wait_parsed(self, dag_ids: Iterable[str], deadline: float) -> None:
        """Wait until every DAG in ``dag_ids`` is in the metadata database."""
        for dag_id in dag_ids:
            while not self.query("select dag_id from dag where dag_id = ?", dag_id):
                self.procs.check_alive()
                assert time.time() < deadline, f"{dag_id} was never parsed"
                time.sleep(2)

    def trigger(self, dag_id: str, run_id: str | None = None) -> None:
        """Unpause (idempotent) and trigger a run of ``dag_id``."""
        self.airflow("dags", "unpause", dag_id)
        self.airflow("dags", "trigger", dag_id, *(["--run-id", run_id] if run_id else []))

    def run_states(self, dag_id: str | None = None) -> dict[tuple[str, str], str]:
        """``(dag_id, run_id) -> state`` of every run (of one DAG, or all)."""
        sql = "select dag_id, run_id, state from dag_run"
        rows = self.query(sql + " where dag_id = ?", dag_id) if dag_id else self.query(sql)
        return {(row[0], row[1]): row[2] for row in rows}

    def wait_finished(self, deadline: float, expected: int, dag_id: str | None = None) -> dict[tuple[str, str], str]:
        """Wait until ``expected`` runs exist and all are finished; their states (times out by assertion)."""
        states: dict[tuple[str, str], str] = {}
        while time.time() < deadline:
            states = self.run_states(dag_id)
            if len(states) >= expected and all(state in FINISHED for state in states.values()):
                return states
            self.procs.check_alive()
            time.sleep(2)
        raise AssertionError(f"runs not finished by the deadline: {states}\n{self.procs.log('scheduler')[-3000:]}")

    def task_instances(self, dag_id: str | None = None) -> list[tuple[Any, ...]]:
        """``(dag_id, run_id, task_id, state, try_number)`` of every task instance."""
        sql = "select dag_id, run_id, task_id, state, try_number from task_instance"
        return self.query(sql + " where dag_id = ?", dag_id) if dag_id else self.query(sql)

    def trigger_logs(self) -> str:
        """What the triggerer logged: its own output (2.11) and the trigger parts of task logs (3.x)."""
        return self.procs.log("triggerer") + "".join(
            path.read_text(errors="replace") for path in (self.home / "logs").rglob("*trigger*") if path.is_file()
        )

    # -- sandbox ---------------------------------------------------------------------------

    def sandbox(self, path: str, body: Any = None, method: str | None = None) -> Any:
        """Call the sandbox's control API (``path`` under the sandbox URL); the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method or ("POST" if data is not None else "GET")
        )
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

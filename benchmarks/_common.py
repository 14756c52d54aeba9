"""Shared plumbing of the benchmark scripts: the sandbox subprocess, worker subprocesses, memory probes.

Every benchmark measures a client alone, so the sandbox always runs in its own process and each
measured scenario runs in a fresh worker process (its peak RSS then belongs to that scenario only).
Only 127.0.0.1 is used. Everything a benchmark creates lives under one temporary directory that the
caller removes at the end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "benchmarks" / "results"

WORKSPACE_ID = "8a868cd97d1e2f3b017d2f4a5b6c0001"
MODEL_ID = "75A40874E6B64FA3AE0743278996850F"
FILE_ID = "113000000001"
IMPORT_ID = "112000000001"
LOGIN = "demo@example.com"
PASSWORD = "demo"
HOST = "127.0.0.1"
MIB = 1024 * 1024

RESULT_PREFIX = "BENCH-RESULT "


# ------------------------------------------------------------------------------------------ memory


def current_rss() -> int:
    """Resident set size of this process now, in bytes (``/proc/self/statm``; psutil elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil

        return int(psutil.Process().memory_info().rss)


def peak_rss() -> int:
    """Highest RSS this process ever had, in bytes (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(value if sys.platform == "darwin" else value * 1024)


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark to the current RSS (Linux ``clear_refs`` 5).

    Without it a transient before the measurement (an import) could pass for the measurement's
    peak. Returns False where unsupported; :func:`peak_rss_since_reset` then falls back to
    ``ru_maxrss`` (the process lifetime peak, an upper bound).
    """
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss_since_reset() -> int:
    """``VmHWM`` (peak RSS since :func:`reset_peak_rss`) in bytes, else the lifetime peak."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return peak_rss()


def system_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used (every core), to spot noisy neighbours."""
    import psutil

    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return float(sum(times) - idle - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0))


def wait_for_quiet(max_wait: float = 30.0, threshold: float = 0.25) -> dict[str, Any]:
    """Wait (at most ``max_wait`` s) until the machine's other load is below ``threshold`` cores.

    Called with nothing of ours running, so whatever keeps the CPUs busy is a neighbour (a test
    run, a build) that would distort the next measurement. Returns what was seen, for the record.
    """
    started = time.monotonic()
    load = 0.0
    while True:
        before = system_busy_seconds()
        time.sleep(1.0)
        load = system_busy_seconds() - before
        waited = time.monotonic() - started
        if load < threshold or waited >= max_wait:
            return {"quiet": load < threshold, "other_load_cores": round(load, 2), "waited_s": round(waited, 1)}


def mib(value: float) -> float:
    """Bytes as MiB, rounded for reports."""
    return round(value / MIB, 1)


# ------------------------------------------------------------------------------------- environment


def machine_info() -> dict[str, Any]:
    """What the figures were measured on (goes into every results file)."""
    try:
        from importlib.metadata import version

        airflow_version = version("apache-airflow")
    except Exception:
        airflow_version = "unknown"
    return {
        "date": dt.date.today().isoformat(),
        "python": platform.python_version(),
        "airflow": airflow_version,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_at_start": os.getloadavg(),
    }


def anaplan_connection(url: str) -> dict[str, Any]:
    """The ``anaplan_default`` connection (JSON form) that points the provider at a sandbox."""
    return {
        "conn_type": "anaplan",
        "login": LOGIN,
        "password": PASSWORD,
        "extra": {
            "auth_url": f"{url}/anaplan/auth",
            "api_url": f"{url}/anaplan/api/2/0",
            "workspace_id": WORKSPACE_ID,
            "model_id": MODEL_ID,
            # The per-tenant request budget (600/min by default) would pace 1 GiB of 10 MiB chunks and
            # 1,000 triggers' polls; these benchmarks measure the client's own cost, so it is off here.
            "requests_per_minute": 0,
        },
    }


def worker_env(url: str, workdir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a worker process: private AIRFLOW_HOME, connections from ``AIRFLOW_CONN_*``."""
    home = workdir / "airflow-home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_ANAPLAN_DEFAULT": json.dumps(anaplan_connection(url)),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


@contextlib.contextmanager
def workdir(parent: str | None, prefix: str) -> Iterator[Path]:
    """A temporary directory removed at the end whatever happens (it may hold gigabytes)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------------------------------- sandbox


class Sandbox:
    """The sandbox in its own process (so its CPU and memory never count as the client's).

    Started with ``python -m airflow_provider_sapplan.sandbox --port 0``; the URL is read from the
    ``SANDBOX READY <url>`` line. Content goes to ``data_dir`` (inside the benchmark's workdir).
    """

    def __init__(self, data_dir: Path, log_path: Path, startup_timeout: float = 60.0) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.http = requests.Session()

    def start(self) -> Sandbox:
        """Start the process and wait (bounded) for its READY line."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "airflow_provider_sapplan.sandbox",
            "--host",
            HOST,
            "--port",
            "0",
            "--data-dir",
            str(self.data_dir),
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            for line in text.splitlines():
                if line.startswith("SANDBOX READY "):
                    self.url = line.split(" ", 2)[2].strip()
                    return self
            if self.process.poll() is not None:
                raise RuntimeError(f"the sandbox exited early:\n{text}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the sandbox printed no READY line within {self.startup_timeout:.0f} s")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; only this process (never anything matched by name)."""
        self.http.close()
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """Process id of the sandbox (for its CPU time)."""
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU the sandbox process has used so far (all its threads)."""
        import psutil

        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def stats(self) -> dict[str, Any]:
        """``GET /_sandbox/stats`` without the request log."""
        response = self.http.get(f"{self.url}/_sandbox/stats", params={"log": "0"}, timeout=30)
        response.raise_for_status()
        return dict(response.json())

    def configure_action(self, action_id: str, **settings: Any) -> None:
        """``POST /_sandbox/anaplan/config`` for one action (durations, outcome)."""
        response = self.http.post(
            f"{self.url}/_sandbox/anaplan/config", json={"action_id": action_id, **settings}, timeout=30
        )
        response.raise_for_status()

    def write_file(self, file_id: str, data: bytes) -> None:
        """Replace a model file's content through the control API (resets it before an upload)."""
        response = self.http.put(f"{self.url}/_sandbox/anaplan/files/{file_id}", data=data, timeout=30)
        response.raise_for_status()

    def file_sha256(self, file_id: str) -> tuple[str, int]:
        """SHA-256 and size of what the sandbox stores for a file, streamed (never held in memory)."""
        import hashlib

        digest = hashlib.sha256()
        size = 0
        with self.http.get(f"{self.url}/_sandbox/anaplan/files/{file_id}", stream=True, timeout=300) as response:
            response.raise_for_status()
            for piece in response.iter_content(chunk_size=MIB):
                digest.update(piece)
                size += len(piece)
        return digest.hexdigest(), size

    def token(self) -> str:
        """A fresh Anaplan token (basic login), for clients that do not log in themselves."""
        response = self.http.post(f"{self.url}/anaplan/auth/token/authenticate", auth=(LOGIN, PASSWORD), timeout=30)
        response.raise_for_status()
        return str(response.json()["tokenInfo"]["tokenValue"])


def stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Requests served between two ``stats()`` snapshots: total and per route (non-zero only)."""
    routes = {
        key: after["requests"].get(key, 0) - before["requests"].get(key, 0)
        for key in set(after["requests"]) | set(before["requests"])
    }
    statuses = {
        key: after["statuses"].get(key, 0) - before["statuses"].get(key, 0)
        for key in set(after["statuses"]) | set(before["statuses"])
    }
    return {
        "total": after["total"] - before["total"],
        "requests": {key: value for key, value in sorted(routes.items()) if value},
        "statuses": {key: value for key, value in sorted(statuses.items()) if value},
    }


# ----------------------------------------------------------------------------------------- workers


def run_worker(
    script: Path, spec: dict[str, Any], env: dict[str, str], log_path: Path, timeout: float
) -> dict[str, Any]:
    """Run ``script --worker <spec file>`` in a fresh interpreter and return the JSON result it prints.

    The spec goes through a file next to ``log_path`` (a thousand task ids would overflow the
    128 KiB limit of one command-line argument). The worker's stderr (Airflow's logging) goes to
    ``log_path``; on failure its tail is raised.
    """
    spec_path = log_path.with_suffix(".spec.json")
    spec_path.write_text(json.dumps(spec))
    command = [sys.executable, str(script), "--worker", str(spec_path)]
    with open(log_path, "wb") as log:
        try:
            completed = subprocess.run(
                command, stdout=subprocess.PIPE, stderr=log, env=env, cwd=REPO, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as err:
            raise RuntimeError(f"worker {spec.get('name')} did not finish within {timeout:.0f} s") from err
    stdout = completed.stdout.decode(errors="replace")
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return dict(json.loads(line[len(RESULT_PREFIX) :]))
    tail = log_path.read_text(errors="replace")[-4000:]
    raise RuntimeError(f"worker {spec.get('name')} failed (exit {completed.returncode}):\n{stdout[-2000:]}\n{tail}")


def load_spec(path: str) -> dict[str, Any]:
    """The worker's side of :func:`run_worker`: read the spec file."""
    return dict(json.loads(Path(path).read_text()))


def emit_result(result: dict[str, Any]) -> None:
    """The worker's side of :func:`run_worker`: one line of JSON on stdout."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


# ----------------------------------------------------------------------------------------- reports


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table (numbers right-aligned)."""

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|")

    align = ["---:" if rows and isinstance(rows[0][i], (int, float)) else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(path: Path, payload: dict[str, Any]) -> None:
    """Write a results file (JSON, indented, stable key order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` percentile (nearest rank) of ``values``; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return float(ordered[index])

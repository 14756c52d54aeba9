"""The main job (``make demo``): run the example DAGs end to end against the local sandbox.

Starts the sandbox, points the Airflow connections at it, prepares a private Airflow home and
database, runs each example DAG with ``dag.test()`` (deferred waits run through their triggers),
prints a short summary, and stops the sandbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "example_dags"
WORKSPACE_ID = "8a868cd97d1e2f3b017d2f4a5b6c0001"
MODEL_ID = "75A40874E6B64FA3AE0743278996850F"


def sandbox_connections(url: str) -> dict[str, dict[str, Any]]:
    """Airflow connections (id -> JSON form) that point every platform at a sandbox at ``url``."""
    return {
        "anaplan_default": {
            "conn_type": "anaplan",
            "login": "demo@example.com",
            "password": "demo",
            "extra": {
                "auth_url": f"{url}/anaplan/auth",
                "api_url": f"{url}/anaplan/api/2/0",
                "workspace_id": WORKSPACE_ID,
                "model_id": MODEL_ID,
            },
        },
        "sap_job_scheduling_default": {
            "conn_type": "sap_job_scheduling",
            "extra": {
                "service_key": {
                    "url": f"{url}/sap-job-scheduling/api",
                    "uaa": {
                        "url": f"{url}/sap-job-scheduling/uaa",
                        "clientid": "sb-sandbox!b1|jobscheduler!b1",
                        "clientsecret": "sandbox-secret",
                    },
                }
            },
        },
        "sap_cloud_integration_default": {
            "conn_type": "sap_cloud_integration",
            "extra": {
                "service_key": {
                    "oauth": {
                        "clientid": "sb-cpi-api!b1|it!b1",
                        "clientsecret": "cpi-api-secret",
                        "url": f"{url}/sap-cloud-integration",
                        "tokenurl": f"{url}/sap-cloud-integration/oauth/token",
                    }
                },
                "runtime_service_key": {
                    "oauth": {
                        "clientid": "sb-cpi-flow!b1|it-rt!b1",
                        "clientsecret": "cpi-flow-secret",
                        "url": f"{url}/sap-cloud-integration",
                        "tokenurl": f"{url}/sap-cloud-integration/oauth/token",
                    }
                },
            },
        },
        "sap_data_intelligence_default": {
            "conn_type": "sap_data_intelligence",
            "host": f"{url}/sap-data-intelligence",
            "login": "default\\etl_user",
            "password": "di-secret",
            "extra": {"timezone": "Europe/Berlin"},
        },
        "sap_analytics_cloud_default": {
            "conn_type": "sap_analytics_cloud",
            "host": f"{url}/sap-analytics-cloud/tenant",
            "login": "sb-sac-interactive-client",
            "password": "sac-interactive-secret",
            "extra": {
                "token_url": f"{url}/sap-analytics-cloud/oauth/token",
                "tenant": "G",
                "refresh_token": "sac-sandbox-refresh-token",
            },
        },
    }


def export_connections(url: str) -> None:
    for conn_id, conn in sandbox_connections(url).items():
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)


def migrate_database() -> None:
    """Create or upgrade the Airflow metadata database of the current AIRFLOW_HOME (SQLite)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def load_dag(dag_id: str) -> Any:
    """Import ``example_dags/<dag_id>.py`` and return its ``dag``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"example_dags.{dag_id}", DAGS / f"{dag_id}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def main() -> int:
    home = Path(os.environ.setdefault("AIRFLOW_HOME", str(REPO / ".airflow-home" / "demo")))
    home.mkdir(parents=True, exist_ok=True)
    output = Path(os.environ.setdefault("SAPPLAN_DEMO_OUTPUT", str(home / "output")))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))

    from airflow_provider_sapplan.sandbox import SandboxServer

    results: list[tuple[str, str, float, dict[str, Any]]] = []
    with SandboxServer(time_scale=1.0) as sandbox:
        print(f"Sandbox serving {sandbox.url}")
        export_connections(sandbox.url)
        migrate_database()
        for dag_id, summarize in (
            ("anaplan_planning_cycle", lambda: _anaplan_summary(sandbox, output)),
            ("sap_job_scheduling_run", _job_scheduling_summary),
            ("sap_cloud_integration_release", lambda: _cloud_integration_summary(sandbox)),
            ("sap_data_intelligence_replication", lambda: _data_intelligence_summary(sandbox)),
            ("planning_close", lambda: _sac_summary(sandbox)),
        ):
            started = time.monotonic()
            dag_run = load_dag(dag_id).test()
            state = str(getattr(dag_run, "state", dag_run)).rsplit(".", 1)[-1].lower()
            results.append((dag_id, state, time.monotonic() - started, summarize()))
    for dag_id, state, elapsed, summary in results:
        print(f"\n== {dag_id} ==")
        print(f"{'state:':<18}{state}")
        for key, value in summary.items():
            print(f"{key + ':':<18}{value}")
        print(f"{'time taken:':<18}{elapsed:.1f}s")
    return 0 if all(state == "success" for _, state, _, _ in results) else 1


def _anaplan_summary(sandbox: Any, output: Path) -> dict[str, Any]:
    from airflow_provider_sapplan.hooks.anaplan import AnaplanHook
    from airflow_provider_sapplan.jobs.anaplan import row_counts

    hook = AnaplanHook("anaplan_default")
    imports = hook.list_tasks("imports", "112000000001")
    rows = "n/a"
    if imports:
        last = hook.get_task("imports", "112000000001", imports[-1]["taskId"])
        counts = row_counts(last)
        rows = f"{counts['successRowCount']} imported, {counts['failedCount']} failed"
    forecast = output / "forecast.csv"
    downloaded = (
        f"{forecast} ({forecast.stat().st_size} bytes, {sum(1 for _ in forecast.open())} lines)"
        if forecast.exists()
        else "missing"
    )
    return {
        "rows": rows,
        "file downloaded": downloaded,
        "tasks started": {k: v for k, v in sandbox.stats.tasks_started.items() if not k.startswith("jss:")},
        "auth requests": sandbox.stats.auth_requests.get("anaplan", 0),
    }


def _sac_summary(sandbox: Any) -> dict[str, Any]:
    backend = sandbox.platforms["sap_analytics_cloud"].backend
    jobs = [f"{job.job_id} {job.status} ({len(job.rows)} rows)" for job in backend.jobs.values()]
    started = {k: v for k, v in sandbox.stats.tasks_started.items() if k.startswith("sac:")}
    return {
        "import jobs": ", ".join(jobs) or "none",
        "started": started,
        "auth requests": sandbox.stats.auth_requests.get("sap_analytics_cloud", 0),
    }


def _job_scheduling_summary() -> dict[str, Any]:
    from airflow_provider_sapplan.hooks.sap_job_scheduling import SapJobSchedulingHook

    hook = SapJobSchedulingHook()
    job = hook.find_job_by_name("planning_actuals_refresh")
    if job is None:
        return {"job": "missing"}
    job_id = int(job.get("_id", job.get("jobId")))
    schedules = hook.list_schedules(job_id)
    runs = [run for schedule in schedules for run in hook.list_runs(job_id, schedule["scheduleId"])]
    return {
        "job": f"{job['name']} (id {job_id})",
        "runs": ", ".join(f"{r.get('runStatus')}/{r.get('runState')} HTTP {r.get('httpStatus')}" for r in runs),
        "schedules active": sum(bool(s.get("active")) for s in schedules),
    }


def _cloud_integration_summary(sandbox: Any) -> dict[str, Any]:
    state = sandbox.sap_cloud_integration.inspect()
    counters = state["counters"]
    messages = [m for m in state["messages"] if m["artifact_id"] == "Orders_Release"]
    return {
        "deploys": counters.get("deploys:Orders_Release", 0),
        "flow calls": counters.get("flow_calls", 0),
        "messages": ", ".join(f"{m['MessageGuid']} {m['Status']}" for m in messages) or "none",
        "undeploys": counters.get("undeploys", 0),
    }


def _data_intelligence_summary(sandbox: Any) -> dict[str, Any]:
    backend = sandbox.sap_data_intelligence
    tasks = backend.task_monitors("RF_SALES")
    return {
        "flow tasks": ", ".join(
            f"{t['name']} {t['status']} {t.get('numberOfRecordsTransferred', 0)} rec" for t in tasks
        ),
        "change requests": backend.change_requests,
        "graph runs": ", ".join(f"{g['src']} {g['status']}" for g in backend.graph_list()),
    }


if __name__ == "__main__":
    sys.exit(main())

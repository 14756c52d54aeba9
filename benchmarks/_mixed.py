"""The five platforms' waits for ``trigger_density.py --mix``: connections, remote jobs, triggers.

Each platform gets its share of the waits, and every wait follows its OWN remote job that stays
running for the whole benchmark, created through the provider's sync hooks (as an operator would)
or, where a job is not started through the API, through the sandbox's control API:

- Anaplan: import tasks (``run_seconds`` a million), ``AnaplanTaskTrigger``;
- SAP BTP Job Scheduling: one-time ``time: now`` schedules of the seed job whose run stays RUNNING
  (``running_seconds`` a million), ``SapJobSchedulingRunTrigger`` (a run-log poll);
- SAP Cloud Integration: message processing logs that stay PROCESSING (control ``POST /messages``),
  ``SapCloudIntegrationMessageTrigger`` by message guid;
- SAP Analytics Cloud: Multi Action executions (``multi_action_seconds`` a million, user-context
  token from the refresh token), ``SapAnalyticsCloudMultiActionTrigger``;
- SAP Data Intelligence: graph runs of a graph configured to keep running,
  ``SapDataIntelligenceGraphTrigger``.

Every trigger makes exactly one GET per poll. Only Anaplan has a request budget by default
(600/min per tenant); its connection sets ``requests_per_minute: 0`` so the budget does not pace the
measurement (the other platforms have no default budget).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import requests
from _common import IMPORT_ID, MODEL_ID, REPO, WORKSPACE_ID, Sandbox, anaplan_connection

if str(REPO) not in sys.path:  # example_dags is not installed: read it from the checkout
    sys.path.insert(0, str(REPO))
from example_dags.run_demo import sandbox_connections

PLATFORMS = (
    "anaplan",
    "sap_job_scheduling",
    "sap_cloud_integration",
    "sap_analytics_cloud",
    "sap_data_intelligence",
)
LONG = 1_000_000  # emulated seconds: the jobs outlive any run
JSS_JOB_ID = 1  # the seed job nightly_planning_refresh
CPI_ARTIFACT = "Orders_Import"
SAC_MULTI_ACTION = "t.G:CEEF5D0F8B3C4A5D9E7F"
DI_GRAPH = "com.sap.demo.longrunning"


def connections(url: str) -> dict[str, dict[str, Any]]:
    """``AIRFLOW_CONN_*`` values (JSON form): the demo's five default connections, Anaplan's unbudgeted."""
    return {**sandbox_connections(url), "anaplan_default": anaplan_connection(url)}


def split(total: int) -> dict[str, int]:
    """An even split of ``total`` waits over the five platforms (the first ones take the remainder)."""
    base, extra = divmod(total, len(PLATFORMS))
    return {name: base + (1 if index < extra else 0) for index, name in enumerate(PLATFORMS)}


def _control(sandbox: Sandbox, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{sandbox.url}/_sandbox/{path}", json=body, timeout=60)
    response.raise_for_status()
    return dict(response.json())


def _anaplan(sandbox: Sandbox, count: int) -> list[dict[str, Any]]:
    from airflow_provider_sapplan.hooks.anaplan import AnaplanHook

    sandbox.configure_action(IMPORT_ID, queue_seconds=0, run_seconds=LONG)
    hook = AnaplanHook("anaplan_default")
    refs = []
    for _ in range(count):
        task_id = str(hook.run_action("import", IMPORT_ID)["taskId"])
        refs.append(
            {
                "workspace_id": WORKSPACE_ID,
                "model_id": MODEL_ID,
                "action_type": "imports",
                "action_id": IMPORT_ID,
                "task_id": task_id,
            }
        )
    hook.get_conn().close()
    return refs


def _job_scheduling(sandbox: Sandbox, count: int) -> list[dict[str, Any]]:
    from airflow_provider_sapplan.hooks.sap_job_scheduling import SapJobSchedulingHook

    _control(
        sandbox,
        "sap_job_scheduling/config",
        {"job_id": JSS_JOB_ID, "outcome": "success", "scheduled_seconds": 0, "running_seconds": LONG},
    )
    hook = SapJobSchedulingHook("sap_job_scheduling_default")
    refs = []
    for index in range(count):
        schedule = hook.run_now(JSS_JOB_ID, description=f"bench {index}")
        refs.append({"job_id": JSS_JOB_ID, "schedule_id": str(schedule["scheduleId"])})
    return refs


def _cloud_integration(sandbox: Sandbox, count: int) -> list[dict[str, Any]]:
    before = {m["MessageGuid"] for m in _state(sandbox, "sap_cloud_integration")["messages"]}
    _control(
        sandbox, "sap_cloud_integration/messages", {"artifact_id": CPI_ARTIFACT, "count": count, "status": "PROCESSING"}
    )
    messages = _state(sandbox, "sap_cloud_integration")["messages"]
    guids = [m["MessageGuid"] for m in messages if m["MessageGuid"] not in before and m["Status"] == "PROCESSING"]
    return [{"message_guid": guid, "artifact_id": CPI_ARTIFACT} for guid in guids[:count]]


def _analytics_cloud(sandbox: Sandbox, count: int) -> list[dict[str, Any]]:
    from airflow_provider_sapplan.hooks.sap_analytics_cloud import SapAnalyticsCloudHook

    _control(sandbox, "sap_analytics_cloud/config", {"multi_action_seconds": LONG})
    hook = SapAnalyticsCloudHook("sap_analytics_cloud_default")
    values = [{"parameterId": "Version", "value": "public.Forecast"}]
    return [
        {"multi_action_id": SAC_MULTI_ACTION, "execution_id": hook.start_multi_action(SAC_MULTI_ACTION, values)}
        for _ in range(count)
    ]


def _data_intelligence(sandbox: Sandbox, count: int) -> list[dict[str, Any]]:
    from airflow_provider_sapplan.hooks.sap_data_intelligence import SapDataIntelligenceHook

    _control(sandbox, f"sap_data_intelligence/graphs/{DI_GRAPH}", {"outcome": "running"})
    hook = SapDataIntelligenceHook("sap_data_intelligence_default")
    return [{"handle": str(hook.start_graph(DI_GRAPH)["handle"]), "src": DI_GRAPH} for _ in range(count)]


def _state(sandbox: Sandbox, platform: str) -> dict[str, Any]:
    response = requests.get(f"{sandbox.url}/_sandbox/{platform}/state", timeout=60)
    response.raise_for_status()
    return dict(response.json())


SETUP: dict[str, Callable[[Sandbox, int], list[dict[str, Any]]]] = {
    "anaplan": _anaplan,
    "sap_job_scheduling": _job_scheduling,
    "sap_cloud_integration": _cloud_integration,
    "sap_analytics_cloud": _analytics_cloud,
    "sap_data_intelligence": _data_intelligence,
}


def start_jobs(sandbox: Sandbox, total: int) -> tuple[dict[str, list[dict[str, Any]]], dict[str, float]]:
    """Start every platform's share of ``total`` running jobs; returns the refs and seconds per platform."""
    refs: dict[str, list[dict[str, Any]]] = {}
    seconds: dict[str, float] = {}
    for platform, count in split(total).items():
        started = time.monotonic()
        refs[platform] = SETUP[platform](sandbox, count)
        seconds[platform] = time.monotonic() - started
        if len(refs[platform]) != count:
            raise RuntimeError(f"{platform}: started {len(refs[platform])} jobs of {count}")
    return refs, seconds


def trigger_factory(refs: dict[str, list[dict[str, Any]]], interval: float) -> Callable[[int], Any]:
    """The i-th trigger of a mixed run: platforms interleaved (i % 5), each on its own job."""
    from airflow_provider_sapplan.triggers.anaplan import AnaplanTaskTrigger
    from airflow_provider_sapplan.triggers.sap_analytics_cloud import SapAnalyticsCloudMultiActionTrigger
    from airflow_provider_sapplan.triggers.sap_cloud_integration import SapCloudIntegrationMessageTrigger
    from airflow_provider_sapplan.triggers.sap_data_intelligence import SapDataIntelligenceGraphTrigger
    from airflow_provider_sapplan.triggers.sap_job_scheduling import SapJobSchedulingRunTrigger

    classes = {
        "anaplan": AnaplanTaskTrigger,
        "sap_job_scheduling": SapJobSchedulingRunTrigger,
        "sap_cloud_integration": SapCloudIntegrationMessageTrigger,
        "sap_analytics_cloud": SapAnalyticsCloudMultiActionTrigger,
        "sap_data_intelligence": SapDataIntelligenceGraphTrigger,
    }
    order = [name for name in PLATFORMS if refs.get(name)]

    def make(index: int) -> Any:
        platform = order[index % len(order)]
        platform_refs = refs[platform]
        return classes[platform](
            conn_id=f"{platform}_default",
            ref=platform_refs[(index // len(order)) % len(platform_refs)],
            poll_interval=interval,
            max_poll_interval=interval,
        )

    return make


def is_poll_route(route: str) -> bool:
    """A platform API GET (what triggers poll), not a token, control or login call."""
    method, _, path = route.partition(" ")
    if method != "GET" or path.startswith("/_sandbox"):
        return False
    return not any(part in path for part in ("/oauth/", "/auth/", "/uaa"))

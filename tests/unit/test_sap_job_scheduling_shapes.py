"""Issue 8 item 4: the Job Scheduling hook reads every response shape the reference (seed 001) documents.

Bodies are quoted from the seed's "Response (200)" examples; the schedule list has no example there, so
both the documented envelope and a bare array (what the sandbox can answer) are read.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_sapplan.exceptions import SapplanError
from airflow_provider_sapplan.hooks.sap_job_scheduling import SapJobSchedulingHook, first_run, results_of
from tests.unit.test_sap_job_scheduling import API
from tests.unit.test_sap_job_scheduling import api as api
from tests.unit.test_sap_job_scheduling import sleeps as sleeps

# Seed 001, "Retrieve Jobs" Response (200) (total 25, one item shown; the next page is empty).
JOBS = {
    "total": 25,
    "results": [
        {
            "_id": 1,
            "name": "salesReportJob",
            "description": "...",
            "action": "...",
            "active": True,
            "httpMethod": "POST",
            "jobType": "HTTP_ENDPOINT",
            "createdAt": "2025-01-15T10:30:00Z",
            "modifiedAt": "2025-01-20T14:00:00Z",
        }
    ],
    "prev_url": None,
    "next_url": "/scheduler/jobs?offset=11&page_size=10",
}
# Seed 001, "Retrieve Job Details" with displaySchedules=true: schedules inside the job.
JOB_WITH_SCHEDULES = {
    "_id": 42,
    "name": "salesReportJob",
    "active": True,
    "httpMethod": "POST",
    "schedules": [
        {
            "scheduleId": "5f58c2fb-...",
            "description": "Daily at 6 AM UTC",
            "type": "recurring",
            "repeatAt": "6.00am",
            "active": True,
            "startTime": {"date": "2025-01-01", "format": "YYYY-MM-DD"},
        }
    ],
}
# Seed 001, "Retrieve Run Logs" Response (200).
RUNS = {
    "total": 150,
    "results": [
        {
            "runId": "ea16b621-eaa8-4824-8629-ff6e6221bb56",
            "runText": "Completed successfully",
            "httpStatus": 200,
            "executionTimestamp": "2025-01-20T06:00:05Z",
            "scheduleTimestamp": "2025-01-20T06:00:00Z",
            "completionTimestamp": "2025-01-20T06:00:10Z",
            "runStatus": "COMPLETED",
            "runState": "SUCCESS",
        }
    ],
    "prev_url": None,
    "next_url": "/scheduler/jobs/42/schedules/.../runs?offset=11",
}
SCHEDULE = JOB_WITH_SCHEDULES["schedules"][0]


@pytest.mark.parametrize(
    ("responses", "names"),
    [
        ([{"json": JOBS}, {"json": {"total": 25, "results": []}}], ["salesReportJob"]),
        ([{"json": JOBS["results"]}], ["salesReportJob"]),
        ([{"json": {"total": 0}}], []),
    ],
    ids=["documented-envelope", "bare-array", "envelope-without-results"],
)
def test_job_lists(api: Any, responses: list, names: list[str]) -> None:
    api.get(f"{API}/scheduler/jobs", responses)
    assert [job["name"] for job in SapJobSchedulingHook().list_jobs()] == names


@pytest.mark.parametrize(
    "body",
    [{"total": 1, "results": [SCHEDULE]}, [SCHEDULE], {"schedules": [SCHEDULE]}],
    ids=["envelope", "bare-array", "job-details-schedules"],
)
def test_schedule_lists(api: Any, body: Any) -> None:
    api.get(f"{API}/scheduler/jobs/42/schedules", json=body)
    assert [s["scheduleId"] for s in SapJobSchedulingHook().list_schedules(42)] == ["5f58c2fb-..."]


@pytest.mark.parametrize("body", [JOBS, JOBS["results"]], ids=["envelope", "bare-array"])
def test_find_job_by_name(api: Any, body: Any) -> None:
    api.get(f"{API}/scheduler/jobs", json=body)
    assert SapJobSchedulingHook().find_job_by_name("salesReportJob")["_id"] == 1


@pytest.mark.parametrize(
    ("body", "state"),
    [(RUNS, "SUCCESS"), (RUNS["results"], "SUCCESS"), ({"total": 0, "results": []}, "SCHEDULED"), ([], "SCHEDULED")],
    ids=["documented", "bare-array", "empty-envelope", "empty-array"],
)
def test_first_run_of_a_runs_page(body: Any, state: str) -> None:
    assert first_run(body)["runState"] == state


def test_a_list_answered_with_text_names_the_shape() -> None:
    with pytest.raises(SapplanError, match="instead of JSON"):
        results_of("<html>")

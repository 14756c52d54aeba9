"""The soak names each failed try's cause from the task log, in Airflow 3's and Airflow 2's formats."""

from __future__ import annotations

import json

from tests.system.soak import cause_group, last_error

AIRFLOW_2_LOG = """\
[2026-12-01T01:49:41.100+0000] {taskinstance.py:3313} ERROR - Task failed with exception
Traceback (most recent call last):
  File "/work/main/airflow_provider_sapplan/core/http.py", line 180, in _with_retries
    raise RetryableFailure(error)
airflow_provider_sapplan.core.retry.RetryableFailure: inner

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/work/main/airflow_provider_sapplan/core/transport_policy.py", line 216, in judge
    raise error
airflow_provider_sapplan.exceptions.ServiceUnavailableError: DI PUT /x failed with HTTP 502.
[2026-12-01T01:49:41.577+0000] {local_task_job_runner.py:266} INFO - Task exited with return code 1
[2026-12-01T01:49:41.578+0000] {http.py:12} WARNING - NetworkError: this line is a log message, not a traceback
"""


def test_airflow_2_text_log_gives_the_outermost_exception() -> None:
    assert last_error(AIRFLOW_2_LOG) == ("ServiceUnavailableError: DI PUT /x failed with HTTP 502.")


def test_airflow_3_json_log_gives_the_outermost_error_detail() -> None:
    records = [
        {"event": "Started", "level": "info"},
        {
            "event": "Task failed with exception",
            "error_detail": [
                {"exc_type": "SapplanError", "exc_value": "Waiting on job 7 failed"},
                {"exc_type": "AuthenticationError", "exc_value": "inner"},
            ],
        },
    ]
    log = "\n".join(json.dumps(record) for record in records)
    assert last_error(log) == "SapplanError: Waiting on job 7 failed"


def test_a_log_without_an_error_says_so() -> None:
    assert last_error("[2026-12-01] {x.py:1} INFO - all fine\n") == "no error in the log"


def test_causes_group_without_ids_and_ports() -> None:
    one = "NetworkError: POST http://127.0.0.1:41234/jobs/8C419581695944E583722870A3733FD4 failed"
    other = "NetworkError: POST http://127.0.0.1:39999/jobs/11119581695944E583722870A3733FD4 failed"
    assert cause_group(one) == cause_group(other)

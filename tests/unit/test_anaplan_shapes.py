"""Issue 8 item 4: the Anaplan hook reads every list shape the API reference (seed 004) documents.

Each body below is quoted from the seed's "Response 200" example for that endpoint; the process list
is documented as a bare JSON array, the others wrapped under their name with ``meta.paging``.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_sapplan.exceptions import SapplanError
from airflow_provider_sapplan.hooks.anaplan import AnaplanHook, listed
from tests.conftest import ANAPLAN_API, ANAPLAN_AUTH, MODEL, WORKSPACE
from tests.unit.test_anaplan_hook import token_body

MODEL_URL = f"{ANAPLAN_API}/workspaces/{WORKSPACE}/models/{MODEL}"

# Seed 004, "Retrieve the list of processes": Response 200 is a bare array.
PROCESSES_BARE = [{"id": "118000000001", "name": "Process1"}, {"id": "118000000002", "name": "Process2"}]
# Seed 004, "Retrieve the list of imports" (totalSize says 8, one item shown: the next page is empty).
IMPORTS_WRAPPED = {
    "meta": {
        "paging": {"currentPageSize": 8, "offset": 0, "totalSize": 8},
        "schema": "https://api.anaplan.com//2/0/models/75A40874E6B64FA3AE0743278996850F/objects/import",
    },
    "status": {"code": 200, "message": "Success"},
    "imports": [
        {
            "id": "112000000007",
            "name": "ORG2Test from Organization.txt",
            "importDataSourceId": "113000000006",
            "importType": "HIERARCHY_DATA",
        }
    ],
}
# Seed 004, "Get a list of the export tasks".
TASKS_WRAPPED = {
    "meta": {
        "paging": {"currentPageSize": 2, "offset": 0, "totalSize": 2},
        "schema": "https://api.anaplan.com//2/0/models/736367E9DB484E3AB3A50C3704FD33ED/objects/task",
    },
    "status": {"code": 200, "message": "Success"},
    "tasks": [
        {"taskId": "08990C16C3464583B6E16BD851E0F8AE", "taskState": "IN_PROGRESS", "creationTime": 1535145394668}
    ],
}
# Seed 004, "Get the chunks of a file".
CHUNKS_WRAPPED = {
    "meta": {
        "paging": {"currentPageSize": 4, "offset": 0, "totalSize": 4},
        "schema": "https://api.anaplan.com//2/0/models/75A40874E6B64FA3AE0743278996850F/objects/chunk",
    },
    "status": {"code": 200, "message": "Success"},
    "chunks": [{"id": str(i), "name": f"Chunk {i}"} for i in range(4)],
}


@pytest.fixture
def hook(anaplan_conn: str, requests_mock: Any) -> AnaplanHook:
    requests_mock.post(f"{ANAPLAN_AUTH}/token/authenticate", json=token_body())
    return AnaplanHook()


@pytest.mark.parametrize(
    ("kind", "responses", "ids"),
    [
        ("processes", [{"json": PROCESSES_BARE}], ["118000000001", "118000000002"]),
        ("processes", [{"json": {"meta": {}, "processes": PROCESSES_BARE}}], ["118000000001", "118000000002"]),
        ("imports", [{"json": IMPORTS_WRAPPED}, {"json": {"imports": []}}], ["112000000007"]),
        ("actions", [{"json": {"meta": {"paging": {"totalSize": 0}}, "status": {"code": 200}}}], []),
        ("exports", [{"json": []}], []),
    ],
    ids=["process-list-bare-array", "process-list-wrapped", "imports-wrapped-paged", "empty-no-key", "bare-empty"],
)
def test_object_lists_in_every_documented_shape(
    hook: AnaplanHook, requests_mock: Any, kind: str, responses: list, ids: list[str]
) -> None:
    requests_mock.get(f"{MODEL_URL}/{kind}", responses)
    assert [item["id"] for item in hook.list_objects(kind)] == ids


def test_process_resolved_by_name_from_the_bare_array(hook: AnaplanHook, requests_mock: Any) -> None:
    requests_mock.get(f"{MODEL_URL}/processes", json=PROCESSES_BARE)
    assert hook.resolve_id("processes", "Process2") == "118000000002"


@pytest.mark.parametrize(
    "body",
    [TASKS_WRAPPED, TASKS_WRAPPED["tasks"], {"task": TASKS_WRAPPED["tasks"][0]}],
    ids=["wrapped", "bare-array", "single-task"],
)
def test_task_lists(hook: AnaplanHook, requests_mock: Any, body: Any) -> None:
    requests_mock.get(f"{MODEL_URL}/exports/116000000001/tasks", json=body)
    assert [t["taskId"] for t in hook.list_tasks("exports", "116000000001")] == ["08990C16C3464583B6E16BD851E0F8AE"]


@pytest.mark.parametrize("body", [CHUNKS_WRAPPED, CHUNKS_WRAPPED["chunks"]], ids=["wrapped", "bare-array"])
def test_file_chunk_lists(hook: AnaplanHook, requests_mock: Any, tmp_path: Any, body: Any) -> None:
    requests_mock.get(f"{MODEL_URL}/files/113000000001/chunks", json=body)
    for i in range(4):
        requests_mock.get(f"{MODEL_URL}/files/113000000001/chunks/{i}", content=f"c{i}\n".encode())
    result = hook.download_file("113000000001", tmp_path / "f.csv")
    assert result["chunk_count"] == 4 and (tmp_path / "f.csv").read_bytes() == b"c0\nc1\nc2\nc3\n"


def test_a_list_answered_with_text_names_the_shape() -> None:
    with pytest.raises(SapplanError, match="instead of JSON"):
        listed("<html>", "files")

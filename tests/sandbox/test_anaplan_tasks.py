"""Anaplan tasks: state machine, results, dumps and their replacement, processes, cancel, model states."""

from __future__ import annotations

import time
from typing import Any

import requests

from airflow_provider_sapplan.sandbox import SandboxServer
from airflow_provider_sapplan.sandbox.anaplan import MODEL_ID

from .conftest import AnaplanClient

HEADER = b"Version,Region,Product,Month,Amount\n"


def _rows(count: int, invalid: tuple[int, ...] = ()) -> bytes:
    return HEADER + b"".join(
        (b"Actual,#INVALID,P%d,Jan FY26,1\n" if i in invalid else b"Actual,EMEA,P%d,Jan FY26,1\n") % i
        for i in range(count)
    )


def _values(detail: dict[str, Any]) -> dict[str, str]:
    values = detail["values"]
    return dict(zip(values[::2], values[1::2], strict=True))


def test_task_state_machine_and_import_counts(client: AnaplanClient, sandbox: SandboxServer) -> None:
    sandbox.anaplan.configure("112000000001", queue_seconds=5, run_seconds=5)  # 0.1 s each at scale 0.02
    client.upload("113000000001", _rows(42), chunk_size=200)
    started = client.post("/imports/112000000001/tasks", json={"localeName": "en_US"}).json()
    task = started["task"]
    assert task["taskState"] == "NOT_STARTED"
    assert len(task["taskId"]) == 32 and task["taskId"] == task["taskId"].upper()
    assert isinstance(task["creationTime"], int)
    seen: list[str] = []
    while not seen or seen[-1] not in ("COMPLETE", "CANCELLED"):
        state = client.get(f"/imports/112000000001/tasks/{task['taskId']}").json()["task"]["taskState"]
        if not seen or seen[-1] != state:
            seen.append(state)
        time.sleep(0.01)
    assert seen == ["NOT_STARTED", "IN_PROGRESS", "COMPLETE"]
    final = client.get(f"/imports/112000000001/tasks/{task['taskId']}").json()["task"]
    assert final["progress"] == 1.0 and final["currentStep"] == "Complete."
    result = final["result"]
    assert result["successful"] is True and result["failureDumpAvailable"] is False
    assert result["objectId"] == "112000000001"
    detail = result["details"][0]
    assert detail["type"] == "lineItemRowsProcessed"
    assert "42 (42/0) rows successful, 0 ignored" in detail["localMessageText"]
    assert _values(detail)["successRowCount"] == "42" and _values(detail)["failedCount"] == "0"
    assert sandbox.stats.tasks_started["112000000001"] == 1


def test_task_requires_locale_and_records_mapping_parameters(client: AnaplanClient, sandbox: SandboxServer) -> None:
    assert client.post("/imports/112000000001/tasks", json={}).status_code == 400
    assert client.post("/imports/112000000001/tasks").status_code == 400
    mapping = [{"entityType": "Version", "entityName": "Actual"}]
    client.start("imports", "112000000001", mappingParameters=mapping)
    assert sandbox.anaplan.last_task_request["112000000001"] == {"localeName": "en_US", "mappingParameters": mapping}
    over_http = requests.get(f"{sandbox.url}/_sandbox/anaplan/last_task_request/112000000001").json()
    assert over_http["mappingParameters"] == mapping


def test_unknown_ids_are_404(client: AnaplanClient) -> None:
    assert client.get("/imports/112000000099").status_code == 404
    assert client.post("/imports/116000000001/tasks", json={"localeName": "en_US"}).status_code == 404
    assert client.get("/imports/112000000001/tasks/0123456789ABCDEF0123456789ABCDEF").status_code == 404
    assert client.get("/workspaces/8a868cd97d1e2f3b017d2f4a5b6c0009/models").status_code == 404
    missing = client.get("/workspaces/8a868cd97d1e2f3b017d2f4a5b6c0001/models/75a40874e6b64fa3ae0743278996850f/files")
    assert missing.status_code == 404  # model ids are case-sensitive
    assert missing.json()["status"]["code"] == 404
    assert client.delete("/files").status_code == 405


def test_invalid_rows_fail_and_produce_a_dump(client: AnaplanClient) -> None:
    client.upload("113000000001", _rows(10, invalid=(2, 7)), chunk_size=150)
    task_id, task = client.run("imports", "112000000001")
    result = task["result"]
    assert result["successful"] is False and result["failureDumpAvailable"] is True
    values = _values(result["details"][0])
    assert values["failedCount"] == "2" and values["successRowCount"] == "8"
    dump = client.get(f"/imports/112000000001/tasks/{task_id}/dump")
    assert dump.headers["Content-Type"].startswith("text/csv")
    lines = dump.text.splitlines()
    assert lines[0] == '"_Status_","Version","Region","Product","Month","Amount","_Line_","_Error_1_"'
    assert lines[1] == '"E","Actual","#INVALID","P2","Jan FY26","1","4","Invalid number"'
    assert len(lines) == 3
    chunks = client.get(f"/imports/112000000001/tasks/{task_id}/dump/chunks").json()["chunks"]
    assert chunks == [{"id": "0", "name": "Chunk 0"}]
    assert client.get(f"/imports/112000000001/tasks/{task_id}/dump/chunks/0").content == dump.content


def test_a_newer_failing_run_replaces_the_dump(client: AnaplanClient) -> None:
    client.upload("113000000001", _rows(5, invalid=(1,)), chunk_size=1000)
    first, _ = client.run("imports", "112000000001")
    second, _ = client.run("imports", "112000000001")
    assert client.get(f"/imports/112000000001/tasks/{second}/dump").status_code == 200
    old = client.get(f"/imports/112000000001/tasks/{first}/dump")
    assert old.status_code == 404
    # ...while the old task still says a dump is available, as in real Anaplan
    still = client.get(f"/imports/112000000001/tasks/{first}").json()["task"]["result"]
    assert still["failureDumpAvailable"] is True
    # and a clean run removes the dump altogether
    client.upload("113000000001", _rows(5), chunk_size=1000)
    client.run("imports", "112000000001")
    assert client.get(f"/imports/112000000001/tasks/{second}/dump").status_code == 404


def test_configured_outcomes(client: AnaplanClient, sandbox: SandboxServer) -> None:
    requests.post(
        f"{sandbox.url}/_sandbox/anaplan/config",
        json={"action_id": "112000000002", "outcome": "fail", "failed_rows": 2},
    ).raise_for_status()
    task_id, task = client.run("imports", "112000000002")
    result = task["result"]
    assert result["successful"] is False and result["failureDumpAvailable"] is True
    assert result["details"][0]["type"] == "hierarchyRowsProcessedWithFailures"
    assert _values(result["details"][0])["failedCount"] == "2"
    assert client.get(f"/imports/112000000002/tasks/{task_id}/dump").text.count('"E",') == 2

    sandbox.anaplan.configure("112000000002", outcome="warnings", failed_rows=1)
    _, task = client.run("imports", "112000000002")
    assert task["result"]["successful"] is True
    assert _values(task["result"]["details"][0])["warningsRowCount"] == "1"

    sandbox.anaplan.configure("112000000002", outcome="cancelled")
    _, task = client.run("imports", "112000000002")
    assert task["taskState"] == "CANCELLED" and task["result"]["successful"] is False

    bad = requests.post(f"{sandbox.url}/_sandbox/anaplan/config", json={"outcome": "explode"})
    assert bad.status_code == 400


def test_cancel_a_running_task(client: AnaplanClient, sandbox: SandboxServer) -> None:
    sandbox.anaplan.configure("116000000001", queue_seconds=0, run_seconds=500)  # 10 s at scale 0.02
    task_id = client.start("exports", "116000000001")
    cancelled = client.delete(f"/exports/116000000001/tasks/{task_id}")
    assert cancelled.status_code == 200
    assert cancelled.json()["task"]["taskState"] == "CANCELLING"
    task = client.wait("exports", "116000000001", task_id)
    assert task["taskState"] == "CANCELLED"
    assert task["result"]["successful"] is False
    assert task["result"]["details"][0]["type"] == "msgExportCancelled"
    assert client.get("/files/116000000001/chunks").json()["chunks"] == []  # rolled back: nothing written
    # cancelling a finished task changes nothing
    again = client.delete(f"/exports/116000000001/tasks/{task_id}")
    assert again.status_code == 200 and again.json()["task"]["taskState"] == "CANCELLED"


def test_export_writes_its_file_split_in_10_mb_chunks(client: AnaplanClient, sandbox: SandboxServer) -> None:
    sandbox.anaplan.configure("116000000001", export_rows=5)
    _, task = client.run("exports", "116000000001")
    assert task["result"]["successful"] is True
    assert task["result"]["details"][0]["type"] == "exportSucceeded"
    text = client.download("116000000001").decode()
    assert text.splitlines()[0] == "Version,Region,Product,Month,Forecast"
    assert len(text.splitlines()) == 6
    listed = {f["id"]: f for f in client.get("/files").json()["files"]}
    assert listed["116000000001"]["chunkCount"] == 1

    sandbox.anaplan.configure("116000000001", export_rows=260_000)  # a little over 10 MiB
    client.run("exports", "116000000001")
    chunks = client.get("/files/116000000001/chunks").json()["chunks"]
    assert len(chunks) == 2
    first = client.get("/files/116000000001/chunks/0").content
    assert len(first) == 10 * 1024 * 1024
    assert len(first) + len(client.get("/files/116000000001/chunks/1").content) == len(
        sandbox.anaplan.read_file("116000000001")
    )


def test_delete_action_result(client: AnaplanClient) -> None:
    actions = client.get("/actions").json()["actions"]
    assert {a["id"]: a["actionType"] for a in actions} == {
        "117000000001": "DELETE_BY_SELECTION",
        "117000000002": "ORDER_HIERARCHY",
    }
    _, task = client.run("actions", "117000000001")
    assert task["result"]["successful"] is True and task["result"]["failureDumpAvailable"] is False
    assert task["result"]["details"][0]["type"] == "deleteFromSelectionSucceeded"


def test_process_runs_steps_and_keeps_dumps_per_object(client: AnaplanClient, sandbox: SandboxServer) -> None:
    meta = client.get("/processes/118000000001").json()["processMetadata"]
    assert [a["id"] for a in meta["actions"]] == ["112000000001", "116000000001"]

    _, ok = client.run("processes", "118000000001")
    assert ok["result"]["successful"] is True
    assert [n["objectId"] for n in ok["result"]["nestedResults"]] == ["112000000001", "116000000001"]
    assert sandbox.anaplan.read_file("116000000001").startswith(b"Version,Region")

    client.upload("113000000001", _rows(6, invalid=(3,)), chunk_size=1000)
    first, failed = client.run("processes", "118000000001")
    result = failed["result"]
    assert result["successful"] is False and result["failureDumpAvailable"] is True
    nested = {n["objectId"]: n for n in result["nestedResults"]}
    assert nested["112000000001"]["successful"] is False and nested["112000000001"]["failureDumpAvailable"] is True
    assert nested["116000000001"]["successful"] is True
    base = f"/processes/118000000001/tasks/{first}/dumps/112000000001"
    dump = client.get(base)
    assert dump.status_code == 200 and '"E","Actual","#INVALID","P3"' in dump.text
    assert client.get(f"{base}/chunks").json()["chunks"] == [{"id": "0", "name": "Chunk 0"}]
    assert client.get(f"{base}/chunks/0").content == dump.content
    assert client.get(f"/processes/118000000001/tasks/{first}/dumps/116000000001").status_code == 404

    second, _ = client.run("processes", "118000000001")
    assert client.get(base).status_code == 404  # replaced by the newer run
    assert client.get(f"/processes/118000000001/tasks/{second}/dumps/112000000001").status_code == 200
    detailed = client.get(f"/processes/118000000001/tasks/{second}?includeProcessDetails=true").json()["task"]
    assert "duration" in detailed["result"] and "startTime" in detailed["result"]["nestedResults"][0]


def test_task_list_is_in_creation_order(client: AnaplanClient) -> None:
    ids = []
    for _ in range(3):
        ids.append(client.start("actions", "117000000002"))
        time.sleep(0.003)  # distinct creationTime milliseconds
    listed = client.get("/actions/117000000002/tasks").json()
    assert [t["taskId"] for t in listed["tasks"]] == ids
    assert listed["meta"]["paging"]["totalSize"] == 3
    newest_first = client.get("/actions/117000000002/tasks?sort=-creationTime").json()["tasks"]
    assert [t["taskId"] for t in newest_first] == ids[::-1]


def test_busy_model_still_answers_task_endpoints(client: AnaplanClient, sandbox: SandboxServer) -> None:
    response = requests.post(
        f"{sandbox.url}/_sandbox/anaplan/model_state", json={"model_id": MODEL_ID, "state": "busy"}
    )
    assert response.status_code == 200
    busy = client.get("/files")
    assert busy.status_code == 409 and busy.json()["status"]["code"] == 409
    assert client.post("/files/113000000001", json={"chunkCount": 1}).status_code == 409
    assert client.get("/imports").status_code == 200
    task_id = client.start("imports", "112000000001")
    assert client.wait("imports", "112000000001", task_id)["taskState"] == "COMPLETE"
    assert client.get("/imports/112000000001/tasks").status_code == 200
    status = client.post("/status", json={})
    assert status.status_code == 200 and "requestStatus" in status.json()
    model = client.get(f"/models/{MODEL_ID}").json()["model"]
    assert model["id"] == MODEL_ID
    sandbox.anaplan.set_model_state(MODEL_ID, "ok")
    assert client.get("/files").status_code == 200


def test_locked_archived_offline_models(client: AnaplanClient, sandbox: SandboxServer) -> None:
    for state, code in (("locked", 423), ("archived", 422), ("offline", 424)):
        sandbox.anaplan.set_model_state(MODEL_ID, state)
        assert client.get("/files").status_code == code
        assert client.post("/imports/112000000001/tasks", json={"localeName": "en_US"}).status_code == code
    sandbox.anaplan.set_model_state(MODEL_ID, "ok")
    assert client.get("/files").status_code == 200


def test_workspaces_and_models(client: AnaplanClient) -> None:
    workspaces = client.get("/workspaces?tenantDetails=true").json()["workspaces"]
    assert [w["name"] for w in workspaces] == ["FP&A Sandbox", "Sandbox Archive"]
    assert "sizeAllowance" in workspaces[0]
    models = client.get("/models").json()["models"]
    assert {m["name"] for m in models} == {"Sales Planning", "Headcount Planning"}
    page = client.get("/models?limit=1&offset=1").json()
    assert page["meta"]["paging"]["totalSize"] == 2 and len(page["models"]) == 1
    assert client.get("/workspaces/8a868cd97d1e2f3b017d2f4a5b6c0002/models").json()["models"] == []
    one = client.get(f"/workspaces/8a868cd97d1e2f3b017d2f4a5b6c0001/models/{MODEL_ID}").json()
    assert one["model"]["activeState"] == "UNLOCKED"

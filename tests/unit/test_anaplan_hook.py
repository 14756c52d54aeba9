"""AnaplanHook against mocked HTTP: auth, retries, errors, names, files and dumps."""

from __future__ import annotations

import base64
import json
import os
import struct
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_sapplan.exceptions import (
    AuthenticationError,
    ConnectionConfigError,
    DumpUnavailableError,
    InvalidRequestError,
    NameResolutionError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ResourceBusyError,
    UploadError,
)
from airflow_provider_sapplan.hooks.anaplan import (
    MIB,
    ActionType,
    AnaplanHook,
    task_request_body,
)
from airflow_provider_sapplan.jobs.anaplan import task_outcome
from tests.certificates import pem_key, self_signed
from tests.conftest import ANAPLAN_API, ANAPLAN_AUTH, MODEL, WORKSPACE, set_connection

MODEL_URL = f"{ANAPLAN_API}/workspaces/{WORKSPACE}/models/{MODEL}"
AUTH_URL = f"{ANAPLAN_AUTH}/token/authenticate"
REFRESH_URL = f"{ANAPLAN_AUTH}/token/refresh"


def token_body(value: str = "tok-1", ttl: float = 2100) -> dict[str, Any]:
    return {
        "status": "SUCCESS",
        "statusMessage": "Login successful",
        "tokenInfo": {"tokenValue": value, "expiresAt": int((time.time() + ttl) * 1000), "tokenId": "id"},
    }


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Sleeps of the HTTP core, recorded instead of slept; the request budget's clock advances with them."""
    from airflow_provider_sapplan.core.rate_budget import BUDGETS

    recorded: list[float] = []
    monkeypatch.setattr("airflow_provider_sapplan.core.http.time.sleep", recorded.append)
    monkeypatch.setattr(BUDGETS, "clock", lambda: sum(recorded))
    return recorded


@pytest.fixture
def hook(anaplan_conn: str, requests_mock: Any, sleeps: list[float]) -> AnaplanHook:
    requests_mock.post(AUTH_URL, json=token_body())
    return AnaplanHook(anaplan_conn)


def files_payload(*files: dict[str, Any]) -> dict[str, Any]:
    return {
        "meta": {"paging": {"currentPageSize": len(files), "offset": 0, "totalSize": len(files)}},
        "files": list(files),
    }


# -- auth ---------------------------------------------------------------------------------------


def test_basic_auth_token_is_sent_and_reused(hook: AnaplanHook, requests_mock: Any) -> None:
    requests_mock.get(f"{ANAPLAN_API}/workspaces", json={"workspaces": [], "meta": {"paging": {"totalSize": 0}}})
    for _ in range(5):
        hook.list_workspaces()
    auth_calls = [r for r in requests_mock.request_history if r.url == AUTH_URL]
    assert len(auth_calls) == 1
    expected = "Basic " + base64.b64encode(b"user@example.com:s3cret-pass").decode()
    assert auth_calls[0].headers["Authorization"] == expected
    api_calls = [r for r in requests_mock.request_history if r.url.startswith(f"{ANAPLAN_API}/workspaces")]
    assert {r.headers["Authorization"] for r in api_calls} == {"AnaplanAuthToken tok-1"}
    assert api_calls[0].headers["User-Agent"].startswith("airflow-provider-sapplan/")


def test_token_shared_between_hooks_of_one_connection(hook: AnaplanHook, requests_mock: Any) -> None:
    requests_mock.get(f"{ANAPLAN_API}/workspaces", json={"workspaces": []})
    hook.list_workspaces()
    AnaplanHook("anaplan_default").list_workspaces()
    assert sum(r.url == AUTH_URL for r in requests_mock.request_history) == 1


def test_401_renews_token_once_and_replays(hook: AnaplanHook, requests_mock: Any) -> None:
    requests_mock.post(AUTH_URL, [{"json": token_body("old")}, {"json": token_body("new")}])
    requests_mock.get(
        f"{ANAPLAN_API}/workspaces",
        [{"status_code": 401, "json": {"status": {"code": 401}}}, {"json": {"workspaces": [{"id": "w"}]}}],
    )
    assert hook.list_workspaces() == [{"id": "w"}]
    sent = [r.headers["Authorization"] for r in requests_mock.request_history if "/workspaces" in r.url]
    assert sent == ["AnaplanAuthToken old", "AnaplanAuthToken new"]


def test_persistent_401_is_an_authentication_error(hook: AnaplanHook, requests_mock: Any) -> None:
    requests_mock.get(f"{ANAPLAN_API}/workspaces", status_code=401, json={"status": {"message": "Unauthorized"}})
    with pytest.raises(AuthenticationError, match="401"):
        hook.list_workspaces()
    # one replay after one renewal, no more
    assert sum("/workspaces" in r.url for r in requests_mock.request_history) == 2


def test_token_refreshed_before_expiry_through_refresh_endpoint(
    anaplan_conn: str, requests_mock: Any, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    requests_mock.post(AUTH_URL, json=token_body("short", ttl=100))
    requests_mock.post(REFRESH_URL, json=token_body("refreshed"))
    requests_mock.get(f"{ANAPLAN_API}/workspaces", json={"workspaces": []})
    hook = AnaplanHook(anaplan_conn)
    hook.list_workspaces()  # logs in
    later = time.time() + 90  # inside the renewal lead time, not yet expired
    monkeypatch.setattr("airflow_provider_sapplan.core.auth.time.time", lambda: later)
    hook.list_workspaces()  # renews through /token/refresh
    refresh_calls = [r for r in requests_mock.request_history if r.url == REFRESH_URL]
    assert len(refresh_calls) == 1
    assert refresh_calls[0].headers["Authorization"] == "AnaplanAuthToken short"
    assert requests_mock.request_history[-1].headers["Authorization"] == "AnaplanAuthToken refreshed"


def test_failed_refresh_falls_back_to_login(
    anaplan_conn: str, requests_mock: Any, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    requests_mock.post(AUTH_URL, [{"json": token_body("short", ttl=100)}, {"json": token_body("relogin")}])
    requests_mock.post(REFRESH_URL, status_code=401, json={"statusMessage": "Token invalid"})
    requests_mock.get(f"{ANAPLAN_API}/workspaces", json={"workspaces": []})
    hook = AnaplanHook(anaplan_conn)
    hook.list_workspaces()
    later = time.time() + 90
    monkeypatch.setattr("airflow_provider_sapplan.core.auth.time.time", lambda: later)
    hook.list_workspaces()
    assert requests_mock.request_history[-1].headers["Authorization"] == "AnaplanAuthToken relogin"


def test_bad_credentials_name_the_fix(anaplan_conn: str, requests_mock: Any, sleeps: list[float]) -> None:
    requests_mock.post(AUTH_URL, status_code=401, json={"status": "FAILURE_BAD_CREDENTIAL"})
    with pytest.raises(AuthenticationError, match=r"Check Login .* and Password.*Airflow does not retry"):
        AnaplanHook(anaplan_conn).list_workspaces()


def test_certificate_auth_v2_payload(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key, cert_pem = self_signed("integration")
    key_pem = pem_key(key)
    set_connection(
        monkeypatch,
        "anaplan_cert",
        conn_type="anaplan",
        extra={
            "auth_type": "certificate",
            "certificate": cert_pem,
            "private_key": key_pem,
            "auth_url": ANAPLAN_AUTH,
            "api_url": ANAPLAN_API,
        },
    )
    requests_mock.post(AUTH_URL, json=token_body())
    requests_mock.get(f"{ANAPLAN_API}/workspaces", json={"workspaces": []})
    AnaplanHook("anaplan_cert").list_workspaces()
    auth = next(r for r in requests_mock.request_history if r.url == AUTH_URL)
    header = auth.headers["Authorization"]
    assert header.startswith("CACertificate MII")
    body = auth.json()
    assert list(body) == ["encodedDataFormat", "encodedData", "encodedSignedData"]
    nonce = base64.b64decode(body["encodedData"])
    assert len(nonce) == 100
    assert abs(struct.unpack(">q", nonce[:8])[0] - time.time()) < 60
    key.public_key().verify(base64.b64decode(body["encodedSignedData"]), nonce, padding.PKCS1v15(), hashes.SHA512())
    assert key_pem not in json.dumps(body) and "PRIVATE" not in repr(AnaplanHook("anaplan_cert").get_conn().config)


def test_missing_password_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, "anaplan_nopw", conn_type="anaplan", login="a@b.c")
    with pytest.raises(ConnectionConfigError, match="Password"):
        AnaplanHook("anaplan_nopw").get_conn()


# -- retries -------------------------------------------------------------------------------------


def test_429_honours_retry_after(hook: AnaplanHook, requests_mock: Any, sleeps: list[float]) -> None:
    requests_mock.get(
        f"{ANAPLAN_API}/workspaces",
        [{"status_code": 429, "headers": {"Retry-After": "7"}}, {"json": {"workspaces": [{"id": "w"}]}}],
    )
    assert hook.list_workspaces() == [{"id": "w"}]
    assert sleeps == [7.0]


def test_retry_after_is_capped(hook: AnaplanHook, requests_mock: Any, sleeps: list[float]) -> None:
    requests_mock.get(
        f"{ANAPLAN_API}/workspaces",
        [{"status_code": 429, "headers": {"Retry-After": "86400"}}, {"json": {"workspaces": []}}],
    )
    hook.list_workspaces()
    assert sleeps == [120.0]


def test_persistent_429_raises_rate_limited(hook: AnaplanHook, requests_mock: Any, sleeps: list[float]) -> None:
    requests_mock.get(f"{ANAPLAN_API}/workspaces", status_code=429, headers={"Retry-After": "1"})
    with pytest.raises(RateLimitedError, match="429"):
        hook.list_workspaces()
    assert len(sleeps) == 7  # 8 attempts


def test_503_backs_off_exponentially_then_succeeds(hook: AnaplanHook, requests_mock: Any, sleeps: list[float]) -> None:
    requests_mock.get(
        f"{ANAPLAN_API}/workspaces",
        [{"status_code": 503}, {"status_code": 503}, {"status_code": 503}, {"json": {"workspaces": []}}],
    )
    hook.list_workspaces()
    assert len(sleeps) == 3
    assert 1.0 <= sleeps[0] <= 2.0 and 2.0 <= sleeps[1] <= 4.0 and 4.0 <= sleeps[2] <= 8.0


def test_connection_reset_is_retried_for_reads(hook: AnaplanHook, requests_mock: Any, sleeps: list[float]) -> None:
    requests_mock.get(
        f"{ANAPLAN_API}/workspaces",
        [
            {"exc": requests.exceptions.ConnectionError("Connection reset by peer")},
            {"json": {"workspaces": []}},
        ],
    )
    assert hook.list_workspaces() == []
    assert len(sleeps) == 1


def test_task_start_not_retried_when_it_may_have_reached_anaplan(
    hook: AnaplanHook, requests_mock: Any, sleeps: list[float]
) -> None:
    url = f"{MODEL_URL}/imports/112000000001/tasks"
    requests_mock.post(url, exc=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(NetworkError):
        hook.run_action("import", "112000000001")
    assert sum(r.url == url for r in requests_mock.request_history) == 1
    assert sleeps == []


def test_task_start_retried_on_429_and_busy_model(hook: AnaplanHook, requests_mock: Any, sleeps: list[float]) -> None:
    url = f"{MODEL_URL}/imports/112000000001/tasks"
    requests_mock.post(
        url,
        [
            {"status_code": 429, "headers": {"Retry-After": "2"}},
            {"status_code": 409, "json": {"status": {"message": "Model is busy"}}},
            {"status_code": 423},
            {"json": {"task": {"taskId": "T1", "taskState": "NOT_STARTED"}}},
        ],
    )
    assert hook.run_action("import", "112000000001")["taskId"] == "T1"
    assert sum(r.url == url for r in requests_mock.request_history) == 4
    assert sleeps[0] == 2.0


def test_model_locked_for_good_raises_busy_with_advice(hook: AnaplanHook, requests_mock: Any) -> None:
    requests_mock.get(f"{MODEL_URL}/files", status_code=423)
    with pytest.raises(ResourceBusyError, match="unlock it"):
        hook.list_files()


@pytest.mark.parametrize(("status", "advice"), [(422, "archived"), (424, "offline"), (425, "deployed")])
def test_model_unavailable_fails_without_retry(
    hook: AnaplanHook, requests_mock: Any, sleeps: list[float], status: int, advice: str
) -> None:
    requests_mock.get(f"{MODEL_URL}/files", status_code=status)
    with pytest.raises(InvalidRequestError, match=advice):
        hook.list_files()
    assert sleeps == []


def test_html_login_page_is_an_authentication_error(hook: AnaplanHook, requests_mock: Any) -> None:
    requests_mock.get(
        f"{ANAPLAN_API}/workspaces",
        text="<!DOCTYPE html><html><body><form action='/saml2/idp/sso'>Sign in</form></body></html>",
        headers={"Content-Type": "text/html"},
    )
    with pytest.raises(AuthenticationError, match="HTML page"):
        hook.list_workspaces()


def test_other_4xx_are_not_retried(hook: AnaplanHook, requests_mock: Any, sleeps: list[float]) -> None:
    requests_mock.get(f"{MODEL_URL}/imports/112000000009/tasks/T9", status_code=404)
    with pytest.raises(NotFoundError, match="workspace, model and object ids"):
        hook.get_task("import", "112000000009", "T9")
    assert sleeps == []


# -- names and tasks -----------------------------------------------------------------------------


def test_resolve_id_exact_match(hook: AnaplanHook, requests_mock: Any) -> None:
    requests_mock.get(f"{MODEL_URL}/imports", json={"imports": [{"id": "112000000001", "name": "Load Actuals"}]})
    assert hook.resolve_id("imports", "Load Actuals") == "112000000001"


def test_missing_name_lists_candidates(hook: AnaplanHook, requests_mock: Any) -> None:
    requests_mock.get(
        f"{MODEL_URL}/imports",
        json={"imports": [{"id": "1", "name": "Load Actuals"}, {"id": "2", "name": "Load Headcount"}]},
    )
    with pytest.raises(NameResolutionError, match="'Load Actuals'") as info:
        hook.resolve_id("imports", "load actuals")
    assert info.value.details["candidates"] == ["Load Actuals"]


def test_ambiguous_name_lists_ids(hook: AnaplanHook, requests_mock: Any) -> None:
    requests_mock.get(
        f"{MODEL_URL}/files",
        json=files_payload({"id": "113000000003", "name": "Budget.csv"}, {"id": "113000000004", "name": "Budget.csv"}),
    )
    with pytest.raises(NameResolutionError, match="113000000003, 113000000004"):
        hook.resolve_id("files", "Budget.csv")


def test_paging_follows_total_size(hook: AnaplanHook, requests_mock: Any) -> None:
    def page(request: Any, context: Any) -> dict[str, Any]:
        offset = int(request.qs["offset"][0])
        items = [{"id": str(i), "name": f"f{i}"} for i in range(offset, min(offset + 2, 5))]
        return {"meta": {"paging": {"offset": offset, "totalSize": 5}}, "files": items}

    requests_mock.get(f"{MODEL_URL}/files", json=page)
    assert [f["id"] for f in hook.list_files()] == ["0", "1", "2", "3", "4"]


def test_run_action_body_puts_locale_first(hook: AnaplanHook, requests_mock: Any) -> None:
    url = f"{MODEL_URL}/processes/118000000001/tasks"
    requests_mock.post(url, json={"task": {"taskId": "T1", "taskState": "NOT_STARTED"}})
    hook.run_action(ActionType.PROCESS, "118000000001", mapping_parameters={"Version": "Actual"})
    sent = requests_mock.request_history[-1].text
    assert sent.index("localeName") < sent.index("mappingParameters")
    assert json.loads(sent)["mappingParameters"] == [{"entityType": "Version", "entityName": "Actual"}]


def test_task_outcomes() -> None:
    assert task_outcome({"taskState": "IN_PROGRESS"}).value == "running"
    assert task_outcome({"taskState": "CANCELLING"}).value == "running"
    assert task_outcome({"taskState": "COMPLETE", "result": {"successful": True}}).value == "succeeded"
    assert task_outcome({"taskState": "COMPLETE", "result": {"successful": False}}).value == "failed"
    assert task_outcome({"taskState": "CANCELLED"}).value == "failed"
    assert task_outcome({"taskState": "SOMETHING_NEW"}).value == "running"
    assert task_request_body("en_US", None) == {"localeName": "en_US"}


def test_action_type_from_id() -> None:
    assert ActionType.from_id("112000000001") is ActionType.IMPORT
    assert ActionType.from_id("118000000001") is ActionType.PROCESS
    with pytest.raises(Exception, match="action_type"):
        ActionType.from_id("999")


# -- files ---------------------------------------------------------------------------------------


def test_upload_refuses_unknown_file_id(hook: AnaplanHook, requests_mock: Any, tmp_path: Path) -> None:
    requests_mock.get(f"{MODEL_URL}/files", json=files_payload({"id": "113000000001", "name": "Actuals.csv"}))
    source = tmp_path / "a.csv"
    source.write_bytes(b"x")
    with pytest.raises(NotFoundError, match="silently create"):
        hook.upload_file("113000000999", source)
    assert not any(r.method == "POST" and "/files/" in r.url for r in requests_mock.request_history)


def test_upload_validates_chunk_size(hook: AnaplanHook, tmp_path: Path) -> None:
    with pytest.raises(UploadError, match="between 1 MiB and 50 MiB"):
        hook.upload_file("113000000001", tmp_path / "x", chunk_size=51 * MIB)


def test_upload_sends_every_chunk(hook: AnaplanHook, requests_mock: Any, tmp_path: Path) -> None:
    requests_mock.get(f"{MODEL_URL}/files", json=files_payload({"id": "113000000001", "name": "Actuals.csv"}))
    requests_mock.post(f"{MODEL_URL}/files/113000000001", json={"file": {}})
    received: dict[int, bytes] = {}

    def put(request: Any, context: Any) -> str:
        received[int(request.url.rsplit("/", 1)[1])] = body_bytes(request)
        context.status_code = 204
        return ""

    requests_mock.put(requests_mock_any_chunk(), text=put)
    data = bytes(range(256)) * (4096 * 10 + 7)  # 10 MiB + a bit -> 11 chunks of 1 MiB
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    result = hook.upload_file("113000000001", source, chunk_size=MIB, max_parallel=3)
    assert result["chunk_count"] == 11 and result["bytes"] == len(data)
    assert b"".join(received[i] for i in range(11)) == data
    declared = next(r for r in requests_mock.request_history if r.method == "POST" and r.url.endswith("113000000001"))
    assert declared.json() == {"chunkCount": 11}


def test_failing_chunk_fails_the_upload(
    hook: AnaplanHook, requests_mock: Any, tmp_path: Path, sleeps: list[float]
) -> None:
    requests_mock.get(f"{MODEL_URL}/files", json=files_payload({"id": "113000000001", "name": "Actuals.csv"}))
    requests_mock.post(f"{MODEL_URL}/files/113000000001", json={"file": {}})
    requests_mock.put(requests_mock_any_chunk(), status_code=204)
    requests_mock.put(f"{MODEL_URL}/files/113000000001/chunks/2", status_code=503)
    source = tmp_path / "big.bin"
    source.write_bytes(b"a" * (5 * MIB))
    with pytest.raises(UploadError, match="Chunk 2"):
        hook.upload_file("113000000001", source, chunk_size=MIB, max_parallel=2)
    assert not any(r.url.endswith("/complete") for r in requests_mock.request_history)
    chunk2 = [r for r in requests_mock.request_history if r.url.endswith("/chunks/2")]
    assert len(chunk2) == 8  # retried by the core before giving up


def test_gzip_chunks(hook: AnaplanHook, requests_mock: Any, tmp_path: Path) -> None:
    import gzip

    requests_mock.get(f"{MODEL_URL}/files", json=files_payload({"id": "113000000001", "name": "Actuals.csv"}))
    requests_mock.post(f"{MODEL_URL}/files/113000000001", json={"file": {}})
    requests_mock.put(requests_mock_any_chunk(), status_code=204)
    source = tmp_path / "a.csv"
    source.write_bytes(b"Region,Amount\n" * 1000)
    hook.upload_file("113000000001", source, compress=True)
    put = next(r for r in requests_mock.request_history if r.method == "PUT")
    assert put.headers["Content-Type"] == "application/x-gzip"
    assert gzip.decompress(put.body) == source.read_bytes()


def test_download_streams_chunks_to_destination(hook: AnaplanHook, requests_mock: Any, tmp_path: Path) -> None:
    base = f"{MODEL_URL}/files/116000000001"
    requests_mock.get(f"{base}/chunks", json={"chunks": [{"id": "0"}, {"id": "1"}]})
    requests_mock.get(f"{base}/chunks/0", content=b"a,b\n", headers={"Content-Type": "application/octet-stream"})
    requests_mock.get(f"{base}/chunks/1", content=b"1,2\n", headers={"Content-Type": "application/octet-stream"})
    target = tmp_path / "out" / "forecast.csv"
    result = hook.download_file("116000000001", target)
    assert target.read_bytes() == b"a,b\n1,2\n" and result["bytes"] == 8


def test_failed_download_leaves_no_partial_file(hook: AnaplanHook, requests_mock: Any, tmp_path: Path) -> None:
    base = f"{MODEL_URL}/files/116000000001"
    requests_mock.get(f"{base}/chunks", json={"chunks": [{"id": "0"}, {"id": "1"}]})
    requests_mock.get(f"{base}/chunks/0", content=b"a,b\n")
    requests_mock.get(f"{base}/chunks/1", status_code=404)
    target = tmp_path / "forecast.csv"
    with pytest.raises(NotFoundError):
        hook.download_file("116000000001", target)
    assert list(tmp_path.iterdir()) == []


# -- dumps ---------------------------------------------------------------------------------------


def test_import_dump_is_read_by_chunks(hook: AnaplanHook, requests_mock: Any, tmp_path: Path) -> None:
    base = f"{MODEL_URL}/imports/112000000001/tasks/T1/dump"
    requests_mock.get(f"{base}/chunks", json={"chunks": [{"id": "0"}, {"id": "1"}]})
    requests_mock.get(
        f"{base}/chunks/0", content=b'"_Status_","Region"\n"E","X"\n', headers={"Content-Type": "text/csv"}
    )
    requests_mock.get(f"{base}/chunks/1", content=b'"E","Y"\n', headers={"Content-Type": "text/csv"})
    assert hook.dump_head("import", "112000000001", "T1", max_lines=2) == ['"_Status_","Region"', '"E","X"']
    assert hook.save_dump(tmp_path / "d.csv", "import", "112000000001", "T1") == 36
    assert (tmp_path / "d.csv").read_bytes().endswith(b'"E","X"\n"E","Y"\n')


def test_process_dump_uses_object_id(hook: AnaplanHook, requests_mock: Any) -> None:
    base = f"{MODEL_URL}/processes/118000000001/tasks/T1/dumps/112000000001"
    requests_mock.get(f"{base}/chunks", json={"chunks": [{"id": "0"}]})
    requests_mock.get(f"{base}/chunks/0", content=b"h\nr\n", headers={"Content-Type": "text/csv"})
    assert b"".join(hook.iter_dump("process", "118000000001", "T1", object_id="112000000001")) == b"h\nr\n"


def test_replaced_dump_404_is_reported(hook: AnaplanHook, requests_mock: Any) -> None:
    requests_mock.get(f"{MODEL_URL}/imports/112000000001/tasks/OLD/dump/chunks", status_code=404)
    with pytest.raises(DumpUnavailableError, match="no longer available"):
        list(hook.iter_dump("import", "112000000001", "OLD"))


def test_secrets_never_in_repr_or_errors(hook: AnaplanHook, requests_mock: Any) -> None:
    requests_mock.get(f"{ANAPLAN_API}/workspaces", status_code=400, json={"message": "bad"})
    with pytest.raises(InvalidRequestError) as info:
        hook.list_workspaces()
    assert "s3cret" not in str(info.value) and "tok-1" not in str(info.value)
    assert "s3cret" not in repr(hook.get_conn().config)


def body_bytes(request: Any) -> bytes:
    """A request body as bytes (local uploads stream file slices rather than sending bytes)."""
    body = request.body
    return body.read() if hasattr(body, "read") else body


def test_retried_chunk_is_streamed_again_in_full(
    hook: AnaplanHook, requests_mock: Any, tmp_path: Path, sleeps: list[float]
) -> None:
    requests_mock.get(f"{MODEL_URL}/files", json=files_payload({"id": "113000000001", "name": "Actuals.csv"}))
    requests_mock.post(f"{MODEL_URL}/files/113000000001", json={"file": {}})
    attempts: list[bytes] = []

    def flaky(request: Any, context: Any) -> str:
        attempts.append(body_bytes(request))
        context.status_code = 503 if len(attempts) == 1 else 204
        return ""

    requests_mock.put(requests_mock_any_chunk(), status_code=204)
    requests_mock.put(f"{MODEL_URL}/files/113000000001/chunks/1", text=flaky)
    data = os.urandom(MIB) + os.urandom(MIB // 2)
    (tmp_path / "d.bin").write_bytes(data)
    hook.upload_file("113000000001", tmp_path / "d.bin", chunk_size=MIB)
    assert attempts == [data[MIB:], data[MIB:]]


def test_buffered_uploads_respect_the_memory_budget(
    hook: AnaplanHook, requests_mock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from airflow_provider_sapplan.hooks import anaplan_files as module

    requests_mock.get(f"{MODEL_URL}/files", json=files_payload({"id": "113000000001", "name": "Actuals.csv"}))
    requests_mock.post(f"{MODEL_URL}/files/113000000001", json={"file": {}})
    active = {"now": 0, "max": 0}
    lock = threading.Lock()

    def slow_put(self: Any, index: int, body: Any, length: int) -> None:
        assert isinstance(body, bytes)  # gzip needs the chunk in memory
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        threading.Event().wait(0.05)  # not time.sleep: the sleeps fixture records instead of sleeping
        with lock:
            active["now"] -= 1

    monkeypatch.setattr(module._ChunkUploader, "_put", slow_put)
    monkeypatch.setattr(module, "BUFFERED_BYTES_BUDGET", 2 * MIB)
    (tmp_path / "d.csv").write_bytes(b"x" * (MIB * 8))
    hook.upload_file("113000000001", tmp_path / "d.csv", chunk_size=MIB, compress=True, max_parallel=8)
    assert active["max"] == 2  # 2 MiB budget / 1 MiB chunks, although 8 were allowed


def requests_mock_any_chunk() -> Any:
    import re

    return re.compile(r".*/files/\d+/chunks/\d+$")


def test_file_slices_go_out_with_content_length(tmp_path: Any) -> None:
    """A chunk read from disk is sized (Content-Length), never sent with Transfer-Encoding: chunked."""
    import requests

    from airflow_provider_sapplan.hooks.anaplan_files import _FileSlice

    source = tmp_path / "data.csv"
    source.write_bytes(b"x" * 1000)
    body = _FileSlice(str(source), 100, 300)
    prepared = requests.Request("PUT", "https://api.anaplan.test/chunk", data=body).prepare()
    body.close()
    assert prepared.headers.get("Content-Length") == "300"
    assert "Transfer-Encoding" not in prepared.headers

"""Anaplan files: chunked upload, gzip chunks, completion, download, implicit file creation, paging."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import requests

from airflow_provider_sapplan.sandbox import SandboxServer
from airflow_provider_sapplan.sandbox.anaplan import MODEL_ID

from .conftest import AnaplanClient

CHUNK_ROUTE = "/anaplan/api/2/0/workspaces/{ws}/models/{model}/files/{file}/chunks/{chunk}"


def test_files_list_has_seeded_files_and_paging(client: AnaplanClient) -> None:
    body = client.get("/files").json()
    names = {f["id"]: f["name"] for f in body["files"]}
    assert names["113000000001"] == "Actuals.csv"
    assert names["113000000003"] == names["113000000004"] == "Budget.csv"  # same name: ambiguous by name
    assert names["116000000001"] == "Forecast.csv"
    assert body["meta"]["paging"] == {"currentPageSize": 5, "offset": 0, "totalSize": 5}
    assert body["status"] == {"code": 200, "message": "Success"}

    page = client.get("/files?limit=2&offset=2").json()
    assert [f["id"] for f in page["files"]] == ["113000000003", "113000000004"]
    paging = page["meta"]["paging"]
    assert paging["currentPageSize"] == 2 and paging["totalSize"] == 5 and paging["offset"] == 2
    assert paging["next"].endswith("limit=2&offset=4")
    assert paging["previous"].endswith("limit=2&offset=0")
    last = client.get(paging["next"]).json()
    assert [f["id"] for f in last["files"]] == ["116000000001"]
    assert "next" not in last["meta"]["paging"]
    assert client.get("/files?limit=0").status_code == 400


def test_multi_chunk_upload_lists_chunks_and_downloads_identically(
    client: AnaplanClient, sandbox: SandboxServer
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 12345)
    client.upload("113000000001", data, chunk_size=1024 * 1024)
    chunks = client.get("/files/113000000001/chunks").json()["chunks"]
    assert chunks == [{"id": str(i), "name": f"Chunk {i}"} for i in range(4)]
    assert client.download("113000000001") == data
    assert sandbox.anaplan.read_file("113000000001") == data
    raw = requests.get(f"{sandbox.url}/_sandbox/anaplan/files/113000000001")
    assert raw.content == data
    listed = {f["id"]: f for f in client.get("/files").json()["files"]}
    assert listed["113000000001"]["chunkCount"] == 4
    assert sandbox.stats.requests[f"PUT {CHUNK_ROUTE}"] == 4


def test_gzip_chunks_are_stored_uncompressed(client: AnaplanClient, sandbox: SandboxServer) -> None:
    first, second = b"Version,Region,Amount\n" + b"Actual,EMEA,1\n" * 1000, b"Actual,APAC,2\n" * 500
    assert client.post("/files/113000000001", json={"chunkCount": 2}).status_code == 200
    gz = {"Content-Type": "application/x-gzip"}
    assert client.put("/files/113000000001/chunks/0", data=gzip.compress(first), headers=gz).status_code == 204
    assert client.put("/files/113000000001/chunks/1", data=gzip.compress(second), headers=gz).status_code == 204
    assert client.download("113000000001") == first + second
    corrupt = client.put("/files/113000000001/chunks/0", data=b"not gzip at all", headers=gz)
    assert corrupt.status_code == 400


def test_chunk_limits(client: AnaplanClient) -> None:
    client.post("/files/113000000001", json={"chunkCount": -1})
    octet = {"Content-Type": "application/octet-stream"}
    assert client.put("/files/113000000001/chunks/1000", data=b"x", headers=octet).status_code == 400
    assert client.put("/files/113000000001/chunks/-1", data=b"x", headers=octet).status_code == 400
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024 + 1))  # 51 KB that inflates past 50 MiB
    too_big = client.put("/files/113000000001/chunks/0", data=bomb, headers={"Content-Type": "application/x-gzip"})
    assert too_big.status_code == 400
    assert "50 MB" in too_big.json()["status"]["message"]
    unknown = client.put("/files/113999999999/chunks/0", data=b"x", headers=octet)
    assert unknown.status_code == 404
    assert client.post("/files/113000000001", json={"chunkCount": 0}).status_code == 400
    assert client.post("/files/113000000001", json={"chunkCount": 1001}).status_code == 400
    # the connection is still usable after refused bodies
    assert client.get("/files").status_code == 200


def test_unknown_chunk_count_needs_complete_and_names_a_missing_chunk(client: AnaplanClient) -> None:
    octet = {"Content-Type": "application/octet-stream"}
    assert client.post("/files/113000000002", json={"chunkCount": -1}).json()["file"]["chunkCount"] == -1
    client.put("/files/113000000002/chunks/0", data=b"Employee,Parent\n", headers=octet)
    client.put("/files/113000000002/chunks/2", data=b"B,Sales\n", headers=octet)
    missing = client.post("/files/113000000002/complete", json={"id": "113000000002"})
    assert missing.status_code == 400
    assert "chunk 1" in missing.json()["status"]["message"]
    client.put("/files/113000000002/chunks/1", data=b"A,Sales\n", headers=octet)
    done = client.post("/files/113000000002/complete", json={"id": "113000000002"})
    assert done.status_code == 200
    assert done.json()["file"]["chunkCount"] == 3
    assert client.download("113000000002") == b"Employee,Parent\nA,Sales\nB,Sales\n"


def test_content_is_replaced_only_when_the_upload_is_whole(client: AnaplanClient) -> None:
    client.upload("113000000001", b"v1 content\n", chunk_size=100)
    client.post("/files/113000000001", json={"chunkCount": 2})
    client.put("/files/113000000001/chunks/0", data=b"v2 part 1\n")
    assert client.download("113000000001") == b"v1 content\n"
    client.put("/files/113000000001/chunks/1", data=b"v2 part 2\n")
    assert client.download("113000000001") == b"v2 part 1\nv2 part 2\n"


def test_posting_a_chunk_count_to_an_unknown_file_silently_creates_it(
    client: AnaplanClient, sandbox: SandboxServer
) -> None:
    response = client.post("/files/Actuals.csv", json={"chunkCount": 1})
    assert response.status_code == 200  # no error: a real model gains a stray file
    assert response.json()["file"]["id"] == "Actuals.csv"
    assert "Actuals.csv" in {f["id"] for f in client.get("/files").json()["files"]}
    assert sandbox.stats.files_created == [f"{MODEL_ID}/Actuals.csv"]
    assert requests.get(f"{sandbox.url}/_sandbox/stats").json()["files_created"] == [f"{MODEL_ID}/Actuals.csv"]


def test_single_chunk_put_and_delete(client: AnaplanClient, sandbox: SandboxServer) -> None:
    response = client.put("/files/113000000003", data=b"Version,Region,Amount\nBudget,EMEA,5\n")
    assert response.status_code == 204
    assert client.get("/files/113000000003/chunks").json()["chunks"] == [{"id": "0", "name": "Chunk 0"}]
    gz = client.put("/files/113000000003", data=gzip.compress(b"x"), headers={"Content-Type": "application/x-gzip"})
    assert gz.status_code == 415
    assert client.delete("/files/113000000003").status_code == 204
    # the private content is gone; the default file (set in the UI) remains
    assert sandbox.anaplan.read_file("113000000003") == b"Version,Region,Amount\nBudget,EMEA,1000\nBudget,APAC,800\n"
    assert {f["id"]: f for f in client.get("/files").json()["files"]}["113000000003"]["chunkCount"] == 0


def test_download_errors(client: AnaplanClient) -> None:
    assert client.get("/files/113000000001/chunks/7").status_code == 404
    assert client.get("/files/113999999999/chunks").status_code == 404
    assert client.get("/files/116000000001/chunks").json()["chunks"] == []  # export not run yet


def test_chunked_transfer_encoding_request_body(client: AnaplanClient, sandbox: SandboxServer) -> None:
    """A strict gateway refuses a chunk without Content-Length (411) unless the sandbox is told to accept it."""
    data = os.urandom(300_000)
    client.post("/files/113000000001", json={"chunkCount": 1})

    def pieces() -> Iterator[bytes]:  # a generator makes requests send Transfer-Encoding: chunked
        for start in range(0, len(data), 65536):
            yield data[start : start + 65536]

    refused = client.put(
        "/files/113000000001/chunks/0", data=pieces(), headers={"Content-Type": "application/octet-stream"}
    )
    assert refused.status_code == 411 and "Content-Length" in refused.text
    sandbox.anaplan.accept_chunked_bodies = True
    response = client.put(
        "/files/113000000001/chunks/0", data=pieces(), headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 204
    assert client.download("113000000001") == data


def test_control_api_writes_file_content(sandbox: SandboxServer, client: AnaplanClient) -> None:
    content = b"Version,Region,Amount\nActual,EMEA,1\n"
    assert requests.put(f"{sandbox.url}/_sandbox/anaplan/files/113000000001", data=content).status_code == 204
    assert client.download("113000000001") == content
    assert requests.get(f"{sandbox.url}/_sandbox/anaplan/files/119999999999").status_code == 404


def test_parallel_chunk_uploads(client: AnaplanClient, sandbox: SandboxServer) -> None:
    chunks = [os.urandom(512 * 1024) for _ in range(8)]
    assert client.post("/files/113000000001", json={"chunkCount": len(chunks)}).status_code == 200
    headers = {**client.session.headers, "Content-Type": "application/octet-stream"}

    def put(index: int) -> int:
        url = f"{client.model}/files/113000000001/chunks/{index}"
        return requests.put(url, data=chunks[index], headers=headers).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(put, reversed(range(len(chunks)))))
    assert codes == [204] * len(chunks)
    assert sandbox.anaplan.read_file("113000000001") == b"".join(chunks)

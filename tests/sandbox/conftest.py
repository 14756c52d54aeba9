"""Fixtures for the sandbox tests: one in-process server per module, reset before every test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_sapplan.sandbox import SandboxServer
from airflow_provider_sapplan.sandbox.anaplan import MODEL_ID, USER_EMAIL, USER_PASSWORD, WORKSPACE_ID

#: Emulated durations run 50 times faster: default queue 4 ms, default run 20 ms.
TIME_SCALE = 0.02


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    """A running sandbox shared by the tests of one module."""
    with SandboxServer(port=0, time_scale=TIME_SCALE) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> None:
    """Every test starts from the seed state, with no faults and empty stats."""
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").reset()


class AnaplanClient:
    """Minimal client for the tests: a keep-alive session with a token and the model's base URL."""

    def __init__(self, sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self.auth_url = f"{sandbox.url}/anaplan/auth"
        self.api = f"{sandbox.url}/anaplan/api/2/0"
        self.model = f"{self.api}/workspaces/{WORKSPACE_ID}/models/{MODEL_ID}"
        self.session = requests.Session()
        self.token = ""

    def login(self) -> str:
        """Authenticate with Basic and use the token for every later call."""
        response = self.session.post(f"{self.auth_url}/token/authenticate", auth=(USER_EMAIL, USER_PASSWORD))
        assert response.status_code == 201, response.text
        self.token = response.json()["tokenInfo"]["tokenValue"]
        self.session.headers["Authorization"] = f"AnaplanAuthToken {self.token}"
        return self.token

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self._url(path), **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self._url(path), **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.put(self._url(path), **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.delete(self._url(path), **kwargs)

    def _url(self, path: str) -> str:
        if path.startswith("http"):
            return path
        if path.startswith("/workspaces") or path.startswith("/models"):
            return f"{self.api}{path}"
        return f"{self.model}{path}"

    def upload(self, file_id: str, data: bytes, chunk_size: int) -> None:
        """Chunked upload with a known chunk count."""
        chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] or [b""]
        assert self.post(f"/files/{file_id}", json={"chunkCount": len(chunks)}).status_code == 200
        for index, chunk in enumerate(chunks):
            response = self.put(
                f"/files/{file_id}/chunks/{index}", data=chunk, headers={"Content-Type": "application/octet-stream"}
            )
            assert response.status_code == 204, response.text

    def download(self, file_id: str) -> bytes:
        """Download a file chunk by chunk."""
        chunks = self.get(f"/files/{file_id}/chunks").json()["chunks"]
        return b"".join(self.get(f"/files/{file_id}/chunks/{c['id']}").content for c in chunks)

    def start(self, kind: str, action_id: str, **body: Any) -> str:
        """Start a task; returns its id."""
        payload = {"localeName": "en_US", **body}
        response = self.post(f"/{kind}/{action_id}/tasks", json=payload)
        assert response.status_code == 200, response.text
        return str(response.json()["task"]["taskId"])

    def wait(self, kind: str, action_id: str, task_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """Poll a task until COMPLETE or CANCELLED; returns the task object."""
        deadline = time.monotonic() + timeout
        while True:
            task = self.get(f"/{kind}/{action_id}/tasks/{task_id}").json()["task"]
            if task["taskState"] in ("COMPLETE", "CANCELLED"):
                return dict(task)
            assert time.monotonic() < deadline, f"task still {task['taskState']}"
            time.sleep(0.005)

    def run(self, kind: str, action_id: str, **body: Any) -> tuple[str, dict[str, Any]]:
        """Start a task and wait for it."""
        task_id = self.start(kind, action_id, **body)
        return task_id, self.wait(kind, action_id, task_id)


@pytest.fixture
def client(sandbox: SandboxServer) -> AnaplanClient:
    """A logged-in Anaplan client."""
    anaplan = AnaplanClient(sandbox)
    anaplan.login()
    return anaplan

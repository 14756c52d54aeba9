"""Anaplan authentication service: Basic, CA certificate v1/v2, refresh, validate, logout, expiry."""

from __future__ import annotations

import base64
import os
import struct
import time
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from airflow_provider_sapplan.sandbox import SandboxServer
from tests.certificates import self_signed

from .conftest import AnaplanClient


@pytest.fixture(scope="module")
def certificate() -> tuple[rsa.RSAPrivateKey, bytes]:
    """A self-signed RSA certificate (PEM) and its private key."""
    key, cert = self_signed("Sandbox Integration", email="integration@example.com")
    return key, cert.encode()


def _payload(key: rsa.RSAPrivateKey, data: bytes, v2: bool) -> dict[str, Any]:
    signature = key.sign(data, padding.PKCS1v15(), hashes.SHA512())
    body = {"encodedData": base64.b64encode(data).decode(), "encodedSignedData": base64.b64encode(signature).decode()}
    if v2:
        body = {"encodedDataFormat": "v2", **body}
    return body


def _cert_login(sandbox: SandboxServer, header: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{sandbox.url}/anaplan/auth/token/authenticate",
        headers={"Authorization": f"CACertificate {header}"},
        json=body,
    )


def test_basic_login_returns_token_info(sandbox: SandboxServer) -> None:
    before = time.time()
    response = requests.post(f"{sandbox.url}/anaplan/auth/token/authenticate", auth=("demo@example.com", "demo"))
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "SUCCESS"
    assert body["statusMessage"] == "Login successful"
    assert body["meta"]["validationUrl"].endswith("/anaplan/auth/token/validate")
    info = body["tokenInfo"]
    assert set(info) == {"tokenId", "tokenValue", "expiresAt", "refreshTokenId"}
    # expiresAt is epoch milliseconds, 35 minutes ahead by default
    assert before * 1000 + 2099_000 <= info["expiresAt"] <= time.time() * 1000 + 2101_000
    assert sandbox.stats.auth_requests["anaplan"] == 1


def test_basic_login_with_wrong_password_is_401(sandbox: SandboxServer) -> None:
    response = requests.post(f"{sandbox.url}/anaplan/auth/token/authenticate", auth=("demo@example.com", "nope"))
    assert response.status_code == 401
    assert response.json()["status"] == "FAILURE_BAD_CREDENTIAL"


def test_api_needs_a_token(sandbox: SandboxServer) -> None:
    response = requests.get(f"{sandbox.url}/anaplan/api/2/0/workspaces")
    assert response.status_code == 401
    assert response.json() == {"status": {"code": 401, "message": "Unauthorized"}}
    bad = requests.get(f"{sandbox.url}/anaplan/api/2/0/workspaces", headers={"Authorization": "AnaplanAuthToken x"})
    assert bad.status_code == 401


@pytest.mark.parametrize("form", ["pem_b64", "der_b64"])
def test_certificate_v1_accepts_both_header_forms(
    sandbox: SandboxServer, certificate: tuple[rsa.RSAPrivateKey, bytes], form: str
) -> None:
    key, pem = certificate
    header = (
        base64.b64encode(pem).decode()
        if form == "pem_b64"
        else "".join(pem.decode().strip().splitlines()[1:-1])  # the PEM body: DER in base64
    )
    response = _cert_login(sandbox, header, _payload(key, os.urandom(150), v2=False))
    assert response.status_code == 201, response.text
    token = response.json()["tokenInfo"]["tokenValue"]
    ok = requests.get(
        f"{sandbox.url}/anaplan/api/2/0/workspaces", headers={"Authorization": f"AnaplanAuthToken {token}"}
    )
    assert ok.status_code == 200


def test_certificate_v2_with_current_timestamp(
    sandbox: SandboxServer, certificate: tuple[rsa.RSAPrivateKey, bytes]
) -> None:
    key, pem = certificate
    data = struct.pack(">Q", int(time.time())) + os.urandom(92)
    response = _cert_login(sandbox, base64.b64encode(pem).decode(), _payload(key, data, v2=True))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [
        (lambda: int(time.time()) - 900, "behind"),
        (lambda: int(time.time() * 1000), "ahead"),  # milliseconds instead of seconds
    ],
)
def test_certificate_v2_rejects_a_stale_or_millisecond_timestamp(
    sandbox: SandboxServer, certificate: tuple[rsa.RSAPrivateKey, bytes], stamp: Any, reason: str
) -> None:
    key, pem = certificate
    data = struct.pack(">Q", stamp()) + os.urandom(92)
    response = _cert_login(sandbox, base64.b64encode(pem).decode(), _payload(key, data, v2=True))
    assert response.status_code == 401
    body = response.json()
    assert body["status"].startswith("FAILURE")
    assert "timestamp" in body["statusMessage"] and reason in body["statusMessage"]


def test_certificate_rejects_bad_signature_and_short_data(
    sandbox: SandboxServer, certificate: tuple[rsa.RSAPrivateKey, bytes]
) -> None:
    key, pem = certificate
    header = base64.b64encode(pem).decode()
    body = _payload(key, os.urandom(150), v2=False)
    body["encodedData"] = base64.b64encode(os.urandom(150)).decode()  # signature no longer matches
    bad_signature = _cert_login(sandbox, header, body)
    assert bad_signature.status_code == 401
    assert "signature" in bad_signature.json()["statusMessage"]
    short = _cert_login(sandbox, header, _payload(key, os.urandom(50), v2=False))
    assert short.status_code == 401
    assert "100 bytes" in short.json()["statusMessage"]


def test_refresh_issues_a_new_token_and_invalidates_the_old_one(client: AnaplanClient) -> None:
    old = client.token
    response = client.session.post(f"{client.auth_url}/token/refresh")
    assert response.status_code == 201
    body = response.json()
    assert body["statusMessage"] == "Token refreshed"
    new = body["tokenInfo"]["tokenValue"]
    assert new != old
    assert client.get("/workspaces").status_code == 401  # the session still sends the old token
    client.session.headers["Authorization"] = f"AnaplanAuthToken {new}"
    assert client.get("/workspaces").status_code == 200
    again = requests.post(f"{client.auth_url}/token/refresh", headers={"Authorization": f"AnaplanAuthToken {old}"})
    assert again.status_code == 401


def test_validate_and_logout(client: AnaplanClient) -> None:
    valid = client.session.get(f"{client.auth_url}/token/validate")
    assert valid.status_code == 200
    assert valid.json()["statusMessage"] == "Token validated"
    assert client.session.post(f"{client.auth_url}/token/logout").status_code == 204
    assert client.get("/workspaces").status_code == 401
    assert client.session.get(f"{client.auth_url}/token/validate").status_code == 401


def test_expire_tokens_control_endpoint(sandbox: SandboxServer, client: AnaplanClient) -> None:
    assert client.get("/workspaces").status_code == 200
    response = requests.post(f"{sandbox.url}/_sandbox/anaplan/expire_tokens")
    assert response.json()["expired"] >= 1
    assert client.get("/workspaces").status_code == 401
    assert client.session.post(f"{client.auth_url}/token/refresh").status_code == 401
    client.login()
    assert client.get("/workspaces").status_code == 200
    assert sandbox.stats.auth_requests["anaplan"] == 3  # login, refresh, login


def test_token_ttl_is_honoured() -> None:
    with SandboxServer(token_ttl=0.2) as short:
        client = AnaplanClient(short)
        client.login()
        assert client.get("/workspaces").status_code == 200
        time.sleep(0.25)
        assert client.get("/workspaces").status_code == 401

"""Anaplan sandbox: the auth service's state (tokens: basic and certificate logins, refresh, validate,
logout, expiry). Plain Python, no HTTP; mixed into :class:`~.backend.AnaplanBackend`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import struct
import uuid
from typing import Any

from .models import (
    CERT_MIN_DATA_BYTES,
    CERT_V2_WINDOW_SECONDS,
    USER_EMAIL,
    USER_PASSWORD,
    AnaplanAuthError,
    Token,
)


class TokensMixin:
    """Token issue, login checks and expiry; uses the backend's ``_lock``, ``tokens`` and ``context``."""

    def _now(self) -> float:
        return self.context.clock()

    def _issue(self, user: str) -> Token:
        value = (
            base64.b64encode(secrets.token_bytes(16)).decode()
            + "."
            + base64.b64encode(secrets.token_bytes(48)).decode()
        )
        token = Token(
            value=value,
            token_id=str(uuid.uuid4()),
            refresh_token_id=str(uuid.uuid4()),
            user=user,
            expires_at=self._now() + self.context.token_ttl,
        )
        self.tokens[value] = token
        return token

    def create_token(self, user: str = USER_EMAIL) -> Token:
        """Issue a token without an HTTP round trip (for tests that skip authentication)."""
        with self._lock:
            return self._issue(user)

    def authenticate_basic(self, authorization: str) -> Token:
        """``Authorization: Basic ...`` -> a new token, or :class:`AnaplanAuthError`."""
        try:
            decoded = base64.b64decode(authorization.split(None, 1)[1], validate=True).decode()
            user, _, password = decoded.partition(":")
        except (IndexError, ValueError, binascii.Error) as exc:
            raise AnaplanAuthError("Malformed Basic authorization header") from exc
        accepted = self.context.credentials
        if user != accepted.get("anaplan", "user", USER_EMAIL) or not secrets.compare_digest(
            password.encode(), accepted.get("anaplan", "password", USER_PASSWORD).encode()
        ):
            raise AnaplanAuthError("Login failed: the user name or password is incorrect")
        with self._lock:
            return self._issue(user)

    def authenticate_certificate(self, header_value: str, body: Any) -> Token:
        """``Authorization: CACertificate ...`` plus signed payload -> a new token.

        The header value may be base64 of the whole PEM file or the PEM body (DER in base64). The
        signature must be RSA PKCS#1 v1.5 with SHA-512 over the decoded ``encodedData``. With
        ``"encodedDataFormat": "v2"`` the data starts with an 8-byte big-endian epoch-seconds
        timestamp that must be within 300 s of now.
        """
        try:
            from cryptography import x509
            from cryptography.exceptions import InvalidSignature
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding, rsa
        except ImportError as exc:  # pragma: no cover - cryptography ships with Airflow
            raise AnaplanAuthError("Certificate authentication needs the 'cryptography' package") from exc

        cert_text = header_value.strip()
        try:
            raw = base64.b64decode(cert_text + "=" * (-len(cert_text) % 4))
            if b"-----BEGIN" in raw:
                cert = x509.load_pem_x509_certificate(raw[raw.index(b"-----BEGIN") :])
            else:
                cert = x509.load_der_x509_certificate(raw)
        except (ValueError, binascii.Error) as exc:
            raise AnaplanAuthError(f"Login failed: the CACertificate header is not a certificate ({exc})") from exc
        if not isinstance(body, dict):
            raise AnaplanAuthError("Login failed: the body must be JSON with encodedData and encodedSignedData")
        try:
            data = base64.b64decode(str(body["encodedData"]), validate=True)
            signature = base64.b64decode(str(body["encodedSignedData"]), validate=True)
        except KeyError as exc:
            raise AnaplanAuthError(f"Login failed: {exc.args[0]} is missing from the body") from exc
        except (ValueError, binascii.Error) as exc:
            raise AnaplanAuthError("Login failed: encodedData and encodedSignedData must be base64") from exc
        data_format = body.get("encodedDataFormat")
        if data_format not in (None, "v1", "v2"):
            raise AnaplanAuthError(f"Login failed: unsupported encodedDataFormat {data_format!r}")
        if len(data) < CERT_MIN_DATA_BYTES:
            raise AnaplanAuthError(
                f"Login failed: encodedData must be at least {CERT_MIN_DATA_BYTES} bytes, got {len(data)}"
            )
        public_key = cert.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise AnaplanAuthError("Login failed: the certificate's key is not an RSA key")
        try:
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA512())
        except InvalidSignature as exc:
            raise AnaplanAuthError(
                "Login failed: encodedSignedData is not a valid SHA512withRSA signature of encodedData "
                "made with the certificate's private key"
            ) from exc
        if data_format == "v2":
            (stamp,) = struct.unpack(">Q", data[:8])
            skew = stamp - self._now()
            if abs(skew) > CERT_V2_WINDOW_SECONDS:
                raise AnaplanAuthError(
                    f"Login failed: the v2 encodedData timestamp {stamp} (8-byte big-endian epoch seconds) "
                    f"is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the server clock; "
                    f"it must be within {CERT_V2_WINDOW_SECONDS} s"
                )
        emails = [a.value for a in cert.subject if a.oid == x509.NameOID.EMAIL_ADDRESS]
        names = [a.value for a in cert.subject if a.oid == x509.NameOID.COMMON_NAME]
        user = str((emails or names or [USER_EMAIL])[0])
        with self._lock:
            return self._issue(user)

    def _valid_token(self, value: str) -> Token | None:
        token = self.tokens.get(value)
        if token is None or token.revoked or token.expires_at <= self._now():
            return None
        return token

    def check_token(self, value: str) -> bool:
        """True if ``value`` is a current, unexpired token."""
        with self._lock:
            return self._valid_token(value) is not None

    def refresh_token(self, value: str) -> Token:
        """Issue a new token for a valid one and invalidate the old one."""
        with self._lock:
            token = self._valid_token(value)
            if token is None:
                raise AnaplanAuthError("Token refresh failed: the token is invalid or expired", "FAILURE_INVALID_TOKEN")
            token.revoked = True
            return self._issue(token.user)

    def validate_token(self, value: str) -> Token:
        """The token behind ``value``, or :class:`AnaplanAuthError`."""
        with self._lock:
            token = self._valid_token(value)
            if token is None:
                raise AnaplanAuthError(
                    "Token validation failed: the token is invalid or expired", "FAILURE_INVALID_TOKEN"
                )
            return token

    def logout(self, value: str) -> None:
        """Invalidate a token."""
        with self._lock:
            token = self._valid_token(value)
            if token is None:
                raise AnaplanAuthError("Logout failed: the token is invalid or expired", "FAILURE_INVALID_TOKEN")
            token.revoked = True

    def expire_tokens(self) -> int:
        """Make every issued token expired (API calls then answer 401); returns how many."""
        with self._lock:
            now = self._now()
            count = 0
            for token in self.tokens.values():
                if not token.revoked and token.expires_at > now:
                    token.expires_at = now - 1
                    count += 1
            return count

"""Recognisable secrets and a search for them: in text, files and every column of a SQLite database.

A secret is ``S3CR3T-<name>-<random hex>+/=`` (the last three characters make URL-encoding and
JSON escaping visible). :func:`needles` turns the secrets of a run into what is searched: each
secret raw, URL-encoded, JSON-escaped and in base64, ``user:secret`` in base64 (HTTP basic auth),
the base64 body lines of every private key (encrypted and decrypted), and the marker ``S3CR3T``
itself in any case and in base64 at all three byte alignments, so a secret that was cut, wrapped
or embedded in a larger base64 blob is still found. Database values are also searched after
zlib decompression (Airflow's compressed serialized DAGs) and Fernet decryption (encrypted trigger
kwargs, variables, connection extras), recursively.

Used by tests/system/test_secrets.py (files + metadata database of a real Airflow run) and
tests/unit/test_secrets_repr.py (reprs, exception texts).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import sqlite3
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from tests.certificates import pem_key, self_signed

MARKER = "S3CR3T"
_FERNET_TOKEN = re.compile(rb"gAAAAA[A-Za-z0-9_\-]{40,}={0,2}")


def make_secret(name: str, tag: str | None = None) -> str:
    """``S3CR3T-<name>-<hex>+/=``: unique to a run, recognisable, with characters that change when encoded."""
    return f"{MARKER}-{name}-{tag or secrets.token_hex(6)}+/="


@dataclass
class SecretSet:
    """The secrets of one run: plain values (with the user they go with, for basic auth) and key PEMs."""

    values: dict[str, str] = field(default_factory=dict)  #: name -> secret
    users: dict[str, str] = field(default_factory=dict)  #: name -> the user/client id sent with it
    pems: dict[str, str] = field(default_factory=dict)  #: name -> PEM text (private keys)

    def add(self, name: str, user: str | None = None) -> str:
        value = make_secret(name)
        self.values[name] = value
        if user is not None:
            self.users[name] = user
        return value


def _b64_fragments(marker: bytes) -> set[str]:
    """Base64 characters that any encoding of ``marker`` contains, whatever its offset in the blob."""
    found = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + marker).decode()
        start = -(-8 * offset // 6)  # first character made only of the marker's bits
        end = 8 * (offset + len(marker)) // 6
        fragment = encoded[start:end]
        found.update({fragment, fragment.replace("+", "-").replace("/", "_")})
    return found


def pem_lines(pem: str) -> list[str]:
    """The base64 body lines of a PEM block long enough to be unique (the header lines are not)."""
    return [line.strip() for line in pem.splitlines() if len(line.strip()) >= 40 and "-----" not in line]


def needles(secret_set: SecretSet) -> dict[str, bytes]:
    """What to search for -> a label naming the secret and the encoding."""
    found: dict[bytes, str] = {}
    for name, value in secret_set.values.items():
        forms = {
            "raw": value,
            "url-encoded": quote(value, safe=""),
            "form-encoded": quote_plus(value),
            "json-escaped": json.dumps(value)[1:-1].replace("/", "\\/"),
            "base64": base64.b64encode(value.encode()).decode(),
        }
        if name in secret_set.users:
            pair = f"{secret_set.users[name]}:{value}".encode()
            forms["basic-auth base64"] = base64.b64encode(pair).decode()
            forms["basic-auth base64 (form-encoded pair)"] = base64.b64encode(
                f"{quote_plus(secret_set.users[name])}:{quote_plus(value)}".encode()
            ).decode()
        for how, text in forms.items():
            found.setdefault(text.encode(), f"{name} ({how})")
    for name, pem in secret_set.pems.items():
        for number, line in enumerate(pem_lines(pem)):
            found.setdefault(line.encode(), f"{name} (PEM body line {number + 1})")
    for fragment in sorted(_b64_fragments(MARKER.encode())):
        found.setdefault(fragment.encode(), f"the marker {MARKER} in base64 ({fragment})")
    return {label: needle for needle, label in found.items()}


def search(data: bytes | str, wanted: dict[str, bytes]) -> list[str]:
    """Labels of the needles found in ``data`` (the marker matched case-insensitively)."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    hits = [label for label, needle in wanted.items() if needle in raw]
    if MARKER.lower().encode() in raw.lower() and not hits:
        hits.append(f"the marker {MARKER} (any case)")
    return hits


def _decoded(
    value: bytes, decrypt: Callable[[bytes], bytes | None] | None, depth: int = 0
) -> Iterator[tuple[str, bytes]]:
    """``value`` and what it decodes to: zlib-decompressed, Fernet-decrypted (nested, a few levels)."""
    yield "", value
    if depth > 3:
        return
    try:
        inflated = zlib.decompress(value)
    except (zlib.error, ValueError):
        inflated = None
    if inflated is not None:
        for how, inner in _decoded(inflated, decrypt, depth + 1):
            yield "zlib" + (f"+{how}" if how else ""), inner
    if decrypt is not None:
        for match in _FERNET_TOKEN.finditer(value):
            plain = decrypt(match.group(0))
            if plain is not None:
                for how, inner in _decoded(plain, decrypt, depth + 1):
                    yield "fernet" + (f"+{how}" if how else ""), inner


def fernet_decrypter(key: str | None) -> Callable[[bytes], bytes | None] | None:
    """A function decrypting one Fernet token with ``key`` (None when the token is not one of its own)."""
    if not key:
        return None
    from cryptography.fernet import Fernet, InvalidToken

    fernet = Fernet(key.encode())

    def decrypt(token: bytes) -> bytes | None:
        try:
            return fernet.decrypt(token)
        except (InvalidToken, ValueError):
            return None

    return decrypt


def scan_files(roots: Iterable[Path], wanted: dict[str, bytes], exclude: Iterable[Path] = ()) -> list[str]:
    """``file:line: label`` for every needle in every file under ``roots`` (binary files too, by offset)."""
    skipped = {path.resolve() for path in exclude}
    findings: list[str] = []
    for root in roots:
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            if path.resolve() in skipped:
                continue
            data = path.read_bytes()
            for label in search(data, wanted):
                needle = wanted.get(label, MARKER.encode())
                index = data.find(needle) if needle in data else data.lower().find(MARKER.lower().encode())
                line = data.count(b"\n", 0, max(index, 0)) + 1
                excerpt = data[max(index - 80, 0) : index + 80].decode("utf-8", "replace").replace("\n", "\\n")
                findings.append(f"{path}:{line}: {label}: ...{excerpt}...")
    return findings


def scan_rows(
    where: str,
    columns: list[str],
    rows: Iterable[tuple[Any, ...]],
    wanted: dict[str, bytes],
    decrypt: Callable[[bytes], bytes | None] | None = None,
    counts: Counter[str] | None = None,
) -> list[str]:
    """``where.column (row n, how decoded): label`` for every needle in ``rows`` (decoded as in :func:`scan_sqlite`)."""
    findings: list[str] = []
    for number, row in enumerate(rows):
        for column, value in zip(columns, row, strict=True):
            for how, data in _decoded(_as_bytes(value), decrypt):
                if counts is not None:
                    counts[how or "values"] += 1
                for label in search(data, wanted):
                    findings.append(f"{where}.{column} (row {number}{', ' + how if how else ''}): {label}")
    return findings


def scan_sqlite(
    db: Path, wanted: dict[str, bytes], fernet_key: str | None = None, counts: Counter[str] | None = None
) -> list[str]:
    """``table.column (row n, how decoded): label`` for every needle in every value of every table.

    Values are searched as stored, zlib-decompressed and Fernet-decrypted with ``fernet_key``;
    ``counts`` (if given) counts the values searched and how many were decompressed or decrypted.
    """
    decrypt = fernet_decrypter(fernet_key)
    findings: list[str] = []
    with sqlite3.connect(db) as conn:
        tables = [row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")]
        for table in tables:
            columns = [row[1] for row in conn.execute(f'pragma table_info("{table}")')]
            rows = conn.execute(f'select * from "{table}"').fetchall()
            findings += scan_rows(table, columns, rows, wanted, decrypt, counts)
    return findings


def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


def key_and_cert(password: str | None) -> tuple[str, str, str]:
    """A self-signed certificate, its key (encrypted with ``password`` if given) and the key in clear."""
    key, cert = self_signed("secrets")
    return cert, pem_key(key, password), pem_key(key)

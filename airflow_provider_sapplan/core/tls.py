"""Client certificates given as PEM text, made usable by ``requests`` and ``ssl`` (which need files).

Each certificate/key pair is made a file once per process. On Linux the files live in memory
(``memfd_create``; the path is ``/proc/self/fd/N``): the private key never touches the disk and
vanishes with the process, however it ends (Airflow 2.11 ends task processes with ``os._exit``,
which skips cleanup at exit). Elsewhere they are written to a private temporary directory (mode
0700, files 0600) removed when the process exits normally.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import ssl
import tempfile
import threading

from airflow_provider_sapplan.core.pem import normalise_pem
from airflow_provider_sapplan.exceptions import ConnectionConfigError

_lock = threading.Lock()
_directory: str | None = None
_written: dict[str, tuple[str, str]] = {}


def _private_directory() -> str:
    global _directory
    if _directory is None:
        _directory = tempfile.mkdtemp(prefix="sapplan-tls-")
        os.chmod(_directory, 0o700)
        atexit.register(shutil.rmtree, _directory, True)
    return _directory


_MARKERS = {"certificate": ("CERTIFICATE",), "private key": ("PRIVATE KEY",)}


def read_pem(value: object, field: str, kind: str, *, connection: str = "this connection") -> str | None:
    """PEM text from a connection field: pasted PEM (escaped ``\\n`` accepted) or the path of a PEM file.

    :param field: the field's name as the user sees it (``"extra 'private_key'"``).
    :param kind: ``"certificate"`` or ``"private key"``: the PEM block the field must hold.
    :raises ConnectionConfigError: for a path that does not exist (the path is never sent anywhere),
        a directory, or text that is not the expected PEM block; the message names the field.
    """
    if value in (None, ""):
        return None
    where = f"{connection[:1].upper()}{connection[1:]}: {field}"
    text = str(value).strip()
    if "-----BEGIN" not in text:
        if "\n" in text or len(text) > 1024 or text.startswith("MII"):  # MII...: a base64 DER body
            raise ConnectionConfigError(
                f"{where} is neither PEM text (starting with -----BEGIN {_MARKERS[kind][0]}-----) nor a file path; "
                "paste the whole PEM block, header and footer lines included."
            )
        path = os.path.expanduser(text)
        if os.path.isdir(path):
            raise ConnectionConfigError(f"{where} names the directory {text!r}; give the PEM file inside it.")
        if not os.path.isfile(path):
            raise ConnectionConfigError(
                f"{where}: no file at {text!r} on this machine. Paste the PEM text itself, or give the path of a "
                "PEM file that exists on every worker and triggerer."
            )
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read().strip()
        except (OSError, UnicodeDecodeError) as err:
            raise ConnectionConfigError(f"{where}: the file {text!r} could not be read ({err}).") from None
        if "-----BEGIN" not in text:
            raise ConnectionConfigError(f"{where}: the file {str(value)!r} holds no PEM block (-----BEGIN ...).")
    if "\\n" in text:  # pasted from JSON or an env var with the newlines escaped
        text = text.replace("\\r\\n", "\n").replace("\\n", "\n")
    if "\n" not in text.strip():  # a one-line form input dropped the line breaks
        text = normalise_pem(text)
    markers = _MARKERS[kind]
    if not any(f"-----BEGIN {marker}" in text or f" {marker}-----" in text for marker in markers):
        found = text.split("-----BEGIN", 1)[1].split("-----", 1)[0].strip() if "-----BEGIN" in text else "?"
        raise ConnectionConfigError(
            f"{where} must hold a {kind} PEM block, but it holds a {found!r} block; check which value went into "
            "which field."
        )
    return text + "\n"


def pem_files(certificate_pem: str, key_pem: str) -> tuple[str, str]:
    """Paths of files holding ``certificate_pem`` and ``key_pem`` (made once per process; in memory on Linux)."""
    digest = hashlib.sha256((certificate_pem + "\x00" + key_pem).encode()).hexdigest()[:16]
    contents = [c if c.endswith("\n") else c + "\n" for c in (certificate_pem, key_pem)]
    with _lock:
        if digest in _written and not _holds(_written[digest], contents):
            del _written[digest]  # a descriptor closed (or reused) since, e.g. by a daemonising parent
        if digest not in _written:
            memory = _memory_file(contents[0]), _memory_file(contents[1])
            if memory[0] is not None and memory[1] is not None:
                _written[digest] = (memory[0], memory[1])
            else:
                directory = _private_directory()
                paths = (os.path.join(directory, f"{digest}.crt"), os.path.join(directory, f"{digest}.key"))
                for path, content in zip(paths, contents, strict=True):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "w") as handle:
                        handle.write(content)
                _written[digest] = paths
        return _written[digest]


def _memory_file(content: str) -> str | None:
    """The ``/proc/self/fd/N`` path of an in-memory file holding ``content``; None where that is not possible.

    The descriptor stays open for the life of the process (and of forked children, which inherit it).
    """
    create = getattr(os, "memfd_create", None)
    if create is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        fd = create("sapplan-tls")
    except OSError:
        return None
    try:
        os.fchmod(fd, 0o600)
        data = memoryview(content.encode())
        while data:
            data = data[os.write(fd, data) :]
    except OSError:
        os.close(fd)
        return None
    path = f"/proc/self/fd/{fd}"
    if not _holds((path,), [content]):
        os.close(fd)
        return None
    return path


def _holds(paths: tuple[str, ...], contents: list[str]) -> bool:
    """Whether each path still reads back its content (an in-memory file's descriptor may have been closed)."""
    for path, content in zip(paths, contents, strict=False):
        try:
            with open(path, encoding="utf-8") as handle:
                if handle.read() != content:
                    return False
        except OSError:
            return False
    return True


def client_ssl_context(cert_files: tuple[str, str], verify: bool | str = True) -> ssl.SSLContext:
    """An SSL context presenting the client certificate (for aiohttp)."""
    context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(*cert_files)
    return context

"""Client certificates given as PEM text, made usable by ``requests`` and ``ssl`` (which need files).

Each certificate/key pair is written once per process to a private temporary directory (mode 0700,
files 0600) and removed when the process exits.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import ssl
import tempfile
import threading

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


def pem_files(certificate_pem: str, key_pem: str) -> tuple[str, str]:
    """Paths of files holding ``certificate_pem`` and ``key_pem`` (written once per process)."""
    digest = hashlib.sha256((certificate_pem + "\x00" + key_pem).encode()).hexdigest()[:16]
    with _lock:
        if digest not in _written:
            directory = _private_directory()
            paths = (os.path.join(directory, f"{digest}.crt"), os.path.join(directory, f"{digest}.key"))
            for path, content in zip(paths, (certificate_pem, key_pem), strict=True):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(content if content.endswith("\n") else content + "\n")
            _written[digest] = paths
        return _written[digest]


def client_ssl_context(cert_files: tuple[str, str], verify: bool | str = True) -> ssl.SSLContext:
    """An SSL context presenting the client certificate (for aiohttp)."""
    context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(*cert_files)
    return context

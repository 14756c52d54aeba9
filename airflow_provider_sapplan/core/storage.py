"""Reading and writing local paths and Airflow object-storage paths (``s3://...``) the same way.

Local writes go to a temporary file renamed into place on success, so a failed download never
leaves a truncated file where a downstream task would pick it up.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from airflow_provider_sapplan.exceptions import SapplanError


def is_remote(location: Any) -> bool:
    """True for object-storage locations (an ``ObjectStoragePath`` or a ``scheme://`` string)."""
    if isinstance(location, (str, os.PathLike)) and not hasattr(location, "fs"):
        text = os.fspath(location)
        return "://" in text and not text.startswith("file://")
    return hasattr(location, "fs")


def _object_path(location: Any) -> Any:
    from airflow_provider_sapplan._compat import ObjectStoragePath

    return location if hasattr(location, "fs") else ObjectStoragePath(os.fspath(location))


def _local_path(location: Any) -> Path:
    text = os.fspath(location)
    return Path(text[len("file://") :] if text.startswith("file://") else text).expanduser()


def local_file(location: Any) -> Path | None:
    """The local path of ``location`` when it is a local file (not object storage), else None."""
    return None if is_remote(location) else _local_path(location)


def source_size(location: Any) -> int | None:
    """The size of a source in bytes, or None when the store cannot tell cheaply."""
    try:
        if is_remote(location):
            return int(_object_path(location).stat().st_size)
        return _local_path(location).stat().st_size
    except FileNotFoundError:
        raise SapplanError(f"Source file {location} does not exist.") from None
    except Exception:
        return None


@contextlib.contextmanager
def open_for_read(location: Any) -> Iterator[IO[bytes]]:
    if is_remote(location):
        with _object_path(location).open("rb") as handle:
            yield handle
        return
    path = _local_path(location)
    if not path.is_file():
        raise SapplanError(f"Source file {path} does not exist or is not a file.")
    with path.open("rb") as handle:
        yield handle


@contextlib.contextmanager
def open_for_write(location: Any) -> Iterator[IO[bytes]]:
    if is_remote(location):
        with _object_path(location).open("wb") as handle:
            yield handle
        return
    path = _local_path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise

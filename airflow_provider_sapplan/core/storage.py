"""Reading and writing local paths and Airflow object-storage paths (``s3://...``) the same way.

Local writes go to a temporary file renamed into place on success, so a failed download never
leaves a truncated file where a downstream task would pick it up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from airflow_provider_sapplan.exceptions import SapplanError

log = logging.getLogger(__name__)


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


def _check_remote(location: Any, field_name: str) -> None:
    """The object-storage scheme must resolve to a filesystem here (its provider installed)."""
    from airflow_provider_sapplan.core.validation import ArgumentError

    text = os.fspath(location) if not hasattr(location, "fs") else str(location)
    scheme = text.split("://", 1)[0]
    try:
        _object_path(location).fs  # noqa: B018 - resolving the filesystem is the check
    except Exception as err:
        hint = " (install the Amazon provider: apache-airflow-providers-amazon)" if scheme in ("s3", "s3a") else ""
        log.debug("Cannot open %s: %s", text, err)
        raise ArgumentError(
            f"{field_name} {text!r} uses the storage scheme {scheme!r}, which Airflow cannot open here{hint}. "
            "Use a local path or an object-storage URI whose provider is installed."
        ) from None


def check_source(location: Any, field_name: str = "source") -> None:
    """Before the first remote write: a local source is an existing file, a remote one a known scheme."""
    from airflow_provider_sapplan.core.validation import ArgumentError

    if not isinstance(location, (str, os.PathLike)) and not hasattr(location, "fs"):
        raise ArgumentError(f"{field_name} must be a path or URI string, got {type(location).__name__} {location!r}.")
    if is_remote(location):
        _check_remote(location, field_name)
        return
    path = _local_path(location)
    if path.is_dir():
        raise ArgumentError(f"{field_name} {str(path)!r} is a directory; give the path of one file.")
    if not path.is_file():
        raise ArgumentError(f"{field_name} {str(path)!r} does not exist or is not a file.")


def check_destination(location: Any, field_name: str = "destination", *, folder: bool = False) -> None:
    """Before any remote work: a local destination can be written (not a directory, unless ``folder``);
    a remote one uses a known scheme."""
    from airflow_provider_sapplan.core.validation import ArgumentError

    if not isinstance(location, (str, os.PathLike)) and not hasattr(location, "fs"):
        raise ArgumentError(f"{field_name} must be a path or URI string, got {type(location).__name__} {location!r}.")
    if is_remote(location):
        _check_remote(location, field_name)
        return
    path = _local_path(location)
    if not str(location).strip():
        raise ArgumentError(f"{field_name} is empty; give a file path.")
    if folder:
        if path.exists() and not path.is_dir():
            raise ArgumentError(f"{field_name} {str(path)!r} is a file; give a folder.")
        existing = path
    else:
        if path.is_dir():
            raise ArgumentError(f"{field_name} {str(path)!r} is a directory; give the path of the file to write.")
        existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ArgumentError(f"{field_name} {str(path)!r} cannot be written: {str(existing)!r} is not writable.")

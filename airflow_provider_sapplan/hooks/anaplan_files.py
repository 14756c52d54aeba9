"""Anaplan file transfer for :class:`~airflow_provider_sapplan.hooks.anaplan.AnaplanHook`: upload chunks.

A local file is streamed slice by slice from disk (a fresh slice per retry, never held in memory);
other sources (object storage, gzip) are read chunk by chunk, at most :data:`BUFFERED_BYTES_BUDGET`
of them in memory at once. The hook decides what to upload; this module only moves the bytes.
"""

from __future__ import annotations

import functools
import gzip
import io
import math
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, BinaryIO

from airflow_provider_sapplan.exceptions import SapplanError, UploadError

if TYPE_CHECKING:
    from airflow_provider_sapplan.hooks.anaplan import AnaplanHook

MIB = 1024 * 1024

BUFFERED_BYTES_BUDGET = 64 * MIB
"""At most this many bytes of chunks held in memory at once (compressed or remote sources)."""


class _FileSlice(io.RawIOBase):
    """``length`` bytes of a file from ``offset``: a chunk body streamed from disk, never held in memory."""

    def __init__(self, path: str, offset: int, length: int) -> None:
        super().__init__()
        self._handle = open(path, "rb")  # noqa: SIM115 - closed by close(), after the request
        self._handle.seek(offset)
        self._remaining = length
        self._length = length

    def __len__(self) -> int:  # requests reads Content-Length from here
        return self._length

    def tell(self) -> int:
        # requests sizes a body as len() minus tell(); RawIOBase.tell() raises on this unseekable slice,
        # which made requests fall back to Transfer-Encoding: chunked (no Content-Length).
        return self._length - self._remaining

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        wanted = self._remaining if size is None or size < 0 else min(size, self._remaining)
        piece = self._handle.read(wanted)
        self._remaining -= len(piece)
        return piece

    def close(self) -> None:
        self._handle.close()
        super().close()


Chunk = tuple[int, int, "bytes | Callable[[], _FileSlice]"]
"""(index, uncompressed length, body or body factory)."""


def _file_slices(path: str, size: int, chunk_size: int) -> Iterator[Chunk]:
    for index in range(max(1, math.ceil(size / chunk_size))):
        offset = index * chunk_size
        length = min(chunk_size, size - offset)
        yield index, length, functools.partial(_FileSlice, path, offset, length)


def _buffered_chunks(reader: BinaryIO, chunk_size: int) -> Iterator[Chunk]:
    index = 0
    while True:
        payload = _read_exactly(reader, chunk_size)
        if not payload and index > 0:
            return
        yield index, len(payload), payload
        index += 1
        if not payload:  # an empty source is one empty chunk
            return


class _ChunkUploader:
    """PUTs chunks with bounded parallelism; any chunk that fails after retries fails the upload.

    Local files are streamed slice by slice from disk, so memory does not grow with the chunk size;
    other sources (object storage, gzip) hold at most :data:`BUFFERED_BYTES_BUDGET` of chunks at once.
    """

    def __init__(
        self, hook: AnaplanHook, file_path: str, headers: dict[str, str], compress: bool, max_parallel: int
    ) -> None:
        self.hook = hook
        self.file_path = file_path
        self.headers = headers
        self.compress = compress
        self.max_parallel = max_parallel
        self.bytes_sent = 0
        self._lock = threading.Lock()

    def _put(self, index: int, body: bytes | Callable[[], _FileSlice], length: int) -> None:
        if self.compress and isinstance(body, bytes):
            body = gzip.compress(body, compresslevel=5)
        sent = len(body) if isinstance(body, bytes) else length
        try:
            self.hook.client.request(
                "PUT", f"{self.file_path}/chunks/{index}", data=body, headers=self.headers, expect_data=False
            ).close()
        except SapplanError as err:
            raise UploadError(
                f"Chunk {index} of the upload to {self.file_path} failed after retries: {err.message} "
                "The file in Anaplan is incomplete; rerun the task to upload it again.",
                platform="Anaplan",
                status_code=err.status_code,
                details={"chunk": index},
            ) from err
        with self._lock:
            self.bytes_sent += sent

    def run(self, chunks: Iterator[Chunk], chunk_size: int, *, buffered: bool) -> tuple[int, int]:
        limit = self.max_parallel
        if buffered:
            limit = max(1, min(limit, BUFFERED_BYTES_BUDGET // chunk_size))
        total = 0
        count = 0
        in_flight: set[Future[None]] = set()
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="anaplan-upload") as pool:
            try:
                for index, length, body in chunks:
                    total += length
                    count += 1
                    in_flight.add(pool.submit(self._put, index, body, length))
                    del body
                    if len(in_flight) >= limit:
                        done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                        _raise_first(done)
                done, in_flight = wait(in_flight, return_when=FIRST_EXCEPTION)
                _raise_first(done)
            except BaseException:
                for future in in_flight:
                    future.cancel()
                raise
        return total, count


def _raise_first(futures: set[Future[None]]) -> None:
    for future in futures:
        if future.done() and not future.cancelled():
            error = future.exception()
            if error is not None:
                raise error


def _read_exactly(reader: BinaryIO, size: int) -> bytes:
    """Read ``size`` bytes unless the stream ends first (object-storage streams return short reads)."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        piece = reader.read(remaining)
        if not piece:
            break
        parts.append(piece)
        remaining -= len(piece)
    return parts[0] if len(parts) == 1 else b"".join(parts)

"""On-disk blob storage for sandbox file content (uploads, exports, dumps).

Files handled by the platforms can be a gigabyte, so content never lives in memory: request bodies
stream to disk in :data:`~.routing.IO_BLOCK` pieces, and content is described as a list of
:class:`Blob` pieces (one per uploaded chunk, or one file split into fixed-size download chunks).
Blobs are immutable; replacing content writes new blobs and unlinks the old ones, and a download
that already opened a blob keeps reading it (POSIX unlink semantics).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .routing import IO_BLOCK, BodyReader, FileSlice


class ContentTooLargeError(Exception):
    """A piece of content exceeds the size the platform accepts."""


class BadEncodingError(Exception):
    """Compressed content could not be decompressed."""


@dataclass(frozen=True)
class Blob:
    """An immutable file on disk and its size."""

    path: Path
    size: int


class BlobStore:
    """A directory of immutable blobs, removed as a whole when the sandbox stops."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def new_path(self, suffix: str = "") -> Path:
        """A fresh, unused path inside the store."""
        return self.root / f"{uuid.uuid4().hex}{suffix}"

    def receive(self, body: BodyReader, *, limit: int, gunzip: bool) -> Blob:
        """Stream a request body into a new blob, decompressing gzip on the fly if asked.

        Raises :class:`ContentTooLargeError` when the (uncompressed) content exceeds ``limit`` bytes
        and :class:`BadEncodingError` for broken gzip data; the partial blob is removed either way.
        The caller drains the rest of the body.
        """
        path = self.new_path(".part")
        buf = bytearray(IO_BLOCK)
        view = memoryview(buf)
        size = 0
        try:
            with open(path, "wb") as out:
                if gunzip:
                    size = self._receive_gzip(body, out, view, limit)
                else:
                    while True:
                        n = body.readinto(view)
                        if not n:
                            break
                        size += n
                        if size > limit:
                            raise ContentTooLargeError(f"content larger than {limit} bytes")
                        out.write(view[:n])
            final = path.with_suffix("")
            os.replace(path, final)
            return Blob(final, size)
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    @staticmethod
    def _receive_gzip(body: BodyReader, out: BinaryIO, view: memoryview, limit: int) -> int:
        """Decompress a gzip body (one or more members) into ``out``; returns the bytes written.

        Output is produced at most :data:`IO_BLOCK` bytes at a time, so a small compressed body
        that inflates to gigabytes is stopped at ``limit`` without ever being held in memory.
        """
        decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
        size = 0
        saw_data = False
        in_member = False  # a member has started and has not reached its end yet
        while True:
            n = body.readinto(view)
            if not n:
                break
            saw_data = True
            data = bytes(view[:n])
            while True:
                if decomp.eof:  # the previous member ended: the rest is the next member
                    decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
                try:
                    chunk = decomp.decompress(data, IO_BLOCK)
                except zlib.error as exc:
                    raise BadEncodingError(f"gzip data is corrupt: {exc}") from exc
                in_member = not decomp.eof
                size += len(chunk)
                if size > limit:
                    raise ContentTooLargeError(f"uncompressed content larger than {limit} bytes")
                out.write(chunk)
                if decomp.eof:
                    data = decomp.unused_data
                    if not data:
                        break
                    continue
                data = decomp.unconsumed_tail
                if not data and len(chunk) < IO_BLOCK:
                    break
        if not saw_data:
            raise BadEncodingError("gzip body is empty")
        if in_member:
            raise BadEncodingError("gzip data is truncated")
        return size

    def write_bytes(self, data: bytes) -> Blob:
        """Store bytes from memory as a new blob (small seed content)."""
        path = self.new_path()
        path.write_bytes(data)
        return Blob(path, len(data))

    def delete(self, blobs: list[Blob]) -> None:
        """Unlink blobs that are no longer referenced (open readers keep their data)."""
        for blob in blobs:
            blob.path.unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove every blob (reset)."""
        with self._lock:
            for child in self.root.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)


@dataclass
class Content:
    """File content made of blobs, with the chunking a download listing shows.

    ``split=None``: each blob is one chunk (an upload, chunks as uploaded). ``split=N``: the blobs'
    concatenation is cut into chunks of N bytes (an export output file or a dump).
    """

    blobs: list[Blob]
    split: int | None = None

    @property
    def size(self) -> int:
        """Total size in bytes."""
        return sum(b.size for b in self.blobs)

    def ranges(self) -> list[list[tuple[Blob, int, int]]]:
        """Download chunks, each as a list of ``(blob, offset, length)`` pieces."""
        if self.split is None:
            return [[(b, 0, b.size)] for b in self.blobs]
        chunks: list[list[tuple[Blob, int, int]]] = []
        current: list[tuple[Blob, int, int]] = []
        room = self.split
        for blob in self.blobs:
            offset = 0
            while offset < blob.size:
                take = min(room, blob.size - offset)
                current.append((blob, offset, take))
                offset += take
                room -= take
                if room == 0:
                    chunks.append(current)
                    current, room = [], self.split
        if current:
            chunks.append(current)
        return chunks

    @property
    def chunk_count(self) -> int:
        """Number of download chunks."""
        return len(self.ranges())

    def open_chunk(self, index: int) -> list[FileSlice]:
        """Open download chunk ``index`` for streaming (raises IndexError if there is none)."""
        return open_slices(self.ranges()[index])

    def open_all(self) -> list[FileSlice]:
        """Open the whole content for streaming."""
        return open_slices([(b, 0, b.size) for b in self.blobs])

    def iter_blocks(self, size: int = IO_BLOCK) -> Iterator[bytes]:
        """Read the content sequentially in blocks."""
        for blob in self.blobs:
            with open(blob.path, "rb") as fh:
                while True:
                    block = fh.read(size)
                    if not block:
                        break
                    yield block

    def iter_lines(self) -> Iterator[bytes]:
        """Read the content line by line (lines may span blobs); lines keep their terminator."""
        carry = b""
        for blob in self.blobs:
            with open(blob.path, "rb") as fh:
                for line in fh:
                    if carry:
                        line = carry + line
                        carry = b""
                    if line.endswith(b"\n"):
                        yield line
                    else:
                        carry = line
        if carry:
            yield carry

    def read_bytes(self) -> bytes:
        """The whole content in memory (for small files and tests only)."""
        return b"".join(self.iter_blocks())


def open_slices(pieces: list[tuple[Blob, int, int]]) -> list[FileSlice]:
    """Open blobs for streaming; closes what was opened if one of them fails."""
    slices: list[FileSlice] = []
    try:
        for blob, offset, length in pieces:
            slices.append(FileSlice(open(blob.path, "rb"), offset, length))  # noqa: SIM115
    except OSError:
        for piece in slices:
            piece.file.close()
        raise
    return slices


def make_data_dir(prefix: str = "sapplan-sandbox-") -> Path:
    """Create a private temporary directory for one sandbox instance."""
    return Path(tempfile.mkdtemp(prefix=prefix))

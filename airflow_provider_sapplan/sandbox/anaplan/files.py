"""Anaplan sandbox: model files (chunked uploads, downloads) and failure dumps.

Plain Python, no HTTP; mixed into :class:`~.backend.AnaplanBackend`.
"""

from __future__ import annotations

from typing import Any

from ..routing import FileSlice
from ..storage import Blob, Content
from .models import (
    MAX_CHUNKS,
    AnaplanError,
    Model,
    ModelFile,
    PendingUpload,
)


class FilesMixin:
    """Upload/download of model files and dump chunks; uses the backend's ``_lock``, ``store`` and models."""

    @staticmethod
    def _file(model: Model, file_id: str) -> ModelFile:
        file = model.files.get(file_id)
        if file is None:
            raise AnaplanError(404, f"Not Found: file {file_id}")
        return file

    def list_files(self, workspace_id: str, model_id: str) -> list[dict[str, Any]]:
        """The model's import and export files."""
        with self._lock:
            self._advance()
            model = self._model(workspace_id, model_id)
            return [f.to_json() for f in model.files.values()]

    def check_upload_target(self, workspace_id: str, model_id: str, file_id: str) -> None:
        """Raise the error an upload to this file would get, before its body is read."""
        with self._lock:
            self._file(self._model(workspace_id, model_id), file_id)

    def set_chunk_count(self, workspace_id: str, model_id: str, file_id: str, chunk_count: Any) -> dict[str, Any]:
        """``POST .../files/{id}``: start a fresh upload of ``chunk_count`` chunks (-1: unknown).

        Like Anaplan, a file id the model does not have is silently created (and recorded in
        ``stats.files_created``): that is how a typo turns into a stray file in a real model.
        """
        if isinstance(chunk_count, bool) or not isinstance(chunk_count, int):
            raise AnaplanError(400, "Bad Request: chunkCount must be an integer")
        if chunk_count != -1 and not 1 <= chunk_count <= MAX_CHUNKS:
            raise AnaplanError(400, f"Bad Request: chunkCount must be -1 or between 1 and {MAX_CHUNKS}")
        with self._lock:
            model = self._model(workspace_id, model_id)
            file = model.files.get(file_id)
            if file is None:
                file = model.files[file_id] = ModelFile(file_id, file_id, export=file_id.startswith("116"))
                self.context.stats.record_file_created(f"{model_id}/{file_id}")
            if file.pending is not None:
                self.store.delete(list(file.pending.chunks.values()))
            file.pending = PendingUpload(chunk_count)
            return file.to_json()

    def store_chunk(self, workspace_id: str, model_id: str, file_id: str, index: int, blob: Blob) -> None:
        """Keep an uploaded chunk; once all announced chunks are there the file content is replaced.

        A chunk PUT without a preceding chunk-count POST starts an upload of unknown length (it
        needs ``/complete``), except that re-sending a chunk of the last finished upload replaces
        that chunk in place (a retry of a chunk whose 204 was lost).
        """
        with self._lock:
            try:
                model = self._model(workspace_id, model_id)
                file = self._file(model, file_id)
            except AnaplanError:
                self.store.delete([blob])
                raise
            pending = file.pending
            if pending is None:
                if file.private is not None and file.private.split is None and index < len(file.private.blobs):
                    old = file.private.blobs[index]
                    file.private.blobs[index] = blob
                    self.store.delete([old])
                    return
                pending = file.pending = PendingUpload(-1)
            if pending.chunk_count != -1 and index >= pending.chunk_count:
                self.store.delete([blob])
                raise AnaplanError(
                    400,
                    f"Bad Request: chunk {index} is beyond the announced chunkCount {pending.chunk_count}",
                )
            old_blob = pending.chunks.get(index)
            pending.chunks[index] = blob
            if old_blob is not None:
                self.store.delete([old_blob])
            if pending.chunk_count != -1 and len(pending.chunks) == pending.chunk_count:
                self._commit(file, Content([pending.chunks[i] for i in range(pending.chunk_count)]))

    def store_single(self, workspace_id: str, model_id: str, file_id: str, blob: Blob) -> None:
        """``PUT .../files/{id}``: the whole file as one chunk, replacing any upload in progress."""
        with self._lock:
            try:
                file = self._file(self._model(workspace_id, model_id), file_id)
            except AnaplanError:
                self.store.delete([blob])
                raise
            self._commit(file, Content([blob]))

    def complete_upload(self, workspace_id: str, model_id: str, file_id: str) -> dict[str, Any]:
        """``POST .../files/{id}/complete``: finish an upload; 400 names the first missing chunk."""
        with self._lock:
            file = self._file(self._model(workspace_id, model_id), file_id)
            pending = file.pending
            if pending is None:
                if file.private is not None:
                    return file.to_json()  # a repeated complete (its first answer was lost)
                raise AnaplanError(400, f"Bad Request: no upload in progress for file {file_id}")
            if not pending.chunks:
                raise AnaplanError(400, f"Bad Request: no chunks were uploaded for file {file_id}")
            last = max(pending.chunks) if pending.chunk_count == -1 else pending.chunk_count - 1
            missing = [i for i in range(last + 1) if i not in pending.chunks]
            if missing:
                raise AnaplanError(
                    400,
                    f"Bad Request: chunk {missing[0]} of file {file_id} is missing ({len(missing)} missing)",
                )
            self._commit(file, Content([pending.chunks[i] for i in range(last + 1)]))
            return file.to_json()

    def _commit(self, file: ModelFile, content: Content) -> None:
        """Make ``content`` the file's private content; the previous content's blobs are unlinked."""
        old = file.private
        file.private = content
        pending, file.pending = file.pending, None
        if pending is not None:
            keep = {id(b) for b in content.blobs}
            self.store.delete([b for b in pending.chunks.values() if id(b) not in keep])
        if old is not None:
            self.store.delete(old.blobs)

    def delete_file(self, workspace_id: str, model_id: str, file_id: str) -> None:
        """``DELETE .../files/{id}``: remove the private content (the file and its default remain)."""
        with self._lock:
            file = self._file(self._model(workspace_id, model_id), file_id)
            if file.pending is not None:
                self.store.delete(list(file.pending.chunks.values()))
                file.pending = None
            if file.private is not None:
                self.store.delete(file.private.blobs)
                file.private = None

    def file_chunk_count(self, workspace_id: str, model_id: str, file_id: str) -> int:
        """Number of download chunks of a file."""
        with self._lock:
            self._advance()
            content = self._file(self._model(workspace_id, model_id), file_id).content
            return 0 if content is None else content.chunk_count

    def open_file_chunk(self, workspace_id: str, model_id: str, file_id: str, index: int) -> list[FileSlice]:
        """Open one download chunk for streaming, or 404."""
        with self._lock:
            self._advance()
            content = self._file(self._model(workspace_id, model_id), file_id).content
            if content is None or not 0 <= index < content.chunk_count:
                raise AnaplanError(404, f"Not Found: chunk {index} of file {file_id}")
            return content.open_chunk(index)

    # -------------------------------------------------------------------------------------- dumps

    def _import_dump(self, workspace_id: str, model_id: str, import_id: str, task_id: str) -> Content:
        task = self._task(workspace_id, model_id, "imports", import_id, task_id)
        model = self.models[task.model_id]
        record = model.import_dumps.get(import_id)
        if record is None or record.task_id != task_id:
            raise AnaplanError(404, f"Not Found: no dump file for task {task_id} (it was replaced or never existed)")
        return record.content

    def _process_dump(self, workspace_id: str, model_id: str, process_id: str, task_id: str, object_id: str) -> Content:
        task = self._task(workspace_id, model_id, "processes", process_id, task_id)
        model = self.models[task.model_id]
        record = model.process_dumps.get((process_id, object_id))
        if record is None or record.task_id != task_id:
            raise AnaplanError(
                404,
                f"Not Found: no dump file for object {object_id} of task {task_id} (replaced or never existed)",
            )
        return record.content

    def dump_chunk_count(
        self, workspace_id: str, model_id: str, action_id: str, task_id: str, object_id: str | None = None
    ) -> int:
        """Number of chunks of an import dump (``object_id=None``) or a process dump."""
        with self._lock:
            self._advance()
            content = (
                self._import_dump(workspace_id, model_id, action_id, task_id)
                if object_id is None
                else self._process_dump(workspace_id, model_id, action_id, task_id, object_id)
            )
            return content.chunk_count

    def open_dump(
        self,
        workspace_id: str,
        model_id: str,
        action_id: str,
        task_id: str,
        object_id: str | None = None,
        chunk: int | None = None,
    ) -> list[FileSlice]:
        """Open a whole dump (``chunk=None``) or one of its chunks for streaming."""
        with self._lock:
            self._advance()
            content = (
                self._import_dump(workspace_id, model_id, action_id, task_id)
                if object_id is None
                else self._process_dump(workspace_id, model_id, action_id, task_id, object_id)
            )
            if chunk is None:
                return content.open_all()
            if not 0 <= chunk < content.chunk_count:
                raise AnaplanError(404, f"Not Found: dump chunk {chunk}")
            return content.open_chunk(chunk)

"""Anaplan operators: upload and download files, run imports, exports, processes and actions."""

from __future__ import annotations

import os
from typing import Any, ClassVar, NoReturn
from urllib.parse import urlsplit

from airflow_provider_sapplan._compat import BaseOperator, BaseOperatorLink
from airflow_provider_sapplan.core.links import XComUrlLink
from airflow_provider_sapplan.core.operator import RemoteJobOperator
from airflow_provider_sapplan.core.status import Outcome
from airflow_provider_sapplan.core.storage import check_destination, check_source
from airflow_provider_sapplan.core.validation import (
    ArgumentError,
    CheckedArguments,
    as_bool,
    as_chunk_size,
    as_json_object,
    as_positive_int,
    is_template,
)
from airflow_provider_sapplan.exceptions import RemoteJobFailedError
from airflow_provider_sapplan.hooks.anaplan import (
    DEFAULT_API_URL,
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    ActionType,
    AnaplanHook,
)
from airflow_provider_sapplan.jobs.anaplan import (
    AnaplanHookMixin,
    AnaplanTaskStatusMixin,
    row_counts,
    summary_line,
    task_has_warnings,
    task_outcome,
    task_summary,
)
from airflow_provider_sapplan.triggers.anaplan import AnaplanTaskTrigger

MODEL_URL_XCOM_KEY = "anaplan_model_url"


class AnaplanModelLink(XComUrlLink):
    """Opens the task's model in Anaplan (URL pushed to XCom before the task waits)."""

    name = "Anaplan model"
    xcom_key = MODEL_URL_XCOM_KEY


def model_url(api_url: str, workspace_id: str, model_id: str) -> str:
    """The Anaplan UI address of a model, on the host that serves the connection's API."""
    parts = urlsplit(api_url or DEFAULT_API_URL)
    prefix = parts.path.rsplit("/2/0", 1)[0] if "/2/0" in parts.path else ""
    return (
        f"{parts.scheme}://{parts.netloc}{prefix}/anaplan/framework.jsp"
        f"?selectedWorkspaceId={workspace_id}&selectedModelId={model_id}"
    )


class _AnaplanModelOperator(CheckedArguments, AnaplanHookMixin, BaseOperator):
    """Shared parameters: connection, workspace and model (defaulting to the connection's)."""

    operator_extra_links: ClassVar[tuple[BaseOperatorLink, ...]] = (AnaplanModelLink(),)

    def __init__(
        self,
        *,
        anaplan_conn_id: str = AnaplanHook.default_conn_name,
        workspace_id: str | None = None,
        model_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.anaplan_conn_id = anaplan_conn_id
        self.workspace_id = workspace_id
        self.model_id = model_id
        self._check_model(final=False)

    def check_rendered_arguments(self) -> None:
        super().check_rendered_arguments()
        self._check_model(final=True)

    def _check_model(self, *, final: bool) -> None:
        if not isinstance(self.anaplan_conn_id, str) or not self.anaplan_conn_id:
            raise ArgumentError(f"anaplan_conn_id must be a connection id string, got {self.anaplan_conn_id!r}.")
        for name in ("workspace_id", "model_id"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ArgumentError(f"{name} must be a string id, got {type(value).__name__} {value!r}.")

    def _push_model_url(self, context: Any) -> None:
        workspace, model = self.hook.model_ids()
        api_url = self.hook.get_conn().config.base_url
        ti = context.get("ti") if hasattr(context, "get") else None
        if ti is not None:
            ti.xcom_push(key=MODEL_URL_XCOM_KEY, value=model_url(api_url, workspace, model))
            self._link_pushed = True


def _path_type(value: Any, name: str) -> None:
    if not isinstance(value, (str, os.PathLike)) and not hasattr(value, "fs"):
        raise ArgumentError(f"{name} must be a path or URI string, got {type(value).__name__} {value!r}.")
    if isinstance(value, str) and not value.strip():
        raise ArgumentError(f"{name} is empty; give a path or URI.")


def _one_of(id_value: str | None, name_value: str | None, what: str) -> None:
    if bool(id_value) == bool(name_value):
        raise ValueError(f"Give exactly one of {what}_id or {what}_name.")


class AnaplanUploadFileOperator(_AnaplanModelOperator):
    """Upload ``source`` (local path or object-storage path/URI) to a model file, in chunks.

    :param file_id: the model file to replace (or give ``file_name``).
    :param chunk_size: bytes per chunk (1-50 MiB).
    :param compress: gzip each chunk.
    :param max_parallel: chunks in flight at once.
    """

    template_fields = ("source", "file_id", "file_name", "workspace_id", "model_id")

    def __init__(
        self,
        *,
        source: str | os.PathLike[str],
        file_id: str | None = None,
        file_name: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        compress: bool = False,
        max_parallel: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _one_of(file_id, file_name, "file")
        self.source = source
        self.file_id = file_id
        self.file_name = file_name
        self.chunk_size = as_chunk_size(chunk_size, "chunk_size", minimum=MIN_CHUNK_SIZE, maximum=MAX_CHUNK_SIZE)
        self.compress = as_bool(compress, "compress")
        self.max_parallel = as_positive_int(max_parallel, "max_parallel", maximum=32)
        if not is_template(source):
            _path_type(source, "source")

    def check_rendered_arguments(self) -> None:
        super().check_rendered_arguments()
        check_source(self.source, "source")  # before the upload is declared

    def execute(self, context: Any) -> dict[str, Any]:
        self.run_argument_checks()
        self._push_model_url(context)
        file_id = self.file_id or self.hook.resolve_id("files", str(self.file_name))
        return self.hook.upload_file(
            file_id,
            self.source,
            chunk_size=self.chunk_size,
            compress=self.compress,
            max_parallel=self.max_parallel,
        )


class AnaplanDownloadFileOperator(_AnaplanModelOperator):
    """Download a model file (``file_id`` or ``file_name``) to ``destination`` (path or URI)."""

    template_fields = ("destination", "file_id", "file_name", "workspace_id", "model_id")

    def __init__(
        self,
        *,
        destination: str | os.PathLike[str],
        file_id: str | None = None,
        file_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _one_of(file_id, file_name, "file")
        self.destination = destination
        self.file_id = file_id
        self.file_name = file_name
        if not is_template(destination):
            _path_type(destination, "destination")

    def check_rendered_arguments(self) -> None:
        super().check_rendered_arguments()
        check_destination(self.destination, "destination")  # before the download starts

    def execute(self, context: Any) -> dict[str, Any]:
        self.run_argument_checks()
        self._push_model_url(context)
        file_id = self.file_id or self.hook.resolve_id("files", str(self.file_name))
        return self.hook.download_file(file_id, self.destination)


class _AnaplanRunOperator(AnaplanTaskStatusMixin, RemoteJobOperator, _AnaplanModelOperator):
    """Runs one Anaplan action as a task and waits for it; see :class:`RemoteJobOperator` for waiting.

    :param mapping_parameters: runtime mapping, e.g. ``{"Version": "Actual"}``.
    :param locale: Anaplan's ``localeName``.
    :param fail_on_warnings: fail when the task reports rows with warnings.
    :param dump_destination: folder (path or URI) where failure dumps are saved in full.
    """

    action_type: ClassVar[ActionType]
    kind_field: ClassVar[str]
    xcom_ref_key = "anaplan_task"
    external_id_key = "anaplan_task"
    trigger_class = AnaplanTaskTrigger

    template_fields: ClassVar[tuple[str, ...]] = (
        "workspace_id",
        "model_id",
        "mapping_parameters",
        "locale",
        "dump_destination",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"mapping_parameters": "json"}

    def __init__(
        self,
        *,
        mapping_parameters: dict[str, str] | None = None,
        locale: str = "en_US",
        fail_on_warnings: bool = False,
        dump_destination: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.mapping_parameters = mapping_parameters
        self.locale = locale
        self.fail_on_warnings = as_bool(fail_on_warnings, "fail_on_warnings")
        self.dump_destination = dump_destination
        self._check_run(final=False)

    def check_rendered_arguments(self) -> None:
        super().check_rendered_arguments()
        self._check_run(final=True)

    def _check_run(self, *, final: bool) -> None:
        if final or not is_template(self.mapping_parameters):
            mapping = as_json_object(self.mapping_parameters, "mapping_parameters")
            for key, value in (mapping or {}).items():
                if not isinstance(value, str):
                    raise ArgumentError(
                        f"mapping_parameters must map entity types to entity names (strings), e.g. "
                        f"{{'Version': 'Actual'}}; {key!r} maps to {type(value).__name__} {value!r}."
                    )
            self.mapping_parameters = mapping
        if (final or not is_template(self.locale)) and (not isinstance(self.locale, str) or not self.locale.strip()):
            raise ArgumentError(f"locale must be an Anaplan locale name such as 'en_US', got {self.locale!r}.")
        if self.dump_destination not in (None, ""):
            if not is_template(self.dump_destination) or final:
                _path_type(self.dump_destination, "dump_destination")
            if final:
                check_destination(self.dump_destination, "dump_destination", folder=True)

    # -- RemoteJobOperator platform API ----------------------------------------------------------

    def _resolve_action_id(self) -> str:
        action_id = getattr(self, f"{self.kind_field}_id")
        if action_id:
            return str(action_id)
        return self.hook.resolve_id(self.action_type.value, str(getattr(self, f"{self.kind_field}_name")))

    def submit(self, context: Any) -> dict[str, Any]:
        action_id = self._resolve_action_id()
        workspace, model = self.hook.model_ids()
        task = self.hook.run_action(
            self.action_type, action_id, locale=self.locale, mapping_parameters=self.mapping_parameters
        )
        return {
            "workspace_id": workspace,
            "model_id": model,
            "action_type": self.action_type.value,
            "action_id": action_id,
            "task_id": str(task["taskId"]),
        }

    def extra_xcom(self, ref: dict[str, Any]) -> dict[str, Any]:
        api_url = self.hook.get_conn().config.base_url
        return {MODEL_URL_XCOM_KEY: model_url(api_url, ref["workspace_id"], ref["model_id"])}

    def _hook_for(self, ref: dict[str, Any]) -> AnaplanHook:
        if ref.get("workspace_id") and ref.get("model_id"):
            return AnaplanHook(self.anaplan_conn_id, workspace_id=ref["workspace_id"], model_id=ref["model_id"])
        return self.hook

    def outcome(self, status: dict[str, Any]) -> Outcome:
        outcome = task_outcome(status)
        if outcome is Outcome.SUCCEEDED and self.fail_on_warnings and task_has_warnings(status):
            return Outcome.FAILED
        return outcome

    def cancel(self, ref: dict[str, Any]) -> None:
        self._hook_for(ref).cancel_task(ref["action_type"], ref["action_id"], ref["task_id"])

    def succeeded(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> Any:
        summary = task_summary(ref, status)
        self._log_success(ref, summary)
        return summary

    def _log_success(self, ref: dict[str, Any], summary: dict[str, Any]) -> None:
        self.log.info(
            "Anaplan %s %s task %s succeeded: %s",
            self.action_type.label,
            ref["action_id"],
            ref["task_id"],
            summary_line(summary),
        )

    def failed(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> NoReturn:
        if task_outcome(status) is Outcome.SUCCEEDED:  # only warnings, and fail_on_warnings is set
            raise RemoteJobFailedError(
                f"Anaplan {self.action_type.label} {ref['action_id']} (task {ref['task_id']}) completed with "
                f"warnings and fail_on_warnings is set: {row_counts(status)}.",
                platform="Anaplan",
                details=task_summary(ref, status),
            )
        super().failed(ref, status, context)


class AnaplanRunImportOperator(_AnaplanRunOperator):
    """Run an Anaplan import (``import_id`` or ``import_name``); failed rows are read from its dump."""

    action_type = ActionType.IMPORT
    kind_field = "import"
    template_fields = (*_AnaplanRunOperator.template_fields, "import_id", "import_name")

    def __init__(self, *, import_id: str | None = None, import_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _one_of(import_id, import_name, "import")
        self.import_id = import_id
        self.import_name = import_name


class AnaplanRunExportOperator(_AnaplanRunOperator):
    """Run an Anaplan export (``export_id`` or ``export_name``); with ``destination``, download its file."""

    action_type = ActionType.EXPORT
    kind_field = "export"
    template_fields = (*_AnaplanRunOperator.template_fields, "export_id", "export_name", "destination")

    def __init__(
        self,
        *,
        export_id: str | None = None,
        export_name: str | None = None,
        destination: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _one_of(export_id, export_name, "export")
        self.export_id = export_id
        self.export_name = export_name
        self.destination = destination
        if destination is not None and not is_template(destination):
            _path_type(destination, "destination")

    def check_rendered_arguments(self) -> None:
        super().check_rendered_arguments()
        if self.destination:
            check_destination(self.destination, "destination")  # before the export runs

    def succeeded(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> Any:
        summary = task_summary(ref, status)
        if self.destination:
            # The export writes the file whose id equals the export id; downloaded only after success,
            # so a failed export never hands over a stale file.
            summary["download"] = self._hook_for(ref).download_file(ref["action_id"], self.destination)
            summary["export"]["lines"] = summary["download"].get("lines", 0)
        self._log_success(ref, summary)
        return summary


class AnaplanRunProcessOperator(_AnaplanRunOperator):
    """Run an Anaplan process (``process_id`` or ``process_name``); dumps of failed steps are read."""

    action_type = ActionType.PROCESS
    kind_field = "process"
    template_fields = (*_AnaplanRunOperator.template_fields, "process_id", "process_name")

    def __init__(self, *, process_id: str | None = None, process_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _one_of(process_id, process_name, "process")
        self.process_id = process_id
        self.process_name = process_name


class AnaplanRunActionOperator(_AnaplanRunOperator):
    """Run another Anaplan action, e.g. delete-by-selection (``action_id`` or ``action_name``)."""

    action_type = ActionType.ACTION
    kind_field = "action"
    template_fields = (*_AnaplanRunOperator.template_fields, "action_id", "action_name")

    def __init__(self, *, action_id: str | None = None, action_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _one_of(action_id, action_name, "action")
        self.action_id = action_id
        self.action_name = action_name

"""The one place where imports that moved between Airflow 2.11 and Airflow 3.x are resolved.

Everything else in the package imports Airflow symbols from here, so supporting a new Airflow
line means changing this module only.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION
from packaging.version import Version

from airflow_provider_sapplan.exceptions import ConnectionConfigError

AIRFLOW_V_3_0_PLUS = Version(Version(AIRFLOW_VERSION).base_version) >= Version("3.0.0")
AIRFLOW_V_3_3_PLUS = Version(Version(AIRFLOW_VERSION).base_version) >= Version("3.3.0")

if AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import (
        BaseHook,
        BaseOperator,
        BaseOperatorLink,
        BaseSensorOperator,
        ObjectStoragePath,
        conf,
    )
    from airflow.sdk.exceptions import AirflowException, TaskDeferred
    from airflow.sdk.execution_time.xcom import XCom
    from airflow.sdk.log import mask_secret
else:  # Airflow 2.11
    from airflow.configuration import conf  # type: ignore[no-redef]
    from airflow.exceptions import AirflowException, TaskDeferred  # type: ignore[no-redef]
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef]
    from airflow.io.path import ObjectStoragePath  # type: ignore[no-redef]
    from airflow.models.baseoperator import BaseOperator  # type: ignore[no-redef]
    from airflow.models.baseoperatorlink import BaseOperatorLink  # type: ignore[no-redef]
    from airflow.models.xcom import XCom  # type: ignore[no-redef]
    from airflow.sensors.base import BaseSensorOperator  # type: ignore[no-redef]
    from airflow.utils.log.secrets_masker import mask_secret  # type: ignore[no-redef]

from airflow.triggers.base import BaseTrigger, TriggerEvent  # noqa: E402  (same path on 2.11 and 3.x)

if AIRFLOW_V_3_3_PLUS:
    from airflow.sdk import ResumableJobMixin
else:

    class ResumableJobMixin:  # type: ignore[no-redef]
        """Stand-in for Airflow 3.3's durable-execution mixin: older Airflow always submits anew."""

        external_id_key = "remote_job_id"

        def __init__(self, *, durable: bool = True, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.durable = durable

        def execute_resumable(self, context: Any) -> Any:
            if self.durable:
                self.log.info(  # type: ignore[attr-defined]
                    "Durable reconnect needs Airflow 3.3+: this run submits a new remote job."
                )
            external_id = self.submit_job(context)  # type: ignore[attr-defined]
            return self.poll_until_complete(external_id, context)  # type: ignore[attr-defined]


if TYPE_CHECKING:
    from airflow.models.connection import Connection


async def get_async_connection(conn_id: str) -> Connection:
    """Read a connection from async code without blocking the event loop.

    Airflow 3.3.2+ offers a truly async lookup; before that, ``aget_connection`` masks secrets
    with a synchronous supervisor call that deadlocks the triggerer, so the synchronous lookup
    runs in a worker thread instead.
    """
    from asgiref.sync import sync_to_async

    connection_cls = _connection_class()
    if hasattr(BaseHook, "aget_connection") and hasattr(connection_cls, "aextra_dejson"):
        return await BaseHook.aget_connection(conn_id=conn_id)
    return await sync_to_async(BaseHook.get_connection)(conn_id)


def connection_extras(conn: Any) -> dict[str, Any]:
    """Return a connection's extra as a dict without calling ``extra_dejson``.

    ``extra_dejson`` masks secrets through the supervisor, which is unsafe on the triggerer's
    event loop; parsing the raw JSON is safe everywhere.
    """
    raw = conn.extra or ""
    if isinstance(raw, dict):
        return dict(raw)
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as err:
        raise ConnectionConfigError(
            f"Connection {conn.conn_id!r}: the Extra field is not valid JSON ({err}). Fix it in Admin > Connections."
        ) from None
    return parsed if isinstance(parsed, dict) else {}


def _connection_class() -> type:
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk import Connection as SdkConnection

        return SdkConnection
    from airflow.models.connection import Connection as CoreConnection

    return CoreConnection


async def task_instance_state(ti: Any) -> str | None:
    """The current state of a deferred task's instance, read from a trigger (Airflow 3.x); None if unknown.

    A cleared instance (no state) answers ``"no_status"``.

    A trigger asks before it cancels remote work in ``on_kill``: only a task that is no longer
    deferred was acted on by a user. Airflow 3.x answers through the triggerer's supervisor (in a
    thread, as synchronous SDK calls must not block the event loop); 2.11 never calls ``on_kill``
    on triggers and answers None here.
    """
    if not AIRFLOW_V_3_0_PLUS:
        return None
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
    from asgiref.sync import sync_to_async

    map_index = getattr(ti, "map_index", -1)
    map_index = -1 if map_index is None else int(map_index)
    states = await sync_to_async(RuntimeTaskInstance.get_task_states)(
        dag_id=ti.dag_id,
        task_ids=[ti.task_id],
        run_ids=[ti.run_id],
        map_index=map_index if map_index >= 0 else None,
    )
    key = ti.task_id if map_index < 0 else f"{ti.task_id}_{map_index}"
    found = (states or {}).get(ti.run_id, {})
    if key not in found:
        return None
    state = found[key]
    return "no_status" if state is None else str(getattr(state, "value", state))


def default_deferrable() -> bool:
    """The ``[operators] default_deferrable`` setting, as every official provider reads it."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AirflowException",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "BaseTrigger",
    "ObjectStoragePath",
    "ResumableJobMixin",
    "TaskDeferred",
    "TriggerEvent",
    "XCom",
    "connection_extras",
    "default_deferrable",
    "get_async_connection",
    "mask_secret",
    "task_instance_state",
]

"""What every platform hook shares: connection lookup (sync and async) and client construction.

A platform hook subclasses :class:`PlatformHook` and implements :meth:`PlatformHook.build_client_config`
from a connection. The connection is read once per hook, from the worker synchronously or from the
triggerer asynchronously, never with a blocking call on the event loop.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from airflow_provider_sapplan._compat import BaseHook, connection_extras, get_async_connection
from airflow_provider_sapplan.core.async_http import AsyncHttpClient
from airflow_provider_sapplan.core.http import ClientConfig, HttpClient
from airflow_provider_sapplan.exceptions import ConnectionConfigError, SapplanError


def extra_field(extras: dict[str, Any], conn_type: str, name: str, default: Any = None) -> Any:
    """Read an extra by its plain name, or by the ``extra__<conn_type>__<name>`` form older UIs save."""
    for key in (name, f"extra__{conn_type}__{name}"):
        value = extras.get(key)
        if value not in (None, ""):
            return value
    return default


def parse_timeout(value: Any, conn_id: str) -> tuple[float, float] | None:
    """Read the ``timeout`` extra: seconds (read timeout), or ``[connect, read]``.

    A form saves text, so ``"300"``, ``"10, 300"`` and ``"[10, 300]"`` are read as well as numbers and lists.
    """
    if value in (None, ""):
        return None
    if isinstance(value, str):
        parts = [part.strip() for part in value.strip().strip("[]()").split(",")]
        value = parts if len(parts) == 2 else value.strip()
    try:
        if isinstance(value, (list, tuple)) and len(value) == 2:
            connect, read = float(value[0]), float(value[1])
            if connect <= 0 or read <= 0:
                raise ValueError
            return connect, read
        seconds = float(value)
        if seconds <= 0:
            raise ValueError
    except (TypeError, ValueError):
        raise ConnectionConfigError(
            f"Connection {conn_id!r}: extra 'timeout' must be positive seconds (e.g. 300) or connect and read "
            f"seconds (e.g. 10, 300), got {value!r}."
        ) from None
    return min(10.0, seconds), seconds


def parse_verify(value: Any, conn_id: str) -> bool | str:
    """Read the ``verify`` extra: empty/true (system CAs), false (no check), or a CA bundle path."""
    if value in (None, "") or value is True:
        return True
    if value is False:
        return False
    text = str(value).strip()
    if text.lower() in ("true", "yes", "1"):
        return True
    if text.lower() in ("false", "no", "0"):
        return False
    if not os.path.isfile(os.path.expanduser(text)):
        raise ConnectionConfigError(
            f"Connection {conn_id!r}: extra 'verify' is {text!r}, which is neither true, false nor the path of a "
            "CA bundle file on this machine."
        )
    return os.path.expanduser(text)


class PlatformHook(BaseHook):
    """Base for the platform hooks: lazy connection lookup and one sync plus one async client."""

    conn_name_attr: str = "conn_id"
    default_conn_name: str = ""
    conn_type: str = ""
    hook_name: str = ""

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.default_conn_name
        self._client: HttpClient | None = None
        self._aclient: AsyncHttpClient | None = None
        self._config: ClientConfig | None = None

    # Subclasses describe their platform -----------------------------------------------------

    def build_client_config(self, conn: Any, extras: dict[str, Any]) -> ClientConfig:
        """Turn a connection into a client configuration; raise ConnectionConfigError when unusable."""
        raise NotImplementedError

    def remember_connection(self, conn: Any, extras: dict[str, Any]) -> None:
        """Hook for subclasses to keep connection defaults (workspace, model, ...)."""

    # Sync path (workers) -----------------------------------------------------------------------

    @functools.cached_property
    def connection(self) -> Any:
        """The Airflow connection (synchronous lookup: never call this on the triggerer loop)."""
        return self.get_connection(self.conn_id)

    def get_conn(self) -> HttpClient:
        """The synchronous client for this connection."""
        if self._client is None:
            self._client = HttpClient(self._client_config(self.connection))
        return self._client

    @property
    def client(self) -> HttpClient:
        return self.get_conn()

    # Async path (triggers) ---------------------------------------------------------------------

    async def aget_client(self) -> AsyncHttpClient:
        """The asynchronous client; the connection is fetched without blocking the event loop."""
        if self._aclient is None:
            if "connection" not in self.__dict__:
                self.__dict__["connection"] = await get_async_connection(self.conn_id)
            self._aclient = AsyncHttpClient(self._client_config(self.connection))
        return self._aclient

    async def aclose(self) -> None:
        """Release the async client's connections (triggers call it when they finish)."""
        if self._aclient is not None:
            await self._aclient.close()
            self._aclient = None

    # Shared ----------------------------------------------------------------------------------

    def _client_config(self, conn: Any) -> ClientConfig:
        if self._config is None:
            extras = connection_extras(conn)
            self.remember_connection(conn, extras)
            self._config = self.build_client_config(conn, extras)
        return self._config

    def test_connection(self) -> tuple[bool, str]:
        """One cheap authenticated call; the message says what failed."""
        try:
            detail = self.check_connection()
        except SapplanError as err:
            return False, err.message
        except Exception as err:
            return False, f"{type(err).__name__}: {err}"
        return True, detail

    def check_connection(self) -> str:
        """Make one cheap authenticated call and describe the result; subclasses implement it."""
        raise NotImplementedError

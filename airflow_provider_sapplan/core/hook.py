"""What every platform hook shares: connection lookup (sync and async) and client construction.

A platform hook subclasses :class:`PlatformHook` and implements :meth:`PlatformHook.build_client_config`
from a connection. The connection is read once per hook, from the worker synchronously or from the
triggerer asynchronously, never with a blocking call on the event loop.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import re
import time
from typing import Any

from airflow_provider_sapplan._compat import BaseHook, connection_extras
from airflow_provider_sapplan.core.async_http import AsyncHttpClient
from airflow_provider_sapplan.core.auth import TOKEN_CACHE, StaticHeaderAuth, TokenCache
from airflow_provider_sapplan.core.connection_lookup import shared_connection_lookup
from airflow_provider_sapplan.core.errors import token_endpoint_error
from airflow_provider_sapplan.core.http import ClientConfig, HttpClient
from airflow_provider_sapplan.core.retry import RetryPolicy
from airflow_provider_sapplan.core.validation import (
    check_url,
    check_verify,
    parse_timeout_value,
    validate_client_config,
)
from airflow_provider_sapplan.exceptions import (
    ConnectionConfigError,
    NetworkError,
    SapplanError,
)

TEST_TIMEOUT: tuple[float, float] = (5.0, 8.0)
"""(connect, read) seconds for each call the Test button makes."""
TEST_POLICY = RetryPolicy(max_attempts=1, initial_wait=0.0, max_wait=0.0)
"""The Test button sends every call once: an unreachable host answers in seconds, not minutes."""
TEST_BUDGET = 15.0
"""The Test button answers within this many seconds, whatever the remote end does."""
THIS_CONNECTION = "this connection"
_NETWORK_SENTENCE = "Check the connection's host and the network path to it."


def extra_field(extras: dict[str, Any], conn_type: str, name: str, default: Any = None) -> Any:
    """Read an extra by its plain name, or by the ``extra__<conn_type>__<name>`` form older UIs save."""
    for key in (name, f"extra__{conn_type}__{name}"):
        value = extras.get(key)
        if value not in (None, ""):
            return value
    return default


def parse_timeout(value: Any, conn_id: str) -> tuple[float, float] | None:
    """Read the ``timeout`` extra: seconds, ``[connect, read]``, or the text a form saves (``"10, 300"``)."""
    return parse_timeout_value(value, connection=f"connection {conn_id!r}")


def parse_verify(value: Any, conn_id: str) -> bool | str:
    """Read the ``verify`` extra: empty/true (system CAs), false (no check), or a CA bundle path."""
    return check_verify(value, connection=f"connection {conn_id!r}")


class PlatformHook(BaseHook):
    """Base for the platform hooks: lazy connection lookup and one sync plus one async client.

    What every platform inherits from here: the connection type is checked (a connection of another
    platform's type is refused, naming the expected type), every client configuration is validated
    by :func:`~airflow_provider_sapplan.core.validation.validate_client_config` before its first
    request, and :meth:`test_connection` authenticates afresh with one short attempt per call.
    """

    conn_name_attr: str = "conn_id"
    default_conn_name: str = ""
    conn_type: str = ""
    hook_name: str = ""
    url_fields: str = "the connection's Host"
    """The connection fields that hold the URLs, as a user reads them (named in network errors)."""

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.default_conn_name
        self._client: HttpClient | None = None
        self._aclient: AsyncHttpClient | None = None
        self._config: ClientConfig | None = None
        self._urls: dict[str, str] = {}
        self._testing = False

    # Subclasses describe their platform -----------------------------------------------------

    def build_client_config(self, conn: Any, extras: dict[str, Any]) -> ClientConfig:
        """Turn a connection into a client configuration; raise ConnectionConfigError when unusable."""
        raise NotImplementedError

    def remember_connection(self, conn: Any, extras: dict[str, Any]) -> None:
        """Hook for subclasses to keep connection defaults (workspace, model, ...)."""

    @property
    def connection_label(self) -> str:
        """How messages name the connection: its id, or "this connection" while Test runs.

        (Airflow tests an unsaved connection under a random temporary id that means nothing to the user.)
        """
        return THIS_CONNECTION if self._testing else f"connection {self.conn_id!r}"

    def use_url(self, field: str, value: Any, *, example: str = "") -> str:
        """Check a URL the connection supplies (naming ``field`` in errors) and remember it for validation."""
        url = check_url(value, field, connection=self.connection_label, example=example)
        self._urls[field] = url
        return url

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
                self.__dict__["connection"] = await shared_connection_lookup(self.conn_id)
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
            self.check_connection_type(conn)
            extras = connection_extras(conn)
            self.remember_connection(conn, extras)
            self._urls = {}
            config = self.build_client_config(conn, extras)
            validate_client_config(config, connection=self.connection_label, urls=self._urls)
            self._config = config
        return self._config

    def check_connection_type(self, conn: Any) -> None:
        """Refuse a connection made for another platform of this provider, naming the type expected."""
        conn_type = (getattr(conn, "conn_type", None) or "").strip()
        if not conn_type or not self.conn_type or conn_type == self.conn_type:
            return
        if conn_type in provider_connection_types():
            raise ConnectionConfigError(
                f"{self.connection_label[:1].upper()}{self.connection_label[1:]} is of type {conn_type!r}, but "
                f"{type(self).__name__} needs a connection of type {self.conn_type!r} ({self.hook_name}). Give the "
                f"task a connection of type {self.conn_type!r}."
            )

    # Test button ---------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Prove the credentials now: a fresh login, then one cheap call, each sent once with short timeouts.

        Never answers from the token cache and never waits behind another holder of the credential's
        token lock (the login goes through a private cache); a successful login then refreshes the shared
        cache. Answers within :data:`TEST_BUDGET` seconds whatever the remote end does. Messages say
        "this connection", not Airflow's temporary connection id.
        """
        self._testing = True
        try:
            config = self._client_config(self.connection)
        except SapplanError as err:
            return False, self._for_test(err.message)
        except Exception as err:
            return False, self._for_test(f"{type(err).__name__}: {err}")
        private_tokens = TokenCache()
        probe = HttpClient(
            dataclasses.replace(config, policy=TEST_POLICY, timeout=_shorter(config.timeout, TEST_TIMEOUT)),
            token_cache=private_tokens,
        )
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sapplan-test")
        started = time.monotonic()
        future = pool.submit(self._probe, probe)
        try:
            ok, message = future.result(timeout=TEST_BUDGET)
        except concurrent.futures.TimeoutError:
            ok, message = (
                False,
                f"{config.platform} did not answer within {TEST_BUDGET:g} s. Check {self.url_fields} and the "
                "network path (proxy, firewall) from Airflow to them.",
            )
        finally:
            pool.shutdown(wait=False)
        if ok and config.auth is not None and not isinstance(config.auth, StaticHeaderAuth):
            fresh = private_tokens.get(config.auth.cache_key)
            if fresh is not None:
                TOKEN_CACHE.put(config.auth.cache_key, fresh)
        if future.done():
            probe.close()
        self.log.debug("Connection test took %.1f s.", time.monotonic() - started)
        return ok, self._for_test(message)

    def _probe(self, probe: HttpClient) -> tuple[bool, str]:
        previous, self._client = self._client, probe
        try:
            auth = probe.config.auth
            if auth is not None and not isinstance(auth, StaticHeaderAuth):
                try:
                    probe.token()
                except NetworkError:
                    raise
                except SapplanError as err:
                    mapped = token_endpoint_error(auth, probe.config.platform, _token_url(auth), err, self.url_fields)
                    return False, mapped.message
            return True, self.check_connection()
        except NetworkError as err:
            return False, err.message.replace(
                _NETWORK_SENTENCE, f"Check {self.url_fields} and the network path from Airflow to them."
            )
        except SapplanError as err:
            return False, err.message
        except Exception as err:
            return False, f"{type(err).__name__}: {err}"
        finally:
            self._client = previous

    def _for_test(self, message: str) -> str:
        """Replace Airflow's temporary connection id with "this connection"."""
        conn_id = re.escape(repr(self.conn_id))
        message = re.sub(rf"\bConnection {conn_id}", "This connection", message)
        message = re.sub(rf"\bconnection {conn_id}", THIS_CONNECTION, message)
        return message.replace(repr(self.conn_id), THIS_CONNECTION)

    def check_connection(self) -> str:
        """Make one cheap authenticated call (and check the connection's defaults); describe the result."""
        raise NotImplementedError


def provider_connection_types() -> set[str]:
    """The connection types of every platform of this provider (declared, and of every loaded hook class)."""
    found: set[str] = set()
    try:
        from airflow_provider_sapplan.get_provider_info import get_provider_info

        found.update(str(item["connection-type"]) for item in get_provider_info().get("connection-types", []))
    except Exception:  # the declaration is a convenience here; the loaded hook classes still count
        pass
    pending = list(PlatformHook.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls.conn_type:
            found.add(cls.conn_type)
        pending.extend(cls.__subclasses__())
    return found


def _shorter(current: tuple[float, float], cap: tuple[float, float]) -> tuple[float, float]:
    return min(current[0], cap[0]), min(current[1], cap[1])


def _token_url(auth: Any) -> str:
    try:
        return auth.authenticate_request().url
    except Exception:  # building the request may need the key again; the URL is only for the message
        return ""

    def check_connection(self) -> str:
        """Make one cheap authenticated call and describe the result; subclasses implement it."""
        raise NotImplementedError

"""The data-plane REST API: send messages to clients and manage groups from the server side.

``HubClient`` is what users hold (``request.state.signalr.hub("chat")``); it is a name and a
reference, cheap to make per request. ``RestClient`` does the calls, one per running app, sharing
the app's HTTP client. Calls prove who they are with the Entra keeper's token (already in memory,
refreshed in the background) or, in access-key mode, with a short-lived JWT signed with the key.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Container, Sequence
from datetime import timedelta
from typing import Final
from urllib.parse import quote

import httpx2

from ._backoff import Backoff
from ._client_tokens import SigningKey, mint_client_token
from ._credentials import EntraToken
from ._durations import to_seconds
from ._endpoint import ServiceEndpoint
from ._errors import InvalidInputError, ServiceError
from ._keepers import EntraTokenKeeper
from ._names import check_id, prefixed_hub
from ._options import Options
from ._rbac import DataAction
from ._service_errors import service_error, transport_error

__all__ = ["API_VERSION", "HubClient", "RestClient"]

logger = logging.getLogger("signalr_asgi_auth.rest")

API_VERSION: Final = "2022-06-01"
"""The REST API version sent with every call (the one the C# SDK uses)."""

MAX_BODY: Final = 1024 * 1024
"""The service refuses message bodies over 1 MB."""

_ATTEMPTS: Final = 3
_IDEMPOTENT: Final = frozenset({"PUT", "DELETE", "HEAD"})
_KEY_TOKEN_LIFETIME: Final = 300.0
# Retries happen on the caller's request path, so they wait briefly, and not at all when the
# service asks for a longer pause than this (the error then carries its retry_after).
_RETRY_INITIAL: Final = 0.5
_RETRY_CAP: Final = 2.0


def _transient(status: int) -> bool:
    return status == 408 or status >= 500


class RestClient:
    """Calls the REST API for one running app: authentication, retries, error mapping.

    Exactly one of ``entra`` (Entra mode) and ``key`` (access-key mode) is given. ``http`` is the
    app's shared client, opened and closed with the app.
    """

    def __init__(
        self,
        *,
        endpoint: ServiceEndpoint,
        options: Options,
        http: httpx2.AsyncClient,
        entra: EntraTokenKeeper | None = None,
        key: SigningKey | None = None,
    ) -> None:
        if (entra is None) == (key is None):
            msg = "RestClient needs exactly one of entra= and key=."
            raise TypeError(msg)
        self.endpoint = endpoint
        self.application = options.application_name
        self._http = http
        self._entra = entra
        self._key = key
        self._clock = options.clock
        self._timeout = options.request_timeout
        self._backoff = Backoff(
            min(options.retry_initial_delay, _RETRY_INITIAL),
            min(options.retry_max_delay, _RETRY_CAP),
        )

    def __repr__(self) -> str:
        mode = "entra" if self._entra is not None else "access_key"
        return f"RestClient({self.endpoint.server_endpoint!r}, mode={mode!r})"

    async def request(
        self,
        method: str,
        path: str,
        *,
        action: str,
        doing: str,
        params: Sequence[tuple[str, str]] = (),
        content: bytes | None = None,
        accept: Container[int] = (),
    ) -> int:
        """Call ``path`` (already quoted); the status when it is 2xx or in ``accept``.

        PUT, DELETE and HEAD are retried on 408, 5xx and transport errors, at most three
        attempts in all; POST never is, since a retried send could deliver twice.
        """
        if self._http.is_closed:
            msg = (
                "The SignalR REST client is closed: its SignalRAuth has shut down. Use hub clients "
                "only while the app runs (or inside `async with auth`)."
            )
            raise RuntimeError(msg)
        url = self.endpoint.server_url(path)
        query = httpx2.QueryParams([("api-version", API_VERSION), *params])
        headers = {"Content-Type": "application/json"} if content is not None else {}
        attempts = _ATTEMPTS if method in _IDEMPOTENT else 1
        attempt = 0
        while True:
            attempt += 1
            bearer, entra_token = await self._bearer(url)
            headers["Authorization"] = f"Bearer {bearer}"
            try:
                response = await self._http.request(
                    method,
                    url,
                    params=query,
                    content=content,
                    headers=headers,
                    timeout=self._timeout,
                )
            except httpx2.HTTPError as exc:
                error = transport_error(exc, endpoint=self.endpoint, doing=doing)
            else:
                status = response.status_code
                if 200 <= status < 300 or status in accept:
                    return status
                if status == 401 and entra_token is not None and self._entra is not None:
                    self._entra.discard(entra_token)  # the next call fetches a new one
                error = service_error(
                    response,
                    endpoint=self.endpoint,
                    doing=doing,
                    action=action,
                    token=bearer,
                    access_key=self._key is not None,
                )
                if not _transient(status):
                    raise error
            delay = self._retry_delay(attempt, attempts, error)
            if delay is None:
                raise error
            logger.info("Retrying in %.2f s: %s", delay, error)
            await self._clock.sleep(delay)

    def _retry_delay(self, attempt: int, attempts: int, error: ServiceError) -> float | None:
        if attempt >= attempts or (error.retry_after or 0.0) > _RETRY_CAP:
            return None
        return self._backoff.delay(attempt, retry_after=error.retry_after)

    async def _bearer(self, url: str) -> tuple[str, EntraToken | None]:
        if self._entra is not None:
            token = await self._entra.get()  # in memory; fetched only when it is expiring
            return token.token.reveal(), token
        assert self._key is not None
        # The documented audience is the request URL without its query.
        jwt = mint_client_token(
            self._key, audience=url, claims={}, lifetime=_KEY_TOKEN_LIFETIME, now=self._clock.now()
        )
        return jwt, None


def _segment(value: object, what: str) -> str:
    """``value`` checked and quoted as one path segment."""
    return quote(check_id(value, what), safe="")


def _excluded(connection_ids: Sequence[str]) -> list[tuple[str, str]]:
    if isinstance(connection_ids, str) or not isinstance(connection_ids, Sequence):
        msg = "excluded must be a list of connection ids, not a single string or other value."
        raise InvalidInputError(msg)
    return [("excluded", check_id(cid, "Each excluded connection id")) for cid in connection_ids]


def _payload(target: object, arguments: tuple[object, ...]) -> bytes:
    target = check_id(target, "target (the client method to invoke)")
    try:
        body = json.dumps(
            {"target": target, "arguments": list(arguments)}, separators=(",", ":"), allow_nan=False
        ).encode()
    except (TypeError, ValueError) as exc:
        msg = f"The arguments for {target!r:.80} cannot be sent as JSON: {exc}."
        raise InvalidInputError(msg) from None
    if len(body) > MAX_BODY:
        msg = (
            f"The message for {target!r:.80} is {len(body)} bytes as JSON; SignalR Service accepts "
            f"at most {MAX_BODY}."
        )
        raise InvalidInputError(msg)
    return body


class HubClient:
    """Server-side messaging and group management for one hub, through the REST API.

    Get one from ``request.state.signalr.hub("chat")`` (or the FastAPI ``SignalR`` dependency), or
    from ``auth.context.hub("chat")`` in a background job while the app runs. It holds only the hub
    name and the app's shared REST client, so making one per request costs nothing. Every method
    raises :class:`InvalidInputError` for bad arguments, :class:`PermissionDeniedError` (naming the
    roles to assign) when the identity may not do it, and :class:`ServiceError` for other failures.
    """

    __slots__ = ("_application", "_hub", "_path", "_rest")

    def __init__(self, rest: RestClient, hub: str) -> None:
        self._rest = rest
        self._hub = prefixed_hub(hub, rest.application)
        # As the C# SDK calls it: the bare hub in the path, the application as a query parameter;
        # the service joins them as {application}_{hub}.
        self._path = f"/api/hubs/{quote(prefixed_hub(hub, None), safe='')}"
        self._application = [("application", rest.application)] if rest.application else []

    @property
    def name(self) -> str:
        """The hub as the service knows it: lower-case, with the application prefix if any."""
        return self._hub

    def __repr__(self) -> str:
        return f"HubClient({self._hub!r}, endpoint={self._rest.endpoint.server_endpoint!r})"

    async def _call(
        self,
        method: str,
        path: str,
        *,
        action: str,
        doing: str,
        params: Sequence[tuple[str, str]] = (),
        content: bytes | None = None,
        accept: Container[int] = (),
    ) -> int:
        return await self._rest.request(
            method,
            self._path + path,
            action=action,
            doing=f"{doing} in hub {self._hub!r}",
            params=[*self._application, *params],
            content=content,
            accept=accept,
        )

    # -- messages ----------------------------------------------------------------------------

    async def send_to_all(
        self, target: str, *arguments: object, excluded: Sequence[str] = ()
    ) -> None:
        """Invoke ``target(*arguments)`` on every client of the hub but the ``excluded`` connections."""
        await self._call(
            "POST",
            "/:send",
            action=DataAction.HUB_SEND,
            doing="send to all connections",
            params=_excluded(excluded),
            content=_payload(target, arguments),
        )

    async def send_to_user(self, user_id: str, target: str, *arguments: object) -> None:
        """Invoke ``target(*arguments)`` on every connection of ``user_id``."""
        user = _segment(user_id, "user_id")
        await self._call(
            "POST",
            f"/users/{user}/:send",
            action=DataAction.USER_SEND,
            doing="send to a user",
            content=_payload(target, arguments),
        )

    async def send_to_group(
        self, group: str, target: str, *arguments: object, excluded: Sequence[str] = ()
    ) -> None:
        """Invoke ``target(*arguments)`` on every connection in ``group`` but the ``excluded``."""
        name = _segment(group, "group")
        await self._call(
            "POST",
            f"/groups/{name}/:send",
            action=DataAction.GROUP_SEND,
            doing="send to a group",
            params=_excluded(excluded),
            content=_payload(target, arguments),
        )

    async def send_to_connection(self, connection_id: str, target: str, *arguments: object) -> None:
        """Invoke ``target(*arguments)`` on one connection (nothing happens if it is gone)."""
        connection = _segment(connection_id, "connection_id")
        await self._call(
            "POST",
            f"/connections/{connection}/:send",
            action=DataAction.CONNECTION_SEND,
            doing="send to a connection",
            content=_payload(target, arguments),
        )

    # -- groups ------------------------------------------------------------------------------

    async def add_connection_to_group(self, group: str, connection_id: str) -> None:
        """Add a connection to ``group``; :class:`ServiceError` (status 404) if it is not connected."""
        name, connection = _segment(group, "group"), _segment(connection_id, "connection_id")
        status = await self._call(
            "PUT",
            f"/groups/{name}/connections/{connection}",
            action=DataAction.GROUP_WRITE,
            doing="add a connection to a group",
            accept=(404,),
        )
        if status == 404:
            msg = (
                f"Connection {connection_id!r:.80} is not connected to hub {self._hub!r}, so it "
                f"cannot join group {group!r:.80} (404 Not Found)."
            )
            raise ServiceError(msg, status=404)

    async def remove_connection_from_group(self, group: str, connection_id: str) -> None:
        """Remove a connection from ``group``; a connection that is gone is in no group: no error."""
        name, connection = _segment(group, "group"), _segment(connection_id, "connection_id")
        await self._call(
            "DELETE",
            f"/groups/{name}/connections/{connection}",
            action=DataAction.GROUP_WRITE,
            doing="remove a connection from a group",
            accept=(404,),
        )

    async def add_user_to_group(
        self, group: str, user_id: str, *, ttl: float | timedelta | None = None
    ) -> None:
        """Add a user, with their current and future connections, to ``group``.

        ``ttl`` (seconds or ``timedelta``) ends the membership after that long; ``0`` adds only
        the user's current connections. The service's default keeps it for a long time.
        """
        name, user = _segment(group, "group"), _segment(user_id, "user_id")
        params: list[tuple[str, str]] = []
        if ttl is not None:
            seconds = to_seconds(ttl, name="ttl", error=InvalidInputError, allow_zero=True)
            params.append(
                ("ttl", str(math.ceil(seconds)))
            )  # 0 means something: never round down to it
        await self._call(
            "PUT",
            f"/users/{user}/groups/{name}",
            action=DataAction.USER_WRITE,
            doing="add a user to a group",
            params=params,
        )

    async def remove_user_from_group(self, group: str, user_id: str) -> None:
        """Remove a user and their connections from ``group``."""
        name, user = _segment(group, "group"), _segment(user_id, "user_id")
        await self._call(
            "DELETE",
            f"/users/{user}/groups/{name}",
            action=DataAction.USER_WRITE,
            doing="remove a user from a group",
        )

    # -- existence ---------------------------------------------------------------------------

    async def _exists(self, path: str, *, action: str, doing: str) -> bool:
        status = await self._call("HEAD", path, action=action, doing=doing, accept=(404,))
        return status != 404

    async def connection_exists(self, connection_id: str) -> bool:
        """Whether the connection is connected to this hub."""
        connection = _segment(connection_id, "connection_id")
        return await self._exists(
            f"/connections/{connection}",
            action=DataAction.CONNECTION_READ,
            doing="check a connection",
        )

    async def user_exists(self, user_id: str) -> bool:
        """Whether the user has at least one connection to this hub."""
        user = _segment(user_id, "user_id")
        return await self._exists(
            f"/users/{user}", action=DataAction.USER_READ, doing="check a user"
        )

    async def group_exists(self, group: str) -> bool:
        """Whether ``group`` has at least one connection."""
        name = _segment(group, "group")
        return await self._exists(
            f"/groups/{name}", action=DataAction.GROUP_READ, doing="check a group"
        )

    async def user_in_group(self, group: str, user_id: str) -> bool:
        """Whether the user belongs to ``group``."""
        name, user = _segment(group, "group"), _segment(user_id, "user_id")
        return await self._exists(
            f"/users/{user}/groups/{name}",
            action=DataAction.GROUP_READ,
            doing="check a user's group membership",
        )

    # -- connections -------------------------------------------------------------------------

    async def close_connection(self, connection_id: str, *, reason: str | None = None) -> None:
        """Close a client connection; ``reason`` reaches the client in its close message."""
        connection = _segment(connection_id, "connection_id")
        params = [] if reason is None else [("reason", check_id(reason, "reason"))]
        await self._call(
            "DELETE",
            f"/connections/{connection}",
            action=DataAction.CONNECTION_WRITE,
            doing="close a connection",
            params=params,
        )

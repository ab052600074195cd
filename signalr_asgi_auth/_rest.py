"""The data-plane REST API: send messages to clients and manage groups from the server side.

``HubClient`` is what users hold (``request.state.signalr.hub("chat")``); it is a name and a
reference, cheap to make per request. ``RestClient`` does the calls, one per running app, sharing
the app's HTTP client. Calls prove who they are with the Entra keeper's token (already in memory,
refreshed in the background) or, in access-key mode, with a short-lived JWT signed with the key.

Retries follow one rule: a request is tried again only if doing so cannot do anything twice. Any
call is retried when the service cannot have processed it (no connection was made, 429, or 503
with ``Retry-After``); idempotent calls (group changes, checks, closing connections) also after
anything transient (408, 5xx, a timeout or a connection lost after sending). Sends never are then:
the service may have delivered the first one.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final
from urllib.parse import quote, unquote

import anyio
import httpx2

from . import _telemetry as telemetry
from ._backoff import Backoff
from ._call_deadline import request_within
from ._client_tokens import SigningKey, mint_client_token
from ._credentials import EntraToken
from ._durations import to_seconds
from ._endpoint import ServiceEndpoint
from ._errors import (
    AuthenticationFailedError,
    InvalidInputError,
    PartialSendError,
    PermissionDeniedError,
    ServiceError,
)
from ._keepers import EntraTokenKeeper
from ._names import check_id, prefixed_hub
from ._options import Options
from ._rbac import DataAction
from ._service_errors import service_error, transport_error

__all__ = ["API_VERSION", "MAX_ATTEMPTS", "HubClient", "RestClient"]

logger = logging.getLogger("signalr_asgi_auth.rest")

API_VERSION: Final = "2022-06-01"
"""The REST API version sent with every call (the one the C# SDK uses)."""

MAX_BODY: Final = 1024 * 1024
"""The service refuses message bodies over 1 MB."""

MAX_ATTEMPTS: Final = 3
"""Attempts per call, the first included: at most two retries."""

_IDEMPOTENT: Final = frozenset({"PUT", "DELETE", "HEAD"})
_KEY_TOKEN_LIFETIME: Final = 300.0
# Retries happen on the caller's request path, so they wait briefly, and not at all when the
# service asks for a longer pause than this (the error then carries its retry_after).
_RETRY_INITIAL: Final = 0.5
_RETRY_CAP: Final = 2.0
# Sends to several users or groups: requests in flight at once, per call.
_FAN_OUT: Final = 8
# No connection was made, so no byte of the request reached the service.
_NOT_SENT: Final = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)


@dataclass(frozen=True, slots=True)
class _Failure:
    """An attempt that failed: the error, and what another attempt could risk.

    ``unprocessed``: the service cannot have acted on the request, so any call may be retried.
    ``transient``: it may have, but a later attempt may succeed: only idempotent calls retry.
    """

    error: ServiceError
    unprocessed: bool = False
    transient: bool = False


def _classify(status: int, error: ServiceError) -> _Failure:
    if status == 429 or (status == 503 and error.retry_after is not None):
        return _Failure(error, unprocessed=True)
    return _Failure(error, transient=status == 408 or status >= 500)


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
        idempotent: bool | None = None,
    ) -> int:
        """Call ``path`` (already quoted); the status when it is 2xx or in ``accept``.

        At most :data:`MAX_ATTEMPTS` attempts in all. Every call is retried when the service
        cannot have processed the attempt (no connection, 429, 503 with ``Retry-After``);
        ``idempotent`` calls (by default PUT, DELETE and HEAD) also on 408, other 5xx and other
        transport errors. A send is not, since a second one could deliver the message twice.
        """
        if self._http.is_closed:
            msg = (
                "The SignalR REST client is closed: its SignalRAuth has shut down. Use hub clients "
                "only while the app runs (or inside `async with auth`)."
            )
            raise RuntimeError(msg)
        url = self.endpoint.server_url(path)
        query = httpx2.QueryParams([("api-version", API_VERSION), *params])
        if idempotent is None:
            idempotent = method in _IDEMPOTENT
        attributes = {
            telemetry.ENDPOINT: self.endpoint.endpoint,
            telemetry.HUB: _hub_of(path),
            "http.request.method": method,
            "signalr.action": action,
        }
        with telemetry.span("signalr.rest", attributes) as span:
            attempt = 0
            while True:
                attempt += 1
                outcome = await self._attempt(
                    method, url, query, content, doing=doing, action=action, accept=accept
                )
                if isinstance(outcome, int):
                    span.set_attribute(telemetry.STATUS, outcome)
                    if attempt > 1:
                        span.set_attribute("signalr.attempts", attempt)
                    return outcome
                error = outcome.error
                if not (outcome.unprocessed or (idempotent and outcome.transient)):
                    if outcome.transient:  # not idempotent: it may have been carried out
                        msg = f"{error} It was not retried: the service may have delivered it."
                        raise ServiceError(msg, status=error.status, retry_after=error.retry_after)
                    raise error
                delay = self._retry_delay(attempt, error)
                if delay is None:
                    raise error
                logger.info("Retrying in %.2f s: %s", delay, error)
                await self._clock.sleep(delay)

    async def _attempt(
        self,
        method: str,
        url: str,
        query: httpx2.QueryParams,
        content: bytes | None,
        *,
        doing: str,
        action: str,
        accept: Container[int],
    ) -> int | _Failure:
        """One request: the status if it is a success (or accepted), else what went wrong."""
        bearer, entra_token = await self._bearer(url)
        headers = {"Authorization": f"Bearer {bearer}"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = await request_within(
                self._http,
                method,
                url,
                params=query,
                content=content,
                headers=headers,
                timeout=self._timeout,
            )
        except httpx2.HTTPError as exc:
            error = transport_error(exc, endpoint=self.endpoint, doing=doing)
            return _Failure(error, unprocessed=isinstance(exc, _NOT_SENT), transient=True)
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
        return _classify(status, error)

    def _retry_delay(self, attempt: int, error: ServiceError) -> float | None:
        if attempt >= MAX_ATTEMPTS or (error.retry_after or 0.0) > _RETRY_CAP:
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


def _hub_of(path: str) -> str:
    """The hub a REST path is about (``/api/hubs/{hub}/...``): the only part of the path a span
    carries, since the rest may hold a user, group or connection id."""
    parts = path.split("/", 4)
    return unquote(parts[3]) if len(parts) > 3 and parts[1:3] == ["api", "hubs"] else ""


def _segment(value: object, what: str) -> str:
    """``value`` checked and quoted as one path segment."""
    return quote(check_id(value, what), safe="")


def _excluded(connection_ids: Sequence[str]) -> list[tuple[str, str]]:
    if isinstance(connection_ids, str) or not isinstance(connection_ids, Sequence):
        msg = "excluded must be a list of connection ids, not a single string or other value."
        raise InvalidInputError(msg)
    return [("excluded", check_id(cid, "Each excluded connection id")) for cid in connection_ids]


def _reason(reason: object) -> list[tuple[str, str]]:
    return [] if reason is None else [("reason", check_id(reason, "reason"))]


def _recipients(values: Iterable[str], what: str) -> list[str]:
    """``values`` checked as ids, each once, in their order."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        msg = f"{what}s must be a list of {what}s, not a single string or other value."
        raise InvalidInputError(msg)
    return list(dict.fromkeys(check_id(value, f"Each {what}") for value in values))


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
        idempotent: bool | None = None,
    ) -> int:
        return await self._rest.request(
            method,
            self._path + path,
            action=action,
            doing=f"{doing} in hub {self._hub!r}",
            params=[*self._application, *params],
            content=content,
            accept=accept,
            idempotent=idempotent,
        )

    async def _fan_out(
        self, recipients: list[str], kind: str, target: str, send: Callable[[str], Awaitable[None]]
    ) -> None:
        """``send`` to each recipient and raise if any of them failed.

        The first request goes alone: if the service refuses the identity (401, 403), it would
        refuse every other one too, so none is made. The rest go a few at a time. Nothing reached
        anyone: the first recipient's error as it is. Some were sent: :class:`PartialSendError`.
        """
        failed: dict[str, ServiceError] = {}
        refused: list[ServiceError] = []

        async def attempt(recipient: str) -> None:
            if refused:
                failed[recipient] = refused[0]
                return
            try:
                await send(recipient)
            except (AuthenticationFailedError, PermissionDeniedError) as error:
                refused.append(error)
                failed[recipient] = error
            except ServiceError as error:
                failed[recipient] = error

        if not recipients:
            return
        await attempt(recipients[0])
        queue = iter(recipients[1:])

        async def worker() -> None:
            for recipient in queue:  # shared by the workers: each takes the next
                await attempt(recipient)

        async with anyio.create_task_group() as group:
            for _ in range(min(_FAN_OUT, len(recipients) - 1)):
                group.start_soon(worker)
        if not failed:
            return
        sent = tuple(recipient for recipient in recipients if recipient not in failed)
        if not sent:
            raise failed[recipients[0]]
        ordered = {recipient: failed[recipient] for recipient in recipients if recipient in failed}
        raise PartialSendError(target=target, kind=kind, hub=self._hub, sent=sent, failed=ordered)

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

    async def send_to_users(self, user_ids: Iterable[str], target: str, *arguments: object) -> None:
        """Invoke ``target(*arguments)`` on every connection of each user in ``user_ids``.

        The REST API has no such call: this makes one request per user (each user once), a few
        at a time. If some fail, :class:`PartialSendError` says which users got the message.
        """
        users = _recipients(user_ids, "user id")
        body = _payload(target, arguments)

        async def send(user: str) -> None:
            await self._call(
                "POST",
                f"/users/{quote(user, safe='')}/:send",
                action=DataAction.USER_SEND,
                doing=f"send to user {user!r:.80}",
                content=body,
            )

        await self._fan_out(users, "users", target, send)

    async def send_to_groups(
        self,
        groups: Iterable[str],
        target: str,
        *arguments: object,
        excluded: Sequence[str] = (),
    ) -> None:
        """Invoke ``target(*arguments)`` on every connection in each of ``groups`` but the
        ``excluded`` connections.

        The REST API has no such call: this makes one request per group (each group once), a
        few at a time, so a connection in two of the groups gets the message twice. If some
        fail, :class:`PartialSendError` says which groups got it.
        """
        names = _recipients(groups, "group")
        body = _payload(target, arguments)
        skipped = _excluded(excluded)

        async def send(group: str) -> None:
            await self._call(
                "POST",
                f"/groups/{quote(group, safe='')}/:send",
                action=DataAction.GROUP_SEND,
                doing=f"send to group {group!r:.80}",
                params=skipped,
                content=body,
            )

        await self._fan_out(names, "groups", target, send)

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

    async def remove_connection_from_all_groups(self, connection_id: str) -> None:
        """Remove a connection from every group it is in; a connection that is gone is in none."""
        connection = _segment(connection_id, "connection_id")
        await self._call(
            "DELETE",
            f"/connections/{connection}/groups",
            action=DataAction.GROUP_WRITE,
            doing="remove a connection from all groups",
            accept=(404,),
        )

    async def remove_user_from_all_groups(self, user_id: str) -> None:
        """Remove a user from every group: their connections now and to come join none of them."""
        user = _segment(user_id, "user_id")
        await self._call(
            "DELETE",
            f"/users/{user}/groups",
            action=DataAction.USER_WRITE,
            doing="remove a user from all groups",
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
        await self._call(
            "DELETE",
            f"/connections/{connection}",
            action=DataAction.CONNECTION_WRITE,
            doing="close a connection",
            params=_reason(reason),
        )

    async def _close(self, path: str, doing: str, excluded: Sequence[str], reason: object) -> None:
        # A POST, but closing twice closes nothing more: retried as the idempotent calls are.
        await self._call(
            "POST",
            f"{path}/:closeConnections",
            action=DataAction.CONNECTION_WRITE,
            doing=doing,
            params=[*_excluded(excluded), *_reason(reason)],
            idempotent=True,
        )

    async def close_all_connections(
        self, *, excluded: Sequence[str] = (), reason: str | None = None
    ) -> None:
        """Close every connection of the hub but the ``excluded``; ``reason`` reaches each client
        in its close message."""
        await self._close("", "close all connections", excluded, reason)

    async def close_group_connections(
        self, group: str, *, excluded: Sequence[str] = (), reason: str | None = None
    ) -> None:
        """Close every connection in ``group`` but the ``excluded``, with ``reason``."""
        name = _segment(group, "group")
        await self._close(f"/groups/{name}", "close a group's connections", excluded, reason)

    async def close_user_connections(
        self, user_id: str, *, excluded: Sequence[str] = (), reason: str | None = None
    ) -> None:
        """Close every connection of ``user_id`` but the ``excluded``, with ``reason``."""
        user = _segment(user_id, "user_id")
        await self._close(f"/users/{user}", "close a user's connections", excluded, reason)

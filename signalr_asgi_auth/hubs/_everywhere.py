"""Default mode with several endpoints: a hub's send goes out on its pool at every endpoint.

The app holds server connections to every endpoint (as .NET does), and a client is on whichever
endpoint it negotiated with, so ``clients.all``, a user or a group is sent on every pool of the
hub; a message for connections this app carries goes only to the pools that carry them. A pool
with no server connection up is skipped: the service closed its clients with it. Every pool is
tried before a failure is raised; with one pool its error is raised as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._errors import EndpointDeliveryError, SignalRAuthError
from ._clients import Audience

if TYPE_CHECKING:
    from ._sessions import HubConnections

__all__ = ["send_everywhere"]


async def send_everywhere(
    running: Sequence[HubConnections],
    audience: Audience,
    target: str,
    arguments: tuple[Any, ...],
    *,
    caller: HubConnections | None = None,
    via: str | None = None,
) -> None:
    """Send on every pool that may hold a recipient; the ``caller``'s pool first, on the caller's
    own server connection (``via``), in order with its completion."""
    pools = _pools(running, audience, caller)
    sent: list[str] = []
    failed: dict[str, SignalRAuthError] = {}
    for connections in pools:
        try:
            await connections.send(
                audience, target, arguments, via=via if connections is caller else None
            )
        except SignalRAuthError as error:
            failed[connections.endpoint] = error
        else:
            sent.append(connections.endpoint)
    if not failed:
        return
    if len(pools) == 1:
        raise next(iter(failed.values()))
    raise EndpointDeliveryError(
        doing=f"send {target!r:.80} to clients of hub {pools[0].hub_name!r}",
        sent=sent,
        failed=failed,
    )


def _pools(
    running: Sequence[HubConnections], audience: Audience, caller: HubConnections | None
) -> list[HubConnections]:
    ordered = sorted(running, key=lambda connections: connections is not caller)
    if audience.kind == "connections":
        holders = [c for c in ordered if any(c.holds(name) for name in audience.names)]
        if all(any(c.holds(name) for c in holders) for name in audience.names):
            return holders
    up = [c for c in ordered if c is caller or c.up]
    # None up: try them all, so that the caller gets the pool's own "not ready" error.
    return up or ordered

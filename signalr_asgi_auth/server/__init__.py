"""Default mode: the app's server connections to SignalR Service (auth, handshake, pings, reconnects).

Per hub, a :class:`ServerConnectionPool` keeps ``server_connection_count`` WebSockets to
``{server endpoint}/server/?hub={hub}`` open for the app's lifetime and hands what the service says
about clients to the hub layer (:class:`ServiceEvents`); the hub layer sends through the pool
(:class:`ServerConnections`). We follow the .NET server SDK ``Microsoft.Azure.SignalR`` as of the
Azure/azure-signalr snapshot 31686ed7 (2024-03-22); ``docs/design/default-mode.md`` has the layout.
"""

from ._connection import ConnectionTimings
from ._pool import HUB_STOP_TIMEOUT, STOP_TIMEOUT, ServerConnectionPool
from ._pools import ServerConnectionPools, check_server_hubs
from ._seams import ClientMessage, ServerConnections, ServerHub, ServiceEvents
from ._server_identity import ServerAuthorization, server_id, user_agent

__all__ = [
    "HUB_STOP_TIMEOUT",
    "STOP_TIMEOUT",
    "ClientMessage",
    "ConnectionTimings",
    "ServerAuthorization",
    "ServerConnectionPool",
    "ServerConnectionPools",
    "ServerConnections",
    "ServerHub",
    "ServiceEvents",
    "check_server_hubs",
    "server_id",
    "user_agent",
]

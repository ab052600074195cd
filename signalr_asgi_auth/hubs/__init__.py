"""Hubs in Python: Hub, calls, clients and groups, over server connections or upstream requests.

One :class:`Hub` serves both service modes. In Default mode (``SignalRAuth(hubs=[hub])``) the
service hands each client connection to the app over its server connections, and this package
speaks the SignalR hub protocol with each client: handshake, invocations, completions, streams,
client results, pings. In Serverless mode (:meth:`Hub.upstream_endpoint`) the service posts each
invocation and connection event to the app, and sends go through the REST API.
"""

from .._upstream import HubMethodError
from ._call import HubCall
from ._clients import CallClients, CallGroups, ClientProxy, HubClients, HubGroups, SingleClientProxy
from ._hub import Hub

__all__ = [
    "CallClients",
    "CallGroups",
    "ClientProxy",
    "Hub",
    "HubCall",
    "HubClients",
    "HubGroups",
    "HubMethodError",
    "SingleClientProxy",
]

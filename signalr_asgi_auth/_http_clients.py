"""The HTTP clients of a running app: one for its calls, one for its server connections.

A server connection keeps the HTTP connection its upgrade opened for as long as it lives. In one
pool with the calls, 20 hubs of 5 server connections took all of httpx2's default 100, and every
key refresh, REST call, health probe and service-issued token behind them waited for a
``PoolTimeout`` (and so did negotiation). So they never share a pool:

- the calls go through ``http_client=`` or a client made here with httpx2's default limits;
- server connections go through ``server_http_client=`` or a client made here with no connection
  limit and no keep-alive. Their number is bounded by the configuration already (per endpoint, the
  hubs times ``server_connection_count``, and at most as many again when the service asks for
  more), and an upgraded connection never goes back to a pool.

Both clients made here read the environment's proxy and CA settings (``HTTPS_PROXY``,
``SSL_CERT_FILE``...), as httpx2 does; a proxy or TLS settings given in code need both clients.
"""

from __future__ import annotations

from typing import Final

import httpx2

from ._errors import ConfigurationError
from ._version import __version__

__all__ = ["USER_AGENT", "calls_client", "check_clients", "server_connections_client"]

USER_AGENT: Final = f"signalr-asgi-auth/{__version__}"


def calls_client() -> httpx2.AsyncClient:
    """For the keys, tokens, REST calls and probes: httpx2's default pool (100 connections)."""
    return httpx2.AsyncClient(headers={"User-Agent": USER_AGENT}, follow_redirects=False)


def server_connections_client() -> httpx2.AsyncClient:
    """For server connections' WebSockets: as many connections as they are, none kept idle."""
    return httpx2.AsyncClient(
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        limits=httpx2.Limits(max_connections=None, max_keepalive_connections=0),
    )


def check_clients(
    http_client: httpx2.AsyncClient | None, server_http_client: httpx2.AsyncClient | None
) -> None:
    """``http_client=`` and ``server_http_client=`` checked: clients, and two of them."""
    for name, client in (("http_client", http_client), ("server_http_client", server_http_client)):
        if client is not None and not isinstance(client, httpx2.AsyncClient):
            msg = f"{name} must be an httpx2.AsyncClient, not {type(client).__name__}."
            raise ConfigurationError(msg)
    if server_http_client is not None and server_http_client is http_client:
        msg = (
            "server_http_client must be a client of its own, not http_client: each server "
            "connection holds one of its connections for as long as it lives, and would take "
            "them from the key refreshes, REST calls and probes. Give it "
            "httpx2.AsyncClient(limits=httpx2.Limits(max_connections=None)) with your proxy or "
            "TLS settings, or leave it out."
        )
        raise ConfigurationError(msg)

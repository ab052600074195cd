"""Where a SignalR resource lives: its endpoint, client endpoint and server endpoint, and the URLs
and audiences built from them (as the C# SDK builds them)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from ._errors import ConfigurationError

__all__ = ["ServiceEndpoint", "normalize_url"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"[A-Za-z0-9._-]+")
_CLOUD_SUFFIXES = (".service.signalr.net", ".signalr.azure.cn", ".signalr.azure.us")


def normalize_url(value: str, *, key: str, port: int | None = None) -> str:
    """``scheme://host[:port][/path]`` with the host lower-cased, the default port and trailing ``/`` dropped.

    ``key`` names the setting in the error message, so that it says what to fix.
    """
    problem = f"Invalid value for {key}: it must be an absolute http:// or https:// URL"
    if not isinstance(value, str) or not value.strip():
        msg = f"{problem}, got an empty value."
        raise ConfigurationError(msg)
    text = value.strip()  # a newline copied along with an environment variable is harmless
    try:
        parts = urlsplit(text)
    except ValueError:  # an unclosed or invalid [IPv6] literal
        msg = f"{problem} with a valid host."
        raise ConfigurationError(msg) from None
    try:
        url_port = parts.port
    except ValueError:
        msg = f"{problem} with a valid port."
        raise ConfigurationError(msg) from None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        msg = f"{problem}."
        raise ConfigurationError(msg)
    if any(char.isspace() or not char.isprintable() for char in text):
        msg = f"{problem} without spaces or control characters."
        raise ConfigurationError(msg)
    bracketed = "[" in parts.netloc  # urlsplit accepts [v1.x] (IPvFuture) and drops the brackets
    if not _is_host(parts.hostname) or (bracketed and ":" not in parts.hostname):
        msg = f"{problem} whose host holds only letters, digits, '-', '_' and '.', or is an IP address."
        raise ConfigurationError(msg)
    if url_port == 0:
        msg = f"{problem} with a port between 1 and 65535."
        raise ConfigurationError(msg)
    if parts.username is not None or parts.password is not None:
        msg = f"{problem} without user information."
        raise ConfigurationError(msg)
    if parts.query or parts.fragment:
        msg = f"{problem} without a query or fragment."
        raise ConfigurationError(msg)
    scheme = parts.scheme.lower()
    chosen = port if port is not None else url_port
    return _join(scheme, parts, chosen)


def _is_host(host: str) -> bool:
    if ":" in host:  # urlsplit has removed an IPv6 literal's brackets
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    return _HOST.fullmatch(host) is not None


def _join(scheme: str, parts: SplitResult, port: int | None) -> str:
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


@dataclass(frozen=True, slots=True)
class ServiceEndpoint:
    """One SignalR resource.

    ``endpoint`` identifies the resource and gives token audiences; ``client_endpoint`` is where browsers
    connect (a proxy or Application Gateway may sit there); ``server_endpoint`` is where this app calls
    the service (access key, REST API). Both default to ``endpoint``.
    """

    endpoint: str
    client_endpoint: str
    server_endpoint: str

    @classmethod
    def create(
        cls,
        endpoint: str,
        *,
        port: int | None = None,
        client_endpoint: str | None = None,
        server_endpoint: str | None = None,
    ) -> ServiceEndpoint:
        if port is not None and (
            not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536
        ):
            msg = "Invalid value for port: it must be an integer between 1 and 65535."
            raise ConfigurationError(msg)
        main = normalize_url(endpoint, key="endpoint", port=port)
        return cls(
            endpoint=main,
            client_endpoint=(
                normalize_url(client_endpoint, key="client_endpoint") if client_endpoint else main
            ),
            server_endpoint=(
                normalize_url(server_endpoint, key="server_endpoint") if server_endpoint else main
            ),
        )

    @property
    def audience_base(self) -> str:
        """``scheme://host`` of the endpoint: the service ignores ports and paths in audiences."""
        parts = urlsplit(self.endpoint)
        return _join(parts.scheme, parts, None).removesuffix(parts.path.rstrip("/"))

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).hostname or ""

    @property
    def resource_name(self) -> str | None:
        """The resource's name when the host is an Azure SignalR host name, else ``None``."""
        for suffix in _CLOUD_SUFFIXES:
            if self.host.endswith(suffix):
                # a private endpoint's host name is <name>.privatelink.service.signalr.net
                name = self.host.removesuffix(suffix).removesuffix(".privatelink")
                return name if name and "." not in name else None
        return None

    def client_audience(self, prefixed_hub: str) -> str:
        return f"{self.audience_base}/client/?hub={prefixed_hub}"

    def client_url(self, prefixed_hub: str) -> str:
        return f"{self.client_endpoint}/client/?hub={prefixed_hub}"

    def server_audience(self, prefixed_hub: str) -> str:
        """A server token's ``aud``: host only, as for client tokens (the URL keeps the port)."""
        return f"{self.audience_base}/server/?hub={prefixed_hub}"

    def server_connection_url(self, prefixed_hub: str, connection_id: str) -> str:
        """Where a server connection opens its WebSocket (``http(s)``: httpx2 upgrades it)."""
        return f"{self.server_endpoint}/server/?hub={prefixed_hub}&cid={connection_id}"

    @property
    def access_key_url(self) -> str:
        return f"{self.server_endpoint}/api/v1/auth/accessKey"

    def server_url(self, path: str) -> str:
        """A URL on the server endpoint; ``path`` starts with ``/``."""
        return f"{self.server_endpoint}{path}"

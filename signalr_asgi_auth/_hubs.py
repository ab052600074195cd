"""A hub's names and addresses, worked out once per hub: every negotiation needs them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ._endpoint import ServiceEndpoint
from ._names import prefixed_hub

__all__ = ["HubAddress", "HubAddresses"]

_MAX_KEPT: Final = 256
"""Apps have a handful of hubs; a hub name taken from request paths cannot fill the memory."""


@dataclass(frozen=True, slots=True)
class HubAddress:
    """One hub as the service knows it."""

    name: str
    """Lower-cased, without the application prefix (REST API paths, ``:generateToken``)."""
    prefixed: str
    """Lower-cased, with the application prefix: the hub the service runs."""
    url: str
    """Where its clients connect: ``{client endpoint}/client/?hub={prefixed}``."""
    audience: str
    """Its client tokens' ``aud``."""


class HubAddresses:
    """:class:`HubAddress` by hub name as the app gives it (checked once, then kept)."""

    def __init__(self, endpoint: ServiceEndpoint, application: str | None) -> None:
        self._endpoint = endpoint
        self._application = application
        self._kept: dict[str, HubAddress] = {}

    def __repr__(self) -> str:
        return f"HubAddresses({sorted(self._kept)!r})"

    def kept(self) -> list[HubAddress]:
        """The hubs asked for so far (negotiated for, or checked on the way), oldest first."""
        return list(self._kept.values())

    def get(self, hub: str) -> HubAddress:
        """The addresses of ``hub``; :class:`InvalidInputError` for a name the service refuses."""
        if isinstance(hub, str) and (kept := self._kept.get(hub)) is not None:
            return kept
        prefixed = prefixed_hub(hub, self._application)
        address = HubAddress(
            name=prefixed_hub(hub, None),
            prefixed=prefixed,
            url=self._endpoint.client_url(prefixed),
            audience=self._endpoint.client_audience(prefixed),
        )
        if len(self._kept) < _MAX_KEPT:
            self._kept[hub] = address
        return address

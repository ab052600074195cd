"""Serverless mode: where SignalR Service POSTs the chat's invocations and connection events
(``{app}/upstream/{event}``), and how the app knows a request came from the service.

Each request is verified before the hub sees it: an Entra token of the resource's managed identity
for ``AUDIENCE``, from the tenant the app trusts (or an ``X-ASRS-Signature`` made with an access
key, if the verifier is given keys).
"""

from __future__ import annotations

import os

from signalr_asgi_auth import UpstreamVerifier

__all__ = ["AUDIENCE", "UPSTREAM_PATH", "azure_verifier"]

UPSTREAM_PATH = "/upstream/{event}"
AUDIENCE = "api://signalr-asgi-auth-chat"
"""The upstream auth ``Resource`` the emulator uses; on Azure, set ``UPSTREAM_AUDIENCE``."""


def azure_verifier() -> UpstreamVerifier | None:
    """From ``UPSTREAM_AUDIENCE`` (the upstream auth's Resource) and ``UPSTREAM_TENANT_ID``, and
    optionally ``UPSTREAM_OBJECT_ID`` (the resource's managed identity); None when not set."""
    audience = os.environ.get("UPSTREAM_AUDIENCE")
    tenant_id = os.environ.get("UPSTREAM_TENANT_ID")
    if not audience or not tenant_id:
        return None
    object_id = os.environ.get("UPSTREAM_OBJECT_ID")
    return UpstreamVerifier(
        audience=audience,
        tenant_id=tenant_id,
        allowed_object_ids=[object_id] if object_id else None,
    )

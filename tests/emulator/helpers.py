"""Small helpers shared by the emulator tests."""

from __future__ import annotations

from typing import Any

import jwt

SIGNALR_SCOPE = "https://signalr.azure.com/.default"
SIGNALR_RESOURCE = "https://signalr.azure.com"
TIMEOUT = 5.0
"""Upper bound for any single HTTP exchange with the emulator in these tests."""


def unverified_claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}

"""Temporary access keys handed out by ``GET /api/v1/auth/accessKey``."""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass

from ._clock import EmulatorClock

__all__ = ["AccessKeyStore", "IssuedKey"]


@dataclass(frozen=True, slots=True, repr=False)
class IssuedKey:
    """One temporary access key: ``key_id`` is what client tokens carry as ``kid``, the UTF-8 bytes
    of ``access_key`` are the HMAC key that signs them."""

    key_id: str
    access_key: str
    issued_at: float
    expires_at: float
    principal_oid: str

    def is_valid_at(self, now: float) -> bool:
        return now < self.expires_at

    def __repr__(self) -> str:
        return (
            f"IssuedKey(key_id={self.key_id!r}, access_key='**********', "
            f"issued_at={self.issued_at!r}, expires_at={self.expires_at!r}, "
            f"principal_oid={self.principal_oid!r})"
        )


class AccessKeyStore:
    """Every key issued so far. Keys belong to the resource, not to the principal that fetched them:
    any unexpired key validates any client token, as at Azure."""

    def __init__(self, *, clock: EmulatorClock, key_lifetime: float) -> None:
        self.key_lifetime = key_lifetime
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: list[IssuedKey] = []

    def issue(self, principal_oid: str) -> IssuedKey:
        now = self._clock.now()
        key = IssuedKey(
            key_id=str(uuid.uuid4()),
            access_key=secrets.token_urlsafe(32),
            issued_at=now,
            expires_at=now + self.key_lifetime,
            principal_oid=principal_oid,
        )
        with self._lock:
            self._keys.append(key)
        return key

    @property
    def issued(self) -> list[IssuedKey]:
        with self._lock:
            return list(self._keys)

    def valid(self) -> list[IssuedKey]:
        now = self._clock.now()
        return [key for key in self.issued if key.is_valid_at(now)]

    def find(self, key_id: str) -> IssuedKey | None:
        """The key with this id, expired or not; callers decide what expiry means to them."""
        return next((key for key in self.issued if key.key_id == key_id), None)

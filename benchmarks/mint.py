"""(a) Minting a client token against a raw HMAC-SHA256 of the same signing input.

In one process, interleaved: each repeat times every row once, in rotating order, over enough calls
to take about 20 ms; a row's cost is its fastest repeat (what the machine's other work disturbed
least), and its ratio is that over the raw HMAC's. Rows:

- ``hmac.digest`` of the token's signing input (``header.payload``) with the key: the baseline;
- ``mint_client_token`` with the claims a real negotiate builds (user id in ``asrs.s.uid`` and
  ``nameid``), the key's prepared HMAC: the goal applies here (at most 5x);
- ``SignalRContext.client_token("chat", user_id=...)``: the whole per-request path (claim checks,
  audience, key lookup), driven without an event loop turn since it never waits;
- ``jwt.encode`` of the same payload and header, for context.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import jwt

from signalr_asgi_auth import SignalRAuth, SignalRContext
from signalr_asgi_auth._client_tokens import SigningKey, build_claims, mint_client_token
from signalr_asgi_auth._secrets import Secret

from ._common import Goal, Result, Settings, time_rows

__all__ = ["NAME", "TITLE", "run"]

NAME = "mint"
TITLE = "(a) client-token minting / raw HMAC-SHA256"

_ENDPOINT = "https://bench.service.signalr.net"
_AUDIENCE = f"{_ENDPOINT}/client/?hub=chat"
_ACCESS_KEY = "bench-access-key-0123456789abcdefghijklmnopqrstuv"  # 48 characters, as Azure's
_KEY_ID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
_USER = "user-1"


def _drive(coroutine: Coroutine[Any, Any, str]) -> str:
    """Run a coroutine that never suspends (minting with a key in memory) to its end."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        value: str = stop.value
        return value
    coroutine.close()
    msg = "client_token() waited for something; it should not with a key in memory."
    raise RuntimeError(msg)


def _rows(context: SignalRContext) -> dict[str, Callable[[], object]]:
    key = SigningKey(key_id=_KEY_ID, secret=Secret(_ACCESS_KEY))
    claims = build_claims(user_id=_USER, claims=None, roles=())
    now = time.time()
    token = mint_client_token(key, audience=_AUDIENCE, claims=claims, lifetime=3600, now=now)
    signing_input = token.rsplit(".", 1)[0].encode()
    raw_key = _ACCESS_KEY.encode()
    payload = {**claims, "nbf": int(now), "exp": int(now + 3600), "iat": int(now), "aud": _AUDIENCE}
    headers = {"kid": _KEY_ID}
    check = jwt.decode(token, raw_key, algorithms=["HS256"], audience=_AUDIENCE)
    if check["asrs.s.uid"] != _USER:
        msg = "the minted token does not carry the user id"
        raise RuntimeError(msg)

    def raw_hmac() -> bytes:
        return hmac.digest(raw_key, signing_input, "sha256")

    def mint() -> str:
        return mint_client_token(
            key, audience=_AUDIENCE, claims=claims, lifetime=3600, now=time.time()
        )

    def client_token() -> str:
        return _drive(context.client_token("chat", user_id=_USER))

    def pyjwt() -> str:
        return jwt.encode(payload, raw_key, algorithm="HS256", headers=headers)

    return {
        "raw HMAC-SHA256": raw_hmac,
        "mint_client_token": mint,
        "SignalRContext.client_token": client_token,
        "jwt.encode": pyjwt,
    }


async def _measure(repeats: int) -> dict[str, float]:
    auth = SignalRAuth(endpoint=_ENDPOINT, access_key=_ACCESS_KEY)
    async with auth as context:
        return time_rows(_rows(context), repeats)


def run(settings: Settings) -> list[Result]:
    nanoseconds = anyio.run(_measure, settings.count(15))
    baseline = nanoseconds["raw HMAC-SHA256"]
    details: dict[str, Any] = {
        "ns_per_call": {name: round(value) for name, value in nanoseconds.items()},
        "ratios": {name: round(value / baseline, 2) for name, value in nanoseconds.items()},
        "method": "fastest of interleaved repeats, ~20 ms each",
    }

    def row(name: str, goal: Goal) -> Result:
        ratio = nanoseconds[name] / baseline
        return Result(
            benchmark=NAME,
            measure=f"{name} / raw HMAC-SHA256",
            value=ratio,
            goal=goal,
            shown=f"{ratio:.1f}x ({nanoseconds[name] / 1000:.2f} µs vs {baseline / 1000:.2f} µs)",
            details=details,
        )

    return [
        row("mint_client_token", Goal("<=", 5.0, "≤ 5x")),
        row("SignalRContext.client_token", Goal("info", text="— (whole per-request path)")),
        row("jwt.encode", Goal("info", text="— (context)")),
    ]

"""The two example apps answer negotiate alike (the same reply, never cached), and how they pick
their service mode."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from examples._run import MODE_VARIABLE, service_mode
from examples.fastapi_app import create_app as fastapi_app
from examples.starlette_app import create_app as starlette_app
from signalr_asgi_auth import SignalRAuth
from signalr_asgi_auth.emulator import Emulator

from .support import auth_for, principal_with_role, verify_client_token


@pytest.mark.parametrize("create", [fastapi_app, starlette_app], ids=["fastapi", "starlette"])
@pytest.mark.parametrize(
    ("user", "user_id"),
    [("ada", "ada"), ("  ada lovelace  ", "ada lovelace")],
    ids=["plain", "spaces-around-dropped"],
)
def test_negotiate_reply_is_a_fresh_credential_never_cached(
    emulator: Emulator,
    emulator_url: str,
    app_service_env: dict[str, str],
    create: Callable[[SignalRAuth], ASGIApp],
    user: str,
    user_id: str,
) -> None:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator))
    with TestClient(create(auth)) as client:
        answer = client.post("/chat/negotiate", params={"negotiateVersion": "1", "user": user})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-type"] == "application/json"
    reply = answer.json()
    assert reply["url"] == f"{emulator_url}/client/?hub=chat"
    claims = verify_client_token(
        reply["accessToken"], emulator, audience="http://127.0.0.1/client/?hub=chat"
    )
    assert claims["asrs.s.uid"] == user_id


BAD_USERS = {
    "blank": "   ",
    "empty": "",
    "too-long": "x" * 65,
    "control": "ada\x01",
}


@pytest.mark.parametrize("case", [*BAD_USERS, "missing"])
def test_both_examples_refuse_a_bad_user_alike_as_negotiate_endpoint_does(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str], case: str
) -> None:
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator))
    params = {} if case == "missing" else {"user": BAD_USERS[case]}
    answers = []
    for create in (fastapi_app, starlette_app):
        with TestClient(create(auth)) as client:
            answers.append(client.post("/chat/negotiate", params=params))
    fastapi_answer, starlette_answer = answers
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert set(answer.json()) == {"code", "error"}
        assert answer.json()["code"] == "invalid_request"
    assert fastapi_answer.json() == starlette_answer.json()


@pytest.mark.parametrize(
    ("value", "mode"),
    [(None, "default"), ("", "default"), ("Default", "default"), (" serverless ", "serverless")],
)
def test_the_examples_service_mode_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, mode: str
) -> None:
    if value is None:
        monkeypatch.delenv(MODE_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(MODE_VARIABLE, value)
    assert service_mode() == mode


def test_an_unknown_service_mode_stops_the_example_with_what_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(MODE_VARIABLE, "listen")
    with pytest.raises(SystemExit, match="SIGNALR_SERVICE_MODE is 'default' or 'serverless'"):
        service_mode()


def test_without_a_verifier_the_examples_take_no_upstream_requests(
    emulator: Emulator, emulator_url: str, app_service_env: dict[str, str]
) -> None:
    """Default mode: the hub is reached over server connections only, so /upstream is not served
    (a forged upstream request gets no handler to run)."""
    auth = auth_for(emulator, emulator_url, principal_with_role(emulator))
    for create in (fastapi_app, starlette_app):
        with TestClient(create(auth)) as client:
            answer = client.post("/upstream/send", json={"type": 1, "target": "send"})
        assert answer.status_code in (404, 405), answer.text

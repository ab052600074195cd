"""The emulator's data-plane REST API: both ways to authenticate, the role each operation needs,
bad input, and what reaches the connections in the registry."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx2
import jwt
import pytest

from signalr_asgi_auth.emulator import Emulator, Principal
from signalr_asgi_auth.emulator._connections import ClientConnection
from signalr_asgi_auth.emulator._roles import Action

from .helpers import TIMEOUT, bearer

VERSION = {"api-version": "2022-06-01"}
MESSAGE = {"target": "notify", "arguments": ["hello", 1]}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    action: str
    success: int

    @property
    def is_send(self) -> bool:
        return self.path.endswith(":send")

    @property
    def is_read(self) -> bool:
        return self.method == "HEAD"


OPERATIONS = [
    Operation("POST", "/api/hubs/chat/:send", Action.HUB_SEND, 202),
    Operation("POST", "/api/hubs/chat/users/alice/:send", Action.USER_SEND, 202),
    Operation("POST", "/api/hubs/chat/groups/g1/:send", Action.GROUP_SEND, 202),
    Operation("POST", "/api/hubs/chat/connections/c1/:send", Action.CONNECTION_SEND, 202),
    Operation("PUT", "/api/hubs/chat/groups/g2/connections/c1", Action.GROUP_WRITE, 200),
    Operation("DELETE", "/api/hubs/chat/groups/g1/connections/c1", Action.GROUP_WRITE, 200),
    Operation("PUT", "/api/hubs/chat/users/alice/groups/g2", Action.USER_WRITE, 200),
    Operation("DELETE", "/api/hubs/chat/users/alice/groups/g1", Action.USER_WRITE, 204),
    Operation("HEAD", "/api/hubs/chat/connections/c1", Action.CONNECTION_READ, 200),
    Operation("HEAD", "/api/hubs/chat/users/alice", Action.USER_READ, 200),
    Operation("HEAD", "/api/hubs/chat/groups/g1", Action.GROUP_READ, 200),
    Operation("HEAD", "/api/hubs/chat/users/alice/groups/g1", Action.GROUP_READ, 200),
    Operation("DELETE", "/api/hubs/chat/connections/c1/groups", Action.GROUP_WRITE, 200),
    Operation("DELETE", "/api/hubs/chat/users/alice/groups", Action.USER_WRITE, 204),
    Operation("DELETE", "/api/hubs/chat/connections/c1", Action.CONNECTION_WRITE, 200),
    Operation("POST", "/api/hubs/chat/:closeConnections", Action.CONNECTION_WRITE, 204),
    Operation("POST", "/api/hubs/chat/groups/g1/:closeConnections", Action.CONNECTION_WRITE, 204),
    Operation("POST", "/api/hubs/chat/users/alice/:closeConnections", Action.CONNECTION_WRITE, 204),
]
SENDS = [op for op in OPERATIONS if op.is_send]
CLOSES = [op for op in OPERATIONS if op.action == Action.CONNECTION_WRITE]
WRITES = [op for op in OPERATIONS if not op.is_read]
READS = [op for op in OPERATIONS if op.is_read]


def op_id(operation: Operation) -> str:
    return f"{operation.method} {operation.path.removeprefix('/api/hubs/chat')}"


def call(
    url: str,
    operation: Operation,
    headers: dict[str, str],
    *,
    params: dict[str, Any] | None = None,
) -> httpx2.Response:
    body = MESSAGE if operation.is_send else None
    return httpx2.request(
        operation.method,
        url + operation.path,
        params=VERSION if params is None else params,
        json=body,
        headers=headers,
        timeout=TIMEOUT,
    )


def frames(connection: ClientConnection) -> list[dict[str, Any]]:
    texts = [frame for frame in connection.pending if isinstance(frame, str)]
    assert len(texts) == len(connection.pending), "a JSON client gets text frames only"
    return [json.loads(text.rstrip("\x1e")) for text in texts]


@pytest.fixture
def connections(emulator: Emulator) -> dict[str, ClientConnection]:
    """c1 (alice, in g1) and c2 (bob) in hub chat; c3 (alice) in hub other; c4 (alice) in shop_chat."""
    registry = emulator.connection_registry
    made = {
        "c1": ClientConnection("c1", "chat", "alice"),
        "c2": ClientConnection("c2", "chat", "bob"),
        "c3": ClientConnection("c3", "other", "alice"),
        "c4": ClientConnection("c4", "shop_chat", "alice"),
    }
    for connection in made.values():
        registry.add(connection)
    registry.add_to_group("chat", "g1", "c1")
    return made


def principal_with(emulator: Emulator, role: str) -> Principal:
    principal = emulator.add_principal(role.lower().replace(" ", "-"))
    emulator.assign(principal, role)
    return principal


def entra(emulator: Emulator, role: str) -> dict[str, str]:
    return bearer(emulator.issue_entra_token(principal_with(emulator, role)))


def key_token(secret: str, audience: Any, *, lifetime: float = 300, **header: str) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"aud": audience, "iat": now, "nbf": now, "exp": now + lifetime}
    return jwt.encode(claims, secret, algorithm="HS256", headers=header or None)


# -- Entra tokens and roles -------------------------------------------------------------------


@pytest.mark.parametrize("role", ["SignalR REST API Owner", "SignalR Service Owner"])
@pytest.mark.parametrize("operation", OPERATIONS, ids=op_id)
def test_owner_roles_may_call_every_route(
    emulator: Emulator,
    emulator_url: str,
    connections: dict[str, ClientConnection],
    role: str,
    operation: Operation,
) -> None:
    principal = principal_with(emulator, role)

    response = call(emulator_url, operation, bearer(emulator.issue_entra_token(principal)))

    assert response.status_code == operation.success, response.text
    [entry] = emulator.log.entries("signalr.rest")
    assert (entry.method, entry.path, entry.status) == (
        operation.method,
        operation.path,
        operation.success,
    )
    assert entry.principal_oid == principal.object_id


@pytest.mark.parametrize("operation", SENDS, ids=op_id)
def test_app_server_may_not_send(
    emulator: Emulator,
    emulator_url: str,
    connections: dict[str, ClientConnection],
    operation: Operation,
) -> None:
    principal = principal_with(emulator, "SignalR App Server")

    response = call(emulator_url, operation, bearer(emulator.issue_entra_token(principal)))

    assert response.status_code == 403
    message = response.json()["message"]
    assert principal.object_id in message
    assert operation.action in message
    assert "SignalR REST API Owner" in message
    assert all(frames(connection) == [] for connection in connections.values())


@pytest.mark.parametrize("operation", WRITES, ids=op_id)
def test_rest_api_reader_may_not_write(
    emulator: Emulator,
    emulator_url: str,
    connections: dict[str, ClientConnection],
    operation: Operation,
) -> None:
    principal = principal_with(emulator, "SignalR REST API Reader")

    response = call(emulator_url, operation, bearer(emulator.issue_entra_token(principal)))

    assert response.status_code == 403
    message = response.json()["message"]
    assert principal.object_id in message
    assert operation.action in message
    assert connections["c1"].groups == {"g1"}
    assert not connections["c1"].closing


@pytest.mark.parametrize("operation", READS, ids=op_id)
def test_rest_api_reader_may_check_existence(
    emulator: Emulator,
    emulator_url: str,
    connections: dict[str, ClientConnection],
    operation: Operation,
) -> None:
    headers = entra(emulator, "SignalR REST API Reader")

    assert call(emulator_url, operation, headers).status_code == 200


@pytest.mark.parametrize("operation", READS, ids=op_id)
def test_app_server_may_not_check_existence(
    emulator: Emulator,
    emulator_url: str,
    connections: dict[str, ClientConnection],
    operation: Operation,
) -> None:
    assert call(emulator_url, operation, entra(emulator, "SignalR App Server")).status_code == 403


@pytest.mark.parametrize("operation", CLOSES, ids=op_id)
def test_app_server_may_close_connections(
    emulator: Emulator,
    emulator_url: str,
    connections: dict[str, ClientConnection],
    operation: Operation,
) -> None:
    # The role grants clientConnection/write (the C# SDK's server connections close clients).
    response = call(emulator_url, operation, entra(emulator, "SignalR App Server"))

    assert response.status_code == operation.success
    assert connections["c1"].closing
    assert not connections["c3"].closing  # another hub's


@pytest.mark.parametrize(
    "operation", [op for op in WRITES if op.action != Action.CONNECTION_WRITE], ids=op_id
)
def test_app_server_may_not_change_groups(
    emulator: Emulator,
    emulator_url: str,
    connections: dict[str, ClientConnection],
    operation: Operation,
) -> None:
    response = call(emulator_url, operation, entra(emulator, "SignalR App Server"))

    assert response.status_code == 403
    message = response.json()["message"]
    assert operation.action in message
    assert "SignalR REST API Owner or SignalR Service Owner" in message
    assert connections["c1"].groups == {"g1"}


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "no 'Authorization: Bearer <token>' header"),
        ({"Authorization": "Basic abc"}, "no 'Authorization: Bearer <token>' header"),
        (bearer("not-a-jwt"), "not a well-formed JWT"),
    ],
)
def test_missing_or_malformed_token_is_unauthorized(
    emulator_url: str, headers: dict[str, str], reason: str
) -> None:
    response = call(emulator_url, OPERATIONS[0], headers)

    assert response.status_code == 401
    assert reason in response.json()["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_entra_token_for_another_audience_is_unauthorized(
    emulator: Emulator, emulator_url: str
) -> None:
    principal = principal_with(emulator, "SignalR Service Owner")
    token = emulator.issue_entra_token(principal, audience="https://management.azure.com")

    response = call(emulator_url, OPERATIONS[0], bearer(token))

    assert response.status_code == 401
    assert "audience" in response.json()["message"]


def test_expired_entra_token_is_unauthorized(emulator: Emulator, emulator_url: str) -> None:
    principal = principal_with(emulator, "SignalR Service Owner")

    token = emulator.issue_entra_token(principal, lifetime=-60)

    response = call(emulator_url, OPERATIONS[0], bearer(token))
    assert response.status_code == 401
    assert "expired" in response.json()["message"]


# -- access-key tokens ------------------------------------------------------------------------


@pytest.mark.parametrize("key_index", [0, 1])
@pytest.mark.parametrize("operation", OPERATIONS, ids=op_id)
def test_access_key_tokens_may_call_every_route(
    emulator: Emulator,
    emulator_url: str,
    connections: dict[str, ClientConnection],
    key_index: int,
    operation: Operation,
) -> None:
    token = key_token(emulator.access_keys[key_index], emulator_url + operation.path)

    response = call(emulator_url, operation, bearer(token))

    assert response.status_code == operation.success, response.text


@pytest.mark.parametrize(
    "audience",
    [
        "{url}/api/hubs/chat/:send",
        "http://127.0.0.1/api/hubs/chat/:send",  # the C# SDK drops the port
        "{url}/api/hubs/chat/:send?api-version=2022-06-01",  # and keeps the query
        "http://127.0.0.1/api/hubs/chat/:send?application=shop&api-version=2022-06-01",
        "{URL}/API/HUBS/CHAT/:SEND",
    ],
)
def test_access_key_token_audience_forms(
    emulator: Emulator,
    emulator_url: str,
    connections: dict[str, ClientConnection],
    audience: str,
) -> None:
    token = key_token(emulator.access_keys[0], audience.format(url=emulator_url, URL=emulator_url))
    params = {**VERSION, "application": "shop"} if "application" in audience else VERSION

    response = call(emulator_url, OPERATIONS[0], bearer(token), params=params)

    assert response.status_code == 202, response.text
    target = connections["c4"] if "application" in audience else connections["c1"]
    assert frames(target) == [{"type": 1, **MESSAGE}]


@pytest.mark.parametrize(
    ("audience", "reason"),
    [
        ("{url}/api/hubs/other/:send", "audience"),
        ("{url}/api/hubs/chat/:send?api-version=2099-01-01", "audience"),
        ("{url}/client/?hub=chat", "audience"),
        ("http://localhost/api/hubs/chat/:send", "audience"),
        (None, "no audience"),
    ],
)
def test_access_key_token_with_wrong_audience_is_unauthorized(
    emulator: Emulator,
    emulator_url: str,
    connections: dict[str, ClientConnection],
    audience: str | None,
    reason: str,
) -> None:
    aud = audience.format(url=emulator_url) if audience else None
    token = key_token(emulator.access_keys[0], aud)

    response = call(emulator_url, OPERATIONS[0], bearer(token))

    assert response.status_code == 401
    assert reason in response.json()["message"]
    assert frames(connections["c1"]) == []


def test_expired_access_key_token_is_unauthorized(emulator: Emulator, emulator_url: str) -> None:
    token = key_token(emulator.access_keys[0], emulator_url + OPERATIONS[0].path, lifetime=-60)

    response = call(emulator_url, OPERATIONS[0], bearer(token))

    assert response.status_code == 401
    assert "expired" in response.json()["message"]


def test_access_key_token_without_exp_is_unauthorized(
    emulator: Emulator, emulator_url: str
) -> None:
    aud = emulator_url + OPERATIONS[0].path
    token = jwt.encode({"aud": aud}, emulator.access_keys[0], algorithm="HS256")

    response = call(emulator_url, OPERATIONS[0], bearer(token))

    assert response.status_code == 401
    assert "'exp' claim is required" in response.json()["message"]


@pytest.mark.parametrize(
    ("times", "complaint"),
    [
        pytest.param({"exp": 10**400}, "'exp' claim must be", id="exp-beyond-any-clock"),
        pytest.param({"exp": 1e300}, "'exp' claim must be", id="exp-float-beyond-any-clock"),
        pytest.param({"nbf": 10**400}, "'nbf' claim must be", id="nbf-beyond-any-clock"),
        pytest.param({"nbf": int(time.time()) + 86400}, "not valid before", id="valid-tomorrow"),
    ],
)
def test_access_key_token_times_out_of_range_or_in_the_future_are_unauthorized(
    emulator: Emulator, emulator_url: str, times: dict[str, Any], complaint: str
) -> None:
    now = int(time.time())
    claims = {"aud": emulator_url + OPERATIONS[0].path, "exp": now + 300, **times}
    token = jwt.encode(claims, emulator.access_keys[0], algorithm="HS256")

    response = call(emulator_url, OPERATIONS[0], bearer(token))

    assert response.status_code == 401
    assert complaint in response.json()["message"]


def test_token_signed_with_another_key_is_unauthorized(
    emulator: Emulator, emulator_url: str
) -> None:
    token = key_token("x" * 43, emulator_url + OPERATIONS[0].path)

    response = call(emulator_url, OPERATIONS[0], bearer(token))

    assert response.status_code == 401
    assert "signature" in response.json()["message"].lower()


def test_temporary_access_key_signs_until_it_expires(
    emulator: Emulator, emulator_url: str, connections: dict[str, ClientConnection]
) -> None:
    principal = principal_with(emulator, "SignalR App Server")
    fetched = httpx2.get(
        emulator_url + "/api/v1/auth/accessKey",
        headers=bearer(emulator.issue_entra_token(principal)),
        timeout=TIMEOUT,
    ).json()
    operation = OPERATIONS[0]

    def status() -> int:
        # Issued afresh each time (on the emulator's clock), so that only the key can be stale.
        now = int(emulator.clock.now())
        claims = {"aud": emulator_url + operation.path, "exp": now + 300}
        header = {"kid": fetched["KeyId"]}
        token = jwt.encode(claims, fetched["AccessKey"], algorithm="HS256", headers=header)
        return call(emulator_url, operation, bearer(token)).status_code

    assert status() == 202
    emulator.clock.advance(91 * 60)
    assert status() == 401


# -- bad input --------------------------------------------------------------------------------


@pytest.fixture
def owner(emulator: Emulator) -> dict[str, str]:
    return entra(emulator, "SignalR REST API Owner")


def test_api_version_is_required(emulator_url: str, owner: dict[str, str]) -> None:
    response = call(emulator_url, OPERATIONS[0], owner, params={})

    assert response.status_code == 400
    assert response.json()["code"] == "Error.BadRequest"
    assert "api-version" in response.json()["message"]


def test_other_api_versions_are_accepted(
    emulator_url: str, owner: dict[str, str], connections: dict[str, ClientConnection]
) -> None:
    response = call(emulator_url, OPERATIONS[0], owner, params={"api-version": "2024-12-01"})

    assert response.status_code == 202


@pytest.mark.parametrize(
    ("path", "params", "fragment"),
    [
        ("/api/hubs/1chat/:send", VERSION, "Invalid hub name"),
        ("/api/hubs/ch%20at/:send", VERSION, "Invalid hub name"),
        ("/api/hubs/chat/:send", {**VERSION, "application": "9lives"}, "Invalid application"),
    ],
)
def test_bad_hub_or_application_is_a_bad_request(
    emulator_url: str, owner: dict[str, str], path: str, params: dict[str, str], fragment: str
) -> None:
    response = httpx2.post(
        emulator_url + path, params=params, json=MESSAGE, headers=owner, timeout=TIMEOUT
    )

    assert response.status_code == 400
    assert fragment in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"arguments": []}', "target must be a non-empty string"),
        (b'{"target": "", "arguments": []}', "target must be a non-empty string"),
        (b'{"target": 5}', "target must be a non-empty string"),
        (b'{"target": "t", "arguments": {"a": 1}}', "arguments must be a JSON array"),
    ],
)
def test_bad_message_body_is_a_bad_request(
    emulator_url: str,
    owner: dict[str, str],
    connections: dict[str, ClientConnection],
    body: bytes,
    fragment: str,
) -> None:
    response = httpx2.post(
        emulator_url + "/api/hubs/chat/:send",
        params=VERSION,
        content=body,
        headers=owner,
        timeout=TIMEOUT,
    )

    assert response.status_code == 400
    assert fragment in response.json()["message"]
    assert frames(connections["c1"]) == []


def test_body_over_one_megabyte_is_refused(emulator_url: str, owner: dict[str, str]) -> None:
    body = {"target": "t", "arguments": ["x" * (1024 * 1024)]}

    response = httpx2.post(
        emulator_url + "/api/hubs/chat/:send",
        params=VERSION,
        json=body,
        headers=owner,
        timeout=TIMEOUT,
    )

    assert response.status_code == 413


def test_bad_ttl_is_a_bad_request(emulator_url: str, owner: dict[str, str]) -> None:
    response = httpx2.put(
        emulator_url + "/api/hubs/chat/users/alice/groups/g",
        params={**VERSION, "ttl": "-5"},
        headers=owner,
        timeout=TIMEOUT,
    )

    assert response.status_code == 400
    assert "ttl" in response.json()["message"]


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_group_membership_of_an_unknown_connection_is_not_found(
    emulator_url: str, owner: dict[str, str], connections: dict[str, ClientConnection], method: str
) -> None:
    # c3 exists, but in another hub.
    for connection_id in ("nobody", "c3"):
        response = httpx2.request(
            method,
            f"{emulator_url}/api/hubs/chat/groups/g1/connections/{connection_id}",
            params=VERSION,
            headers=owner,
            timeout=TIMEOUT,
        )
        assert response.status_code == 404
        assert response.headers["x-ms-error-code"] == "Warning.Connection.NotExisted"
        assert connection_id in response.json()["message"]


# -- what reaches the connections -------------------------------------------------------------


def rest(
    url: str, headers: dict[str, str], method: str, path: str, **params: Any
) -> httpx2.Response:
    body = MESSAGE if path.endswith(":send") else None
    return httpx2.request(
        method,
        f"{url}/api/hubs/chat{path}",
        params={**VERSION, **params},
        json=body,
        headers=headers,
        timeout=TIMEOUT,
    )


def test_sends_reach_the_right_connections(
    emulator_url: str, owner: dict[str, str], connections: dict[str, ClientConnection]
) -> None:
    message = {"type": 1, **MESSAGE}
    c1, c2, c3, c4 = connections.values()

    assert rest(emulator_url, owner, "POST", "/:send", excluded=["c2"]).status_code == 202
    assert (frames(c1), frames(c2), frames(c3), frames(c4)) == ([message], [], [], [])

    rest(emulator_url, owner, "POST", "/users/bob/:send")
    rest(emulator_url, owner, "POST", "/groups/g1/:send")
    rest(emulator_url, owner, "POST", "/groups/g1/:send", excluded="c1")
    rest(emulator_url, owner, "POST", "/connections/c2/:send")
    rest(emulator_url, owner, "POST", "/connections/c3/:send")  # not in this hub: dropped
    rest(emulator_url, owner, "POST", "/connections/gone/:send")
    assert (len(frames(c1)), len(frames(c2)), frames(c3), frames(c4)) == (2, 2, [], [])


def test_application_prefixes_the_hub(
    emulator_url: str, owner: dict[str, str], connections: dict[str, ClientConnection]
) -> None:
    rest(emulator_url, owner, "POST", "/users/alice/:send", application="Shop")

    assert [len(frames(c)) for c in connections.values()] == [0, 0, 0, 1]


def test_connection_group_membership(
    emulator_url: str, owner: dict[str, str], connections: dict[str, ClientConnection]
) -> None:
    assert rest(emulator_url, owner, "HEAD", "/groups/g2").status_code == 404
    assert rest(emulator_url, owner, "PUT", "/groups/g2/connections/c2").status_code == 200
    assert connections["c2"].groups == {"g2"}
    assert rest(emulator_url, owner, "HEAD", "/groups/g2").status_code == 200
    assert rest(emulator_url, owner, "DELETE", "/groups/g2/connections/c2").status_code == 200
    assert connections["c2"].groups == set()
    assert rest(emulator_url, owner, "HEAD", "/groups/g2").status_code == 404


def test_user_group_membership_covers_future_connections(
    emulator: Emulator, emulator_url: str, owner: dict[str, str]
) -> None:
    assert rest(emulator_url, owner, "HEAD", "/users/dan/groups/vip").status_code == 404
    assert rest(emulator_url, owner, "PUT", "/users/dan/groups/vip", ttl=3600).status_code == 200
    assert rest(emulator_url, owner, "HEAD", "/users/dan/groups/vip").status_code == 200
    later = ClientConnection("d1", "chat", "dan")
    emulator.connection_registry.add(later)
    assert later.groups == {"vip"}

    assert rest(emulator_url, owner, "DELETE", "/users/dan/groups/vip").status_code == 204
    assert later.groups == set()
    assert rest(emulator_url, owner, "HEAD", "/users/dan/groups/vip").status_code == 404


def test_ttl_zero_adds_only_current_connections(
    emulator: Emulator, emulator_url: str, owner: dict[str, str]
) -> None:
    now = ClientConnection("e1", "chat", "erin")
    emulator.connection_registry.add(now)

    assert rest(emulator_url, owner, "PUT", "/users/erin/groups/vip", ttl=0).status_code == 200

    later = ClientConnection("e2", "chat", "erin")
    emulator.connection_registry.add(later)
    assert (now.groups, later.groups) == ({"vip"}, set())


def test_existence_checks(
    emulator_url: str, owner: dict[str, str], connections: dict[str, ClientConnection]
) -> None:
    statuses = {
        path: rest(emulator_url, owner, "HEAD", path).status_code
        for path in (
            "/connections/c1",
            "/connections/c3",  # another hub's
            "/users/bob",
            "/users/carol",
            "/groups/g1",
            "/groups/nobody",
            "/users/alice/groups/g1",
            "/users/bob/groups/g1",
        )
    }
    assert list(statuses.values()) == [200, 404, 200, 404, 200, 404, 200, 404]


def test_close_connection_sends_the_reason(
    emulator_url: str, owner: dict[str, str], connections: dict[str, ClientConnection]
) -> None:
    response = rest(emulator_url, owner, "DELETE", "/connections/c2", reason="maintenance")

    assert response.status_code == 200
    assert frames(connections["c2"]) == [
        {"type": 7, "error": "maintenance", "allowReconnect": False}
    ]
    assert rest(emulator_url, owner, "DELETE", "/connections/gone").status_code == 200


def closed_with(connection: ClientConnection) -> list[dict[str, Any]]:
    return [frame for frame in frames(connection) if frame["type"] == 7]


def test_close_all_connections_but_the_excluded(
    emulator: Emulator,
    emulator_url: str,
    owner: dict[str, str],
    connections: dict[str, ClientConnection],
) -> None:
    third = ClientConnection("c5", "chat", None)
    emulator.connection_registry.add(third)

    response = rest(
        emulator_url, owner, "POST", "/:closeConnections", excluded=["c2", "c5"], reason="bye"
    )

    assert response.status_code == 204
    assert response.content == b""
    assert closed_with(connections["c1"]) == [{"type": 7, "error": "bye", "allowReconnect": False}]
    assert not connections["c2"].closing
    assert not third.closing
    assert not connections["c3"].closing  # hub "other"
    assert not connections["c4"].closing  # hub "shop_chat"


def test_close_all_connections_of_an_application_hub(
    emulator_url: str, owner: dict[str, str], connections: dict[str, ClientConnection]
) -> None:
    response = rest(emulator_url, owner, "POST", "/:closeConnections", application="shop")

    assert response.status_code == 204
    assert [c.closing for c in connections.values()] == [False, False, False, True]
    assert closed_with(connections["c4"]) == [{"type": 7, "allowReconnect": False}]  # no reason


def test_close_a_groups_and_a_users_connections(
    emulator: Emulator,
    emulator_url: str,
    owner: dict[str, str],
    connections: dict[str, ClientConnection],
) -> None:
    other_alice = ClientConnection("c6", "chat", "alice")
    emulator.connection_registry.add(other_alice)
    emulator.connection_registry.add_to_group("chat", "g1", "c2")

    group = rest(emulator_url, owner, "POST", "/groups/g1/:closeConnections", excluded="c2")
    assert group.status_code == 204
    assert [c.closing for c in (*connections.values(), other_alice)] == [
        True,
        False,
        False,
        False,
        False,
    ]

    user = rest(emulator_url, owner, "POST", "/users/alice/:closeConnections", reason="banned")
    assert user.status_code == 204
    assert closed_with(other_alice) == [{"type": 7, "error": "banned", "allowReconnect": False}]
    # Closed once, with the first request's reason; alice elsewhere is untouched.
    assert closed_with(connections["c1"]) == [{"type": 7, "allowReconnect": False}]
    assert not connections["c3"].closing
    assert not connections["c4"].closing
    assert rest(emulator_url, owner, "POST", "/users/nobody/:closeConnections").status_code == 204


def test_remove_a_connection_from_all_groups(
    emulator: Emulator,
    emulator_url: str,
    owner: dict[str, str],
    connections: dict[str, ClientConnection],
) -> None:
    registry = emulator.connection_registry
    registry.add_to_group("chat", "g2", "c1")
    registry.add_to_group("chat", "g2", "c2")

    assert rest(emulator_url, owner, "DELETE", "/connections/c1/groups").status_code == 200

    assert (connections["c1"].groups, connections["c2"].groups) == (set(), {"g2"})
    assert rest(emulator_url, owner, "HEAD", "/groups/g1").status_code == 404
    assert rest(emulator_url, owner, "DELETE", "/connections/gone/groups").status_code == 200
    # c3 is in another hub: the call in hub chat leaves it alone.
    registry.add_to_group("other", "g1", "c3")
    assert rest(emulator_url, owner, "DELETE", "/connections/c3/groups").status_code == 200
    assert connections["c3"].groups == {"g1"}


def test_remove_a_user_from_all_groups_covers_future_connections(
    emulator: Emulator,
    emulator_url: str,
    owner: dict[str, str],
    connections: dict[str, ClientConnection],
) -> None:
    for group in ("vip", "news"):
        assert rest(emulator_url, owner, "PUT", f"/users/alice/groups/{group}").status_code == 200
    rest(emulator_url, owner, "PUT", "/users/bob/groups/vip")
    emulator.connection_registry.add_to_group("other", "g1", "c3")
    assert connections["c1"].groups == {"g1", "vip", "news"}

    assert rest(emulator_url, owner, "DELETE", "/users/alice/groups").status_code == 204

    assert connections["c1"].groups == set()
    assert connections["c2"].groups == {"vip"}
    assert connections["c3"].groups == {"g1"}  # another hub's
    later = ClientConnection("c7", "chat", "alice")
    emulator.connection_registry.add(later)
    assert later.groups == set()
    assert rest(emulator_url, owner, "HEAD", "/users/alice/groups/vip").status_code == 404
    assert rest(emulator_url, owner, "HEAD", "/users/bob/groups/vip").status_code == 200


def test_user_ids_and_groups_are_url_decoded(
    emulator: Emulator, emulator_url: str, owner: dict[str, str]
) -> None:
    odd = ClientConnection("o1", "chat", "ann lee#1?é%")
    emulator.connection_registry.add(odd)

    rest(emulator_url, owner, "POST", "/users/ann%20lee%231%3F%C3%A9%25/:send")
    rest(emulator_url, owner, "PUT", "/groups/a%20b/connections/o1")

    assert len(frames(odd)) == 1
    assert odd.groups == {"a b"}


def test_faults_apply_to_rest_routes(emulator: Emulator, emulator_url: str) -> None:
    emulator.inject("signalr.rest", status=503, times=1)
    headers = entra(emulator, "SignalR Service Owner")

    assert rest(emulator_url, headers, "HEAD", "/users/x").status_code == 503
    assert rest(emulator_url, headers, "HEAD", "/users/x").status_code == 404
    assert [entry.status for entry in emulator.log.entries("signalr.rest")] == [503, 404]


def test_an_encoded_slash_stays_inside_its_segment(
    emulator_url: str, owner: dict[str, str], connections: dict[str, ClientConnection]
) -> None:
    assert rest(emulator_url, owner, "PUT", "/groups/a%2Fb/connections/c1").status_code == 200
    assert rest(emulator_url, owner, "HEAD", "/groups/a%2Fb").status_code == 200

    assert connections["c1"].groups == {"g1", "a/b"}


def test_unknown_paths_and_methods(emulator_url: str, owner: dict[str, str]) -> None:
    missing = rest(emulator_url, owner, "POST", "/nothing/here")
    wrong_method = rest(emulator_url, owner, "PUT", "/connections/c1/:send")

    assert (missing.status_code, missing.json()["code"]) == (404, "Error.NotFound")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"

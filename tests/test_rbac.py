"""The RBAC tables: which built-in role grants which data action, and how scopes inherit."""

from __future__ import annotations

import pytest

from signalr_asgi_auth._rbac import (
    BUILTIN_ROLES,
    OWNER,
    READER,
    REST_API_OWNER,
    REST_API_READER,
    SERVICE_OWNER,
    SIGNALR_APP_SERVER,
    DataAction,
    ResourceId,
    Role,
    find_role,
    roles_granting,
    scope_covers,
)

PREFIX = "Microsoft.SignalRService/SignalR/"
SUB = "/subscriptions/00000000-1111-2222-3333-444444444444"
GROUP = f"{SUB}/resourceGroups/chat-rg"
RESOURCE = f"{GROUP}/providers/Microsoft.SignalRService/SignalR/chat-signalr"

HUB_GROUP_USER_CONNECTION = [
    DataAction.HUB_SEND,
    DataAction.USER_SEND,
    DataAction.USER_READ,
    DataAction.USER_WRITE,
    DataAction.GROUP_SEND,
    DataAction.GROUP_READ,
    DataAction.GROUP_WRITE,
    DataAction.CONNECTION_SEND,
    DataAction.CONNECTION_READ,
    DataAction.CONNECTION_WRITE,
]


def test_data_actions_are_the_azure_names() -> None:
    assert DataAction.ACCESS_KEY == "Microsoft.SignalRService/SignalR/auth/accessKey/action"
    assert DataAction.CLIENT_TOKEN == "Microsoft.SignalRService/SignalR/auth/clientToken/action"
    assert DataAction.SERVER_CONNECTION_WRITE == PREFIX + "serverConnection/write"


@pytest.mark.parametrize(
    ("role", "grants"),
    [
        (SIGNALR_APP_SERVER, True),
        (SERVICE_OWNER, True),
        (REST_API_OWNER, False),
        (REST_API_READER, False),
        (OWNER, False),
        (READER, False),
    ],
    ids=lambda value: value.name if isinstance(value, Role) else str(value),
)
def test_access_key_is_granted_only_by_app_server_and_service_owner(
    role: Role, grants: bool
) -> None:
    assert role.grants(DataAction.ACCESS_KEY) is grants


def test_app_server_grants_its_three_actions_only() -> None:
    granted = [
        DataAction.ACCESS_KEY,
        DataAction.SERVER_CONNECTION_WRITE,
        DataAction.CONNECTION_WRITE,
    ]

    assert all(SIGNALR_APP_SERVER.grants(action) for action in granted)
    assert not SIGNALR_APP_SERVER.grants(DataAction.CLIENT_TOKEN)
    assert not SIGNALR_APP_SERVER.grants(DataAction.HUB_SEND)
    assert not SIGNALR_APP_SERVER.grants(DataAction.CONNECTION_READ)


@pytest.mark.parametrize("action", [DataAction.CLIENT_TOKEN, *HUB_GROUP_USER_CONNECTION])
def test_rest_api_owner_grants_client_tokens_and_the_rest_api(action: str) -> None:
    assert REST_API_OWNER.grants(action)
    assert SERVICE_OWNER.grants(action)


def test_rest_api_owner_wildcards_stop_at_their_family() -> None:
    assert REST_API_OWNER.grants(PREFIX + "hub/anything/new")
    assert not REST_API_OWNER.grants(DataAction.SERVER_CONNECTION_WRITE)
    assert not REST_API_OWNER.grants(PREFIX + "livetrace/read")
    assert not REST_API_OWNER.grants(PREFIX + "hubx/send/action")
    assert not REST_API_OWNER.grants("Microsoft.SignalRService/WebPubSub/hub/send/action")


def test_service_owner_grants_every_signalr_action_but_not_web_pubsub() -> None:
    assert SERVICE_OWNER.grants(PREFIX + "livetrace/write")
    assert not SERVICE_OWNER.grants("Microsoft.SignalRService/WebPubSub/hub/send/action")


def test_rest_api_reader_reads_only() -> None:
    for action in (DataAction.GROUP_READ, DataAction.CONNECTION_READ, DataAction.USER_READ):
        assert REST_API_READER.grants(action)
    for action in (DataAction.GROUP_WRITE, DataAction.HUB_SEND, DataAction.CLIENT_TOKEN):
        assert not REST_API_READER.grants(action)


def test_action_matching_ignores_case() -> None:
    assert SIGNALR_APP_SERVER.grants(DataAction.ACCESS_KEY.upper())
    assert REST_API_OWNER.grants(DataAction.HUB_SEND.lower())


@pytest.mark.parametrize("role", [OWNER, READER])
def test_control_plane_roles_grant_no_data_action(role: Role) -> None:
    assert not any(
        role.grants(action) for action in [DataAction.ACCESS_KEY, DataAction.CLIENT_TOKEN]
    )
    assert role.data_actions == ()


def test_roles_granting_puts_service_owner_last() -> None:
    assert roles_granting(DataAction.ACCESS_KEY) == (SIGNALR_APP_SERVER, SERVICE_OWNER)
    assert roles_granting(DataAction.CLIENT_TOKEN) == (REST_API_OWNER, SERVICE_OWNER)
    assert roles_granting(DataAction.GROUP_READ) == (REST_API_OWNER, REST_API_READER, SERVICE_OWNER)
    assert roles_granting(DataAction.CONNECTION_WRITE) == (
        SIGNALR_APP_SERVER,
        REST_API_OWNER,
        SERVICE_OWNER,
    )


def test_roles_granting_an_unknown_action_is_empty() -> None:
    assert roles_granting("Microsoft.Storage/storageAccounts/read") == ()


@pytest.mark.parametrize(
    ("query", "role"),
    [
        ("SignalR App Server", SIGNALR_APP_SERVER),
        ("signalr app server", SIGNALR_APP_SERVER),
        ("SignalR App Server (Preview)", SIGNALR_APP_SERVER),
        ("  SIGNALR SERVICE OWNER ", SERVICE_OWNER),
        ("SignalR REST API Owner", REST_API_OWNER),
        ("SignalR Serverless Contributor", REST_API_OWNER),
        ("signalr serverless contributor (preview)", REST_API_OWNER),
        ("SignalR Service Reader", REST_API_READER),
        ("420fcaa2-552c-430f-98ca-3264be4806c7", SIGNALR_APP_SERVER),
        ("FD53CD77-2268-407A-8F46-7E7863D0F521", REST_API_OWNER),
        ("7e4f1700-ea5a-4f59-8f37-079cfe29dce3", SERVICE_OWNER),
        ("Owner", OWNER),
        ("reader", READER),
    ],
)
def test_find_role(query: str, role: Role) -> None:
    assert find_role(query) is role


@pytest.mark.parametrize(
    "query", ["Contributor", "SignalR App", "", "00000000-0000-0000-0000-000000000000"]
)
def test_find_role_unknown(query: str) -> None:
    with pytest.raises(
        ValueError, match=r"Unknown role .*; the built-in roles are 'SignalR App Server'"
    ):
        find_role(query)


def test_role_ids_are_unique_lower_case_guids() -> None:
    ids = [role.role_id for role in BUILTIN_ROLES]

    assert len(set(ids)) == len(ids)
    assert all(role_id == role_id.lower() and len(role_id) == 36 for role_id in ids)


# --- scopes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "level", "parts"),
    [
        (SUB, "subscription", ("00000000-1111-2222-3333-444444444444", None, None)),
        (GROUP, "resource group", ("00000000-1111-2222-3333-444444444444", "chat-rg", None)),
        (RESOURCE, "resource", ("00000000-1111-2222-3333-444444444444", "chat-rg", "chat-signalr")),
    ],
)
def test_resource_id_parse_str_round_trip_and_level(
    text: str, level: str, parts: tuple[str, str | None, str | None]
) -> None:
    parsed = ResourceId.parse(text)

    assert (parsed.subscription, parsed.resource_group, parsed.name) == parts
    assert parsed.level == level
    assert str(parsed) == text
    assert ResourceId.parse(str(parsed)) == parsed


def test_resource_id_parse_forgives_case_and_a_trailing_slash() -> None:
    text = " /SUBSCRIPTIONS/s/resourcegroups/G/providers/microsoft.signalrservice/signalr/N/ "

    assert ResourceId.parse(text) == ResourceId("s", "G", "N")
    assert str(ResourceId.parse(text)) == (
        "/subscriptions/s/resourceGroups/G/providers/Microsoft.SignalRService/SignalR/N"
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "/",
        "subscriptions/s",
        "/subscriptions/",
        "/subscriptions/s/resourceGroups",
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.SignalRService/SignalR",
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.SignalRService/WebPubSub/n",
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.SignalRService/SignalR/n/extra",
        "/subscriptions/s/providers/Microsoft.SignalRService/SignalR/n",
    ],
)
def test_resource_id_parse_refuses(text: str) -> None:
    with pytest.raises(
        ValueError, match="Not a subscription, resource group or SignalR resource scope"
    ):
        ResourceId.parse(text)


@pytest.mark.parametrize(
    ("scope", "resource", "covers"),
    [
        pytest.param(SUB, RESOURCE, True, id="subscription-covers-resource"),
        pytest.param(SUB, GROUP, True, id="subscription-covers-group"),
        pytest.param(SUB, SUB, True, id="subscription-covers-itself"),
        pytest.param(GROUP, RESOURCE, True, id="group-covers-resource"),
        pytest.param(GROUP, GROUP, True, id="group-covers-itself"),
        pytest.param(RESOURCE, RESOURCE, True, id="resource-covers-itself"),
        pytest.param(RESOURCE.upper(), RESOURCE.lower(), True, id="case-insensitive"),
        pytest.param(GROUP.replace("chat-rg", "CHAT-RG"), RESOURCE, True, id="group-case"),
        pytest.param(RESOURCE, GROUP, False, id="resource-not-its-group"),
        pytest.param(GROUP, SUB, False, id="group-not-its-subscription"),
        pytest.param(RESOURCE, SUB, False, id="resource-not-its-subscription"),
        pytest.param(GROUP.replace("chat-rg", "other-rg"), RESOURCE, False, id="other-group"),
        pytest.param(SUB.replace("0000", "9999"), RESOURCE, False, id="other-subscription"),
        pytest.param(
            RESOURCE.replace("chat-signalr", "other"), RESOURCE, False, id="other-resource"
        ),
        pytest.param(
            GROUP.replace("chat-rg", "chat"), RESOURCE, False, id="group-name-prefix-is-not-enough"
        ),
    ],
)
def test_scope_covers(scope: str, resource: str, covers: bool) -> None:
    assert scope_covers(scope, resource) is covers
    assert scope_covers(ResourceId.parse(scope), ResourceId.parse(resource)) is covers

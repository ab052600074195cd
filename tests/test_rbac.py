"""The library's RBAC table: which built-in role grants which data action. And the same facts held
against the emulator's own statement of them (``emulator/_roles.py``), which the emulator decides
with: a mistake in either table fails here instead of passing every emulator test."""

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
    Role,
    roles_granting,
)
from signalr_asgi_auth.emulator import _roles as emulated

PREFIX = "Microsoft.SignalRService/SignalR/"

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


def test_role_ids_are_unique_lower_case_guids() -> None:
    ids = [role.role_id for role in BUILTIN_ROLES]

    assert len(set(ids)) == len(ids)
    assert all(role_id == role_id.lower() and len(role_id) == 36 for role_id in ids)


# --- the library's table against the emulator's ------------------------------------------------

# Every action either table names, and some neither grants to all: wildcards must stop where
# Azure's stop.
EVERY_ACTION = sorted(
    {
        *emulated.Action.all(),
        *(value for name, value in vars(DataAction).items() if name.isupper()),
        PREFIX + "livetrace/read",
        PREFIX + "hubx/send/action",
        "Microsoft.SignalRService/WebPubSub/hub/send/action",
    }
)


def test_the_library_names_each_data_action_as_the_emulator_checks_it() -> None:
    ours = {name: value for name, value in vars(DataAction).items() if name.isupper()}
    theirs = {name: value for name, value in vars(emulated.Action).items() if name.isupper()}
    assert ours == theirs


@pytest.mark.parametrize("role", BUILTIN_ROLES, ids=lambda role: role.name)
def test_each_library_role_is_the_emulators_role_of_that_id(role: Role) -> None:
    twin = emulated.role_named(role.role_id)
    assert twin.name == role.name
    assert emulated.role_named(role.name) is twin
    if role.former_name is not None:
        assert emulated.role_named(role.former_name) is twin


@pytest.mark.parametrize("action", EVERY_ACTION)
def test_the_library_and_the_emulator_grant_each_action_to_the_same_roles(action: str) -> None:
    ours = [role.name for role in roles_granting(action)]
    theirs = [role.name for role in emulated.granting(action)]
    assert ours == theirs

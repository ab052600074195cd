"""The emulated Azure's role-based access control: role names, ids and former names, resource
scopes and how assignments inherit. (Which role grants which data action: ``tests/test_rbac.py``
holds the emulator's table and the library's to each other and to Azure's.)"""

from __future__ import annotations

import pytest

from signalr_asgi_auth.emulator._roles import BUILT_IN_ROLES, ResourceId, role_named, scope_covers

SUB = "/subscriptions/00000000-1111-2222-3333-444444444444"
GROUP = f"{SUB}/resourceGroups/chat-rg"
RESOURCE = f"{GROUP}/providers/Microsoft.SignalRService/SignalR/chat-signalr"


@pytest.mark.parametrize(
    ("query", "role"),
    [
        ("SignalR App Server", "SignalR App Server"),
        ("signalr app server", "SignalR App Server"),
        ("SignalR App Server (Preview)", "SignalR App Server"),
        ("  SIGNALR SERVICE OWNER ", "SignalR Service Owner"),
        ("SignalR REST API Owner", "SignalR REST API Owner"),
        ("SignalR Serverless Contributor", "SignalR REST API Owner"),
        ("signalr serverless contributor (preview)", "SignalR REST API Owner"),
        ("SignalR Service Reader", "SignalR REST API Reader"),
        ("420fcaa2-552c-430f-98ca-3264be4806c7", "SignalR App Server"),
        ("FD53CD77-2268-407A-8F46-7E7863D0F521", "SignalR REST API Owner"),
        ("7e4f1700-ea5a-4f59-8f37-079cfe29dce3", "SignalR Service Owner"),
        ("Owner", "Owner"),
        ("reader", "Reader"),
    ],
)
def test_a_role_is_found_by_name_former_name_or_id(query: str, role: str) -> None:
    assert role_named(query).name == role


@pytest.mark.parametrize(
    "query", ["Contributor", "SignalR App", "", "00000000-0000-0000-0000-000000000000"]
)
def test_an_unknown_role_is_refused_with_the_known_ones(query: str) -> None:
    with pytest.raises(
        ValueError, match=r"Unknown role .*; the built-in roles are 'SignalR App Server'"
    ):
        role_named(query)


def test_role_ids_are_unique_lower_case_guids() -> None:
    ids = [role.role_id for role in BUILT_IN_ROLES]

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

"""Azure's role-based access control for SignalR Service, as the emulated Azure decides it: the data
action each API checks, the built-in roles' data actions, and how assignment scopes inherit.

Stated here from Azure's built-in role definitions (``shared/research/azure-signalr-protocol.md``
§5.6 and §6), not taken from the library's ``_rbac`` tables: the library names roles in its error
messages from its own table, and a mistake there must not be able to agree with itself here.
``tests/test_rbac.py`` compares the two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "BUILT_IN_ROLES",
    "Action",
    "BuiltInRole",
    "ResourceId",
    "granting",
    "role_named",
    "scope_covers",
]

_SIGNALR = "Microsoft.SignalRService/SignalR/"


class Action:
    """The data action each API of the emulated resource requires."""

    ACCESS_KEY = "Microsoft.SignalRService/SignalR/auth/accessKey/action"
    CLIENT_TOKEN = "Microsoft.SignalRService/SignalR/auth/clientToken/action"
    SERVER_CONNECTION_WRITE = "Microsoft.SignalRService/SignalR/serverConnection/write"
    HUB_SEND = "Microsoft.SignalRService/SignalR/hub/send/action"
    USER_SEND = "Microsoft.SignalRService/SignalR/user/send/action"
    USER_READ = "Microsoft.SignalRService/SignalR/user/read"
    USER_WRITE = "Microsoft.SignalRService/SignalR/user/write"
    GROUP_SEND = "Microsoft.SignalRService/SignalR/group/send/action"
    GROUP_READ = "Microsoft.SignalRService/SignalR/group/read"
    GROUP_WRITE = "Microsoft.SignalRService/SignalR/group/write"
    CONNECTION_SEND = "Microsoft.SignalRService/SignalR/clientConnection/send/action"
    CONNECTION_READ = "Microsoft.SignalRService/SignalR/clientConnection/read"
    CONNECTION_WRITE = "Microsoft.SignalRService/SignalR/clientConnection/write"

    @classmethod
    def all(cls) -> tuple[str, ...]:
        """Every data action above."""
        return tuple(
            value for name, value in vars(cls).items() if name.isupper() and isinstance(value, str)
        )


@dataclass(frozen=True, slots=True)
class BuiltInRole:
    """A built-in role definition: its name, earlier names, id, and data actions (``*`` as a
    trailing wildcard, as Azure writes them)."""

    name: str
    role_id: str
    data_actions: tuple[str, ...] = ()
    former_names: tuple[str, ...] = ()

    def grants(self, action: str) -> bool:
        """Whether the role's data actions cover ``action`` (Azure compares them ignoring case)."""
        wanted = action.lower()
        for pattern in (data_action.lower() for data_action in self.data_actions):
            if wanted == pattern or (pattern.endswith("/*") and wanted.startswith(pattern[:-1])):
                return True
        return False


BUILT_IN_ROLES: tuple[BuiltInRole, ...] = (
    BuiltInRole(
        "SignalR App Server",
        "420fcaa2-552c-430f-98ca-3264be4806c7",
        (Action.ACCESS_KEY, Action.SERVER_CONNECTION_WRITE, Action.CONNECTION_WRITE),
    ),
    BuiltInRole(
        "SignalR REST API Owner",
        "fd53cd77-2268-407a-8f46-7e7863d0f521",
        (
            Action.CLIENT_TOKEN,
            f"{_SIGNALR}hub/*",
            f"{_SIGNALR}group/*",
            f"{_SIGNALR}clientConnection/*",
            f"{_SIGNALR}user/*",
        ),
        former_names=("SignalR Serverless Contributor",),
    ),
    BuiltInRole(
        "SignalR REST API Reader",
        "ddde6b66-c0df-4114-a159-3618637b3035",
        (Action.GROUP_READ, Action.CONNECTION_READ, Action.USER_READ),
        former_names=("SignalR Service Reader",),
    ),
    BuiltInRole("SignalR Service Owner", "7e4f1700-ea5a-4f59-8f37-079cfe29dce3", (f"{_SIGNALR}*",)),
    # Control-plane roles: they manage the resource and grant nothing on its data plane.
    BuiltInRole("SignalR AccessKey Reader", "04165923-9d83-45d5-8227-78b77b0a687e"),
    BuiltInRole(
        "SignalR/Web PubSub Contributor",
        "8cf5e20a-e4b2-4e9d-b3a1-5ceb692c2761",
        former_names=("SignalR Contributor",),
    ),
    BuiltInRole("Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
    BuiltInRole("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
)


def role_named(name_or_id: str) -> BuiltInRole:
    """The built-in role with this name, former name (with or without the " (Preview)" the preview
    roles carried) or role definition id, ignoring case."""
    wanted = name_or_id.strip().lower().removesuffix(" (preview)")
    for role in BUILT_IN_ROLES:
        if wanted in {role.role_id, role.name.lower(), *(n.lower() for n in role.former_names)}:
            return role
    known = ", ".join(repr(role.name) for role in BUILT_IN_ROLES)
    msg = f"Unknown role {name_or_id!r}; the built-in roles are {known}."
    raise ValueError(msg)


def granting(action: str) -> tuple[BuiltInRole, ...]:
    """The built-in roles that grant ``action``, the narrowest first: a role that grants every
    action (Service Owner) last."""
    roles = [role for role in BUILT_IN_ROLES if role.grants(action)]
    return tuple(sorted(roles, key=lambda role: all(map(role.grants, Action.all()))))


_RESOURCE_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)"
    r"(?:/resourceGroups/(?P<resource_group>[^/]+)"
    r"(?:/providers/Microsoft\.SignalRService/SignalR/(?P<name>[^/]+))?)?/?$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ResourceId:
    """An Azure Resource Manager scope: a subscription, a resource group, or a SignalR resource."""

    subscription: str
    resource_group: str | None = None
    name: str | None = None

    @classmethod
    def parse(cls, text: str) -> ResourceId:
        match = _RESOURCE_ID.match(text.strip())
        if match is None:
            msg = (
                f"Not a subscription, resource group or SignalR resource scope: {text!r}; expected "
                "/subscriptions/<id>[/resourceGroups/<group>"
                "[/providers/Microsoft.SignalRService/SignalR/<name>]]."
            )
            raise ValueError(msg)
        return cls(match["subscription"], match["resource_group"], match["name"])

    @property
    def level(self) -> str:
        """``subscription``, ``resource group`` or ``resource``."""
        if self.name is not None:
            return "resource"
        if self.resource_group is not None:
            return "resource group"
        return "subscription"

    def __str__(self) -> str:
        text = f"/subscriptions/{self.subscription}"
        if self.resource_group is not None:
            text += f"/resourceGroups/{self.resource_group}"
        if self.name is not None:
            text += f"/providers/Microsoft.SignalRService/SignalR/{self.name}"
        return text


def scope_covers(assignment_scope: ResourceId | str, resource: ResourceId | str) -> bool:
    """Whether a role assigned at ``assignment_scope`` applies to ``resource``: assignments are
    inherited downwards, and Azure compares the names ignoring case."""
    outer = (
        ResourceId.parse(assignment_scope)
        if isinstance(assignment_scope, str)
        else assignment_scope
    )
    inner = ResourceId.parse(resource) if isinstance(resource, str) else resource
    pairs = (
        (outer.subscription, inner.subscription),
        (outer.resource_group, inner.resource_group),
        (outer.name, inner.name),
    )
    for mine, theirs in pairs:
        if mine is None:
            return True
        if theirs is None or mine.lower() != theirs.lower():
            return False
    return True

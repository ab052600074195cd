"""Azure RBAC facts for SignalR Service as the library uses them: the data action each call needs,
the built-in roles that grant it, the scopes an assignment can have; the library names the role to
assign when the service answers 403.

Role ids and data actions are those of Azure's built-in role definitions
(``shared/research/azure-signalr-protocol.md`` §6). The emulator, which stands for Azure, states them
itself (``emulator/_roles.py``); ``tests/test_rbac.py`` holds the two tables to each other.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BUILTIN_ROLES",
    "OWNER",
    "READER",
    "REST_API_OWNER",
    "REST_API_READER",
    "SCOPE_LEVELS",
    "SERVICE_OWNER",
    "SIGNALR_APP_SERVER",
    "DataAction",
    "Role",
    "roles_granting",
]

_PREFIX = "Microsoft.SignalRService/SignalR/"

SCOPE_LEVELS = ("subscription", "resource group", "resource")
"""Where a role can be assigned; an assignment applies to everything below its scope."""


class DataAction:
    """The data actions that SignalR Service checks, one constant per API family."""

    ACCESS_KEY = _PREFIX + "auth/accessKey/action"
    CLIENT_TOKEN = _PREFIX + "auth/clientToken/action"
    SERVER_CONNECTION_WRITE = _PREFIX + "serverConnection/write"
    HUB_SEND = _PREFIX + "hub/send/action"
    USER_SEND = _PREFIX + "user/send/action"
    USER_READ = _PREFIX + "user/read"
    USER_WRITE = _PREFIX + "user/write"
    GROUP_SEND = _PREFIX + "group/send/action"
    GROUP_READ = _PREFIX + "group/read"
    GROUP_WRITE = _PREFIX + "group/write"
    CONNECTION_SEND = _PREFIX + "clientConnection/send/action"
    CONNECTION_READ = _PREFIX + "clientConnection/read"
    CONNECTION_WRITE = _PREFIX + "clientConnection/write"


@dataclass(frozen=True, slots=True)
class Role:
    """A built-in Azure role definition, as far as SignalR's data plane is concerned."""

    name: str
    role_id: str
    data_actions: tuple[str, ...]
    former_name: str | None = None
    description: str = ""

    def grants(self, action: str) -> bool:
        """Whether this role's data actions include ``action`` (``*`` wildcards as Azure uses them)."""
        return any(_action_matches(pattern, action) for pattern in self.data_actions)


def _action_matches(pattern: str, action: str) -> bool:
    pattern, action = pattern.lower(), action.lower()
    if pattern.endswith("*"):
        return action.startswith(pattern[:-1])
    return pattern == action


SIGNALR_APP_SERVER = Role(
    name="SignalR App Server",
    role_id="420fcaa2-552c-430f-98ca-3264be4806c7",
    data_actions=(
        DataAction.ACCESS_KEY,
        DataAction.SERVER_CONNECTION_WRITE,
        DataAction.CONNECTION_WRITE,
    ),
    description="for app servers that sign client tokens with the service's temporary access key",
)
REST_API_OWNER = Role(
    name="SignalR REST API Owner",
    role_id="fd53cd77-2268-407a-8f46-7e7863d0f521",
    data_actions=(
        DataAction.CLIENT_TOKEN,
        _PREFIX + "hub/*",
        _PREFIX + "group/*",
        _PREFIX + "clientConnection/*",
        _PREFIX + "user/*",
    ),
    former_name="SignalR Serverless Contributor",
    description="for servers that send messages through the REST API and ask the service for client tokens",
)
REST_API_READER = Role(
    name="SignalR REST API Reader",
    role_id="ddde6b66-c0df-4114-a159-3618637b3035",
    data_actions=(DataAction.GROUP_READ, DataAction.CONNECTION_READ, DataAction.USER_READ),
    former_name="SignalR Service Reader",
    description="read-only REST API access, for monitoring",
)
SERVICE_OWNER = Role(
    name="SignalR Service Owner",
    role_id="7e4f1700-ea5a-4f59-8f37-079cfe29dce3",
    data_actions=("Microsoft.SignalRService/SignalR/*",),
    description="every data-plane action",
)
OWNER = Role(
    name="Owner",
    role_id="8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    data_actions=(),
    description="control plane only: manages the resource, grants no data-plane access",
)
READER = Role(
    name="Reader",
    role_id="acdd72a7-3385-48ef-bd42-f606fba81ae7",
    data_actions=(),
    description="control plane only: reads the resource, grants no data-plane access",
)

BUILTIN_ROLES: tuple[Role, ...] = (
    SIGNALR_APP_SERVER,
    REST_API_OWNER,
    REST_API_READER,
    SERVICE_OWNER,
    OWNER,
    READER,
)


def roles_granting(action: str) -> tuple[Role, ...]:
    """The built-in roles that grant ``action``, the narrowest first (Service Owner last)."""
    granting = [role for role in BUILTIN_ROLES if role.grants(action)]
    return tuple(sorted(granting, key=lambda role: role is SERVICE_OWNER))

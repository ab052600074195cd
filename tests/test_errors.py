"""The exception tree, the 403 message that says how to fix it, and secrets that never print."""

from __future__ import annotations

import pytest

import signalr_asgi_auth
from signalr_asgi_auth._client_tokens import SigningKey
from signalr_asgi_auth._errors import (
    AuthenticationFailedError,
    ConfigurationError,
    ConnectionStringError,
    EntraTokenError,
    InvalidInputError,
    NotReadyError,
    PermissionDeniedError,
    ServiceError,
    SignalRAuthError,
    TokenTooLongError,
)
from signalr_asgi_auth._rbac import DataAction, roles_granting
from signalr_asgi_auth._secrets import Secret

PRINCIPAL = "5b7c9e2a-0d1f-4c3b-8a6e-2f4d1c0b9a87"
APP_ID = "c3d2e1f0-a9b8-4c7d-9e6f-5a4b3c2d1e0f"
RESOURCE = "https://chat-prod.service.signalr.net"


def denied(**overrides: object) -> PermissionDeniedError:
    arguments: dict[str, object] = {
        "action": DataAction.ACCESS_KEY,
        "roles": [role.name for role in roles_granting(DataAction.ACCESS_KEY)],
        "principal_id": PRINCIPAL,
        "app_id": APP_ID,
        "resource": RESOURCE,
        "doing": "hand out a temporary access key",
        "resource_name": "chat-prod",
    }
    arguments.update(overrides)
    return PermissionDeniedError(**arguments)  # type: ignore[arg-type]


# --- the tree ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        (ConfigurationError, (SignalRAuthError, ValueError)),
        (ConnectionStringError, (ConfigurationError, SignalRAuthError, ValueError)),
        (InvalidInputError, (SignalRAuthError, ValueError)),
        (TokenTooLongError, (InvalidInputError, SignalRAuthError, ValueError)),
        (NotReadyError, (SignalRAuthError,)),
        (ServiceError, (SignalRAuthError,)),
        (AuthenticationFailedError, (ServiceError, SignalRAuthError)),
        (EntraTokenError, (AuthenticationFailedError, ServiceError, SignalRAuthError)),
        (PermissionDeniedError, (ServiceError, SignalRAuthError)),
    ],
)
def test_tree(error: type[Exception], bases: tuple[type[Exception], ...]) -> None:
    assert all(issubclass(error, base) for base in bases)


@pytest.mark.parametrize(
    "error", [NotReadyError, ServiceError, AuthenticationFailedError, PermissionDeniedError]
)
def test_runtime_errors_are_not_value_errors(error: type[Exception]) -> None:
    assert not issubclass(error, ValueError)


def test_permission_denied_is_not_an_authentication_failure() -> None:
    assert not issubclass(PermissionDeniedError, AuthenticationFailedError)


def test_every_exception_is_public() -> None:
    for error in (
        SignalRAuthError,
        ConfigurationError,
        ConnectionStringError,
        InvalidInputError,
        TokenTooLongError,
        NotReadyError,
        ServiceError,
        AuthenticationFailedError,
        EntraTokenError,
        PermissionDeniedError,
    ):
        assert getattr(signalr_asgi_auth, error.__name__) is error
        assert error.__name__ in signalr_asgi_auth.__all__


# --- 403 --------------------------------------------------------------------------------------


def test_permission_denied_message_says_how_to_fix_it() -> None:
    message = str(denied())

    assert "'SignalR App Server' or 'SignalR Service Owner'" in message
    assert f"principal (object id) {PRINCIPAL}" in message
    assert f"app id {APP_ID}" in message
    assert RESOURCE in message
    assert "Microsoft.SignalRService/SignalR/auth/accessKey/action" in message
    assert "hand out a temporary access key (403 Forbidden)" in message
    assert "subscription, resource group or resource scope" in message
    assert "up to 30 minutes" in message
    assert "Owner, Contributor and Reader grant no data-plane access" in message


def test_permission_denied_message_holds_a_working_role_assignment_command() -> None:
    message = str(denied())

    assert (
        f"az role assignment create --assignee-object-id {PRINCIPAL} "
        "--assignee-principal-type ServicePrincipal --role 'SignalR App Server' --scope "
        "/subscriptions/<subscription-id>/resourceGroups/<resource-group>"
        "/providers/Microsoft.SignalRService/SignalR/chat-prod."
    ) in message


def test_permission_denied_attributes() -> None:
    error = denied()

    assert error.status == 403
    assert error.retry_after is None
    assert error.action == DataAction.ACCESS_KEY
    assert error.roles == ("SignalR App Server", "SignalR Service Owner")
    assert error.principal_id == PRINCIPAL
    assert error.app_id == APP_ID
    assert error.resource == RESOURCE


def test_permission_denied_for_client_tokens_names_the_rest_api_owner() -> None:
    error = denied(
        action=DataAction.CLIENT_TOKEN,
        roles=[role.name for role in roles_granting(DataAction.CLIENT_TOKEN)],
    )

    assert "'SignalR REST API Owner' or 'SignalR Service Owner'" in str(error)
    assert "auth/clientToken/action" in str(error)
    assert "--role 'SignalR REST API Owner'" in str(error)


def test_permission_denied_without_an_app_id() -> None:
    message = str(denied(app_id=None))

    assert f"principal (object id) {PRINCIPAL}:" in message
    assert "app id" not in message


def test_permission_denied_without_a_principal() -> None:
    message = str(denied(principal_id=None, app_id=None))

    assert "its object id could not be read from the token" in message
    assert "--assignee-object-id <principal-object-id>" in message


def test_permission_denied_without_a_resource_name() -> None:
    assert "/SignalR/<name>." in str(denied(resource_name=None))


# --- others -----------------------------------------------------------------------------------


def test_not_ready_carries_retry_after_and_cause() -> None:
    cause = ServiceError("SignalR Service answered 503", status=503, retry_after=7.0)
    error = NotReadyError("No signing key yet.", retry_after=5.0, cause=cause)

    assert str(error) == "No signing key yet."
    assert error.retry_after == 5.0
    assert error.cause is cause
    assert NotReadyError("x", retry_after=1.5).cause is None


def test_service_error_status_and_retry_after() -> None:
    error = AuthenticationFailedError("401", status=401, retry_after=3.0)

    assert (error.status, error.retry_after) == (401, 3.0)
    assert ServiceError("timed out").status is None


def test_input_errors_are_caught_as_value_errors() -> None:
    message = "bad hub"
    with pytest.raises(ValueError, match=r"^bad hub$"):
        raise InvalidInputError(message)


# --- secrets ----------------------------------------------------------------------------------

VALUE = "Zq9LeakMarker7Yv-access-key"


def test_secret_is_masked_in_repr_str_and_format() -> None:
    secret = Secret(VALUE)

    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{[secret]}"):
        assert VALUE not in shown
        assert "*" in shown
    assert repr(secret) == "Secret('**********')"


def test_secret_reveals_its_value() -> None:
    assert Secret(VALUE).reveal() == VALUE


def test_secret_inside_containers_and_keys_stays_masked() -> None:
    key = SigningKey(key_id="kid", secret=Secret(VALUE))

    assert VALUE not in repr([Secret(VALUE)])
    assert VALUE not in repr({"key": Secret(VALUE)})
    assert VALUE not in repr(key)


def test_secret_equality_and_truth() -> None:
    assert Secret(VALUE) == Secret(VALUE)
    assert Secret(VALUE) != Secret("other")
    assert Secret(VALUE) != VALUE
    assert hash(Secret(VALUE)) == hash(Secret(VALUE))
    assert Secret(VALUE)
    assert not Secret("")


def test_secret_has_no_instance_dict() -> None:
    # __slots__: no vars() or __dict__ through which the value would show
    with pytest.raises(TypeError):
        vars(Secret(VALUE))

"""Managed-identity endpoints (App Service and IMDS flavours) and the tenant's OpenID metadata.

Tokens name an issuer under the base URL the request came in on (``{base_url}/{tenant}/``), not
``https://sts.windows.net``: whoever verifies them can then find this emulator's metadata and keys
from the ``iss`` claim alone, as verifiers do with a real tenant.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._directory import Principal
from ._entra import IssuedToken
from ._log import attribute
from ._state import EmulatorState

__all__ = [
    "app_service_token",
    "imds_token",
    "jwks",
    "openid_configuration",
    "openid_configuration_v2",
]

_APP_SERVICE_API_VERSION = "2019-08-01"
# Selecting a user-assigned identity by its ARM resource id needs identities with resource ids,
# which the emulator's principals lack; refuse rather than quietly answer for the system identity.
_UNSUPPORTED_SELECTORS = ("mi_res_id", "msi_res_id", "resource_id", "principal_id")


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _requested_principal(state: EmulatorState, query: Mapping[str, str]) -> Principal | None:
    """The identity the query asks for; None when it names one the tenant does not have."""
    if client_id := query.get("client_id"):
        return state.directory.find_principal(client_id=client_id)
    if object_id := query.get("object_id"):
        return state.directory.find_principal(object_id=object_id)
    if any(name in query for name in _UNSUPPORTED_SELECTORS):
        return None
    return state.system_identity


def _issue(
    state: EmulatorState, request: Request, principal: Principal, resource: str
) -> IssuedToken:
    attribute(request, principal.object_id)
    return state.entra.issue(principal, audience=resource, issuer_base=_base_url(request))


def _app_service_error(status: int, message: str) -> Response:
    return JSONResponse({"statusCode": status, "message": message}, status_code=status)


async def app_service_token(state: EmulatorState, request: Request) -> Response:
    """``GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=…[&client_id=…]``."""
    presented = request.headers.get("x-identity-header", "")
    if not secrets.compare_digest(presented.encode(), state.identity_header.encode()):
        message = "X-IDENTITY-HEADER is missing or does not match IDENTITY_HEADER."
        return _app_service_error(401, message)
    query = request.query_params
    if query.get("api-version") != _APP_SERVICE_API_VERSION:
        return _app_service_error(400, f"api-version must be {_APP_SERVICE_API_VERSION}.")
    resource = query.get("resource")
    if not resource:
        return _app_service_error(400, "The resource query parameter is required.")
    principal = _requested_principal(state, query)
    if principal is None:
        return _app_service_error(400, "Unable to load the proper Managed Identity.")
    issued = _issue(state, request, principal, resource)
    return JSONResponse(
        {
            "access_token": issued.token,
            "expires_on": str(issued.claims["exp"]),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": principal.client_id,
        }
    )


def _imds_error(description: str) -> Response:
    body = {"error": "invalid_request", "error_description": description}
    return JSONResponse(body, status_code=400)


async def imds_token(state: EmulatorState, request: Request) -> Response:
    """``GET /metadata/identity/oauth2/token?api-version=…&resource=…[&client_id=…]`` with the
    header ``Metadata: true``."""
    if request.headers.get("metadata", "").lower() != "true":
        return _imds_error("Required metadata header not specified")
    query = request.query_params
    if not query.get("api-version"):
        return _imds_error("Required query variable 'api-version' is missing")
    resource = query.get("resource")
    if not resource:
        return _imds_error("Required query variable 'resource' is missing")
    principal = _requested_principal(state, query)
    if principal is None:
        return _imds_error("Identity not found")
    issued = _issue(state, request, principal, resource)
    claims = issued.claims
    expires_in = str(claims["exp"] - claims["iat"])
    # IMDS sends every number as a string.
    return JSONResponse(
        {
            "access_token": issued.token,
            "client_id": principal.client_id,
            "expires_in": expires_in,
            "expires_on": str(claims["exp"]),
            "ext_expires_in": expires_in,
            "not_before": str(claims["nbf"]),
            "resource": resource,
            "token_type": "Bearer",
        }
    )


def _unknown_tenant(state: EmulatorState, request: Request) -> Response | None:
    tenant = request.path_params["tenant"]
    if tenant.lower() == state.entra.tenant_id.lower():
        return None
    description = f"AADSTS90002: Tenant '{tenant}' not found; this is {state.entra.tenant_id}."
    body = {"error": "invalid_tenant", "error_description": description}
    return JSONResponse(body, status_code=400)


async def openid_configuration(state: EmulatorState, request: Request) -> Response:
    """``GET /{tenant}/.well-known/openid-configuration``: v1, the issuer our tokens carry."""
    refusal = _unknown_tenant(state, request)
    return refusal or JSONResponse(state.entra.openid_configuration(_base_url(request), v2=False))


async def openid_configuration_v2(state: EmulatorState, request: Request) -> Response:
    """``GET /{tenant}/v2.0/.well-known/openid-configuration``."""
    refusal = _unknown_tenant(state, request)
    return refusal or JSONResponse(state.entra.openid_configuration(_base_url(request), v2=True))


async def jwks(state: EmulatorState, request: Request) -> Response:
    """``GET /{tenant}/discovery/keys`` and ``/{tenant}/discovery/v2.0/keys``: one key for both."""
    return _unknown_tenant(state, request) or JSONResponse(state.entra.jwks())

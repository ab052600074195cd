"""The emulator's configuration file, and local_emulator() that examples run against."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import httpx2
import pytest

import signalr_asgi_auth.emulator as emulator_package
from signalr_asgi_auth import SignalRAuth
from signalr_asgi_auth.emulator import (
    EmulatorConfig,
    EmulatorConfigError,
    RoleGrant,
    load_config,
    local_emulator,
    parse_config,
)

from .helpers import TIMEOUT

EXAMPLE = Path(emulator_package.__file__).parent / "emulator.example.json"
RESOURCE = "/subscriptions/s/resourceGroups/g/providers/Microsoft.SignalRService/SignalR/my-signalr"


def test_the_example_file_is_valid_and_builds() -> None:
    config = load_config(EXAMPLE)
    assert config.ping_interval == 15
    assert [p.name for p in config.principals] == ["chat-app", "dashboard"]
    emulator = config.build()
    chat_app = emulator.find_principal(client_id="11111111-1111-1111-1111-111111111111")
    dashboard = emulator.find_principal(object_id="33333333-3333-3333-3333-333333333333")
    assert chat_app is not None
    assert dashboard is not None
    assert emulator.is_allowed(
        chat_app.object_id, "Microsoft.SignalRService/SignalR/auth/accessKey/action"
    )
    assert not emulator.is_allowed(
        dashboard.object_id, "Microsoft.SignalRService/SignalR/auth/accessKey/action"
    )
    [scoped] = [a for a in emulator.assignments if a.principal == chat_app]
    assert scoped.scope.level == "resource group"


def test_without_a_config_the_system_identity_can_negotiate_and_send() -> None:
    emulator = EmulatorConfig().build()
    roles = sorted(
        a.role.name for a in emulator.assignments if a.principal == emulator.system_identity
    )
    assert roles == ["SignalR App Server", "SignalR REST API Owner"]


def test_keys_that_change_the_emulator() -> None:
    config = parse_config(
        {
            "resource_id": RESOURCE,
            "ping_interval": 0.5,
            "public_url": "http://LOCALHOST:8888/",
            "system_identity": {"roles": []},
            "principals": [{"name": "api", "roles": [{"role": "SignalR Service Owner"}]}],
        }
    )
    emulator = config.build()
    assert str(emulator.resource_id) == RESOURCE
    assert emulator.ping_interval == 0.5
    assert emulator.public_url == "http://localhost:8888"
    assert [a.role.name for a in emulator.assignments] == ["SignalR Service Owner"]
    assert config.principals[0].roles == (RoleGrant("SignalR Service Owner"),)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], r"the configuration must be a JSON object, got list"),
        (
            {"principal": []},
            r"unknown key\(s\) 'principal'; the keys are ping_interval, principals, public_url",
        ),
        (
            {"resource_id": "/subscriptions/s"},
            r"resource_id must name a SignalR resource, not a subscription",
        ),
        (
            {"resource_id": "nope"},
            r"resource_id: Not a subscription, resource group or SignalR resource",
        ),
        ({"ping_interval": 0}, r"ping_interval must be a positive number of seconds, got 0"),
        ({"ping_interval": True}, r"ping_interval must be a positive number"),
        # json.loads reads NaN and Infinity: durations that are no number of seconds
        (
            {"ping_interval": math.nan},
            r"ping_interval must be a positive number of seconds, got nan",
        ),
        (
            {"ping_interval": math.inf},
            r"ping_interval must be a positive number of seconds, got inf",
        ),
        ({"upstream": {"timeout": math.nan}}, r"upstream.timeout must be a positive number"),
        ({"upstream": {"timeout": math.inf}}, r"upstream.timeout must be a positive number"),
        ({"public_url": "ftp://x"}, r"public_url: it must be an absolute http:// or https:// URL"),
        (
            {"system_identity": {"roles": "SignalR App Server"}},
            r"system_identity.roles must be a list",
        ),
        ({"principals": {}}, r"principals must be a list of objects, got dict"),
        ({"principals": [{"roles": []}]}, r"principals\[0\] needs a name"),
        (
            {"principals": [{"name": "a"}, {"name": "a"}]},
            r"principals\[1\]: the name 'a' is used twice",
        ),
        ({"principals": [{"name": ""}]}, r"principals\[0\].name must be a non-empty string"),
        (
            {"principals": [{"name": "a", "roles": [{"scope": RESOURCE}]}]},
            r"roles\[0\] needs a role",
        ),
        (
            {
                "principals": [
                    {"name": "a", "roles": [{"role": "SignalR App Server", "scope": "/x"}]}
                ]
            },
            r"principals\[0\].roles\[0\]: Not a subscription",
        ),
    ],
)
def test_bad_configurations_say_what_to_fix(data: Any, message: str) -> None:
    with pytest.raises(EmulatorConfigError, match=message):
        parse_config(data, source="emulator.json")


def test_a_file_that_is_not_json_names_the_place(tmp_path: Path) -> None:
    text = '{\n  "ping_interval": 15,\n}\n'
    path = tmp_path / "emulator.json"
    path.write_text(text)
    # Where and how the json module words a trailing comma differs between Python versions (3.13:
    # line 2, "Illegal trailing comma"); what we write around it does not.
    with pytest.raises(json.JSONDecodeError) as reported:
        json.loads(text)
    place = reported.value
    assert place.lineno in (2, 3)

    with pytest.raises(EmulatorConfigError) as caught:
        load_config(path)

    assert str(caught.value) == (
        f"{path}: not valid JSON at line {place.lineno}, column {place.colno}: {place.msg}."
    )


# -- local_emulator -----------------------------------------------------------------------------


@pytest.fixture
def clean_identity_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "IDENTITY_SERVER_THUMBPRINT",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "IMDS_ENDPOINT",
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://before.invalid/msi/token")
    monkeypatch.delenv("IDENTITY_HEADER", raising=False)


@pytest.mark.anyio
@pytest.mark.usefixtures("clean_identity_env")
async def test_local_emulator_serves_the_library_and_restores_the_environment() -> None:
    with local_emulator() as local:
        assert os.environ["IDENTITY_ENDPOINT"] == f"{local.url}/msi/token"
        assert os.environ["IDENTITY_HEADER"] == local.emulator.identity_header
        assert local.connection_string == f"Endpoint={local.url};AuthType=azure.msi;Version=1.0;"
        assert local.environment["AZURE_SIGNALR_CONNECTION_STRING"] == local.connection_string
        auth = SignalRAuth.from_connection_string(local.connection_string)
        async with auth as signalr:
            reply = await signalr.negotiate("chat", user_id="alice")
        async with httpx2.AsyncClient(timeout=TIMEOUT) as client:
            negotiated = await client.post(
                f"{local.url}/client/negotiate?hub=chat",
                headers={"Authorization": f"Bearer {reply['accessToken']}"},
            )
        assert negotiated.status_code == 200
    assert os.environ["IDENTITY_ENDPOINT"] == "http://before.invalid/msi/token"
    assert "IDENTITY_HEADER" not in os.environ


def test_local_emulator_takes_a_config_file(tmp_path: Path, clean_identity_env: None) -> None:
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps({"ping_interval": 2, "system_identity": {"roles": []}}))
    with local_emulator(config=path) as local:
        assert local.emulator.ping_interval == 2
        assert local.emulator.assignments == []
    with local_emulator(config={"ping_interval": 3}) as local:
        assert local.emulator.ping_interval == 3


def test_the_service_mode_key_and_its_override(clean_identity_env: None) -> None:
    assert EmulatorConfig().build().service_mode == "serverless"
    assert parse_config({"service_mode": "default"}).build().service_mode == "default"
    with pytest.raises(
        EmulatorConfigError, match=r'service_mode must be "default" or "serverless"'
    ):
        parse_config({"service_mode": "Classic"}, source="emulator.json")
    with local_emulator(config={"service_mode": "default"}) as local:
        assert local.emulator.service_mode == "default"
    with local_emulator(config={"service_mode": "default"}, service_mode="serverless") as local:
        assert local.emulator.service_mode == "serverless"

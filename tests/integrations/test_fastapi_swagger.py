"""describe_security sets Swagger UI up to send the authorization server's extra parameters."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from oauthguard import ConfigurationError
from oauthguard.fastapi import describe_security

RESOURCE = "https://api.test/orders"


def init_oauth(api: FastAPI) -> dict[str, Any]:
    """What the /docs page hands to Swagger UI's ``initOAuth``."""
    page = TestClient(api).get("/docs").text
    found = re.search(r"ui\.initOAuth\((.*?)\)\s*</script>", page, re.S)
    assert found is not None, page
    settings: dict[str, Any] = json.loads(found.group(1))
    return settings


def test_resource_and_audience_go_into_the_authorization_request() -> None:
    api = FastAPI()
    describe_security(
        api, client_id="swagger-ui", resource=RESOURCE, authorization_params={"audience": "orders"}
    )
    settings = init_oauth(api)
    assert settings["additionalQueryStringParams"] == {"audience": "orders", "resource": RESOURCE}
    assert settings["clientId"] == "swagger-ui"
    assert settings["usePkceWithAuthorizationCodeGrant"] is True


def test_without_extra_parameters_swagger_ui_sends_none() -> None:
    api = FastAPI()
    describe_security(api, client_id="swagger-ui")
    assert "additionalQueryStringParams" not in init_oauth(api)


def test_what_the_app_set_itself_is_kept() -> None:
    api = FastAPI(
        swagger_ui_init_oauth={
            "clientId": "mine",
            "additionalQueryStringParams": {"audience": "mine", "prompt": "login"},
        }
    )
    describe_security(
        api, client_id="swagger-ui", resource=RESOURCE, authorization_params={"audience": "x"}
    )
    settings = init_oauth(api)
    assert settings["clientId"] == "mine"
    assert settings["additionalQueryStringParams"] == {
        "audience": "mine",
        "prompt": "login",
        "resource": RESOURCE,
    }


@pytest.mark.parametrize(
    "name", ["client_id", "redirect_uri", "scope", "state", "code_challenge", "response_type"]
)
def test_a_parameter_swagger_ui_sends_itself_is_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"authorization_params.*'{name}'.*remove"):
        describe_security(FastAPI(), authorization_params={name: "x"})


def test_extra_parameters_must_be_strings() -> None:
    with pytest.raises(ConfigurationError, match=r"authorization_params.*string"):
        describe_security(FastAPI(), authorization_params={"max_age": 300})  # type: ignore[dict-item]


def test_two_different_resources_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="resource and authorization_params"):
        describe_security(
            FastAPI(), resource=RESOURCE, authorization_params={"resource": "https://other.test"}
        )
    api = FastAPI()
    describe_security(api, resource=RESOURCE, authorization_params={"resource": RESOURCE})
    assert init_oauth(api)["additionalQueryStringParams"] == {"resource": RESOURCE}


def test_a_refused_configuration_changes_nothing() -> None:
    api = FastAPI()
    with pytest.raises(ConfigurationError):
        describe_security(api, authorization_params={"state": "x"})
    assert api.swagger_ui_init_oauth is None
    assert "securitySchemes" not in json.dumps(TestClient(api).get("/openapi.json").json())

"""Auth endpoints and the 401 convention."""

import asyncio
import dataclasses

import pytest

from tests.integration.simulator.conftest import MakeClient
from tests.integration.simulator.helpers import CONFIG, Client, bearer, call, login, sim_stats

SEARCH_ACCOUNTS = "/api/Account/search"
ACTIVE = {"onlyActiveAccounts": True}
INVALID = {"token": None, "success": False, "errorCode": 3, "errorMessage": "Invalid credentials"}


async def test_ping_needs_no_token_and_answers_json(client: Client) -> None:
    response = await client.get("/api/Status/ping")
    assert response.status == 200
    # The spec's schema is a string, and ASP.NET sends it as JSON: third-party SDKs parse it.
    assert response.content_type == "application/json"
    assert await response.json() == "pong"


APP_LOGIN = {
    "userName": "u",
    "password": "k",
    "deviceId": "d",
    "appId": "B76015F2-04D3-477E-9191-C5E22CB2C957",
    "verifyKey": "v",
}


async def test_app_login_issues_a_working_token(client: Client) -> None:
    answer = await call(client, "/api/Auth/loginApp", None, APP_LOGIN)
    assert (answer["success"], answer["errorCode"]) == (True, 0)
    assert (await call(client, SEARCH_ACCOUNTS, answer["token"], ACTIVE))["success"] is True
    for empty in ("password", "deviceId", "appId", "verifyKey", "userName"):
        refused = await call(client, "/api/Auth/loginApp", None, {**APP_LOGIN, empty: ""})
        assert refused == INVALID, empty
    missing = {k: v for k, v in APP_LOGIN.items() if k != "verifyKey"}
    assert (await client.post("/api/Auth/loginApp", json=missing)).status == 400


async def test_app_login_checks_the_configured_secret(make_client: MakeClient) -> None:
    client = await make_client(dataclasses.replace(CONFIG, username="u", api_key="k"))
    assert (await call(client, "/api/Auth/loginApp", None, APP_LOGIN))["success"] is True
    wrong = {**APP_LOGIN, "password": "other"}
    assert await call(client, "/api/Auth/loginApp", None, wrong) == INVALID


async def test_login_issues_a_working_token(client: Client) -> None:
    answer = await call(client, "/api/Auth/loginKey", None, {"userName": "u", "apiKey": "k"})
    assert answer["success"] is True
    assert (answer["errorCode"], answer["errorMessage"]) == (0, None)
    assert answer["token"].count(".") == 2
    assert (await call(client, SEARCH_ACCOUNTS, answer["token"], ACTIVE))["success"] is True
    assert (await sim_stats(client))["logins"] == 1


async def test_configured_credentials(make_client: MakeClient) -> None:
    client = await make_client(dataclasses.replace(CONFIG, username="alice", api_key="s3cret"))
    await login(client, "alice", "s3cret")
    for user, key in [("alice", "wrong"), ("bob", "s3cret"), ("alice", "")]:
        body = {"userName": user, "apiKey": key}
        assert await call(client, "/api/Auth/loginKey", None, body) == INVALID
    assert (await sim_stats(client))["logins"] == 1


async def test_demo_mode_refuses_an_empty_key(client: Client) -> None:
    answer = await call(client, "/api/Auth/loginKey", None, {"userName": "u", "apiKey": ""})
    assert answer == INVALID


async def test_validate_answers_a_new_token(client: Client, token: str) -> None:
    answer = await client.post("/api/Auth/validate", headers=bearer(token))
    assert answer.status == 200
    body = await answer.json()
    assert (body["success"], body["errorCode"], body["errorMessage"]) == (True, 0, None)
    assert body["newToken"] != token
    for usable in (token, body["newToken"]):
        assert (await call(client, SEARCH_ACCOUNTS, usable, ACTIVE))["success"] is True
    assert (await sim_stats(client))["validations"] == 1


async def test_logout_ends_the_token(client: Client, token: str) -> None:
    assert await call(client, "/api/Auth/logout", token) == {
        "success": True,
        "errorCode": 0,
        "errorMessage": None,
    }
    response = await client.post(SEARCH_ACCOUNTS, json=ACTIVE, headers=bearer(token))
    assert response.status == 401


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic ZGVtbzpkZW1v"},
    ],
)
async def test_401_has_an_empty_body_and_a_bearer_challenge(
    client: Client, headers: dict[str, str]
) -> None:
    for path in (SEARCH_ACCOUNTS, "/api/Order/place", "/api/Auth/validate"):
        response = await client.post(path, json=ACTIVE, headers=headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert await response.read() == b""
    assert (await sim_stats(client))["endpoints"][SEARCH_ACCOUNTS] == 1


async def test_expired_token_gets_401(make_client: MakeClient) -> None:
    client = await make_client(dataclasses.replace(CONFIG, token_ttl_s=0.5))
    token = await login(client)
    assert (await call(client, SEARCH_ACCOUNTS, token, ACTIVE))["success"] is True
    await asyncio.sleep(0.55)
    response = await client.post(SEARCH_ACCOUNTS, json=ACTIVE, headers=bearer(token))
    assert response.status == 401
    assert await response.read() == b""
    validate = await client.post("/api/Auth/validate", headers=bearer(token))
    assert validate.status == 401

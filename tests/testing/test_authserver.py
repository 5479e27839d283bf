"""TestIssuer as an authorization server: registration, /authorize, /token, introspection."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from oauthguard._jose.b64 import b64url_decode, b64url_encode
from oauthguard.testing import TestIssuer, public_jwk, sign_jws

pytestmark = pytest.mark.anyio

ISSUER = "https://issuer.test"
RESOURCE = "https://api.test/mcp"
REDIRECT = "http://127.0.0.1:9/callback"
VERIFIER = "v" * 43 + secrets.token_urlsafe(16)
CHALLENGE = b64url_encode(hashlib.sha256(VERIFIER.encode()).digest())


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def claims_of(token: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(b64url_decode(token.split(".")[1]))
    return result


def basic(client_id: str, secret: str | None) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@pytest.fixture
def issuer() -> TestIssuer:
    return TestIssuer(ISSUER, allowed_scopes=["read", "write", "admin"])


@pytest.fixture
async def http(issuer: TestIssuer) -> Any:
    async with httpx.AsyncClient(transport=issuer.transport(), base_url=ISSUER) as client:
        yield client


async def register(http: httpx.AsyncClient, **metadata: Any) -> dict[str, Any]:
    response = await http.post("/register", json={"redirect_uris": [REDIRECT], **metadata})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def authorize(http: httpx.AsyncClient, client_id: str, **params: str) -> dict[str, str]:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "state": "s1",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        **params,
    }
    response = await http.get("/authorize", params={k: v for k, v in query.items() if v})
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def code_token(
    http: httpx.AsyncClient, client: dict[str, Any], **params: str
) -> httpx.Response:
    answer = await authorize(http, client["client_id"], scope="read write", resource=RESOURCE)
    form = {
        "grant_type": "authorization_code",
        "code": answer["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        **params,
    }
    return await http.post(
        "/token", data=form, headers=basic(client["client_id"], client["client_secret"])
    )


def assert_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


async def test_metadata_names_every_endpoint(http: httpx.AsyncClient) -> None:
    metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["issuer"] == ISSUER
    for name in ("authorization", "token", "registration", "introspection"):
        assert metadata[f"{name}_endpoint"].startswith(ISSUER + "/")
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["scopes_supported"] == ["read", "write", "admin"]


async def test_registration_gives_a_secret_unless_the_client_is_public(
    http: httpx.AsyncClient,
) -> None:
    confidential = await register(http, client_name="app")
    assert confidential["client_secret"] and confidential["client_name"] == "app"
    assert confidential["token_endpoint_auth_method"] == "client_secret_basic"
    public = await register(http, token_endpoint_auth_method="none")
    assert "client_secret" not in public


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"redirect_uris": []}, "invalid_redirect_uri"),
        ({"redirect_uris": ["/relative"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://a.test/cb#frag"]}, "invalid_redirect_uri"),
        (
            {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "tls_client_auth"},
            "invalid_client_metadata",
        ),
        ({"redirect_uris": [REDIRECT], "grant_types": ["password"]}, "invalid_client_metadata"),
        ([REDIRECT], "invalid_client_metadata"),
    ],
)
async def test_bad_registrations_are_refused(
    http: httpx.AsyncClient, body: Any, error: str
) -> None:
    assert_error(await http.post("/register", json=body), 400, error)
    assert_error(await http.post("/register", content=b"{not json"), 400, "invalid_client_metadata")


async def test_a_registration_not_sent_as_json_registers_nothing(
    issuer: TestIssuer, http: httpx.AsyncClient
) -> None:
    """A page elsewhere may post text/plain without a CORS preflight: never a client."""
    body = json.dumps({"redirect_uris": ["https://evil.example/cb"]}).encode()
    before = len(issuer.server.clients)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"content-type": content_type} if content_type else {}
        response = await http.post("/register", content=body, headers=headers)
        assert_error(response, 400, "invalid_client_metadata")
    assert len(issuer.server.clients) == before


async def test_what_anyone_may_make_the_issuer_keep_is_bounded(
    issuer: TestIssuer, http: httpx.AsyncClient
) -> None:
    from oauthguard.testing._authserver import MAX_CLIENTS

    while len(issuer.server.clients) < MAX_CLIENTS:
        issuer.server.add_client(redirect_uris=[REDIRECT])
    response = await http.post("/register", json={"redirect_uris": [REDIRECT]})
    assert_error(response, 400, "invalid_client_metadata")
    assert len(issuer.server.clients) == MAX_CLIENTS


async def test_codes_never_redeemed_are_bounded(
    issuer: TestIssuer, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oauthguard.testing import _authserver

    monkeypatch.setattr(_authserver, "MAX_CODES", 5)
    client = await register(http)
    codes = [(await authorize(http, client["client_id"]))["code"] for _ in range(8)]
    assert len(issuer.server.codes) == 5
    assert list(issuer.server.codes) == codes[-5:]  # the oldest went first


async def test_authorization_code_flow_gives_a_token_for_the_resource(
    issuer: TestIssuer, http: httpx.AsyncClient
) -> None:
    client = await register(http)
    answer = await authorize(http, client["client_id"], scope="read write", resource=RESOURCE)
    assert answer["state"] == "s1" and answer["iss"] == ISSUER  # RFC 9207
    response = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER,
        },
        headers=basic(client["client_id"], client["client_secret"]),
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "read write"
    claims = claims_of(body["access_token"])
    assert claims["aud"] == RESOURCE and claims["scope"] == "read write"
    assert claims["client_id"] == client["client_id"] and claims["sub"] == "user-1"
    assert claims["iss"] == ISSUER and "cnf" not in claims
    assert "refresh_token" not in body  # not a registered grant type of this client
    # One use only (RFC 6749 §4.1.2).
    again = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER,
        },
        headers=basic(client["client_id"], client["client_secret"]),
    )
    assert_error(again, 400, "invalid_grant")


async def test_public_client_needs_only_pkce(http: httpx.AsyncClient) -> None:
    client = await register(http, token_endpoint_auth_method="none")
    answer = await authorize(http, client["client_id"], resource=RESOURCE)
    response = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER,
            "client_id": client["client_id"],
        },
    )
    assert response.status_code == 200, response.text
    assert "scope" not in claims_of(response.json()["access_token"])


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"code_challenge": ""}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "read delete"}, "invalid_scope"),
        ({"resource": "not-a-uri"}, "invalid_target"),
        ({"resource": "https://api.test/mcp#x"}, "invalid_target"),
    ],
)
async def test_authorization_errors_go_back_to_the_client(
    http: httpx.AsyncClient, params: dict[str, str], error: str
) -> None:
    client = await register(http)
    answer = await authorize(http, client["client_id"], **params)
    assert answer["error"] == error and answer["state"] == "s1" and answer["iss"] == ISSUER
    assert "code" not in answer


async def test_unknown_client_or_redirect_is_never_redirected_to(http: httpx.AsyncClient) -> None:
    client = await register(http)
    unknown = await http.get("/authorize", params={"client_id": "nobody", "redirect_uri": REDIRECT})
    assert_error(unknown, 400, "invalid_request")
    elsewhere = await http.get(
        "/authorize",
        params={"client_id": client["client_id"], "redirect_uri": "https://evil.test/cb"},
    )
    assert_error(elsewhere, 400, "invalid_request")
    assert "location" not in elsewhere.headers


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"code_verifier": "w" * 50}, "invalid_grant"),
        ({"code_verifier": "short"}, "invalid_grant"),
        ({"code_verifier": ""}, "invalid_grant"),
        ({"redirect_uri": "http://127.0.0.1:9/other"}, "invalid_grant"),
        ({"code": "made-up"}, "invalid_grant"),
        ({"resource": "https://other.test/mcp"}, "invalid_target"),
        ({"scope": "read admin"}, "invalid_scope"),
    ],
)
async def test_bad_code_exchanges_are_refused(
    http: httpx.AsyncClient, params: dict[str, str], error: str
) -> None:
    client = await register(http)
    assert_error(await code_token(http, client, **params), 400, error)


async def test_expired_codes_are_refused() -> None:
    clock = Clock()
    issuer = TestIssuer(ISSUER, clock=clock)
    async with httpx.AsyncClient(transport=issuer.transport(), base_url=ISSUER) as http:
        client = await register(http)
        answer = await authorize(http, client["client_id"])
        clock.now += 61
        response = await http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": answer["code"],
                "redirect_uri": REDIRECT,
                "code_verifier": VERIFIER,
            },
            headers=basic(client["client_id"], client["client_secret"]),
        )
    assert_error(response, 400, "invalid_grant")


async def test_refresh_token_may_narrow_but_never_widen(http: httpx.AsyncClient) -> None:
    client = await register(http, grant_types=["authorization_code", "refresh_token"])
    first = (await code_token(http, client)).json()
    auth = basic(client["client_id"], client["client_secret"])
    narrower = await http.post(
        "/token",
        headers=auth,
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "scope": "read",
        },
    )
    assert narrower.status_code == 200, narrower.text
    claims = claims_of(narrower.json()["access_token"])
    assert claims["scope"] == "read" and claims["aud"] == RESOURCE
    wider = await http.post(
        "/token",
        headers=auth,
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "scope": "read admin",
        },
    )
    assert_error(wider, 400, "invalid_scope")
    other = await register(http, grant_types=["authorization_code", "refresh_token"])
    stolen = await http.post(
        "/token",
        headers=basic(other["client_id"], other["client_secret"]),
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert_error(stolen, 400, "invalid_grant")


async def test_client_credentials_with_basic_and_post(
    issuer: TestIssuer, http: httpx.AsyncClient
) -> None:
    assert issuer.register_client(client_id="svc", client_secret="s3cret:/+") == (
        "svc",
        "s3cret:/+",
    )
    for request in (
        {"headers": basic("svc", "s3cret%3A%2F%2B")},  # RFC 6749 §2.3.1 form-encoding
        {"data": {"client_id": "svc", "client_secret": "s3cret:/+"}},
    ):
        data = {"grant_type": "client_credentials", "scope": "read", "resource": RESOURCE}
        response = await http.post(
            "/token", data={**data, **request.get("data", {})}, headers=request.get("headers")
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "refresh_token" not in body
        claims = claims_of(body["access_token"])
        assert claims["sub"] == "svc" and claims["aud"] == RESOURCE and claims["scope"] == "read"


async def test_client_authentication_failures(issuer: TestIssuer, http: httpx.AsyncClient) -> None:
    issuer.register_client(client_id="svc", client_secret="right")
    grant = {"grant_type": "client_credentials"}
    assert_error(
        await http.post("/token", data=grant, headers=basic("svc", "wrong")), 401, "invalid_client"
    )
    assert_error(await http.post("/token", data=grant), 401, "invalid_client")
    assert_error(
        await http.post("/token", data=grant, headers={"Authorization": "Basic !!!"}),
        401,
        "invalid_client",
    )
    public, _ = issuer.register_client(auth_method="none")
    assert_error(
        await http.post("/token", data={**grant, "client_id": public}), 400, "unauthorized_client"
    )
    assert_error(
        await http.post("/token", data={"grant_type": "password"}, headers=basic("svc", "right")),
        400,
        "unsupported_grant_type",
    )


def dpop_proof(
    key: Any, htu: str, *, htm: str = "POST", iat: float | None = None, sign_with: Any = None
) -> str:
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(key)}
    claims = {
        "jti": secrets.token_hex(8),
        "htm": htm,
        "htu": htu,
        "iat": int(time.time() if iat is None else iat),
    }
    return sign_jws(header, claims, sign_with or key)


async def test_dpop_proof_binds_the_token(issuer: TestIssuer, http: httpx.AsyncClient) -> None:
    issuer.register_client(client_id="svc", client_secret="pw")
    key = ec.generate_private_key(ec.SECP256R1())
    response = await http.post(
        "/token",
        headers={**basic("svc", "pw"), "DPoP": dpop_proof(key, ISSUER + "/token")},
        data={"grant_type": "client_credentials", "resource": RESOURCE},
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    expected = ECKey.import_key(public_jwk(key)).thumbprint()  # RFC 7638, by joserfc
    assert claims_of(response.json()["access_token"])["cnf"] == {"jkt": expected}


@pytest.mark.parametrize("mutation", ["htu", "htm", "iat", "signature", "private", "typ"])
async def test_bad_dpop_proofs_are_refused(
    issuer: TestIssuer, http: httpx.AsyncClient, mutation: str
) -> None:
    issuer.register_client(client_id="svc", client_secret="pw")
    key = ec.generate_private_key(ec.SECP256R1())
    proof = {
        "htu": lambda: dpop_proof(key, ISSUER + "/other"),
        "htm": lambda: dpop_proof(key, ISSUER + "/token", htm="GET"),
        "iat": lambda: dpop_proof(key, ISSUER + "/token", iat=time.time() - 3600),
        "signature": lambda: dpop_proof(
            key, ISSUER + "/token", sign_with=ec.generate_private_key(ec.SECP256R1())
        ),
        "private": lambda: sign_jws(
            {"typ": "dpop+jwt", "alg": "ES256", "jwk": {**public_jwk(key), "d": "AAAA"}},
            {"jti": "j", "htm": "POST", "htu": ISSUER + "/token", "iat": int(time.time())},
            key,
        ),
        "typ": lambda: sign_jws(
            {"typ": "jwt", "alg": "ES256", "jwk": public_jwk(key)},
            {"jti": "j", "htm": "POST", "htu": ISSUER + "/token", "iat": int(time.time())},
            key,
        ),
    }[mutation]()
    response = await http.post(
        "/token",
        headers={**basic("svc", "pw"), "DPoP": proof},
        data={"grant_type": "client_credentials"},
    )
    assert_error(response, 400, "invalid_dpop_proof")


async def test_opaque_tokens_are_introspected() -> None:
    clock = Clock()
    issuer = TestIssuer(ISSUER, opaque=True, clock=clock)
    issuer.register_client(client_id="svc", client_secret="pw")
    issuer.register_client(client_id="rs", client_secret="rs-pw")
    async with httpx.AsyncClient(transport=issuer.transport(), base_url=ISSUER) as http:
        body = (
            await http.post(
                "/token",
                headers=basic("svc", "pw"),
                data={"grant_type": "client_credentials", "scope": "read", "resource": RESOURCE},
            )
        ).json()
        token = body["access_token"]
        assert token.count(".") == 0
        answer = (
            await http.post("/introspect", data={"token": token}, headers=basic("rs", "rs-pw"))
        ).json()
        assert answer["active"] is True and answer["aud"] == RESOURCE
        assert answer["scope"] == "read" and answer["client_id"] == "svc"
        assert answer["token_type"] == "Bearer" and answer["iss"] == ISSUER
        unknown = await http.post(
            "/introspect", data={"token": "nope"}, headers=basic("rs", "rs-pw")
        )
        assert unknown.json() == {"active": False}
        refused = await http.post("/introspect", data={"token": token})
        assert_error(refused, 401, "invalid_client")
        clock.now += 301
        expired = await http.post(
            "/introspect", data={"token": token}, headers=basic("rs", "rs-pw")
        )
        assert expired.json() == {"active": False}


async def test_minted_opaque_tokens_are_introspected(
    http: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    issuer.register_client(client_id="rs", client_secret="pw")
    token = issuer.opaque_token(audience=RESOURCE, scope="read", claims={"acr": "2"})
    answer = (
        await http.post("/introspect", data={"token": token}, headers=basic("rs", "pw"))
    ).json()
    assert answer["active"] is True and answer["acr"] == "2" and answer["sub"] == "user-1"


async def test_redirect_uri_may_be_omitted_with_one_and_keeps_its_query(
    http: httpx.AsyncClient,
) -> None:
    registered = "http://127.0.0.1:9/cb?app=1"
    client = await register(http, redirect_uris=[registered])
    response = await http.get(
        "/authorize",
        params={
            "response_type": "code",
            "client_id": client["client_id"],
            "state": "s",
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
        },
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    answer = parse_qs(location.query)
    assert location.path == "/cb" and answer["app"] == ["1"] and "code" in answer


async def test_several_resources_give_an_audience_array(
    issuer: TestIssuer, http: httpx.AsyncClient
) -> None:
    issuer.register_client(client_id="svc", client_secret="pw")
    other = "https://api.test/other"
    response = await http.post(
        "/token",
        headers=basic("svc", "pw"),
        data={"grant_type": "client_credentials", "resource": [RESOURCE, other, RESOURCE]},
    )
    assert claims_of(response.json()["access_token"])["aud"] == [RESOURCE, other]


async def test_opaque_dpop_bound_tokens_introspect_as_dpop() -> None:
    from oauthguard.testing import DPoPKey

    issuer = TestIssuer(ISSUER, opaque=True)
    issuer.register_client(client_id="svc", client_secret="pw")
    key = DPoPKey()
    async with httpx.AsyncClient(transport=issuer.transport(), base_url=ISSUER) as http:
        body = (
            await http.post(
                "/token",
                headers={**basic("svc", "pw"), "DPoP": key.proof("POST", ISSUER + "/token")},
                data={"grant_type": "client_credentials"},
            )
        ).json()
        answer = (
            await http.post(
                "/introspect", data={"token": body["access_token"]}, headers=basic("svc", "pw")
            )
        ).json()
    assert body["token_type"] == "DPoP"
    assert answer["token_type"] == "DPoP" and answer["cnf"] == {"jkt": key.thumbprint}


async def test_extra_metadata_overrides_and_removes(
    issuer: TestIssuer, http: httpx.AsyncClient
) -> None:
    issuer.extra_metadata = {"introspection_endpoint": None, "service_documentation": "x"}
    metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert "introspection_endpoint" not in metadata and metadata["service_documentation"] == "x"

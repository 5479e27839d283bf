from oauthguard.testing import TestIssuer


async def test_the_issuer_is_an_authorization_server_too() -> None:
    issuer = TestIssuer("https://issuer.test", allowed_scopes=["read", "write"])
    client_id, secret = issuer.register_client()  # a confidential client (Basic auth)
    assert secret is not None
    async with issuer.http_client() as http:  # in process; or serve issuer.app with uvicorn
        answer = await http.post(
            f"{issuer.issuer}/token",
            data={"grant_type": "client_credentials", "scope": "read"},
            auth=(client_id, secret),
        )
        assert answer.json()["token_type"] == "Bearer"

        opaque = issuer.opaque_token(audience="https://api.test", scope="read")
        explained = await http.post(
            f"{issuer.issuer}/introspect", data={"token": opaque}, auth=(client_id, secret)
        )
        assert explained.json()["active"] is True  # only /introspect explains it

    issuer.extra_metadata = {"introspection_endpoint": None}  # override or (None) remove members
    issuer.rotate("RS256")  # a new signing key: the guard picks up its kid on the next request

"""Seeded fuzzing of the guard with client-controlled input: Authorization and DPoP headers,
tokens and proofs with random JSON, odd ASGI scopes. Every request must be refused with
400, 401 or 403 and a well-formed challenge: never a pass, a 500 or a 503 (the issuer is
in-process, so nothing here is an outage)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from dpop_setup import URL, Setup
from inprocess import messages_of
from proofs import REMOVE, b64

from oauthguard._wire.challenge import parse_challenges

pytestmark = pytest.mark.anyio

ROUNDS = 1500
_WEIRD = [
    "",
    " ",
    "\t",
    ",",
    '"',
    "\\",
    "=",
    ".",
    "é",
    "\u2028",
    "\ud800",
    "\x00",
    "\x7f",
    "Bearer",
    "DPoP",
    "null",
    "{}",
    "ES256",
    "dpop+jwt",
    "P-256",
    "EC",
    "GET",
    URL,
]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value, huge numbers and odd strings included."""
    kind = rng.randrange(10 if depth < 3 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1_800_000_000, 2**63, 10**400, -(10**400)])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e308, -1e308, 1_800_000_000.5])
    if kind in (4, 5, 6):
        return rng.choice(_WEIRD) + "".join(rng.choice(_WEIRD) for _ in range(rng.randrange(3)))
    if kind in (7, 8):
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice(_WEIRD): random_json(rng, depth + 1) for _ in range(rng.randrange(3))}


def random_segment(rng: random.Random) -> str:
    """A base64url segment: JSON (random, or nested deeper than any parser allows) or bytes."""
    choice = rng.randrange(4)
    if choice == 0:
        return b64(rng.randbytes(rng.randrange(40)))
    if choice == 1:
        return b64(b"[" * 3000 + b"]" * 3000)
    value = (
        random_json(rng)
        if choice == 2
        else {
            "alg": "ES256",
            "iss": "https://issuer.test",
            "kid": random_json(rng),
            "typ": "at+jwt",
        }
    )
    return b64(json.dumps(value).encode())


# A value each header parameter or claim takes when the random one would be valid.
_HEADER_FAULT = {"typ": "dpop+jwt", "alg": "none", "kid": "no-such-kid", "crit": []}
_CLAIM_FAULT = {"aud": "https://other.test", "exp": "soon", "iss": None, "cnf": {"jwk": {}}}


def _claim_is_valid(claim: str, value: Any, now: float) -> bool:
    if claim == "aud":
        return value == URL or (isinstance(value, list) and URL in value)
    if claim == "exp":
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and value > now - 60
        )  # the guard's leeway is 30 s
    return claim == "cnf" and value in (None, {})


def random_token(rng: random.Random, setup: Setup) -> bytes:
    """An access token: random bytes, a random JWT, or a signed token with one random header
    parameter or claim that makes it invalid (only the issuer could send the latter, but it
    must not pass or fail unexpectedly either)."""
    choice = rng.randrange(4)
    if choice == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
    if choice == 1:
        return ".".join(random_segment(rng) for _ in range(rng.choice([1, 3, 3, 5]))).encode()
    now = setup.clock.now
    if choice == 2:
        name, value = rng.choice(sorted(_HEADER_FAULT)), random_json(rng)
        if value is None or value == "ES256":
            value = _HEADER_FAULT[name]
        return setup.issuer.token(
            audience=URL, alg="ES256", now=now, headers={name: value}
        ).encode()
    name, value = rng.choice(sorted(_CLAIM_FAULT)), random_json(rng)
    if _claim_is_valid(name, value, now):
        value = _CLAIM_FAULT[name]
    return setup.issuer.token(audience=URL, alg="ES256", now=now, claims={name: value}).encode()


# Each corrupts one thing a proof needs (RFC 9449 §4.3), so no fuzzed proof may pass.
_PROOF_FAULTS = ["typ", "alg", "jwk", "crv", "jti", "htm", "htu", "iat", "ath", "signature"]


def random_proof(rng: random.Random, setup: Setup, token: str) -> bytes:
    """A proof signed by the client key, one required thing made random (never valid)."""
    if rng.randrange(5) == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
    fault, value = rng.choice(_PROOF_FAULTS), random_json(rng)
    header: dict[str, Any] = {}
    claims: dict[str, Any] = {}
    if fault in ("typ", "alg", "jwk"):
        header[fault] = REMOVE if value is None else value
    elif fault == "crv":
        header["jwk"] = {**setup.key.jwk, "crv": value}
    elif fault == "iat" and isinstance(value, int | float) and not isinstance(value, bool):
        now = setup.clock.now
        claims["iat"] = str(value) if now - 120 < value < now + 120 else value
    elif fault != "signature":
        claims[fault] = REMOVE if value is None else _not_valid(fault, value)
    if fault in ("alg", "crv", "typ") and value in ("ES256", "P-256", "dpop+jwt"):
        header[fault if fault != "crv" else "typ"] = "JWT"  # would be the valid value
    proof = setup.proof(token, header=header, claims=claims)
    if fault == "signature":
        head, body, _ = proof.split(".")
        proof = f"{head}.{body}.{random_segment(rng)}"
    return proof.encode()


def _not_valid(claim: str, value: Any) -> Any:
    """``value``, or an invalid one where it happens to be what the claim needs."""
    if claim == "jti" and isinstance(value, str) and value:
        return "x" * 257
    if claim in ("htm", "htu") and value in ("GET", URL):
        return "get" if claim == "htm" else URL + "/other"
    return value


def random_scope(rng: random.Random, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """An HTTP scope for ``/mcp``, sometimes without client, server, raw_path or host."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"api.test"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("api.test", 443),
    }
    for key in ("client", "server", "raw_path"):
        if rng.randrange(4) == 0:
            del scope[key]
    if rng.randrange(4) == 0:
        scope["headers"] = headers
    return scope


async def call(app: Any, scope: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]]]:
    sent = await messages_of(app, scope)
    start = sent[0]
    assert start["type"] == "http.response.start"
    return start["status"], start["headers"]


def random_request(rng: random.Random, setup: Setup, bound_token: str) -> list[tuple[bytes, bytes]]:
    """Authorization and DPoP headers, each random in its own way."""
    choice = rng.randrange(4)
    if choice == 0:  # the real bound token with a fuzzed proof
        headers = [
            (b"authorization", b"DPoP " + bound_token.encode()),
            (b"dpop", random_proof(rng, setup, bound_token)),
        ]
    else:
        scheme = rng.choice(
            [
                b"Bearer ",
                b"bearer  ",
                b"DPoP ",
                b"dpop ",
                b"Bearer",
                b"Basic ",
                b"Bearer\t",
                b" Bearer ",
            ]
        )
        headers = [(b"authorization", scheme + random_token(rng, setup))]
        if rng.randrange(2):
            headers.append((b"dpop", random_proof(rng, setup, bound_token)))
    if rng.randrange(8) == 0:
        headers.append(rng.choice(headers))
    return headers


async def test_fuzzed_credentials_are_always_refused_cleanly() -> None:
    rng = random.Random(20261126)
    setup = Setup()
    bound_token = setup.token()
    for _ in range(ROUNDS):
        headers = random_request(rng, setup, bound_token)
        status, sent = await call(setup.app, random_scope(rng, headers))
        assert status in (400, 401, 403), (status, headers)
        values = dict(sent)
        challenge = values[b"www-authenticate"]
        assert b"\r" not in challenge and b"\n" not in challenge
        schemes = [name for name, _ in parse_challenges(challenge.decode("ascii"))]
        assert schemes == ["Bearer", "DPoP"], challenge

"""``WWW-Authenticate`` challenges and error responses.

RFC 6750 §3 (Bearer), RFC 9449 §7.1 (DPoP), RFC 9728 §5.1 (``resource_metadata``),
RFC 9470 §3 (step-up). Also a parser, for tests and clients.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from oauthguard._wire.errors import GuardError, TemporarilyUnavailable, UseDPoPNonce

Headers = list[tuple[bytes, bytes]]

# RFC 6750 §3: the order in which auth-params are written; each appears at most once.
_PARAM_ORDER = (
    "realm",
    "error",
    "error_description",
    "error_uri",
    "scope",
    "acr_values",
    "max_age",
    "algs",
    "resource_metadata",
)
_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]")


def printable(value: str) -> str:
    """``value`` without the characters RFC 6750 §3 does not allow in auth-params."""
    return _NOT_PRINTABLE.sub("", value)


def description_text(value: str) -> str:
    """RFC 6750 §3: ``error_description`` is ``%x20-21 / %x23-5B / %x5D-7E``: no ``"`` and
    no ``\\``, which a quoted-pair would allow in an RFC 9110 quoted-string; they become
    ``'`` and ``/`` (in the JSON body too, which says exactly what the challenge says)."""
    return printable(value).replace('"', "'").replace("\\", "/")


def quote(value: str) -> str:
    """An RFC 9110 quoted-string: non-printable characters dropped, ``"`` and ``\\`` escaped."""
    value = printable(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_challenge(scheme: str, params: dict[str, str]) -> str:
    """One challenge: ``Bearer error="invalid_token", resource_metadata="..."``."""
    parts = [f"{name}={quote(params[name])}" for name in _PARAM_ORDER if params.get(name)]
    return f"{scheme} {', '.join(parts)}" if parts else scheme


class Challenger:
    """Builds the response for a refused request; everything static is computed once."""

    def __init__(
        self,
        resource_metadata: str,
        *,
        realm: str | None = None,
        dpop_algs: Sequence[str] = (),
        bearer: bool = True,
    ) -> None:
        self.resource_metadata = resource_metadata
        self.realm = realm
        self.dpop_algs = " ".join(dpop_algs)
        self.bearer = bearer

    def header(
        self, error: GuardError | None, scheme: str | None = None, scope: str | None = None
    ) -> str:
        """The ``WWW-Authenticate`` value, with the error in the challenge of the scheme used.

        The Bearer challenge comes first (clients read parameters from a value that starts
        with ``Bearer ``); with DPoP enabled a DPoP challenge follows (RFC 9449 §7.2).
        ``scheme="both"`` puts the error in both (an ambiguous request).
        """
        base = {"realm": self.realm or "", "resource_metadata": self.resource_metadata}
        extra = dict(error.params) if error is not None else {}
        if scope:
            # The error's own scope wins; an empty one leaves scope out (RFC 6750 §3.1: a
            # MAY): a need no scope meets (a role, a client, a claim).
            extra.setdefault("scope", scope)
        coded: dict[str, str] = {}
        if error is not None and error.error is not None:
            description = description_text(error.description)
            coded = {"error": error.error, "error_description": description}
        used = (scheme or "bearer").lower()
        if not self.bearer:
            used = "dpop"
        challenges = []
        if self.bearer:
            own = coded if used in ("bearer", "both") else {}
            challenges.append(build_challenge("Bearer", {**base, **extra, **own}))
        if self.dpop_algs:
            own = coded if used in ("dpop", "both") else {}
            challenges.append(
                build_challenge("DPoP", {**base, "algs": self.dpop_algs, **extra, **own})
            )
        return ", ".join(challenges)

    def response(
        self, error: GuardError, scheme: str | None = None, scope: str | None = None
    ) -> tuple[int, Headers, bytes]:
        """Status, headers and JSON body for ``error``."""
        body: dict[str, str] = {}
        if error.error is not None:  # the body says exactly what the challenge says
            body = {"error": error.error, "error_description": description_text(error.description)}
        else:
            body = {
                "error": "unauthorized",
                "error_description": error.description or "this resource needs an access token",
            }
        payload = json.dumps(body).encode()
        headers: Headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"cache-control", b"no-store"),
            (b"access-control-expose-headers", b"WWW-Authenticate, DPoP-Nonce"),
        ]
        if isinstance(error, TemporarilyUnavailable):
            headers.append((b"retry-after", str(error.retry_after).encode()))
        else:
            if isinstance(error, UseDPoPNonce):
                # RFC 9449 §9: exactly one fresh nonce rides on the use_dpop_nonce refusal.
                headers.append((b"dpop-nonce", error.nonce.encode("ascii")))
            value = self.header(error, scheme, scope)
            headers.append((b"www-authenticate", value.encode("latin-1")))
        return error.status, headers, payload


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_SEPARATORS = " \t,"


def parse_challenges(value: str) -> list[tuple[str, dict[str, str]]]:
    """Parse a ``WWW-Authenticate`` value into ``[(scheme, {param: value})]``.

    Scheme names keep their case; parameter names are lowercased. Raises ``ValueError``
    on a value that is not a list of challenges.
    """
    result: list[tuple[str, dict[str, str]]] = []
    pos, end = 0, len(value)
    while pos < end:
        if value[pos] in _SEPARATORS:
            pos += 1
            continue
        name = _TOKEN.match(value, pos)
        if name is None:
            raise ValueError(f"cannot parse WWW-Authenticate at offset {pos}: {value!r}")
        pos = name.end()
        while pos < end and value[pos] in " \t":
            pos += 1
        if pos >= end or value[pos] != "=":
            result.append((name.group(), {}))
            continue
        if not result:
            raise ValueError(f"parameter before any scheme in {value!r}")
        pos += 1
        while pos < end and value[pos] in " \t":
            pos += 1
        quoted = _QUOTED.match(value, pos)
        token = quoted or _TOKEN.match(value, pos)
        if token is None:
            raise ValueError(f"missing value for {name.group()!r} in {value!r}")
        text = re.sub(r"\\(.)", r"\1", quoted.group(1)) if quoted else token.group()
        result[-1][1][name.group().lower()] = text
        pos = token.end()
    return result

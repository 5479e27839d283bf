"""Opaque tokens through RFC 7662 introspection: ``IntrospectionVerifier``."""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import anyio
import httpx

from oauthguard._http.breaker import CircuitBreaker, Ticket, retry_after
from oauthguard._http.cache import ExpiringCache
from oauthguard._http.client_auth import (
    ClientAuthentication,
)
from oauthguard._http.fetch import Fetched, UnreadableBody, fetch_document
from oauthguard._http.singleflight import SingleFlight
from oauthguard._introspection.answers import (
    AboutThisToken,
    IntrospectionFailure,
    ServiceFailure,
    check_active,
    check_token_kind,
    error_code,
    json_members,
    status_failure,
    transport_failure,
)
from oauthguard._introspection.settings import Introspection
from oauthguard._introspection.shared import decode_entry, encode_entry, namespace, shared_key
from oauthguard._introspection.signed import MEDIA_TYPE, BadSignedResponse, read_signed_response
from oauthguard._telemetry import TELEMETRY
from oauthguard._verify.discovery import AuthorizationServers
from oauthguard._verify.jwt import build_token, check_aud_claim, check_window
from oauthguard._verify.keys import KeySet
from oauthguard._verify.trust import IssuerDirectory, TokenRules
from oauthguard._wire.errors import InvalidToken, TemporarilyUnavailable
from oauthguard._wire.tokens import AccessToken

logger = logging.getLogger("oauthguard")


class IntrospectionVerifier:
    """A ``TokenVerifier`` that asks the authorization server (RFC 7662).

    Results are cached under the SHA-256 of the token (RFC 7662 §4: active ones never past
    ``exp`` and at most ``cache_ttl``, inactive ones ``negative_cache_ttl``), and
    concurrent requests with the same token share one call. Any failure to get an answer
    is ``TemporarilyUnavailable`` (503), never a pass. An answer about one token (a 4xx
    other than 401 and 429, a body we cannot read) is a 503 for that token only; failures
    of the service open a circuit breaker (``oauthguard._http.breaker``): tokens not in the
    cache are then answered 503 at once while one request at a time probes the endpoint.
    Answers are read up to 1 MiB.

    With ``Introspection(shared_cache=)`` a token this process has not seen is looked up
    there first (under a hash of the endpoint, the client and the token), and every answer
    is written there: read back, it goes through the same checks as a fresh one, and an
    entry that cannot be read, or a store that fails, is a miss, so the endpoint is asked.
    """

    def __init__(
        self,
        settings: Introspection,
        *,
        http_client: httpx.AsyncClient,
        servers: AuthorizationServers,
        key_sets: Mapping[str, KeySet],
        trusted: IssuerDirectory,
        default_rules: TokenRules,
        algorithms: Iterable[str],
        leeway: float = 30,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self._http = http_client
        self._servers = servers
        self._key_sets = dict(key_sets)
        self._trusted = trusted
        self._default_rules = default_rules
        self._response_audiences = default_rules.audiences | {settings.client_id}
        self._require_aud = settings.require_aud is True  # None: RFC 7662's optional aud
        self._algorithms = frozenset(algorithms)
        self._leeway = leeway
        self._clock = clock
        self._client = ClientAuthentication(
            settings.auth_method,
            settings.client_id,
            client_secret=settings.client_secret,
            signing_key=settings.signing_key,
            clock=clock,
        )
        self._endpoint = settings.endpoint
        #: The endpoint as the issuer names it (RFC 7523 §3: a client assertion's aud).
        self._audience = settings.endpoint
        self._active: ExpiringCache[AccessToken] = ExpiringCache(settings.cache_size)
        self._inactive: ExpiringCache[str] = ExpiringCache(settings.cache_size)
        self._flight: SingleFlight[AccessToken] = SingleFlight()
        self._breaker = CircuitBreaker(name="introspection")
        self._paused_because = ""  # the failure that last opened the breaker
        self._shared = settings.shared_cache
        self._shared_down = False  # its last call failed: the next failure is not logged
        where = settings.endpoint or " ".join(sorted(self._key_sets))  # one issuer if none
        self._namespace = namespace(where, settings.client_id)
        #: How many introspection requests were sent.
        self.calls = 0
        #: Tokens found in, missing from, and unreadable in the shared cache; its failures.
        self.shared_hits = self.shared_misses = self.shared_malformed = self.shared_failures = 0

    async def verify(self, token: str) -> AccessToken:
        """The token as the authorization server describes it, checked like a JWT's claims."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        cached = self._active.get(digest, now)
        refusal = self._inactive.get(digest, now) if cached is None else None
        if TELEMETRY.metrics is not None:
            TELEMETRY.metrics.introspection_cache(cached is not None or refusal is not None)
        if cached is not None:
            return cached
        if refusal is not None:
            raise InvalidToken(refusal)
        return await self._flight.run(digest, lambda: self._verify_new(token, digest))

    def reuse_until(self, token: str, verified: AccessToken, now: float) -> float:
        """Until when a verified token may be reused: no longer than this cache keeps it."""
        expiry = self._active.expiry(hashlib.sha256(token.encode()).hexdigest())
        return now if expiry is None else expiry

    def paused(self) -> bool:
        """Whether new tokens get 503 at once: the endpoint failed and its pause runs."""
        return self._breaker.state(self._clock()) == "open"

    async def _verify_new(self, token: str, digest: str) -> AccessToken:
        """A token this process holds no answer for: from the shared cache, or introspected
        (and then shared)."""
        key = None
        if self._shared is not None:
            key = shared_key(self._namespace, token)
            entry = await self._read_shared(key)
            if entry is not None:
                outcome, _ = self._conclude(entry[0], token, digest, entry[1])
                return _result(outcome)
        members = await self._introspect(token, digest)
        outcome, until = self._conclude(members, token, digest, math.inf)
        if TELEMETRY.metrics is not None:
            refused = isinstance(outcome, InvalidToken)
            TELEMETRY.metrics.introspection("inactive" if refused else "active")
        if key is not None:
            await self._write_shared(key, members, until)
        return _result(outcome)

    async def _introspect(self, token: str, digest: str) -> dict[str, Any]:
        ticket = self._admit()
        metrics = TELEMETRY.refresh()  # a call to make: the moment to look for an SDK
        try:
            members = await self._fetch(token)
        except AboutThisToken as failure:
            # The service answered: one odd token must not turn every new token away.
            self._breaker.succeeded(ticket)
            self._log(logging.WARNING, failure, " for one token")
            if metrics is not None:
                metrics.introspection("unreadable")
            raise
        except ServiceFailure as failure:
            self._log(logging.ERROR, failure)
            if metrics is not None:
                metrics.introspection("failed")
            raise self._failed(ticket, failure, digest) from None
        else:
            self._breaker.succeeded(ticket)
        finally:
            self._breaker.released(ticket)  # cancelled, or no endpoint: no word on the service
        return members

    def _conclude(
        self, members: Mapping[str, Any], token: str, digest: str, limit: float
    ) -> tuple[AccessToken | InvalidToken, float]:
        """The token an answer describes, or its refusal, kept here until the returned time
        (never past ``limit``, when a shared entry stops being usable)."""
        now = self._clock()
        try:
            verified = self.check(members, now, token)
        except InvalidToken as refusal:
            until = min(limit, now + self.settings.negative_cache_ttl)
            self._inactive.put(digest, refusal.description, until, now)
            logger.info(
                "introspected token sha256:%s refused: %s; see %s",
                digest[:12],
                refusal.description,
                refusal.docs,
            )
            return refusal, until
        until = min(limit, now + self.settings.cache_ttl)
        if verified.expires_at is not None:
            until = min(until, verified.expires_at)  # RFC 7662 §4: never past exp
        self._active.put(digest, verified, until, now)
        return verified, until

    async def _read_shared(self, key: str) -> tuple[dict[str, Any], float] | None:
        """The usable entry under ``key``, or None: absent, unreadable, or the store failed
        or took longer than ``Introspection(timeout=)`` (then the endpoint is asked)."""
        shared = self._shared
        assert shared is not None
        data = await self._shared_call("read", lambda: shared.get(key))
        entry = decode_entry(data, self._clock())
        if entry is not None:
            self.shared_hits += 1
            return entry
        self.shared_misses += 1
        if data is not None:
            self.shared_malformed += 1
            logger.warning(
                "ignored an unreadable or expired shared introspection entry (key %s...)",
                key[:12],
            )
        return None

    async def _write_shared(self, key: str, members: Mapping[str, Any], until: float) -> None:
        shared = self._shared
        assert shared is not None
        ttl = until - self._clock()
        data = encode_entry(members, until)
        if data is not None and ttl > 0:  # else too large to share, or expired: kept here
            await self._shared_call("write", lambda: shared.put(key, data, ttl))

    async def _shared_call(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """What a call to the shared cache gives, or None when it raises or times out (a
        store of the user's own may do either): counted, logged once per outage."""
        timeout = self.settings.timeout
        failure: Exception | None = None
        result = None
        try:
            with anyio.move_on_after(timeout) as scope:
                result = await call()
            if scope.cancelled_caught:
                failure = TimeoutError(f"no answer within {timeout:g}s")
        except Exception as exc:
            failure = exc
        if failure is None:
            if self._shared_down:
                self._shared_down = False
                logger.info("the shared introspection cache answers again")
            return result
        self.shared_failures += 1
        if not self._shared_down:
            self._shared_down = True
            logger.warning(
                "the shared introspection cache failed to %s: %s: %s; tokens are "
                "introspected without it until it answers",
                what,
                type(failure).__name__,
                failure,
            )
        return None

    def check(self, members: Mapping[str, Any], now: float, raw: str = "") -> AccessToken:
        """RFC 7662 §2.2: only ``active: true`` passes, then the members are checked."""
        if members.get("active") is not True:
            raise InvalidToken("the token is not active")
        iss = members.get("iss")
        rules = self._default_rules
        if iss is not None:
            # RFC 7662 §2.2 / RFC 9068 §4: when iss is present it is one of our issuers,
            # and the token is read by that issuer's rules.
            trusted = self._trusted.get(iss) if isinstance(iss, str) else None
            if trusted is None:
                raise InvalidToken("the token's issuer is not trusted")
            rules = trusted.rules
        # RFC 7662 §2.2 / RFC 8707: aud, when present (or required), names this resource.
        audience = check_aud_claim(members, rules.audiences, self._require_aud)
        # RFC 7662 §2.2: exp, nbf and iat judged with our leeway.
        exp = check_window(members, now, self._leeway)
        rules.check_client(members)
        check_token_kind(members)
        if rules.checks:
            rules.run_checks({}, members)  # the issuer's own, as for its JWTs (no header)
        # RFC 7662 §2.2: scope is a space-separated string; RFC 9449 §6.2: cnf.jkt binds.
        return build_token(members, audience, exp, rules, raw)

    async def _fetch(self, token: str) -> dict[str, Any]:
        """RFC 7662 §2.1: POST the token with our client authentication; the members."""
        endpoint = self._endpoint or await self._discover_endpoint()
        form = {"token": token, "token_type_hint": "access_token"}
        accept = MEDIA_TYPE if self.settings.jwt_response else "application/json"
        headers = {"accept": accept}
        self._client.apply(form, headers, self._audience or endpoint)
        self.calls += 1
        try:
            response = await fetch_document(
                self._http,
                endpoint,
                timeout=self.settings.timeout,
                form=form,
                headers=headers,
                read_statuses=(200, 400),
                span="oauthguard introspection",
            )
        except httpx.HTTPError as exc:
            raise transport_failure(exc, self.settings.timeout) from None
        except UnreadableBody as exc:
            raise AboutThisToken("sent a response we cannot read", str(exc)) from None
        return await self._read(response)

    async def _read(self, response: Fetched) -> dict[str, Any]:
        """The members of a 200 answer; any other status classified (RFC 7662 §2.2-2.3)."""
        status = response.status_code
        if status == 400 and error_code(response.body) == "unsupported_token_type":
            # The server does not introspect tokens of this kind (oidc-provider says so of
            # JWTs, with the RFC 7009 §2.2.1 code): RFC 7662 §2.2 makes that inactive.
            logger.info("%s does not introspect tokens of this kind: inactive", self._endpoint)
            return {"active": False}
        if status != 200:
            raise status_failure(response, self._clock())
        if self.settings.jwt_response:
            members = await self._signed_members(response.body.decode("utf-8", "replace"))
        else:
            members = json_members(response.body)
        return check_active(members)

    async def _signed_members(self, text: str) -> dict[str, Any]:
        try:
            return await read_signed_response(
                text,
                key_sets=self._key_sets,
                algorithms=self._algorithms,
                audiences=self._response_audiences,
                leeway=self._leeway,
                now=self._clock(),
            )
        except BadSignedResponse as exc:
            raise AboutThisToken(
                "sent a response that does not verify",
                f"RFC 9701 response refused: {exc}",
                "Introspection(jwt_response=, client_id=) and the issuer's keys",
            ) from None

    async def _discover_endpoint(self) -> str:
        """The introspection_endpoint of the one authorization server (RFC 8414 §2)."""
        [keys] = self._key_sets.values()
        issuer, source = keys.issuer, keys.source
        document = await self._servers.get(source)
        endpoint = document.get("introspection_endpoint")
        # RFC 7662 §4: https (http only on loopback, or where the issuer allows it)
        if not isinstance(endpoint, str) or not source.usable(endpoint):
            logger.error(
                "the metadata of %s has no usable introspection_endpoint (%r); set "
                "Introspection(endpoint=)",
                issuer,
                endpoint,
            )
            raise TemporarilyUnavailable(
                "the token could not be introspected: the "
                "authorization server names no introspection "
                "endpoint"
            )
        self._endpoint = endpoint
        self._audience = source.public_of(endpoint)
        return endpoint

    def _admit(self) -> Ticket:
        """Leave to call the endpoint, or 503 at once while the breaker is open."""
        admitted = self._breaker.admit(self._clock())
        if isinstance(admitted, Ticket):
            return admitted
        raise TemporarilyUnavailable(self._paused_because, retry_after=retry_after(admitted))

    def _failed(self, ticket: Ticket, failure: ServiceFailure, digest: str) -> ServiceFailure:
        """Count a failure of the service; the 503 for this request."""
        now = self._clock()
        key = digest if failure.per_token else None
        if self._breaker.failed(ticket, now, key=key, wait=failure.wait):
            self._paused_because = failure.description
            logger.warning(
                "token introspection at %s paused for %.1fs: new tokens get 503 until the "
                "endpoint answers a probe",
                self._endpoint,
                self._breaker.wait(now),
            )
        failure.retry_after = retry_after(self._breaker.wait(now))
        return failure

    def _log(self, level: int, failure: IntrospectionFailure, which: str = "") -> None:
        logger.log(
            level,
            "token introspection at %s failed%s: %s; check %s",
            self._endpoint,
            which,
            failure.reason,
            failure.setting,
        )


def _result(outcome: AccessToken | InvalidToken) -> AccessToken:
    if isinstance(outcome, InvalidToken):
        raise outcome
    return outcome

"""OpenTelemetry metrics and spans: bound once, and nothing at all while none is wanted.

Everything goes through the OpenTelemetry API (``pip install oauthguard[otel]``) and its
global providers, as a library should: the application configures an SDK (or not), never
oauthguard. ``TELEMETRY.refresh()`` looks the global providers up at a few moments, never
per request: a server built, the app started (before and after its own startup), a document
fetched. It binds the instruments once a provider other than the API's own default is set,
so an SDK configured after import is picked up at the next such moment. Until then
``TELEMETRY.metrics`` and ``TELEMETRY.tracer`` are None, and every call site is one
attribute test: without the API, or without an SDK, a request costs nothing more.

Attributes never carry a token, a subject, a client id or a request path: the issuer (a
configured one, or the verified ``iss`` of an allowed tenant), the refusal's OAuth ``error``
code, the scheme, and the route template where the framework has one (``http.route``).
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from typing import Any, TypeVar
from urllib.parse import urlsplit

try:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace as otel_trace
except ImportError:  # the extra is not installed: no telemetry at all
    otel_metrics = None  # type: ignore[assignment]
    otel_trace = None  # type: ignore[assignment]

#: The instrumentation scope's name (the meter's and the tracer's).
SCOPE = "oauthguard"

# Attribute names: the OpenTelemetry semantic conventions' where one fits.
ERROR_TYPE = "error.type"
HTTP_ROUTE = "http.route"
OUTCOME = "oauthguard.outcome"
SCHEME = "oauthguard.scheme"
ISSUER = "oauthguard.issuer"
RESULT = "oauthguard.result"
BREAKER = "oauthguard.breaker"
STATE = "oauthguard.breaker.state"
#: ``error.type`` of a refusal without an OAuth ``error`` code (no token at all).
NO_CREDENTIALS = "missing_credentials"

T = TypeVar("T")
#: Seconds: a signature check takes a tenth of a millisecond, a fetch of keys up to the
#: HTTP timeout (the SDK's default buckets start at 5, made for milliseconds).
VERIFICATION_BUCKETS = (
    *(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025),
    *(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
_NO_SPAN: AbstractContextManager[Any] = nullcontext(None)


def _configured(provider: object) -> bool:
    """A provider someone set: anything but the API's own no-op and proxy defaults."""
    module = type(provider).__module__
    return not (module.startswith("opentelemetry.metrics") or module == "opentelemetry.trace")


def _version() -> str:
    try:
        return importlib.metadata.version("oauthguard")
    except importlib.metadata.PackageNotFoundError:  # a checkout on sys.path, not installed
        return "0"


class Metrics:
    """The instruments, made once from one meter, and what each records."""

    @classmethod
    def of(cls, meter_provider: Any) -> Metrics:
        """The instruments of oauthguard's meter from ``meter_provider``."""
        return cls(meter_provider.get_meter(SCOPE, _version()))

    def __init__(self, meter: Any) -> None:
        counter, histogram = meter.create_counter, meter.create_histogram
        # Counted on every request: in a dict here, reported when the reader collects.
        self._requests = Tally(
            meter,
            "oauthguard.requests",
            "{request}",
            "Requests the guard decided on, by outcome (accepted or refused)",
            (OUTCOME, ERROR_TYPE, SCHEME, ISSUER, HTTP_ROUTE),
        )
        self._verification = histogram(
            "oauthguard.token.verification.duration",
            unit="s",
            description="Time to verify a token not in the cache (keys fetched included)",
            explicit_bucket_boundaries_advisory=VERIFICATION_BUCKETS,
        )
        self._jwks = counter(
            "oauthguard.jwks.fetches",
            unit="{fetch}",
            description="JWKS fetches by result: ok, failed, or stale (last good keys served)",
        )
        self._metadata = counter(
            "oauthguard.metadata.fetches",
            unit="{fetch}",
            description="Authorization server metadata discoveries by result: ok, failed, stale",
        )
        self._removed = counter(
            "oauthguard.jwks.removed_keys",
            unit="{key}",
            description="Signing keys that left an issuer's JWKS (rotation or revocation)",
        )
        self._introspection = counter(
            "oauthguard.introspection.calls",
            unit="{call}",
            description="Introspection requests by result: active, inactive, failed, unreadable",
        )
        self._introspection_cache = counter(
            "oauthguard.introspection.cache.lookups",
            unit="{lookup}",
            description="Lookups in the introspection cache by result: hit or miss",
        )
        self._replay = Tally(
            meter,
            "oauthguard.dpop.replay_store.operations",
            "{operation}",
            "DPoP replay-store checks by result: recorded, replayed, failed",
            (RESULT,),
        )
        self._breaker = counter(
            "oauthguard.breaker.state_changes",
            unit="{change}",
            description="Circuit breaker state changes, by breaker and the state entered",
        )

    def accepted(self, scheme: str, issuer: str | None, route: str | None) -> None:
        self._requests.add(("accepted", None, scheme, issuer, route))

    def refused(self, error: str | None, scheme: str | None, route: str | None) -> None:
        self._requests.add(("refused", error or NO_CREDENTIALS, scheme, None, route))

    def verification(self, seconds: float, error: str | None, issuer: str | None) -> None:
        attributes = {ERROR_TYPE: error} if error is not None else {}
        if issuer is not None:
            attributes[ISSUER] = issuer
        self._verification.record(seconds, attributes)

    async def timed_verification(self, verify: Callable[[str], Awaitable[T]], token: str) -> T:
        """``verify(token)``, its duration recorded with the refusal's ``error`` code (the
        exception's class for anything else) or the verified token's issuer."""
        started = time.perf_counter()
        try:
            verified = await verify(token)
        except Exception as exc:
            error = getattr(exc, "error", None) or type(exc).__qualname__
            self.verification(time.perf_counter() - started, error, None)
            raise
        self.verification(time.perf_counter() - started, None, getattr(verified, "issuer", None))
        return verified

    def jwks_fetch(self, result: str, issuer: str) -> None:
        self._jwks.add(1, {RESULT: result, ISSUER: issuer})

    def metadata_fetch(self, result: str, issuer: str) -> None:
        self._metadata.add(1, {RESULT: result, ISSUER: issuer})

    def keys_removed(self, count: int, issuer: str) -> None:
        self._removed.add(count, {ISSUER: issuer})

    def introspection(self, result: str) -> None:
        self._introspection.add(1, {RESULT: result})

    def introspection_cache(self, hit: bool) -> None:
        self._introspection_cache.add(1, {RESULT: "hit" if hit else "miss"})

    def replay_store(self, result: str) -> None:
        self._replay.add((result,))

    def breaker(self, name: str, state: str) -> None:
        self._breaker.add(1, {BREAKER: name, STATE: state})


class Tally:
    """A counter for the hot path: one dict update per event, the attribute sets built
    only when a reader collects (an observable counter reporting the running totals).

    At most ``MAX_SERIES`` attribute sets are kept (what the attributes hold is bounded by
    the configuration and the app's routes; this is the backstop), the rest counted in
    one series marked ``otel.metric.overflow`` as the SDK marks its own.
    """

    MAX_SERIES = 2000

    def __init__(
        self, meter: Any, name: str, unit: str, description: str, names: tuple[str, ...]
    ) -> None:
        self._names = names
        self._totals: dict[tuple[str | None, ...], int] = {}
        self._overflow = (None,) * len(names)
        meter.create_observable_counter(
            name, callbacks=[self._observe], unit=unit, description=description
        )

    def add(self, key: tuple[str | None, ...]) -> None:
        totals = self._totals
        if key not in totals and len(totals) >= self.MAX_SERIES:
            key = self._overflow
        totals[key] = totals.get(key, 0) + 1

    def _observe(self, options: Any) -> Iterator[Any]:
        for key, total in self._totals.copy().items():  # a copy: this is the reader's thread
            if key == self._overflow:
                yield otel_metrics.Observation(total, {"otel.metric.overflow": True})
                continue
            pairs = zip(self._names, key, strict=True)
            attributes = {name: value for name, value in pairs if value}
            yield otel_metrics.Observation(total, attributes)


class Telemetry:
    """The process's instruments and tracer, None until a provider is configured."""

    __slots__ = ("_global", "_pinned", "metrics", "tracer")

    def __init__(self) -> None:
        #: The instruments, or None: nothing is recorded.
        self.metrics: Metrics | None = None
        #: The tracer, or None: no span is made.
        self.tracer: Any = None
        self._pinned = False
        #: What the global providers gave, once they were configured.
        self._global: tuple[Metrics | None, Any] = (None, None)

    def refresh(self) -> Metrics | None:
        """Bind to the global providers once one is configured; the instruments, if any.
        Never called per request: looking the providers up costs microseconds."""
        if otel_metrics is None or self._pinned:
            return self.metrics
        if self._global[0] is None:
            provider = otel_metrics.get_meter_provider()
            if _configured(provider):  # it can be set once: the instruments are made once
                self._global = (Metrics.of(provider), self._global[1])
        if self._global[1] is None:
            tracer_provider = otel_trace.get_tracer_provider()
            if _configured(tracer_provider):
                tracer = otel_trace.get_tracer(SCOPE, _version(), tracer_provider)
                self._global = (self._global[0], tracer)
        self.metrics, self.tracer = self._global
        return self.metrics

    def use(self, metrics: Metrics | None = None, tracer: Any = None) -> None:
        """Record through these (None: nothing of that kind), never through the global
        providers: a benchmark measuring with and without an SDK in one process."""
        self._pinned = True
        self.metrics, self.tracer = metrics, tracer

    def use_global(self) -> None:
        """Back to the global providers (the default)."""
        self._pinned = False
        self.refresh()

    def http_span(
        self, name: str, method: str, url: str, issuer: str | None = None
    ) -> AbstractContextManager[Any]:
        """A client span for an HTTP exchange with an authorization server, child of the
        current span; a context manager giving None when no tracer is bound."""
        if self.tracer is None:
            return _NO_SPAN
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]  # an IPv6 address keeps its brackets
        attributes: dict[str, Any] = {
            "http.request.method": method,
            # Semantic conventions: url.full never carries credentials; nor a query here.
            "url.full": f"{parts.scheme}://{host}{parts.path}",
            "server.address": parts.hostname or "",
        }
        with suppress(ValueError):  # a port that is no number: the request fails anyway
            if parts.port:
                attributes["server.port"] = parts.port
        if issuer is not None:
            attributes[ISSUER] = issuer
        return _client_span(self.tracer, name, attributes)

    def redis_span(self, name: str, operation: str) -> AbstractContextManager[Any]:
        """A client span for one Redis command (``db.*`` semantic conventions)."""
        if self.tracer is None:
            return _NO_SPAN
        attributes = {"db.system.name": "redis", "db.operation.name": operation}
        return _client_span(self.tracer, name, attributes)


def traced_status(span: Any, status: int) -> None:
    """The response's status on an HTTP client span; 4xx and 5xx are errors there."""
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        span.set_attribute(ERROR_TYPE, str(status))
        span.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR))


@contextmanager
def _client_span(tracer: Any, name: str, attributes: Mapping[str, Any]) -> Iterator[Any]:
    """A span of kind CLIENT. A failure sets ``error.type`` (the exception's class) and
    the error status, never the exception's message: it might quote what it failed on."""
    with tracer.start_as_current_span(
        name,
        kind=otel_trace.SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            kind = type(exc).__qualname__
            span.set_attribute(ERROR_TYPE, getattr(exc, "error", None) or kind)
            span.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR, kind))
            raise


#: The one instance every part of oauthguard records through.
TELEMETRY = Telemetry()

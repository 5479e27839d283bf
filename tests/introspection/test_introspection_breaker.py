"""Introspection outages and odd tokens: what pauses introspection for every new token, and
what concerns one token only (the circuit breaker, against a real endpoint on loopback)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from introspection_server import (
    RESOURCE,
    Clock,
    IntrospectionServer,
    active,
    assert_unavailable,
    bearer,
    guarded,
    whoami,
)
from starlette.applications import Starlette
from starlette.routing import Route
from support import free_port

from oauthguard import Introspection, OAuthGuard, ResourceServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(server: IntrospectionServer) -> IntrospectionServer:
    """The shared introspection server, knowing active ``good-0`` to ``good-49``."""
    now = time.time()
    for n in range(50):
        active(server, f"good-{n}", now)
    return server


async def get(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/mcp", headers=bearer(token))


# -- answers about one token: never a pause for the others ----------------------------------
async def test_a_500_for_one_odd_token_never_pauses_the_others(
    server: IntrospectionServer,
) -> None:
    server.statuses["odd"] = 500
    clock = Clock()
    async with guarded(server, clock=clock) as (client, _):
        for n in range(10):  # the review's repro: the odd token again every 5 s
            assert_unavailable(await get(client, "odd"), "answered HTTP 500")
            good = await get(client, f"good-{n}")
            assert good.status_code == 200, good.text
            clock.advance(5)
        for _ in range(20):  # or many times in a row
            assert_unavailable(await get(client, "odd"), "answered HTTP 500")
        assert (await get(client, "good-10")).status_code == 200
    assert server.calls == 41  # every request was asked about: nothing was paused


@pytest.mark.parametrize(
    "members",
    [{"active": "true"}, {"active": 1}, {"active": None}, {}, {"scope": "read"}],
)
async def test_a_malformed_answer_about_one_token_concerns_that_token_only(
    server: IntrospectionServer, members: dict[str, object]
) -> None:
    server.responses["odd"] = members
    async with guarded(server, clock=Clock()) as (client, _):
        for n in range(5):
            odd = await get(client, "odd")
            assert_unavailable(odd, "answered without 'active'")  # fail closed, not 401
            assert (await get(client, f"good-{n}")).status_code == 200
    assert server.calls == 10  # the odd answer is not remembered either


@pytest.mark.parametrize("mode", ["400", "403", "404", "redirect", "html", "empty", "huge"])
async def test_answers_about_tokens_never_pause_however_many_tokens_get_them(
    server: IntrospectionServer, mode: str
) -> None:
    server.mode = mode
    async with guarded(server, clock=Clock()) as (client, _):
        for n in range(10):
            response = await get(client, f"good-{n}")
            assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert server.calls == 10


async def test_a_probe_answered_about_its_token_closes_the_breaker(
    server: IntrospectionServer,
) -> None:
    server.mode = "500"
    clock = Clock()
    async with guarded(server, clock=clock) as (client, _):
        for n in range(3):
            await get(client, f"good-{n}")
        server.mode = "normal"
        server.statuses["odd"] = 400
        clock.advance(0.5)
        assert_unavailable(await get(client, "odd"), "answered HTTP 400")  # the probe
        assert (await get(client, "good-3")).status_code == 200
    assert server.calls == 5


# -- failures of the service: the breaker opens ---------------------------------------------
@pytest.mark.parametrize("mode", ["500", "503"])
async def test_5xx_on_three_different_tokens_pause_new_tokens_but_not_cached_ones(
    server: IntrospectionServer, mode: str
) -> None:
    clock = Clock()
    async with guarded(server, clock=clock) as (client, _):
        assert (await get(client, "good-0")).status_code == 200  # cached from now on
        server.mode = mode
        first = [await get(client, f"good-{n}") for n in (1, 1, 2, 3)]
        paused = await get(client, "good-4")
        cached = await get(client, "good-0")
    for response in first:
        assert_unavailable(response, f"answered HTTP {mode}")
    assert [r.headers["retry-after"] for r in first] == ["1", "1", "1", "1"]
    assert_unavailable(paused, f"answered HTTP {mode}")
    assert paused.headers["retry-after"] == "1"
    assert cached.status_code == 200, cached.text
    assert server.calls == 5  # good-4 was not asked about, good-0 came from the cache


async def test_tokens_pass_again_within_a_second_of_the_servers_recovery(
    server: IntrospectionServer,
) -> None:
    server.mode = "500"
    clock = Clock()
    async with guarded(server, clock=clock) as (client, _):
        for n in range(3):
            await get(client, f"good-{n}")
        server.mode = "normal"  # the server recovers now
        clock.advance(0.4)
        assert (await get(client, "good-3")).status_code == 503  # still paused: not asked
        clock.advance(0.1)
        assert (await get(client, "good-4")).status_code == 200  # the probe, 0.5 s after
        assert (await get(client, "good-5")).status_code == 200
        server.mode = "500"  # a new outage starts the schedule from its first step
        for n in range(6, 9):
            last = await get(client, f"good-{n}")
        assert last.headers["retry-after"] == "1"
        clock.advance(0.5)
        server.mode = "normal"
        assert (await get(client, "good-9")).status_code == 200
    assert server.calls == 9


async def test_the_pause_doubles_while_probes_fail_up_to_thirty_seconds(
    server: IntrospectionServer,
) -> None:
    server.mode = "500"
    clock = Clock()
    async with guarded(server, clock=clock) as (client, _):
        for n in range(3):
            await get(client, f"good-{n}")
        pauses, schedule = [], [0.5, 1, 2, 4, 8, 16, 30, 30]
        for n, pause in enumerate(schedule, start=3):
            clock.advance(pause - 0.01)
            assert (await get(client, f"good-{n}")).headers["retry-after"] == "1"  # not yet
            clock.advance(0.01)
            probe = await get(client, f"good-{n}")
            assert_unavailable(probe, "answered HTTP 500")
            pauses.append(int(probe.headers["retry-after"]))
        server.mode = "normal"
        clock.advance(30)
        assert (await get(client, "good-20")).status_code == 200
    assert pauses == [1, 2, 4, 8, 16, 30, 30, 30]
    assert server.calls == 3 + len(schedule) + 1  # one probe per pause, nothing between


async def test_our_credentials_refused_pause_at_once_and_are_logged_as_an_error(
    server: IntrospectionServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with guarded(server, clock=Clock(), client_secret="wrong") as (client, _):
        refused = await get(client, "good-0")
        paused = await get(client, "good-1")
    assert_unavailable(refused, "refused the resource server's credentials")
    assert_unavailable(paused, "refused the resource server's credentials")
    assert server.calls == 1
    [record] = [r for r in caplog.records if "HTTP 401" in r.getMessage()]
    assert record.levelname == "ERROR" and "client_secret=" in record.getMessage()


@pytest.mark.parametrize(("sent", "pause"), [("7", "7"), ("86400", "30"), ("soon", "1")])
async def test_429_pauses_at_once_for_its_retry_after_up_to_thirty_seconds(
    server: IntrospectionServer, sent: str, pause: str
) -> None:
    server.mode = "429"
    server.error_headers = {"retry-after": sent}
    clock = Clock()
    async with guarded(server, clock=clock) as (client, _):
        limited = await get(client, "good-0")
        paused = await get(client, "good-1")
        server.mode = "normal"
        clock.advance(int(pause))
        recovered = await get(client, "good-2")
    assert_unavailable(limited, "answered HTTP 429")
    assert limited.headers["retry-after"] == pause
    assert paused.headers["retry-after"] == pause
    assert recovered.status_code == 200
    assert server.calls == 2


async def test_a_refused_connection_pauses_at_once(
    server: IntrospectionServer, caplog: pytest.LogCaptureFixture
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/introspect"
    clock = Clock()
    async with guarded(server, endpoint=closed, clock=clock) as (client, _):
        responses = [await get(client, f"good-{n}") for n in (1, 2)]
        clock.advance(0.5)
        responses.append(await get(client, "good-3"))  # the probe
        responses.append(await get(client, "good-4"))  # paused again, for 1 s
    for response in responses:
        assert_unavailable(response, "unreachable")
    assert [r.headers["retry-after"] for r in responses] == ["1", "1", "1", "1"]
    assert caplog.text.count("ConnectError") == 2  # the first and the probe


async def test_one_token_the_server_hangs_on_does_not_pause_the_others(
    server: IntrospectionServer,
) -> None:
    server.delay = 2
    clock = Clock()
    async with guarded(server, clock=clock, timeout=0.05) as (client, guard):
        verifier = guard.server.verifier
        introspection = getattr(verifier, "introspection", verifier)
        timed_out = [await get(client, "good-0") for _ in range(3)]
        server.delay = 0
        asked_before = introspection.calls
        fine = await get(client, "good-1")
        asked_for_fine = introspection.calls - asked_before
        server.delay = 2
        for n in (2, 3, 4):  # different tokens, in a row: the service is what hangs
            await get(client, f"good-{n}")
        server.delay = 0
        asked_before = introspection.calls
        paused = await get(client, "good-5")
        asked_for_paused = introspection.calls - asked_before
    for response in timed_out:
        assert_unavailable(response, "timed out")
    # Three timeouts of one token paused nothing: the endpoint was asked about good-1 (the
    # guard's count of the requests it sent: on a loaded machine the server may read this
    # one only after the guard gave up on it). Its answer comes within the 0.05 s on a quiet
    # machine; on a loaded one the loopback round trip itself may take longer, which is a
    # timeout too, never a pause.
    assert asked_for_fine == 1
    if fine.status_code != 200:
        assert_unavailable(fine, "timed out")
    # Timeouts of different tokens in a row did pause: good-5 was not asked about (the others
    # may time out before the server reads them, on a loaded machine, so their count is not
    # pinned).
    assert_unavailable(paused, "timed out")
    assert asked_for_paused == 0
    assert "good-5" not in [form.get("token") for form in server.forms]
    # The requests the server still holds are answered now: the next tests of the module do
    # not reset it, and uvicorn would wait for them when it stops.
    server.reset()


# -- half-open under concurrency: an in-memory endpoint that holds its answers ------------
class HeldEndpoint:
    """An introspection endpoint (``httpx.MockTransport``) answering 500 while ``failing``,
    else active; while ``held``, answers wait until it is released."""

    def __init__(self) -> None:
        self.failing = True
        self.calls = 0
        self.held: anyio.Event | None = None

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.held is not None:
            await self.held.wait()
        if self.failing:
            return httpx.Response(500, json={"error": "server_error"})
        return httpx.Response(200, json={"active": True, "aud": RESOURCE, "scope": "read"})


@contextlib.asynccontextmanager
async def held_guard(endpoint: HeldEndpoint, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    """A guard introspecting at ``endpoint``, with the breaker opened by three 500s."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint.handle)) as http:
        server = ResourceServer(
            resource=RESOURCE,
            authorization_servers=["https://as.test"],
            introspection=Introspection(
                endpoint="https://as.test/introspect", client_id="rs", client_secret="s"
            ),
            http_client=http,
            clock=clock,
        )
        guard = OAuthGuard(Starlette(routes=[Route("/mcp", whoami)]), server)
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
            for n in range(3):
                assert (await get(client, f"opaque-{n}")).status_code == 503
            endpoint.failing = False
            clock.advance(0.5)  # half-open
            yield client


async def test_half_open_sends_one_probe_and_answers_the_others_at_once() -> None:
    endpoint, clock = HeldEndpoint(), Clock()
    responses: list[httpx.Response] = []
    async with held_guard(endpoint, clock) as client:
        endpoint.held = anyio.Event()

        async def call(n: int) -> None:
            responses.append(await get(client, f"new-{n}"))

        async with anyio.create_task_group() as tasks:
            for n in range(20):
                tasks.start_soon(call, n)
            with anyio.fail_after(5):
                while len(responses) < 19:  # all but the probe, answered while it waits
                    await anyio.sleep(0)
            assert endpoint.calls == 4
            endpoint.held.set()
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [503] * 19
    assert {r.headers.get("retry-after") for r in responses if r.status_code == 503} == {"1"}
    assert endpoint.calls == 4  # three that opened the breaker, then exactly one probe


async def test_a_cancelled_probe_lets_the_next_request_probe() -> None:
    endpoint, clock = HeldEndpoint(), Clock()
    async with held_guard(endpoint, clock) as client:
        endpoint.held = anyio.Event()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(get, client, "gone")  # a client that goes away mid-probe
            with anyio.fail_after(5):
                while endpoint.calls < 4:
                    await anyio.sleep(0)
            tasks.cancel_scope.cancel()
        endpoint.held = None
        response = await get(client, "next")
    assert response.status_code == 200, response.text
    assert endpoint.calls == 5

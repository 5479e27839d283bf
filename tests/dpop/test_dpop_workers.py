"""uvicorn ``--workers 2``: a DPoP proof replayed to the other worker is refused with
``RedisReplayStore``, and, as the startup warning says, passes there without it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from fleet_worker_app import RESOURCE
from proofs import ClientKey
from redis_support import running_redis, start_uvicorn, stop, wait_for_port
from support import free_port, serve

from oauthguard.testing import TestIssuer

pytestmark = [pytest.mark.anyio, pytest.mark.redis]
HTU = "https://api.test/mcp"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    yield from running_redis()


async def replay_until_another_worker_answers(
    base: str, headers: dict[str, str], first_pid: int, seconds: float = 60
) -> list[tuple[int, int]]:
    """Send the same request on new connections, in bursts, until a worker other than
    ``first_pid`` has answered it; every (pid, status)."""
    answers: list[tuple[int, int]] = []
    limits = httpx.Limits(max_keepalive_connections=0)
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def call() -> None:
            response = await client.get("/mcp", headers=headers)
            answers.append((int(response.headers["x-worker-pid"]), response.status_code))

        while all(pid == first_pid for pid, _ in answers):
            assert time.monotonic() < deadline, "one worker answered every request"
            async with anyio.create_task_group() as tasks:
                for _ in range(8):
                    tasks.start_soon(call)
    return answers


async def replay_across_workers(
    tmp_path: Path, redis_url: str | None
) -> tuple[int, list[tuple[int, int]], str]:
    """One proof sent once, then replayed until the other worker has it: the first
    worker's pid, the replays' answers, and what the workers logged."""
    issuer_port, port = free_port(), free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{issuer_port}", algorithms=("ES256",))
    env = {"FLEET_ISSUER": issuer.issuer, "FLEET_MODE": "dpop"}
    if redis_url is not None:
        env["FLEET_REDIS"] = redis_url
    log_path = tmp_path / "workers.log"
    with serve(issuer.app, port=issuer_port), log_path.open("wb") as log:
        workers = start_uvicorn("fleet_worker_app:create_app", port, env, log, "--workers", "2")
        try:
            wait_for_port(port, workers)
            key = ClientKey()
            token = issuer.token(audience=RESOURCE, alg="ES256", jkt=key.thumbprint)
            proof = key.proof("GET", HTU, now=time.time(), token=token)
            headers = {"authorization": f"DPoP {token}", "dpop": proof}
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
                first = await c.get("/mcp", headers=headers)
            assert first.status_code == 200, first.text
            first_pid = int(first.headers["x-worker-pid"])
            base = f"http://127.0.0.1:{port}"
            answers = await replay_until_another_worker_answers(base, headers, first_pid)
        finally:
            stop(workers)
    return first_pid, answers, log_path.read_text()


async def test_a_replay_to_another_worker_is_refused_with_redis(
    tmp_path: Path, redis_url: str
) -> None:
    first_pid, answers, logged = await replay_across_workers(tmp_path, redis_url)
    assert {status for _, status in answers} == {401}  # every replay, in either worker
    assert any(pid != first_pid for pid, _ in answers)
    assert "protects one process only" not in logged


async def test_without_redis_another_worker_accepts_the_replay_as_the_warning_says(
    tmp_path: Path,
) -> None:
    first_pid, answers, logged = await replay_across_workers(tmp_path, None)
    # The in-memory store protects one process: the first worker refuses the replay, the
    # other never saw the proof and accepts it once.
    assert (first_pid, 200) not in answers
    assert any(pid != first_pid and status == 200 for pid, status in answers)
    assert logged.count("protects one process only") == 2  # once in each worker

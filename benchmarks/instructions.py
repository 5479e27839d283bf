"""Instructions per request on the hot path (a cache hit), counted by callgrind.

``python benchmarks/instructions.py [--requests N] [--checkout PATH] [--modes ...]``

Time on a shared machine is noisy; instructions are not. Each telemetry mode runs in
processes of its own under ``valgrind --tool=callgrind``, once with N cache-hit requests and
once with 2N; the difference over N is what one request costs, start-up and warm-up taken
out (building each request's scope stays in: the same in every mode). Modes: ``absent``
(OpenTelemetry not importable), ``api`` (the API, no SDK: how most users run), ``sdk`` (an
SDK meter provider with an in-memory reader, and a tracer provider). ``--checkout``
measures another checkout of oauthguard (one without telemetry to compare with): its
``oauthguard`` and ``benchmarks/cases.py`` are imported.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def child(mode: str, requests: int, checkout: Path) -> None:
    """One measured process: build the app, warm it up, send ``requests`` cache hits."""
    if mode == "absent":
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]
    sys.path[:0] = [str(checkout / "benchmarks"), str(checkout)]
    if mode == "sdk":
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider

        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
        trace.set_tracer_provider(TracerProvider())
    import cases

    from oauthguard.testing import TestIssuer

    # An EC key: making one costs the same every time, where an RSA key's prime search
    # costs a different number of instructions in every process.
    issuer = TestIssuer("https://issuer.test", algorithms=("ES256",))
    app = cases.guarded_app(issuer)
    header = cases.bearer(issuer.token(audience=cases.RESOURCE, alg="ES256"))
    scopes = [cases.scope_for(header) for _ in range(requests + 50)]
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def run() -> None:
        for scope in scopes:
            await app(scope, receive, send)

    gc.collect()
    gc.freeze()  # what exists now is never collected: collections stay small and even
    asyncio.run(run())
    if set(statuses) != {200}:
        raise SystemExit(f"the app answered {sorted(set(statuses))}, not 200")


def collected(mode: str, requests: int, checkout: Path, *, valgrind: bool = True) -> int:
    """Instructions callgrind counted in a whole child process. Every child hashes strings
    alike (PYTHONHASHSEED) and finds its bytecode compiled (a run without valgrind first):
    otherwise start-up alone varies by more than many requests cost."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        mode,
        "--requests",
        str(requests),
        "--checkout",
        str(checkout),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if not valgrind:
        subprocess.run(command, env=env, check=True, capture_output=True)
        return 0
    command[:0] = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    found = COLLECTED.search(result.stderr)
    if result.returncode != 0 or found is None:
        raise SystemExit(f"{mode}: callgrind failed:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--checkout", type=Path, default=HERE.parent)
    parser.add_argument("--modes", nargs="+", default=["absent", "api", "sdk"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.requests, args.checkout)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    per_request = {}
    for mode in args.modes:
        collected(mode, args.requests, args.checkout, valgrind=False)
        once = collected(mode, args.requests, args.checkout)
        twice = collected(mode, 2 * args.requests, args.checkout)
        per_request[mode] = (twice - once) / args.requests
        print(f"{mode:>7}: {per_request[mode]:10.0f} instructions per cache hit", flush=True)
    print(json.dumps({"checkout": str(args.checkout), "per_request": per_request}))


if __name__ == "__main__":
    main()

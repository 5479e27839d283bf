"""One in-flight call per key, shared by every concurrent caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import anyio

T = TypeVar("T")


class _Call(Generic[T]):
    __slots__ = ("done", "error", "has_result", "result")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.has_result = False
        self.result: T | None = None
        self.error: Exception | None = None


class SingleFlight(Generic[T]):
    """Concurrent ``run(key, fn)`` calls with the same key share one execution of ``fn``.

    If the leading caller is cancelled, a waiting caller takes over instead of inheriting
    the cancellation.
    """

    def __init__(self) -> None:
        self._calls: dict[Hashable, _Call[T]] = {}

    async def run(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> T:
        while True:
            call = self._calls.get(key)
            if call is None:
                return await self._lead(key, fn)
            await call.done.wait()
            if call.error is not None:
                # Each caller raises the one failure with its own frames only: re-raised
                # as it is, its traceback would keep every earlier caller's frames too.
                raise call.error.with_traceback(None)
            if call.has_result:
                return call.result  # type: ignore[return-value]

    async def wait(self, key: Hashable) -> None:
        """Wait until the call under way for ``key``, if any, is over (whatever its outcome)."""
        call = self._calls.get(key)
        if call is not None:
            await call.done.wait()

    async def _lead(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> T:
        call: _Call[T] = _Call()
        self._calls[key] = call
        try:
            call.result = await fn()
            call.has_result = True
            return call.result
        except Exception as exc:
            call.error = exc
            raise
        finally:
            del self._calls[key]
            call.done.set()

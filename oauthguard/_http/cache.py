"""A bounded cache with an expiry per entry (verified tokens, introspection results)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, KeysView
from typing import Generic, TypeVar

V = TypeVar("V")


class ExpiringCache(Generic[V]):
    """A dict with an expiry per entry and a size bound (oldest entry out first).

    An ``OrderedDict`` because evicting its oldest entry is O(1): taking the first key of a
    plain dict scans every slot deleted since its last resize, which made each insertion
    into a full cache cost time proportional to its size. No lock: it is only touched
    from the event loop, between awaits.
    """

    __slots__ = ("_entries", "_max_size", "keys", "lookup")

    def __init__(self, max_size: int) -> None:
        self._entries: OrderedDict[Hashable, tuple[V, float]] = OrderedDict()
        self._max_size = max_size
        #: ``lookup(key)``: the ``(value, expires_at)`` of ``key``, expired or not, or None;
        #: one C call, for the hot path (``get`` drops an expired entry as well).
        self.lookup: Callable[[Hashable], tuple[V, float] | None] = self._entries.get
        #: Every key with an entry, expired or not: a live view, so ``key in keys`` is C.
        self.keys: KeysView[Hashable] = self._entries.keys()

    def get(self, key: Hashable, now: float) -> V | None:
        """The value for ``key`` while it has not expired at ``now``, else None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] > now:
            return entry[0]
        del self._entries[key]
        return None

    def put(self, key: Hashable, value: V, expires_at: float, now: float) -> None:
        """Keep ``value`` until ``expires_at``; the oldest entry leaves when full."""
        if self._max_size <= 0 or expires_at <= now:
            return
        entries = self._entries
        if key not in entries and len(entries) >= self._max_size:
            entries.popitem(last=False)
        entries[key] = (value, expires_at)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` has an entry, expired or not."""
        return key in self._entries

    def expiry(self, key: Hashable) -> float | None:
        """When the entry for ``key`` expires, or None when there is none."""
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

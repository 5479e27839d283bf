"""The telemetry tests read what oauthguard recorded through OpenTelemetry's SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from telemetry_setup import Recorded


@pytest.fixture
def recorded() -> Recorded:
    """What this test records: the SDK (imported only here) behind the global providers."""
    from telemetry_setup import Recorded, recorder

    return Recorded(recorder())

"""OpenTelemetry's SDK for the telemetry tests: an in-memory metric reader and span exporter
behind the global providers, set once per process (the API allows one of each).

The SDK is imported here, and this module only by the tests that use it: the rest of the
suite never pays for it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from oauthguard._telemetry import TELEMETRY

Attributes = frozenset[tuple[str, Any]]


class Recorder:
    """What oauthguard recorded through the global providers, read back."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        metrics.set_meter_provider(MeterProvider(metric_readers=[self.reader]))
        trace.set_tracer_provider(tracer_provider)
        self.tracer_provider = tracer_provider

    def points(self) -> Iterator[tuple[str, Attributes, Any]]:
        """Every data point of oauthguard's meter: (metric name, attributes, point)."""
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                if scope.scope.name != "oauthguard":
                    continue
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        yield metric.name, frozenset(dict(point.attributes or {}).items()), point

    def counts(self) -> Counter[tuple[str, Attributes]]:
        """Each counter's value (a histogram's count) per attribute set, so far."""
        found: Counter[tuple[str, Attributes]] = Counter()
        for name, attributes, point in self.points():
            found[name, attributes] = getattr(point, "value", None) or point.count
        return found

    def spans(self) -> tuple[ReadableSpan, ...]:
        return tuple(self.exporter.get_finished_spans())


_RECORDER: Recorder | None = None


def recorder() -> Recorder:
    """The process's recorder, made (and the global providers set) the first time."""
    global _RECORDER
    if _RECORDER is None:
        _RECORDER = Recorder()
    TELEMETRY.use_global()  # whatever a benchmark bound before
    return _RECORDER


class Recorded:
    """What one test recorded: the counts since it started, and its spans."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._before = recorder.counts()
        recorder.exporter.clear()

    def new(self, name: str) -> dict[Attributes, int]:
        """``name``'s counts (a histogram's number of values) added since the start."""
        now = self.recorder.counts()
        return {
            attributes: value - self._before.get((metric, attributes), 0)
            for (metric, attributes), value in now.items()
            if metric == name and value != self._before.get((metric, attributes), 0)
        }

    def count(self, name: str, **attributes: Any) -> int:
        """How many of ``name`` were added since the start with (at least) these
        attributes (``error_type`` stands for ``error.type``, ``_`` for ``.``)."""
        wanted = {key.replace("_", "."): value for key, value in attributes.items()}
        return sum(
            value
            for found, value in self.new(name).items()
            if wanted.items() <= dict(found).items()
        )

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.recorder.spans() if name is None or s.name == name]

    def attribute_values(self) -> Iterable[str]:
        """Every attribute value recorded since the start, metrics and spans."""
        for found in self.new_all():
            for _, value in found:
                yield str(value)
        for span in self.recorder.spans():
            for value in (span.attributes or {}).values():
                yield str(value)
            yield span.name
            if span.status.description:
                yield span.status.description

    def new_all(self) -> list[Attributes]:
        now = self.recorder.counts()
        return [a for (m, a), v in now.items() if v != self._before.get((m, a), 0)]

"""The Prometheus text format (0.0.4): counters, gauges and histograms, and nothing else.

A few dozen series do not need prometheus-client: this is the whole exposition format we
use, checked in tests against prometheus-client's own parser. Every method is cheap and
thread-safe, so the event loop and the writer thread may both report.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence

Labels = tuple[tuple[str, str], ...]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: from sub-millisecond loop hiccups to a chat API that takes half a minute.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)


def _labels(values: Mapping[str, object]) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in values.items()))


def _escape(text: str, quote: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if quote else text


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(value)


def _sample(name: str, labels: Labels, value: float) -> str:
    inner = ",".join(f'{k}="{_escape(v, True)}"' for k, v in labels)
    return f"{name}{{{inner}}} {_number(value)}" if inner else f"{name} {_number(value)}"


class _Family:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, lock: threading.Lock) -> None:
        self.name, self.help, self._lock = name, help_text, lock

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {_escape(self.help, False)}",
                f"# TYPE {self.name} {self.kind}"]

    def lines(self) -> list[str]:
        raise NotImplementedError


class _Values(_Family):
    def __init__(self, name: str, help_text: str, lock: threading.Lock) -> None:
        super().__init__(name, help_text, lock)
        self.values: dict[Labels, float] = {}

    def get(self, **labels: object) -> float:
        return self.values.get(_labels(labels), 0.0)

    def _add(self, amount: float, labels: Mapping[str, object]) -> None:
        key = _labels(labels)
        with self._lock:
            self.values[key] = self.values.get(key, 0.0) + amount

    def replace(self, values: Mapping[Labels, float]) -> None:
        """Swap in a whole new set of series, for collectors that copy totals kept elsewhere."""
        with self._lock:
            self.values = dict(values)

    def lines(self) -> list[str]:
        return [_sample(self.name, k, v) for k, v in sorted(self.values.items())]


class Counter(_Values):
    """Only goes up; Prometheus' rate() copes with the reset at restart."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, lock: threading.Lock) -> None:
        if not name.endswith("_total"):
            raise ValueError(f"counter {name} must end in _total")
        super().__init__(name, help_text, lock)

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        if amount < 0:
            raise ValueError(f"{self.name}: a counter cannot go down ({amount})")
        self._add(amount, labels)


class Gauge(_Values):
    """A value that goes both ways: set it, or let a scrape-time collector set it."""

    kind = "gauge"

    def set(self, value: float, **labels: object) -> None:
        with self._lock:
            self.values[_labels(labels)] = float(value)

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        self._add(amount, labels)


class Histogram(_Family):
    """Cumulative buckets, sum and count per label set."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, lock: threading.Lock,
                 buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        super().__init__(name, help_text, lock)
        self.bounds = tuple(sorted(buckets))
        self.series: dict[Labels, list[float]] = {}  # per-bucket counts, then +Inf, sum, count

    def observe(self, value: float, **labels: object) -> None:
        self.observe_many((value,), **labels)

    def observe_many(self, values: Iterable[float], **labels: object) -> None:
        """Several observations for one label set, under one lock (a burst of events)."""
        key = _labels(labels)
        slots = [(bisect.bisect_left(self.bounds, v), v) for v in values if not math.isnan(v)]
        with self._lock:  # NaN is skipped above: it would poison _sum for good
            row = self.series.setdefault(key, [0.0] * (len(self.bounds) + 3))
            for slot, value in slots:
                row[slot] += 1
                row[-2] += value
            row[-1] += len(slots)

    def count(self, **labels: object) -> float:
        row = self.series.get(_labels(labels))
        return row[-1] if row else 0.0

    def lines(self) -> list[str]:
        out = []
        for key, row in sorted(self.series.items()):
            running = 0.0
            for bound, n in zip((*self.bounds, math.inf), row[:-2], strict=True):
                running += n
                out.append(_sample(f"{self.name}_bucket", (*key, ("le", _number(bound))), running))
            out.append(_sample(f"{self.name}_sum", key, row[-2]))
            out.append(_sample(f"{self.name}_count", key, row[-1]))
        return out


class Registry:
    """Named families plus collectors that refresh gauges right before each scrape."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        self._collectors: list[Callable[[], None]] = []

    def _add(self, family: _Family) -> _Family:
        if family.name in self._families:
            raise ValueError(f"metric {family.name} registered twice")
        self._families[family.name] = family
        return family

    def counter(self, name: str, help_text: str) -> Counter:
        return self._add(Counter(name, help_text, self._lock))  # type: ignore[return-value]

    def gauge(self, name: str, help_text: str) -> Gauge:
        return self._add(Gauge(name, help_text, self._lock))  # type: ignore[return-value]

    def histogram(self, name: str, help_text: str,
                  buckets: Sequence[float] = LATENCY_BUCKETS) -> Histogram:
        return self._add(Histogram(name, help_text, self._lock, buckets))  # type: ignore[return-value]

    def add_collector(self, collect: Callable[[], None]) -> None:
        """Run `collect()` before every render; it must be quick and must not touch SQLite."""
        self._collectors.append(collect)

    def render(self) -> str:
        for collect in self._collectors:
            collect()
        with self._lock:
            lines: list[str] = []
            for family in self._families.values():
                lines += family.header() + family.lines()
        return "\n".join(lines) + "\n"


def label_map(rows: Iterable[tuple[Mapping[str, object], float]]) -> dict[Labels, float]:
    """Build the argument of Gauge.replace from (labels, value) pairs."""
    return {_labels(labels): value for labels, value in rows}

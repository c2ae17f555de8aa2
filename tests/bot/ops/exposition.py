"""Read `/metrics` the way Prometheus does, plus the rules its parser lets slide."""

from __future__ import annotations

import math
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families


def parse_metrics(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample name -> {sorted labels: value}; raises on anything malformed."""
    check_strict(text)
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = tuple(sorted(s.labels.items()))
            assert key not in out[s.name], f"duplicate sample {s.name}{dict(key)}"
            out[s.name][key] = s.value
    return dict(out)


def check_strict(text: str) -> None:
    """One HELP and TYPE per family, before its samples; histograms cumulative and complete."""
    assert text.endswith("\n"), "exposition must end with a newline"
    typed: dict[str, str] = {}
    helped: set[str] = set()
    for line in text.splitlines():
        assert line.strip() == line and line, f"blank or padded line: {line!r}"
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in helped, f"HELP twice for {name}"
            helped.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name not in typed, f"TYPE twice for {name}"
            assert kind in ("counter", "gauge", "histogram"), line
            assert name in helped, f"TYPE before HELP for {name}"
            if kind == "counter":
                assert name.endswith("_total"), f"counter {name} lacks _total"
            typed[name] = kind
        else:
            name = line.split("{")[0].split(" ")[0]
            family = next((f for f in typed if name == f or (
                typed[f] == "histogram" and name in (f"{f}_bucket", f"{f}_sum", f"{f}_count"))),
                None)
            assert family is not None, f"sample before its TYPE: {line}"
    for family in text_string_to_metric_families(text):
        if family.type == "histogram":
            _check_histogram(family)


def _check_histogram(family) -> None:
    series: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    counts: dict[tuple, float] = {}
    for s in family.samples:
        rest = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        if s.name.endswith("_bucket"):
            series[rest].append((float(s.labels["le"]), s.value))
        elif s.name.endswith("_count"):
            counts[rest] = s.value
    for key, buckets in series.items():
        bounds = [b for b, _ in buckets]
        assert bounds == sorted(bounds) and math.isinf(bounds[-1]), f"{family.name}: bad le"
        values = [v for _, v in buckets]
        assert values == sorted(values), f"{family.name}{key}: buckets not cumulative"
        assert values[-1] == counts[key], f"{family.name}{key}: +Inf bucket != _count"

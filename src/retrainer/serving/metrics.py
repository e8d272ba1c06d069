"""Prometheus text exposition (format 0.0.4), written by hand: counters and a latency
histogram updated on the hot path under one lock, gauges computed at scrape time.

>>> m = Metrics()
>>> m.observe("churn", "1.0.0", "champion", 200, 0.0004)
>>> text = m.render()
>>> 'retrainer_requests_total{model="churn",version="1.0.0",arm="champion",status="200"} 1' in text
True
>>> 'retrainer_request_seconds_bucket{model="churn",le="0.0005"} 1' in text
True
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .predict import Unknown

BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

Labels = Mapping[str, str]


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def labels(pairs: Labels) -> str:
    """``{k="v",...}`` with values escaped (empty string for no labels).

    >>> labels({"model": 'a"b'})
    '{model="a\\\\"b"}'
    """
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_esc(str(v))}"' for k, v in pairs.items()) + "}"


def _num(x: float) -> str:
    if x != x:  # NaN
        return "NaN"
    return repr(float(x)) if isinstance(x, float) and not float(x).is_integer() else str(int(x))


class Gauge:
    """A gauge family rendered from samples gathered at scrape time."""

    def __init__(self, name: str, help_text: str, kind: str = "gauge") -> None:
        self.name, self.help, self.kind = name, help_text, kind
        self.samples: list[tuple[Labels, float]] = []

    def add(self, value: float, **pairs: str) -> Gauge:
        self.samples.append((pairs, value))
        return self

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        lines += [f"{self.name}{labels(p)} {_num(v)}" for p, v in self.samples]
        return lines


class Metrics:
    """Request counters and latency of the predict route; error counts by kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str, int], int] = {}
        self._errors: dict[tuple[str, str, str, str], int] = {}
        self._hist: dict[str, list[int]] = {}
        self._sum: dict[str, float] = {}
        self._unknown: Counter[tuple[str, str]] = Counter()

    def observe(self, model: str, version: str, arm: str, status: int, seconds: float) -> None:
        i = bisect.bisect_left(BUCKETS, seconds)
        with self._lock:
            key = (model, version, arm, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            counts = self._hist.get(model)
            if counts is None:
                counts = self._hist[model] = [0] * (len(BUCKETS) + 1)
                self._sum[model] = 0.0
            counts[i] += 1
            self._sum[model] += seconds

    def error(self, model: str, version: str, arm: str, kind: str) -> None:
        with self._lock:
            key = (model, version, arm, kind)
            self._errors[key] = self._errors.get(key, 0) + 1

    def unknown(self, model: str, unknown: Iterable[Unknown]) -> None:
        """Count a request's unknown categories (scored as missing) by feature."""
        counts = Counter(u.feature for u in unknown)
        with self._lock:
            for feature, n in counts.items():
                self._unknown[(model, feature)] += n

    def render(self, gauges: Iterable[Gauge] = ()) -> str:
        with self._lock:
            requests = dict(self._requests)
            errors = dict(self._errors)
            unknown = dict(self._unknown)
            hist = {k: list(v) for k, v in self._hist.items()}
            sums = dict(self._sum)
        req = Gauge("retrainer_requests_total", "Predict requests by outcome.", "counter")
        for (model, version, arm, status), n in sorted(requests.items()):
            req.add(n, model=model, version=version, arm=arm, status=str(status))
        err = Gauge("retrainer_errors_total", "Predict errors by kind.", "counter")
        for (model, version, arm, kind), n in sorted(errors.items()):
            err.add(n, model=model, version=version, arm=arm, kind=kind)
        unk = Gauge(
            "retrainer_unknown_category_total",
            "Categories a served version never saw, scored as missing, by feature.",
            "counter",
        )
        for (model, feature), n in sorted(unknown.items()):
            unk.add(n, model=model, feature=feature)
        lines = [*req.render(), *err.render(), *unk.render()]
        lines += [
            "# HELP retrainer_request_seconds Predict latency inside the server.",
            "# TYPE retrainer_request_seconds histogram",
        ]
        for model, counts in sorted(hist.items()):
            total = 0
            for bound, c in zip((*BUCKETS, float("inf")), counts, strict=True):
                total += c
                le = "+Inf" if bound == float("inf") else repr(bound)
                lab = labels({"model": model, "le": le})
                lines.append(f"retrainer_request_seconds_bucket{lab} {total}")
            lines.append(f"retrainer_request_seconds_sum{labels({'model': model})} {sums[model]!r}")
            lines.append(f"retrainer_request_seconds_count{labels({'model': model})} {total}")
        for g in gauges:
            lines += g.render()
        return "\n".join(lines) + "\n"

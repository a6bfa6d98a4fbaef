"""Reading Convoke's counters in tests: through the same exposition ``GET /metrics`` serves.

The counters are totals kept by prometheus_client in per-process files that outlive a test,
so a test compares two readings: :class:`CounterWatch` takes one when created and reports
how far each labelled counter moved since.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from calendars.metrics import metrics_render

Labels = tuple[tuple[str, str], ...]


def counter_samples(name: str) -> dict[Labels, float]:
    """``{labels: value}`` of the counter ``name`` (without ``_total``) right now."""
    samples: dict[Labels, float] = {}
    for family in text_string_to_metric_families(metrics_render().decode("utf-8")):
        for sample in family.samples:
            if sample.name == f"{name}_total":
                samples[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


class CounterWatch:
    def __init__(self, name: str) -> None:
        self.name = name
        self.before = counter_samples(name)

    def moved(self) -> dict[Labels, float]:
        """``{labels: increase}`` of every labelled counter that moved."""
        now = counter_samples(self.name)
        return {
            labels: value - self.before.get(labels, 0.0)
            for labels, value in now.items()
            if value != self.before.get(labels, 0.0)
        }

    def total(self, **match: str) -> float:
        """The increase summed over the label sets that carry every ``match`` label."""
        return sum(
            delta
            for labels, delta in self.moved().items()
            if all((key, value) in labels for key, value in match.items())
        )

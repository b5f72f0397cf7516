"""metrics.observe_many must leave a histogram exactly as observe() per value would."""

from prometheus_client import CollectorRegistry, Histogram

from imhub.metrics import observe_many

BUCKETS = (0.001, 0.01, 0.1, 1.0)
VALUES = [0.0, 0.0005, 0.001, 0.0010001, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 100.0, -1.0]


def samples(h: Histogram) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for m in h.collect() for s in m.samples if not s.name.endswith("_created")]


def test_observe_many_matches_observe() -> None:
    one = Histogram("one", "per value", buckets=BUCKETS, registry=CollectorRegistry())
    many = Histogram("many", "in bulk", buckets=BUCKETS, registry=CollectorRegistry())
    for v in VALUES:
        one.observe(v)
    observe_many(many, VALUES[:5])
    observe_many(many, VALUES[5:])
    observe_many(many, [])
    assert [(n.replace("one", "many"), lab, v) for n, lab, v in samples(one)] == samples(many)

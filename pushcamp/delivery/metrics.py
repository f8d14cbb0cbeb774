"""Metrics of the fan-out engine, on the process's one registry (served at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter

from pushcamp.metrics import REGISTRY

PUSHES = Counter(
    "pushcamp_pushes_total",
    "Launch messages by outcome: sent, or the reason they were dropped.",
    ["outcome"],
    registry=REGISTRY,
)

"""Metrics of the fan-out engine, on the process's one registry (served at /metrics)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from prometheus_client import Counter

from pushcamp.metrics import REGISTRY

PUSHES = Counter(
    "pushcamp_pushes_total",
    "Launch messages by outcome: sent, or the reason they were dropped.",
    ["outcome"],
    registry=REGISTRY,
)


@lru_cache(maxsize=64)
def pushes(outcome: str) -> Any:
    """The pushes counter of one outcome: its labelled child found once, not per push."""
    return PUSHES.labels(outcome)

"""The process's one Prometheus registry: every layer that counts something registers
its metrics here, and ``/metrics`` serves it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

REGISTRY = CollectorRegistry(auto_describe=True)

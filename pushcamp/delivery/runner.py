"""The runner interface: what the API needs of delivery, whichever way it runs.

* :class:`~pushcamp.delivery.inprocess.InProcessRunner` (the embedded default): the
  delivery core runs inside the API process;
* :class:`~pushcamp.delivery.celery_app.CeleryRunner` (``PUSHCAMP_BROKER_URL`` set): the
  API process publishes the batches of recorded launches to the broker (the outbox) and
  ``pushcamp worker`` processes send them.

The API depends on this module only, never on the engine.
"""

from __future__ import annotations

from typing import Protocol

from pushcamp.errors import InvalidRequest
from pushcamp.settings import Settings
from pushcamp.store import Database


class Runner(Protocol):
    name: str

    async def start(self) -> None:
        """Begin working (called once the database is migrated)."""

    async def stop(self) -> None:
        """Stop gracefully: what is in progress is recorded or given back."""

    def wake(self) -> None:
        """A launch was just recorded: look for work now rather than at the next poll."""

    async def check(self) -> dict[str, str]:
        """Readiness of what the runner depends on beyond the database, by name
        (``{"broker": "ok"}``); empty when nothing."""


def check_settings(settings: Settings) -> None:
    """Refuse settings under which nothing would ever send (exit code 2 in the CLI)."""
    problem = settings.delivery_problem()
    if problem is not None:
        raise InvalidRequest(message=problem)


def build_runner(settings: Settings, db: Database) -> Runner:
    """The runner these settings choose: Celery when a broker is set, else in-process."""
    check_settings(settings)
    if settings.broker_url:
        from pushcamp.delivery.celery_app import CeleryRunner

        return CeleryRunner(db, settings)
    from pushcamp.delivery.engine import DeliveryCore, EngineOptions
    from pushcamp.delivery.inprocess import InProcessRunner

    # SQLite: this process is the only worker, so batches claimed before a crash are
    # resumed at once rather than after their lease.
    return InProcessRunner(
        DeliveryCore(db, EngineOptions.from_settings(settings)), reclaim_all=settings.is_sqlite
    )

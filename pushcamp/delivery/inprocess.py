"""The in-process runner (the embedded default): a few asyncio workers inside the API
server's event loop claim batches straight from the database and send them with the
delivery core. Nothing else to start; with SQLite it is the only runner possible."""

from __future__ import annotations

import asyncio
import contextlib

from pushcamp.delivery.engine import DeliveryCore
from pushcamp.delivery.schedule import start_due_launches
from pushcamp.logs import get_logger
from pushcamp.store.models import utcnow

log = get_logger("pushcamp.delivery")


class InProcessRunner:
    """``workers`` batches in progress at once, in this process."""

    name = "in-process"

    def __init__(self, core: DeliveryCore, *, reclaim_all: bool) -> None:
        self.core = core
        # No other worker can exist (SQLite, embedded): batches claimed before a restart
        # are taken again at once instead of after their lease.
        self.reclaim_all = reclaim_all
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self.reclaim_all:
            released = await self.core.release_all()
            if released:
                log.info("batches_resumed", count=released)
        await self.core.open()
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"delivery-{i}")
            for i in range(self.core.options.workers)
        ]
        self._tasks.append(asyncio.create_task(self._scheduler(), name="scheduler"))

    async def stop(self) -> None:
        """Stop gracefully (SIGTERM): post nothing more, give the messages already posted
        up to ``drain_seconds`` to be answered and recorded, give the unfinished batches
        back (so a restart, or another worker, resumes them at once), then end. Only what
        is still unanswered after that is abandoned (and sent again on resume)."""
        self.core.begin_stop()
        self._wake.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.core.options.drain_seconds)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.core.close()

    def wake(self) -> None:
        """New work was recorded: look now rather than at the next poll."""
        self._wake.set()

    async def check(self) -> dict[str, str]:
        return {}

    async def _scheduler(self) -> None:
        """Start scheduled launches when due (delivery/schedule.py): every poll, so a
        launch starts within ``poll_seconds`` (1 s) of its ``send_at``."""
        core = self.core
        while not core.stopping:
            try:
                if await core.tx(start_due_launches, utcnow()):
                    self._wake.set()
            except Exception as exc:
                log.warning("schedule_failed", error=type(exc).__name__)
            await asyncio.sleep(core.options.poll_seconds)

    async def _worker(self) -> None:
        core = self.core
        poll = core.options.poll_seconds
        while not core.stopping:
            try:
                batch = await core.claim_next()
            except Exception as exc:
                log.warning("claim_failed", error=type(exc).__name__)
                await asyncio.sleep(poll)
                continue
            if batch is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), poll)
                continue
            self._wake.set()  # there may be more: let another idle worker look too
            try:
                await core.run(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The batch stays claimed; its lease runs out and it is taken again.
                log.exception("batch_failed", launch_id=batch.launch_id, batch_id=batch.id)
                await asyncio.sleep(poll)

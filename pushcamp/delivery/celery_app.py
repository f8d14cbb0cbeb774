"""The Celery runner: ``pushcamp worker`` processes (any number, on any machines) send
the batches that the outbox hands to the broker, one task per batch.

Why these settings (docs/scaling.md):

* ``task_acks_late``: a task is acknowledged when it returns, not when it is taken, so
  a worker that dies mid-batch leaves its task with the broker, which hands it to
  another worker (RabbitMQ: when the dead worker's connection closes; Redis: after
  ``visibility_timeout``). ``task_reject_on_worker_lost`` puts it back too when a pool
  process is lost without the worker noticing an error.
* ``worker_prefetch_multiplier=1``: a worker reserves one task per free thread, so
  tasks wait at the broker for whichever worker frees up first.
* The task only names a batch; it claims it through the same lease as the in-process
  runner (``claim_batch_by_id``): a task delivered twice, or a batch also published
  again by the outbox, is claimed once, and the other copy returns at once.
* The threads pool: a batch is I/O (the push services and the database), so each
  worker process runs one asyncio loop for all its threads, with one connection pool
  per push service, as the in-process runner does.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from celery import Celery
from celery.signals import worker_ready, worker_shutting_down

from pushcamp import logs
from pushcamp.delivery.engine import DeliveryCore, EngineOptions
from pushcamp.delivery.outbox import OutboxPublisher
from pushcamp.delivery.webhooks import DispatcherThread
from pushcamp.errors import DependencyUnavailable
from pushcamp.logs import get_logger
from pushcamp.settings import Settings
from pushcamp.store import Database

log = get_logger("pushcamp.delivery")
T = TypeVar("T")

TASK = "pushcamp.deliver_batch"


def make_celery(settings: Settings) -> Celery:
    """The Celery application, configured from pushcamp's settings."""
    if not settings.broker_url:
        raise ValueError("PUSHCAMP_BROKER_URL is not set")
    timeout = settings.broker_timeout_seconds
    app = Celery("pushcamp", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.broker_queue,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=timeout,
        broker_transport_options={
            # Redis: how long a taken, unacknowledged task stays with its worker.
            "visibility_timeout": settings.broker_visibility_timeout_seconds,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        },
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        enable_utc=True,
    )
    return app


def publish_batch(app: Celery, batch_id: int) -> None:
    """Hand one batch to the broker; raises at once if it cannot (the outbox retries)."""
    try:
        app.send_task(TASK, args=[batch_id], retry=False)
    except Exception:
        # A broken pooled connection would fail every later publish too: start afresh.
        app.pool.force_close_all()
        raise


def load_publisher(app: Celery) -> None:
    """Load now what Celery loads on the first publish, without connecting: the broker's
    transport (kombu's, and the redis client: imports) and the result backend (found by
    scanning the installed packages' entry points, even though results are ignored).
    About 0.2 s of CPU that the first launch after a start paid otherwise."""
    _ = app.backend, app.producer_pool


def ping_broker(app: Celery, timeout: float) -> None:
    """Connect to the broker once (blocking); raises DependencyUnavailable if it fails."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
    except Exception as exc:
        raise DependencyUnavailable(f"broker: {type(exc).__name__}") from exc


class CeleryRunner:
    """What the API process does with a broker: publish batches (the outbox); workers
    elsewhere send them."""

    name = "celery"

    def __init__(self, db: Database, settings: Settings) -> None:
        self.app = make_celery(settings)
        self.timeout = settings.broker_timeout_seconds
        self.outbox = OutboxPublisher(
            db,
            lambda batch_id: publish_batch(self.app, batch_id),
            republish_seconds=settings.broker_republish_seconds,
        )

    async def start(self) -> None:
        await asyncio.to_thread(load_publisher, self.app)
        self.outbox.start()

    async def stop(self) -> None:
        await self.outbox.stop()
        await asyncio.to_thread(self.app.pool.force_close_all)

    def wake(self) -> None:
        self.outbox.wake()

    async def check(self) -> dict[str, str]:
        try:
            await asyncio.wait_for(
                asyncio.to_thread(ping_broker, self.app, self.timeout), self.timeout * 2
            )
        except (DependencyUnavailable, TimeoutError):
            return {"broker": "unreachable"}
        return {"broker": "ok"}


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when it is installed (it comes with uvicorn[standard], and the API
    server, hence the in-process runner, runs on it), else asyncio's. Each push costs
    the loop a few callbacks, a socket write and read: on asyncio's pure-Python loop
    the sender alone took about 9 % more CPU per message (500 messages at a time)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - not installed without uvicorn[standard]
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class WorkerRuntime:
    """One asyncio loop on a thread of its own, shared by the worker's task threads: the
    delivery core (and its push-service connection pools) and the outbox publisher."""

    def __init__(self, db: Database, core: DeliveryCore, outbox: OutboxPublisher) -> None:
        self.db = db
        self.core = core
        self.outbox = outbox
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="delivery-loop")

    def start(self) -> None:
        self._thread.start()
        self._call(self._start()).result()

    async def _start(self) -> None:
        await self.core.open()
        self.outbox.start()

    def begin_stop(self) -> None:
        """Warm shutdown began (SIGTERM): batches in progress post nothing more, record
        what is answered and are given back (another worker's outbox republishes them)."""
        self.loop.call_soon_threadsafe(self.core.begin_stop)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._stop()).result(timeout=30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)

    async def _stop(self) -> None:
        self.core.begin_stop()
        await self.outbox.stop()
        await self.core.close()

    def deliver(self, batch_id: int) -> str:
        """The task's body (blocking its pool thread): claim the batch, send it."""
        return self._call(self._deliver(batch_id)).result()

    async def _deliver(self, batch_id: int) -> str:
        batch = await self.core.claim(batch_id)
        if batch is None:
            # Done, held by a live worker, or its launch paused or stopped: nothing to do.
            log.info("batch_not_claimable", batch_id=batch_id)
            return "skipped"
        return "done" if await self.core.run(batch) else "given back"

    def _call(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)


def _freeze_heap(**_: object) -> None:
    """Once the worker consumes: everything alive now (Celery, kombu, SQLAlchemy, the
    engine) lives as long as the process, so take it out of the garbage collector's
    sight, as the API server does at start-up (api/app.py, ``warm_up``). Without it each
    full collection walked the whole heap again: six of them cost a worker 0.39 s of CPU
    over a 30,000-push launch, against 0.19 s for the server (docs/performance.md)."""
    gc.collect()
    gc.freeze()


def run_worker(settings: Settings, concurrency: int | None = None) -> None:
    """Run a Celery worker in this process until it is stopped (SIGTERM: warm shutdown)."""
    logs.configure(settings.log_level, settings.log_json)
    app = make_celery(settings)
    db = Database(settings)
    db.migrate()
    core = DeliveryCore(db, EngineOptions.from_settings(settings))
    outbox = OutboxPublisher(
        db,
        lambda batch_id: publish_batch(app, batch_id),
        republish_seconds=settings.broker_republish_seconds,
    )
    runtime = WorkerRuntime(db, core, outbox)

    @app.task(name=TASK, ignore_result=True)  # type: ignore[untyped-decorator]
    def deliver_batch(batch_id: int) -> str:
        return runtime.deliver(int(batch_id))

    def on_shutdown(**_: object) -> None:
        runtime.begin_stop()

    worker_shutting_down.connect(on_shutdown, weak=False)
    worker_ready.connect(_freeze_heap, weak=False)
    threads = concurrency or settings.delivery_workers
    runtime.start()
    hooks = DispatcherThread(db, settings).start()  # webhooks, beside the delivery core
    log.info(
        "worker_started",
        broker=settings.redacted_broker_url(),
        database=settings.redacted_database_url(),
        threads=threads,
        worker=core.worker_id,
    )
    try:
        app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={threads}",
                f"--queues={settings.broker_queue}",
                f"--hostname=pushcamp-{os.getpid()}@%h",
                f"--loglevel={settings.log_level}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )
    finally:
        hooks.stop()
        runtime.stop()
        db.dispose()

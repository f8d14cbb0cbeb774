"""The ``pushcamp`` command line (contract §7): a thin shell over the services.

Typer gives ``--help`` on every command from the signatures; Rich prints tables and
progress. Machine-readable results (a new token) go alone to stdout; everything meant for
a person goes to stderr, so ``T=$(pushcamp tokens create 100000001)`` works.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pushcamp import __version__
from pushcamp.errors import (
    Conflict,
    DependencyUnavailable,
    InvalidRequest,
    NotFound,
    PushcampError,
)
from pushcamp.settings import Settings, get_settings

app = typer.Typer(
    name="pushcamp",
    help="pushcamp: a self-hosted Web Push campaign server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
partners_app = typer.Typer(
    help="Create partners (tenants) and set their rate limits.", no_args_is_help=True
)
tokens_app = typer.Typer(help="Issue and revoke API tokens.", no_args_is_help=True)
vapid_app = typer.Typer(help="Show or import a partner's VAPID key pair.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
subscribers_app = typer.Typer(
    help="Bulk-import and count a partner's subscribers.", no_args_is_help=True
)
app.add_typer(partners_app, name="partners")
app.add_typer(tokens_app, name="tokens")
app.add_typer(vapid_app, name="vapid")
app.add_typer(db_app, name="db")
app.add_typer(subscribers_app, name="subscribers")

out = Console()
err = Console(stderr=True)

_EXIT_CODES: dict[type[PushcampError], int] = {
    InvalidRequest: 2,
    NotFound: 3,
    Conflict: 4,
    DependencyUnavailable: 5,
}


def _settings() -> Settings:
    return get_settings()


@contextmanager
def _errors() -> Iterator[None]:
    """Print pushcamp errors as one line on stderr with a distinct exit code."""
    try:
        yield
    except PushcampError as exc:
        code = next((c for t, c in _EXIT_CODES.items() if isinstance(exc, t)), 1)
        if isinstance(exc, DependencyUnavailable):
            # The driver's own words say which failure it was (refused, locked, read-only);
            # one line of them, never a URL with its password (drivers do not echo it).
            cause = str(exc.__cause__ or "").strip().splitlines()
            detail = f": {cause[0][:200]}" if cause else ""
            err.print(f"[red]error:[/] the database is unreachable ({exc}{detail})")
        else:
            err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(code) from None


@contextmanager
def _database() -> Iterator[Any]:
    """One database handle per command, at the newest schema, errors printed."""
    from pushcamp.store import Database

    db = Database(_settings())
    try:
        with _errors():
            db.migrate()
            yield db
    finally:
        db.dispose()


def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with _database() as db:
        return fn(db, *args, **kwargs)


@app.callback()
def _main(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="PUSHCAMP_DATABASE_URL",
            help="SQLAlchemy URL (default: sqlite file pushcamp.db in this directory).",
        ),
    ] = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        out.print(__version__)
        raise typer.Exit()
    if database_url:
        import os

        # Settings are the only reader of the environment; pass the flag on through it.
        os.environ["PUSHCAMP_DATABASE_URL"] = database_url
        get_settings.cache_clear()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (0 picks a free one).")] = None,
) -> None:
    """Run the API, the panel and the embedded worker in this process."""
    from rich.markup import escape

    from pushcamp.server import run_server
    from pushcamp.store.db import StartupFailed, check_startup

    settings = _settings()
    try:
        check_startup(settings)  # a database it cannot write: one line, exit 5
    except StartupFailed as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(_EXIT_CODES[DependencyUnavailable]) from None
    with _errors():
        from pushcamp.delivery.runner import check_settings

        check_settings(settings)  # something must send launches: exit 2 otherwise
        run_server(settings, host or settings.host, settings.port if port is None else port)


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(help="Batches sent at once (default PUSHCAMP_DELIVERY_WORKERS)."),
    ] = None,
) -> None:
    """Run a delivery worker (Celery, on PUSHCAMP_BROKER_URL): sends the batches of
    launches that API processes recorded. Start any number, on any machines
    (docs/scaling.md)."""
    settings = _settings()
    with _errors():
        if not settings.broker_url:
            raise InvalidRequest(
                message="PUSHCAMP_BROKER_URL is not set: `pushcamp worker` takes launches "
                "from a Celery broker (redis://... or amqp://...)"
            )
        from pushcamp.delivery.runner import check_settings

        check_settings(settings)
        from pushcamp.delivery.celery_app import run_worker

        run_worker(settings, concurrency)


@app.command()
def simulator(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8090,
    decrypt: Annotated[
        bool, typer.Option(help="Decrypt and check every message (off: faster, for benchmarks).")
    ] = True,
    verify_vapid: Annotated[bool, typer.Option(help="Verify every request's VAPID token.")] = True,
    seed: Annotated[int | None, typer.Option(help="Seed for rate-based faults.")] = None,
) -> None:
    """Run the push-service simulator (an RFC 8030 endpoint for tests and demos;
    docs/simulator.md)."""
    from pushcamp.testing.simulator import run

    run(host=host, port=port, decrypt=decrypt, verify_vapid=verify_vapid, seed=seed)


@app.command()
def demo(
    browser: Annotated[
        bool,
        typer.Option(
            "--browser", help="A real headless Firefox subscribes first (needs firefox-esr)."
        ),
    ] = False,
    subscribers: Annotated[
        int, typer.Option(min=0, max=100_000, help="Simulated subscribers to create.")
    ] = 3000,
    port: Annotated[int, typer.Option(help="The server's TCP port (0 picks a free one).")] = 0,
    exit_after: Annotated[
        bool, typer.Option("--exit", help="Stop once the results are printed (no Ctrl-C wait).")
    ] = False,
) -> None:
    """Try pushcamp: server, push-service simulator, a demo partner with simulated
    subscribers, a launched campaign with its statistics, and the panel. Its files live in
    a temporary directory (PUSHCAMP_DEMO_DIR keeps them)."""
    from pushcamp.demo import DemoFailed, default_workdir, run_demo

    def hold(panel_url: str) -> None:
        if exit_after:
            return
        err.print(f"Running: open {panel_url}. Press Ctrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            err.print("stopping")

    try:
        run_demo(
            err,
            subscribers=subscribers,
            browser=browser,
            port=port,
            workdir=default_workdir(),
            wait_for_exit=hold,
        )
    except DemoFailed as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


@partners_app.command("create")
def partners_create(
    partner_id: Annotated[str, typer.Argument(help="The partner id, e.g. 100000001.")],
    name: Annotated[str, typer.Option(help="A display name.")] = "",
    v1_limit: Annotated[
        int | None, typer.Option(help="Requests/minute for each v1 endpoint (default 30).")
    ] = None,
    v2_limit: Annotated[
        int | None, typer.Option(help="Requests/minute for launch v2 (default 6000).")
    ] = None,
) -> None:
    """Create a partner and generate its VAPID key pair."""
    from pushcamp.services import partners

    with _database() as db:
        row = partners.create_partner(db, partner_id, name, v1_limit, v2_limit)
        public_key = partners.vapid_public_key(db, partner_id)
    err.print(f"partner [bold]{row.id}[/] created (v1 {row.v1_limit}/min, v2 {row.v2_limit}/min)")
    err.print(f"VAPID public key: {public_key}", soft_wrap=True)


@partners_app.command("set-limits")
def partners_set_limits(
    partner_id: Annotated[str, typer.Argument(help="The partner id.")],
    v1_limit: Annotated[int | None, typer.Option(help="Requests/minute per v1 endpoint.")] = None,
    v2_limit: Annotated[int | None, typer.Option(help="Requests/minute for launch v2.")] = None,
) -> None:
    """Change a partner's rate limits (take effect on the next request)."""
    from pushcamp.services import partners

    row = _run(partners.set_limits, partner_id, v1_limit, v2_limit)
    err.print(f"partner [bold]{row.id}[/]: v1 {row.v1_limit}/min, v2 {row.v2_limit}/min")


@partners_app.command("list")
def partners_list() -> None:
    """List partners, their limits and site origins."""
    from pushcamp.services import partners, sites

    table = Table("partner", "name", "v1/min", "v2/min", "site origins", "created")
    with _database() as db:
        rows = partners.list_partners(db)
        origins = sites.site_origins(db)
    for row in rows:
        table.add_row(
            row.id,
            row.name,
            str(row.v1_limit),
            str(row.v2_limit),
            " ".join(origins.get(row.id, [])),
            str(row.created_at),
        )
    out.print(table)


@partners_app.command("set-site")
def partners_set_site(
    partner_id: Annotated[str, typer.Argument(help="The partner id.")],
    origin: Annotated[
        list[str],
        typer.Option(
            "--origin",
            help="A site origin allowed to call the subscriber endpoints from a browser, "
            "scheme://host[:port] (repeat for several; replaces the current list).",
        ),
    ],
) -> None:
    """Set the site origins whose pages may subscribe browsers (CORS)."""
    from pushcamp.services import sites

    origins = _run(sites.set_site_origins, partner_id, origin)
    err.print(f"partner [bold]{partner_id}[/] site origins: {' '.join(origins)}")


@partners_app.command("set-audience")
def partners_set_audience(
    partner_id: Annotated[str, typer.Argument(help="The partner id.")],
    engagement_days: Annotated[
        int | None,
        typer.Option(help="Unengaged after this many days without a click or visit (90)."),
    ] = None,
    frequency_cap: Annotated[
        int | None, typer.Option(help="At most N pushes per subscriber per 24 h.")
    ] = None,
    no_frequency_cap: Annotated[
        bool, typer.Option("--no-frequency-cap", help="Turn the frequency cap off.")
    ] = False,
    silent_hours: Annotated[
        str | None,
        typer.Option(help="HH:MM-HH:MM in the subscriber's local time, e.g. 22:00-07:00."),
    ] = None,
    no_silent_hours: Annotated[
        bool, typer.Option("--no-silent-hours", help="Turn silent hours off.")
    ] = False,
    silent_hours_mode: Annotated[
        str | None,
        typer.Option(
            help="drop: a subscriber in silent hours gets nothing (the default); defer: "
            "sent when they end, if within the launch's TTL."
        ),
    ] = None,
    default_timezone: Annotated[
        str | None,
        typer.Option(
            help="IANA zone of subscribers whose own is unknown (local-time launches; UTC)."
        ),
    ] = None,
) -> None:
    """Change who a launch reaches: engagement window, frequency cap, silent hours."""
    from pushcamp.domain.sites import format_minutes
    from pushcamp.services import sites

    audience = _run(
        sites.set_audience,
        partner_id,
        engagement_days=engagement_days,
        frequency_cap=frequency_cap,
        no_frequency_cap=no_frequency_cap,
        silent_hours=silent_hours,
        no_silent_hours=no_silent_hours,
        silent_hours_mode=silent_hours_mode,
        default_timezone=default_timezone,
    )
    cap = f"{audience.frequency_cap}/24h" if audience.frequency_cap else "off"
    silent = (
        f"{format_minutes(audience.silent_start)}-{format_minutes(audience.silent_end)}"
        if audience.silent_start is not None and audience.silent_end is not None
        else "off"
    )
    err.print(
        f"partner [bold]{partner_id}[/]: engagement {audience.engagement_days} days, "
        f"frequency cap {cap}, silent hours {silent} ({audience.silent_hours_mode}), "
        f"default time zone {audience.default_timezone or 'UTC'}"
    )


@partners_app.command("set-conversions")
def partners_set_conversions(
    partner_id: Annotated[str, typer.Argument(help="The partner id.")],
    currency: Annotated[
        str | None, typer.Option(help="ISO 4217 code of the site's conversion values (USD).")
    ] = None,
    attribution_hours: Annotated[
        int | None,
        typer.Option(help="A conversion counts within this many hours of the click (24)."),
    ] = None,
) -> None:
    """Set how conversions are counted: their currency and the attribution window."""
    from pushcamp.services import statistics

    settings = _run(
        statistics.set_conversion_settings,
        partner_id,
        currency=currency,
        attribution_hours=attribution_hours,
    )
    err.print(
        f"partner [bold]{partner_id}[/]: conversions in {settings.currency}, "
        f"attribution window {settings.attribution_hours} h"
    )


@tokens_app.command("create")
def tokens_create(
    partner_id: Annotated[str, typer.Argument(help="The partner the token acts for.")],
) -> None:
    """Issue an API token; it is printed once, alone on stdout."""
    from pushcamp.services import tokens

    token = _run(tokens.create_token, partner_id)
    sys.stdout.write(token + "\n")
    err.print("Store this token now: only its hash is kept.", highlight=False)


@tokens_app.command("revoke")
def tokens_revoke(
    token_prefix: Annotated[str, typer.Argument(help="The token's prefix, e.g. pc_1a2b3c4d.")],
) -> None:
    """Revoke a token; requests with it get 401 from now on."""
    from pushcamp.services import tokens

    _run(tokens.revoke_token, token_prefix)
    err.print(f"token {token_prefix} revoked")


@vapid_app.command("import")
def vapid_import(
    partner_id: Annotated[str, typer.Argument(help="The partner id.")],
    public_key: Annotated[
        str, typer.Option("--public-key", help="Uncompressed P-256 point, base64url.")
    ],
    private_key: Annotated[
        str,
        typer.Option(
            "--private-key",
            help="base64url 32-byte scalar, PEM or base64 DER; '-' reads it from stdin "
            "(keeps it out of the shell history).",
        ),
    ],
) -> None:
    """Import an existing VAPID key pair (keeps existing browser subscriptions working)."""
    from pushcamp.services import partners

    if private_key == "-":
        private_key = sys.stdin.read()
    key = _run(partners.import_vapid, partner_id, public_key, private_key)
    err.print(f"partner [bold]{partner_id}[/] now uses VAPID public key {key}", soft_wrap=True)


@vapid_app.command("show")
def vapid_show(partner_id: Annotated[str, typer.Argument(help="The partner id.")]) -> None:
    """Print the partner's VAPID public key (the SDK's applicationServerKey)."""
    from pushcamp.services import partners

    sys.stdout.write(_run(partners.vapid_public_key, partner_id) + "\n")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (serve does this at start-up too)."""
    with _database():
        pass
    err.print(f"database at the newest schema: {_settings().redacted_database_url()}")


@subscribers_app.command("import")
def subscribers_import(
    partner_id: Annotated[str, typer.Argument(help="The partner the subscribers belong to.")],
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="JSON Lines, one subscription a line; '-': stdin.")
    ],
    engaged_now: Annotated[
        bool,
        typer.Option(
            "--engaged-now",
            help="Count lines without last_engaged_at as engaged now (default: unengaged).",
        ),
    ] = False,
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Lines per transaction.")
    ] = 1000,
    errors_file: Annotated[
        str | None, typer.Option(help="Write every bad line's number and reason here.")
    ] = None,
) -> None:
    """Import subscriptions from a JSON Lines file (a migration from another system).

    Bad lines are reported by number and skipped; the rest are upserted by endpoint in
    batches, so running the same import again updates, never duplicates. Exit code 0
    when the good lines went in (bad lines included), 3 for an unknown partner, 5 when
    the database fails (the lines already committed are named).
    """
    from pushcamp.services import importer, partners

    try:
        source = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
        errors_out = open(errors_file, "w", encoding="utf-8") if errors_file else None  # noqa: SIM115
    except OSError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    try:
        with _database() as db:
            # An unknown partner is an error before the progress bar appears.
            partners.get_partner(db, partner_id)
            with _import_progress(source) as (on_progress, on_bad_line):

                def bad_line(bad: importer.BadLine) -> None:
                    on_bad_line(bad)
                    if errors_out is not None:
                        errors_out.write(f"{bad}\n")

                now = datetime.now(UTC) if engaged_now else None
                try:
                    summary = importer.import_subscriptions(
                        db, partner_id, source, engaged_at=now, batch_size=batch_size,
                        on_progress=on_progress, on_bad_line=bad_line,
                    )  # fmt: skip
                except importer.ImportInterrupted as exc:
                    err.print(f"[red]error:[/] {exc}", highlight=False)
                    raise typer.Exit(5) from None
    finally:
        source.close()
        if errors_out is not None:
            errors_out.close()
    if summary.bad > _SHOWN_BAD_LINES:
        where = f"all are in {errors_file}" if errors_file else "--errors-file PATH lists all"
        err.print(f"(the first {_SHOWN_BAD_LINES} bad lines are shown; {where})", highlight=False)
    sys.stdout.write(
        f"imported {summary.imported:,} of {summary.lines:,} lines; {summary.bad:,} bad\n"
    )


_SHOWN_BAD_LINES = 20


@contextmanager
def _import_progress(source: Any) -> Iterator[tuple[Callable[..., None], Callable[..., None]]]:
    """A progress bar on stderr (bytes of the file when its size is known, lines/s), and
    the first bad lines printed above it."""
    import os
    import stat
    import time

    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    try:
        info = os.fstat(source.fileno())
        total = info.st_size if stat.S_ISREG(info.st_mode) else None
    except (OSError, ValueError):
        total = None
    progress = Progress(
        TextColumn("importing"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[lines]:,} lines, {task.fields[bad]:,} bad"),
        TextColumn("{task.fields[rate]:,.0f} lines/s"),
        TimeRemainingColumn(),
        console=err,
    )
    task = progress.add_task("import", total=total, lines=0, bad=0, rate=0.0)
    started = time.perf_counter()
    shown = 0

    def on_progress(p: Any) -> None:
        rate = p.lines / max(time.perf_counter() - started, 1e-9)
        progress.update(task, completed=p.bytes_read, lines=p.lines, bad=p.bad, rate=rate)

    def on_bad_line(bad: Any) -> None:
        nonlocal shown
        if shown < _SHOWN_BAD_LINES:
            shown += 1
            progress.console.print(str(bad), markup=False, highlight=False, soft_wrap=True)

    with progress:
        yield on_progress, on_bad_line


@subscribers_app.command("count")
def subscribers_count(partner_id: Annotated[str, typer.Argument(help="The partner id.")]) -> None:
    """Print the partner's active and inactive subscriber counts."""
    from pushcamp.services import importer

    counts = _run(importer.count_subscribers, partner_id)
    sys.stdout.write(f"active {counts.active}\ninactive {counts.inactive}\n")


launches_app = typer.Typer(
    help="Follow, resume, cancel and inspect launches.", no_args_is_help=True
)
app.add_typer(launches_app, name="launches")


@launches_app.command("watch")
def launches_watch(
    campaign_id: Annotated[int, typer.Argument(help="The campaign whose newest launch to follow.")],
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 0.5,
) -> None:
    """Show a progress bar for the campaign's newest launch until it ends."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from pushcamp.domain.launches import TERMINAL, LaunchStatus
    from pushcamp.services import launches

    with _database() as db:
        launch_id = launches.latest_launch_id(db, campaign_id)
        columns = (
            TextColumn("launch {task.fields[launch]}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn(
                "{task.fields[status]}: sent {task.fields[sent]:,} dropped {task.fields[dropped]:,}"
            ),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=err) as progress:
            task = progress.add_task(
                "launch", total=1, launch=launch_id, status="", sent=0, dropped=0
            )
            while True:
                p = launches.launch_progress(db, launch_id)
                progress.update(
                    task,
                    total=max(p["batches_total"], 1),
                    completed=p["batches_done"] if p["batches_total"] else 1,
                    status=p["status"],
                    sent=p["sent"],
                    dropped=p["dropped"],
                )
                if p["status"] in TERMINAL or p["status"] == LaunchStatus.PAUSED:
                    break
                time.sleep(interval)
        summary = {
            k: p[k]
            for k in ("launch_id", "status", "targeted", "sent", "dropped", "delivered", "clicks")
        }
        if p.get("paused_reason"):
            summary["paused_reason"] = p["paused_reason"]
        sys.stdout.write(json.dumps(summary) + "\n")


@launches_app.command("show")
def launches_show(launch_id: Annotated[int, typer.Argument(help="The launch id.")]) -> None:
    """Print one launch's status and counters as JSON."""
    from pushcamp.services import launches

    sys.stdout.write(json.dumps(_run(launches.launch_progress, launch_id)) + "\n")


@launches_app.command("cancel")
def launches_cancel(launch_id: Annotated[int, typer.Argument(help="The launch id.")]) -> None:
    """Cancel a scheduled launch before it starts (exit 3: no such launch; exit 2: it is
    not Scheduled)."""
    from pushcamp.services import launches

    _run(launches.cancel_launch, launch_id)
    err.print(f"launch {launch_id} cancelled: it will not be sent")


@launches_app.command("resume")
def launches_resume(launch_id: Annotated[int, typer.Argument(help="The launch id.")]) -> None:
    """Let a paused launch go on (after fixing what paused it, e.g. the VAPID key)."""
    from pushcamp.services import launches

    retried = _run(launches.resume_launch, launch_id)
    err.print(
        f"launch {launch_id} resumed ({retried} refused subscriber(s) tried again); "
        "a running server picks it up within a second"
    )


webhooks_app = typer.Typer(
    help="Push a partner's events to its own systems (docs/webhooks.md).", no_args_is_help=True
)
app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("add")
def webhooks_add(
    partner_id: Annotated[str, typer.Argument(help="The partner.")],
    url: Annotated[str, typer.Argument(help="Where events are POSTed (https).")],
) -> None:
    """Register a webhook; prints its id and signing secret (shown only now). Exit 2: a
    URL pushcamp must not post to (http, private or loopback address)."""
    from pushcamp.services import webhooks

    allowed = _settings().allowed_webhook_hosts
    webhook_id, secret = _run(webhooks.add_webhook, partner_id, url, allowed)
    sys.stdout.write(json.dumps({"id": webhook_id, "url": url.strip(), "secret": secret}) + "\n")


@webhooks_app.command("list")
def webhooks_list(partner_id: Annotated[str, typer.Argument(help="The partner.")]) -> None:
    """The partner's webhooks with their events by state, one JSON object a line."""
    from pushcamp.services import webhooks
    from pushcamp.timeutil import iso

    for h in _run(webhooks.list_webhooks, partner_id):
        row = {"id": h.id, "url": h.url, "created_at": iso(h.created_at)}
        row.update(pending=h.pending, done=h.done, dead=h.dead)
        sys.stdout.write(json.dumps(row) + "\n")


@webhooks_app.command("remove")
def webhooks_remove(
    partner_id: Annotated[str, typer.Argument(help="The partner.")],
    webhook_id: Annotated[int, typer.Argument(help="The webhook id.")],
) -> None:
    """Remove a webhook and its undelivered events (exit 3: no such webhook)."""
    from pushcamp.services import webhooks

    _run(webhooks.remove_webhook, partner_id, webhook_id)
    err.print(f"webhook {webhook_id} removed")


@webhooks_app.command("dead-letters")
def webhooks_dead_letters(
    partner_id: Annotated[str, typer.Argument(help="The partner.")],
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
) -> None:
    """Events given up on after the retry window, one JSON object a line."""
    from pushcamp.services import webhooks
    from pushcamp.timeutil import iso

    for d in _run(webhooks.dead_letters, partner_id, limit):
        row = {"webhook_id": d.webhook_id, "id": d.event_id, "type": d.type}
        row.update(created_at=iso(d.created_at), attempts=d.attempts, error=d.last_error)
        row["data"] = d.data
        sys.stdout.write(json.dumps(row) + "\n")


def main() -> None:
    app()

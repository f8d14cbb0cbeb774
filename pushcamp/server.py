"""Running the HTTP server (uvicorn) with pushcamp's logging, and saying where it listens."""

from __future__ import annotations

import sys
from collections.abc import Callable

import uvicorn

from pushcamp import logs
from pushcamp.settings import Settings


class _Server(uvicorn.Server):
    on_listen: Callable[[str], None] | None = None

    async def startup(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        await super().startup(sockets=sockets)
        if self.should_exit:
            return
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                shown = f"[{host}]" if ":" in host else host
                if self.on_listen is not None:
                    self.on_listen(f"http://{shown}:{port}")
                print(
                    f"pushcamp listening on http://{shown}:{port}  (API docs: /docs)",
                    file=sys.stdout,
                    flush=True,
                )


def run_server(settings: Settings, host: str, port: int) -> None:
    """Serve until interrupted. Migrations run in the app's start-up."""
    from pushcamp.api import create_app

    logs.configure(settings.log_level, settings.log_json)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    print(f"pushcamp {settings.redacted_database_url()}", file=sys.stderr, flush=True)
    server = _Server(config)

    def on_listen(url: str) -> None:
        if app.state.ctx.base_url is None:
            app.state.ctx.base_url = url

    server.on_listen = on_listen
    server.run()

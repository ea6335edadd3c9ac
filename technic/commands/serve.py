"""``technic serve``: the HTTP API and web page (technic/service; docs/api.md) under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True)


def serve(
    host: Annotated[str, typer.Option(
        help="Interface to listen on. Default: this host only; 0.0.0.0 opens it to the "
             "network (put TLS in front: the API key travels in a header).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    scan_workers: Annotated[int, typer.Option(
        min=1, help="Scans started over HTTP that run at once (threads); more wait "
                    "their turn.")] = 2,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "warning",
) -> None:
    """Serve the HTTP API (/v1/…, OpenAPI docs at /docs) and the web page (/): stored scans,
    symbols with charts, and scans streamed as Server-Sent Events. Read-only unless
    TECHNIC_API_KEY is set: then POST /v1/scans needs it in the X-API-Key header."""
    import uvicorn

    from technic.config import get_settings
    from technic.service.app import create_app
    from technic.store.db import (
        describe_database_error,
        first_line,
        get_engine,
        resolve_target,
    )
    from technic.store.schema import init_db

    try:
        target = resolve_target()
        init_db(get_engine(target), target.schema)
    except Exception as e:  # unreachable server, bad URL, refused migration: one line
        why = describe_database_error(e) or f"{type(e).__name__}: {first_line(e)}"
        console.print(f"[bold red]error:[/] cannot use the database: {escape(why)}",
                      highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    key = get_settings().api_key
    app = create_app(target, key.get_secret_value() if key else None, scan_workers)
    console.print(f"technic API on http://{host}:{port}/ (docs: /docs) — database "
                  f"{escape(target.describe())}; writes "
                  f"{'need X-API-Key' if key else 'disabled (no TECHNIC_API_KEY)'}",
                  highlight=False, soft_wrap=True)
    # Open connections (a browser's keep-alive, an event stream) get 5 s to finish on shutdown;
    # scans in flight are waited for (the app's lifespan).
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)

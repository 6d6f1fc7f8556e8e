"""Command line: `connect311-map-api run` serves the API and runs the consumers."""

from __future__ import annotations

import asyncio
from typing import Any

import typer
import uvicorn
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from connect311_bus.http_limits import HttpLimits, guarded_http
from connect311_bus.logs import configure_logging
from connect311_bus.proxies import proxy_options
from connect311_contracts.settings import DevelopmentSecretRefused, KafkaSettings, SigningSettings
from connect311_map_api.settings import MapApiSettings

__all__ = ["cli", "http_protocol", "main"]

cli = typer.Typer(help="Connect311 map API: live request map, stats, sign-up, Open311 output.")


@cli.callback()
def root() -> None:
    """Connect311 map API."""


@cli.command()
def run(
    http_host: str = typer.Option(
        None, help="Bind address (default MAP_API_HTTP_HOST or 127.0.0.1)"
    ),
    http_port: int = typer.Option(None, help="Port (default MAP_API_HTTP_PORT or 8000)"),
    consume: bool = typer.Option(
        None, "--consume/--no-consume", help="Run Kafka consumers (default MAP_API_CONSUME)"
    ),
    log_level: str = typer.Option("info", help="debug, info, warning or error"),
) -> None:
    """Serve the API and web pages; consumers run inside the app (Kafka at KAFKA_*)."""
    from connect311_map_api.app import create_app

    overrides: dict[str, Any] = {
        k: v
        for k, v in {"http_host": http_host, "http_port": http_port, "consume": consume}.items()
        if v is not None
    }
    settings = MapApiSettings(**overrides)
    configure_logging("map-api", log_level)  # LOG_FORMAT=json|text
    try:
        app = create_app(settings, kafka=KafkaSettings(), signing=SigningSettings())
    except OperationalError as exc:
        typer.echo(
            f"cannot open the database {_safe(settings)}: {str(exc.orig).strip()}\n"
            "Start PostgreSQL or fix MAP_API_DATABASE_URL (the default SQLite file needs no "
            "server).",
            err=True,
        )
        raise typer.Exit(1) from exc
    except DevelopmentSecretRefused as exc:
        typer.echo(f"connect311-map-api: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"map API on http://{settings.http_host}:{settings.http_port} (database {_safe(settings)})"
    )
    # log_config=None: uvicorn's lines (access log too) go through the one redacting handler.
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level=log_level,
        log_config=None,
        http=http_protocol(app, settings),  # 414/431/408 before the app sees a request
        **proxy_options(settings.trusted_proxies),  # empty: X-Forwarded-For is ignored
    )


def http_protocol(
    app: FastAPI, settings: MapApiSettings, parser: str = "auto"
) -> type[asyncio.Protocol]:
    """uvicorn's protocol with the settings' size caps and read deadlines, refusals counted."""
    limits = HttpLimits(
        max_request_line_bytes=settings.max_request_line_bytes,
        max_header_bytes=settings.max_header_bytes,
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
    )
    refused = app.state.ctx.metrics.http_refused
    return guarded_http(limits, lambda status: refused.labels(str(status)).inc(), parser=parser)


def _safe(settings: MapApiSettings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


def main() -> None:
    """Entry point for [project.scripts] and `python -m connect311_map_api`."""
    cli()

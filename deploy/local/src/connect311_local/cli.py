"""`connect311`: run the whole system locally (broker, four services, mail catcher, demo)."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
import uvicorn
from aiosmtpd.controller import Controller
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from connect311_bus.kafka import ensure_topics
from connect311_contracts.settings import KafkaSettings
from connect311_local import demo
from connect311_local.broker import BrokerStartError, LocalBroker, port_answers, start_broker
from connect311_local.demo_laps import DemoLaps
from connect311_local.mailcatcher import Inbox, inbox_app, start_smtp
from connect311_local.stack import (
    DEMO_FILE,
    LOCAL_METRICS_TOKEN,
    STATE_DIR,
    LocalPorts,
    clear_state,
    log_dir,
    service_specs,
)
from connect311_local.summary import Summary, read_figures
from connect311_local.supervisor import Supervisor

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
console = Console()
ROOT = Path.cwd()


@app.command()
def up(
    speed: Annotated[float, typer.Option(help="Demo replay speed (x real time)")] = 120.0,
    demo_data: Annotated[
        bool, typer.Option("--demo/--no-demo", help="Play the demo day, lap after lap")
    ] = True,
    keep_state: Annotated[
        bool, typer.Option(help="Keep the databases (var/*.db) from the last run")
    ] = False,
    state_dir: Annotated[Path, typer.Option(help="Where local databases and logs go")] = STATE_DIR,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Mirror every service's log to the console")
    ] = False,
    summary_every: Annotated[
        float, typer.Option(min=1.0, help="Seconds between one-line summaries (quiet mode)")
    ] = 60.0,
) -> None:
    """Start broker, mail catcher and the four services; play the demo; Ctrl-C stops all."""
    ports = LocalPorts()
    _refuse_busy_ports(ports)
    if not keep_state:
        clear_state(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    logs = log_dir(state_dir)
    broker = _start_broker(ports.broker_port, logs)
    smtp, inbox_server = _start_mail_catcher(ports)
    supervisor = Supervisor(console, logs, verbose=verbose)
    laps: DemoLaps | None = None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        asyncio.run(
            ensure_topics(KafkaSettings(bootstrap_servers=f"127.0.0.1:{ports.broker_port}"))
        )
        for spec in service_specs(ports, state_dir):
            console.print(f"[bold]starting {spec.name}[/] …")
            supervisor.wait_healthy(supervisor.start(spec))
        laps = (
            DemoLaps(supervisor, ports, state_dir, ROOT / DEMO_FILE, speed) if demo_data else None
        )
        if laps is not None:
            _demo_subscribers(ports)
        # Last on screen after start-up: where everything is and how to stop.
        _banner(ports, logs, verbose=verbose)
        next_summary = time.monotonic() + summary_every
        while not stop.is_set():
            exited = supervisor.first_exited()
            if exited:
                console.print(
                    f"[red]{exited.spec.name} stopped (code "
                    f"{exited.process.returncode}); see {exited.log_path}[/]"
                )
                break
            if laps is not None:
                laps.tick(time.monotonic())
            if not verbose and time.monotonic() >= next_summary:
                next_summary += summary_every
                line = _summary(ports, supervisor, logs)
                console.print(line, highlight=False, markup=False, soft_wrap=True)
            stop.wait(0.5)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, BrokerStartError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    finally:
        # A second Ctrl-C (or uv forwarding the first one) must not cut the clean stop short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        console.print("[bold]stopping…[/]")
        supervisor.stop_all()
        if laps is not None:
            laps.remove_files()
        inbox_server.should_exit = True
        smtp.stop()
        broker.stop()
        console.print("[bold green]stopped cleanly[/]")


def _summary(ports: LocalPorts, supervisor: Supervisor, logs: Path) -> str:
    figures = read_figures(
        ports.http_services(), headers={"Authorization": f"Bearer {LOCAL_METRICS_TOKEN}"}
    )
    return Summary(figures, supervisor.error_lines, str(logs)).line(datetime.now())


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1")] = 9092,
) -> None:
    """Run only the local Kafka-protocol broker, with every topic created, until Ctrl-C."""
    running = _start_broker(port, log_dir(STATE_DIR))
    asyncio.run(ensure_topics(KafkaSettings(bootstrap_servers=running.bootstrap_servers)))
    console.print(f"broker ready at [bold]{running.bootstrap_servers}[/] (Ctrl-C stops it)")
    try:
        running.process.wait()
    except KeyboardInterrupt:
        running.stop()


@app.command()
def mailcatcher(
    smtp_port: Annotated[int, typer.Option(help="SMTP port")] = 1025,
    http_port: Annotated[int, typer.Option(help="Web inbox port")] = 8025,
) -> None:
    """Run only the local mail catcher (SMTP in, web inbox out) until Ctrl-C."""
    inbox = Inbox()
    controller = start_smtp(inbox, smtp_port)
    console.print(f"SMTP on 127.0.0.1:{smtp_port}, inbox at http://localhost:{http_port}")
    try:
        uvicorn.run(inbox_app(inbox), host="127.0.0.1", port=http_port, log_level="warning")
    finally:
        controller.stop()


@app.command()
def status() -> None:
    """Show each local service's health and consumer lag (from its /healthz and /metrics)."""
    ports = LocalPorts()
    table = Table("service", "address", "health", "consumer lag", "detail")
    for name, port in ports.http_services().items():
        state, lag, detail = _service_status(f"http://127.0.0.1:{port}")
        table.add_row(name, f"127.0.0.1:{port}", state, lag, detail)
    broker_up = port_answers(ports.broker_port)
    table.add_row(
        "broker",
        f"127.0.0.1:{ports.broker_port}",
        "[green]up[/]" if broker_up else "[red]down[/]",
        "",
        "" if broker_up else "start everything with `uv run connect311 up`",
    )
    console.print(table)


def consumer_lag(metrics_text: str) -> dict[str, float]:
    """Messages behind per topic, summed over every `*_consumer_lag` gauge in a /metrics page."""
    lag: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if not family.name.endswith("_consumer_lag"):
            continue
        for sample in family.samples:
            topic = sample.labels.get("topic", "")
            lag[topic] = lag.get(topic, 0.0) + sample.value
    return lag


def format_lag(lag: dict[str, float]) -> str:
    """e.g. 'requests.events.v1 0, subscriptions.v1 12'; '-' for a service that consumes nothing."""
    if not lag:
        return "-"
    return ", ".join(f"{topic or '?'} {value:g}" for topic, value in sorted(lag.items()))


def _service_status(base: str) -> tuple[str, str, str]:
    """Health (coloured), consumer lag and a short detail for one service."""
    try:
        health = httpx.get(f"{base}/healthz", timeout=2)
    except httpx.HTTPError:
        return "[red]down[/]", "", "not answering; is `uv run connect311 up` running?"
    state = "[green]up[/]" if health.status_code == 200 else "[yellow]unhealthy[/]"
    try:
        auth = {"Authorization": f"Bearer {LOCAL_METRICS_TOKEN}"}  # the map API needs it
        metrics = httpx.get(f"{base}/metrics", timeout=2, headers=auth)
        lag = format_lag(consumer_lag(metrics.text)) if metrics.status_code == 200 else "?"
    except (httpx.HTTPError, ValueError):  # ValueError: not the Prometheus text format
        lag = "?"
    return state, lag, health.text[:120]


def _refuse_busy_ports(ports: LocalPorts) -> None:
    busy = [f"{name} ({port})" for name, port in ports.all().items() if port_answers(port)]
    if busy:
        console.print(
            f"[red]ports already in use: {', '.join(busy)}.[/] Is another "
            "`connect311 up` running? Stop it (Ctrl-C) and try again."
        )
        raise typer.Exit(1)


def _start_broker(port: int, logs: Path) -> LocalBroker:
    logs.mkdir(parents=True, exist_ok=True)
    running = start_broker(port, log_path=logs / "broker.log")
    console.print(f"[bold]broker[/] up at 127.0.0.1:{port}")
    return running


def _start_mail_catcher(ports: LocalPorts) -> tuple[Controller, uvicorn.Server]:
    inbox = Inbox()
    smtp = start_smtp(inbox, ports.smtp_port)
    config = uvicorn.Config(
        inbox_app(inbox), host="127.0.0.1", port=ports.inbox_port, log_level="warning"
    )
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not port_answers(ports.inbox_port):
        time.sleep(0.05)
    console.print(
        f"[bold]mail catcher[/] SMTP 127.0.0.1:{ports.smtp_port}, inbox http://localhost:{ports.inbox_port}"
    )
    return smtp, server


def _demo_subscribers(ports: LocalPorts) -> None:
    map_api, inbox = (
        f"http://127.0.0.1:{ports.map_api_port}",
        f"http://127.0.0.1:{ports.inbox_port}",
    )
    demo.sign_up(map_api)
    emails = {s["email"] for s in demo.DEMO_SUBSCRIPTIONS}
    confirmed = demo.confirm_from_inbox(inbox, emails)
    console.print(
        f"[bold]demo subscribers[/] confirmed from the inbox: {len(confirmed)}/{len(emails)}"
    )


def _banner(ports: LocalPorts, logs: Path, *, verbose: bool) -> None:
    console.rule("[bold green]Connect311 is running")
    console.print(f"  map            http://localhost:{ports.map_api_port}")
    console.print(f"  mail inbox     http://localhost:{ports.inbox_port}")
    console.print(f"  API docs       http://localhost:{ports.map_api_port}/docs")
    console.print(
        f"  logs           {logs}/<service>.log" + ("" if verbose else "   (--verbose: here too)")
    )
    console.print("  status         uv run connect311 status   (in another terminal)")
    console.print("  stop           Ctrl-C")
    console.rule()


def main() -> None:
    """Entry point of the `connect311` command."""
    app()


if __name__ == "__main__":
    main()

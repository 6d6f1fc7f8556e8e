"""Run several service processes together: prefixed console output, health waits, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console

COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta")


@dataclass(frozen=True)
class ProcessSpec:
    """One process to run: its name, command, extra environment and health URL."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    health_url: str | None = None
    ready_timeout_s: float = 60.0


@dataclass
class Running:
    """A started process and where its output goes."""

    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    log_path: Path


class Supervisor:
    """Starts processes, mirrors their output with a coloured name, stops them all cleanly."""

    def __init__(self, console: Console, log_dir: Path) -> None:
        self.console = console
        self.log_dir = log_dir
        self.running: list[Running] = []

    def start(self, spec: ProcessSpec) -> Running:
        """Start one process; its output goes to the console (prefixed) and a log file."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.name}.log"
        env = {**os.environ, **spec.env, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(  # noqa: S603
            list(spec.argv),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
        running = Running(spec, process, log_path)
        colour = COLOURS[len(self.running) % len(COLOURS)]
        threading.Thread(target=self._pump, args=(running, colour), daemon=True).start()
        self.running.append(running)
        return running

    def _pump(self, running: Running, colour: str) -> None:
        assert running.process.stdout is not None
        with running.log_path.open("ab") as log:
            for line in iter(running.process.stdout.readline, b""):
                log.write(line)
                log.flush()
                text = line.decode(errors="replace").rstrip()
                self.console.print(
                    f"[{colour}]{running.spec.name:>10}[/] │ {text}",
                    markup=True,
                    highlight=False,
                    soft_wrap=True,
                )

    def wait_healthy(self, running: Running) -> None:
        """Block until the process's health URL answers 200; raise if it dies or times out."""
        url = running.spec.health_url
        if url is None:
            return
        deadline = time.monotonic() + running.spec.ready_timeout_s
        while time.monotonic() < deadline:
            if running.process.poll() is not None:
                raise RuntimeError(
                    f"{running.spec.name} exited with code {running.process.returncode}; "
                    f"see {running.log_path}"
                )
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(
            f"{running.spec.name} was not healthy at {url} within "
            f"{running.spec.ready_timeout_s:.0f} s; see {running.log_path}"
        )

    def first_exited(self) -> Running | None:
        """A process that has stopped on its own, if any."""
        return next((r for r in self.running if r.process.poll() is not None), None)

    def stop_all(self, timeout_s: float = 15.0) -> None:
        """SIGTERM every process, newest first, then SIGKILL whatever lingers."""
        for running in reversed(self.running):
            if running.process.poll() is None:
                running.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for running in reversed(self.running):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                running.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                self.console.print(f"[red]{running.spec.name} did not stop in time; killing it[/]")
                running.process.kill()
                running.process.wait()

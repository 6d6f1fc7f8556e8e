"""Run several service processes together: a log file each, health waits, clean stop.

Output goes to `<log_dir>/<name>.log`; with `verbose` it is also mirrored to the console,
prefixed with the process's name. Error lines are counted either way (the local run's summary).
"""

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
    essential: bool = True  # False: may finish or be stopped on its own (a demo lap)


@dataclass
class Running:
    """A started process and where its output goes."""

    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    log_path: Path


_ERROR_LEVELS = frozenset({"ERROR", "CRITICAL"})


def is_error_line(line: str) -> bool:
    """A log line that reports an error: ERROR/CRITICAL in text, JSON or uvicorn's own lines,
    or the start of a traceback."""
    # Text lines are `date time LEVEL service logger message`: only the level field counts,
    # not the word in a message. In JSON lines a message's quotes are escaped, so the key is real.
    fields = line.split(" ", 3)
    return (
        (len(fields) > 2 and fields[2] in _ERROR_LEVELS)
        or '"level": "ERROR"' in line
        or '"level": "CRITICAL"' in line
        or line.startswith(("Traceback (most recent call last)", "ERROR:", "CRITICAL:"))
    )


class Supervisor:
    """Starts processes, logs their output to files (and the console if verbose), stops them."""

    def __init__(self, console: Console, log_dir: Path, *, verbose: bool = True) -> None:
        self.console = console
        self.log_dir = log_dir
        self.verbose = verbose
        self.running: list[Running] = []
        self.error_lines = 0  # over every process, since start
        self._lock = threading.Lock()

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
                if is_error_line(text):
                    with self._lock:
                        self.error_lines += 1
                if not self.verbose:
                    continue
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
        """An essential process that has stopped on its own, if any."""
        return next(
            (r for r in self.running if r.spec.essential and r.process.poll() is not None), None
        )

    def stop(self, running: Running, timeout_s: float = 15.0) -> None:
        """Stop one process (SIGTERM, then SIGKILL) and forget it."""
        if running.process.poll() is None:
            running.process.send_signal(signal.SIGTERM)
            try:
                running.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                running.process.kill()
                running.process.wait()
        self.running.remove(running)

    def forget_finished(self) -> list[Running]:
        """Drop non-essential processes that have finished (a long run keeps no dead entries)."""
        done = [r for r in self.running if not r.spec.essential and r.process.poll() is not None]
        for running in done:
            self.running.remove(running)
        return done

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


__all__ = ["ProcessSpec", "Running", "Supervisor", "is_error_line"]

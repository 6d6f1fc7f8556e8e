"""The whole system as real processes: broker, four services, a real SMTP server."""

from __future__ import annotations

import contextlib
import io
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from connect311_local.broker import LocalBroker, running_broker
from connect311_local.stack import LocalPorts, service_specs
from connect311_local.supervisor import ProcessSpec, Running, Supervisor
from tests.support.smtp import SmtpSink, start_smtp_sink

PUSH_TOKEN = "e2e-push-token"
CONFIRM_LINK = re.compile(r"https?://\S+/api/subscriptions/confirm\?token=[\w.\-]+")


@dataclass
class Stack:
    """A running system and the ways a test talks to it."""

    ports: LocalPorts
    broker: LocalBroker
    sink: SmtpSink
    supervisor: Supervisor
    specs: dict[str, ProcessSpec]

    @property
    def map_api(self) -> str:
        return f"http://127.0.0.1:{self.ports.map_api_port}"

    def push(self, *records: dict[str, Any]) -> dict[str, Any]:
        """Send requests to the ingestor's push endpoint, as a city system would."""
        response = httpx.post(
            f"http://127.0.0.1:{self.ports.ingestor_port}/api/v1/requests",
            json=list(records),
            headers={"Authorization": f"Bearer {PUSH_TOKEN}"},
            timeout=10,
        )
        assert response.status_code < 300, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_for_request(self, service_request_id: str, timeout_s: float = 20) -> dict[str, Any]:
        """The map API's view of a request, once the event has reached it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            response = httpx.get(f"{self.map_api}/api/requests/{service_request_id}", timeout=5)
            if response.status_code == 200:
                found: dict[str, Any] = response.json()
                return found
            time.sleep(0.1)
        raise AssertionError(f"the map API never showed {service_request_id}")

    def subscribe(self, body: dict[str, Any], matcher: bool = True) -> None:
        """Sign up through the public API and click the confirmation link that arrives.

        `matcher`: wait until the matcher holds it (a department digest is never matched).
        """
        before, active = len(self.sink.messages), self.matcher_active_subscriptions()
        response = httpx.post(f"{self.map_api}/api/subscriptions", json=body, timeout=10)
        assert response.status_code == 202, response.text
        message = self.wait_for_mail(lambda m: body["email"] in str(m["To"]), after=before)
        link = CONFIRM_LINK.search(_text(message))
        assert link, f"no confirmation link in: {_text(message)[:500]}"
        url = link.group(0).replace(f"http://localhost:{self.ports.map_api_port}", self.map_api)
        confirmed = httpx.get(url, timeout=10, follow_redirects=False)
        assert confirmed.status_code in (200, 303, 307), confirmed.text
        deadline = time.monotonic() + 30
        while matcher and self.matcher_active_subscriptions() <= active:
            assert time.monotonic() < deadline, "the matcher never applied the confirmation"
            time.sleep(0.1)

    def matcher_active_subscriptions(self) -> float:
        """Active subscriptions the (first) matcher holds, from its metrics."""
        text = httpx.get(f"http://127.0.0.1:{self.ports.matcher_port}/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("matcher_subscriptions{")
        )

    def wait_for_mail(
        self, predicate: Callable[[EmailMessage], bool], after: int = 0, timeout_s: float = 30
    ) -> EmailMessage:
        """The first message (from index `after` on) that satisfies the predicate."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for message in self.sink.messages[after:]:
                if predicate(message):
                    return message
            time.sleep(0.1)
        subjects = [m["Subject"] for m in self.sink.messages]
        raise AssertionError(f"no matching email within {timeout_s} s; got {subjects}")

    def mail_to(self, email: str) -> list[EmailMessage]:
        """Every message delivered to one address so far."""
        return [m for m in self.sink.messages if email in str(m["To"])]

    def restart(self, name: str, kill: bool = True) -> None:
        """Kill (-9) or stop one service and start it again; wait until it is healthy."""
        running = next(
            r for r in self.supervisor.running if r.spec.name == name and r.process.poll() is None
        )
        if kill:
            running.process.kill()
        else:
            running.process.terminate()
        running.process.wait(timeout=30)
        self.start(self.specs[name])

    def start(self, spec: ProcessSpec) -> Running:
        """Start a process and wait for its health check."""
        started = self.supervisor.start(spec)
        self.supervisor.wait_healthy(started)
        return started


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    return str(body.get_content()) if body else ""  # type: ignore[attr-defined]


def readable(message: EmailMessage) -> str:
    """Subject and decoded plain-text body: what a reader sees, whatever the transfer encoding."""
    return f"{message['Subject']}\n{_text(message)}"


def request_record(request_id: str, lat: float, long: float, **fields: Any) -> dict[str, Any]:
    """One request in Open311 field names, reported now."""
    now = datetime.now(UTC).isoformat()
    return {
        "service_request_id": request_id,
        "status": "open",
        "service_code": "POTHOLE",
        "service_name": "Pothole",
        "agency_responsible": "Public Works",
        "description": "Deep pothole in the right lane",
        "address": "100 Central Ave",
        "lat": lat,
        "long": long,
        "requested_datetime": now,
        "updated_datetime": now,
        **fields,
    }


@contextlib.contextmanager
def running_stack(state: Path, extra_env: dict[str, str]) -> Iterator[Stack]:
    """A fresh broker, SMTP server and the four services (with `extra_env`), stopped after."""
    ports = LocalPorts.free()
    with running_broker(log_path=state / "broker.log") as broker:
        ports = ports.model_copy(update={"broker_port": broker.port})
        smtp, sink = start_smtp_sink(ports.smtp_port)
        supervisor = Supervisor(Console(file=io.StringIO()), state / "logs")
        env = {"INGESTOR_PUSH_TOKENS": PUSH_TOKEN, **extra_env}
        specs = {s.name: s for s in service_specs(ports, state, env)}
        stack = Stack(ports, broker, sink, supervisor, specs)
        try:
            for spec in specs.values():
                stack.start(spec)
            yield stack
        finally:
            supervisor.stop_all()
            smtp.stop()
            _print_logs_on_failure(state / "logs")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole system for one test module."""
    extra = {"NOTIFIER_DIGEST_CHECK_S": "1", "NOTIFIER_INSTANT_PER_HOUR": "1000"}
    with running_stack(tmp_path_factory.mktemp("stack"), extra) as running:
        yield running


def _print_logs_on_failure(log_dir: Path) -> None:
    # pytest shows captured output only for failing tests: the service logs explain failures.
    for log in sorted(log_dir.glob("*.log")):
        print(f"----- {log.name} (last 60 lines) -----")
        print("\n".join(log.read_text(errors="replace").splitlines()[-60:]))

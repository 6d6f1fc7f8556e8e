"""bench/notifier.py's receiving servers and what they saw: an SMTP sink and a webhook receiver,
each in its own process (`python bench/notifier_sinks.py --serve-sink|--serve-hooks PORT FILE`)."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller

from connect311_contracts.webhooks import webhook_secret
from connect311_local.broker import free_port, port_answers
from connect311_notifier.webhook_payload import VERIFICATION_TYPE
from connect311_notifier.webhook_signing import SignatureError, verify

HOOK_KEY = "bench-webhook-key"
"""The server key the bench's notifier signs with (the receiver derives each secret)."""


class Sink:
    """An aiosmtpd sink in its own process (so it does not share the notifier's CPU/GIL).

    It appends one line per message accepted ("<recipient> <trace> <message-id> <at>") and
    keeps every one, so a message delivered twice (same Message-ID) is seen and reported.
    """

    keeps_order = True  # lines are appended in the order messages were accepted

    def __init__(self, tmp: Path, port: int | None = None, serve: str = "--serve-sink") -> None:
        self.port = port or free_port()
        self.path = tmp / f"sink-{self.port}.log"
        self.path.touch()
        self.process = subprocess.Popen(
            [sys.executable, __file__, serve, str(self.port), str(self.path)]
        )
        self._read = 0
        self._seen: list[tuple[str, str, str, float]] = []
        self._first_to: dict[str, float] = {}
        self._first_trace: dict[str, float] = {}
        while not port_answers(self.port):
            time.sleep(0.01)

    def deliveries(self) -> list[tuple[str, str, str, float]]:
        """Every message accepted: (recipient, trace id or "-", Message-ID or "-", at).

        Read incrementally (only the lines added since the last call): the bench polls
        this while the notifier runs in the same process, and must not slow it down.
        """
        with self.path.open("rb") as log:
            log.seek(self._read)
            chunk = log.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._read += len(complete)
        for line in complete.decode().splitlines():
            parts = line.split(" ")
            if len(parts) == 4:
                to, trace, mid, at = parts[0], parts[1], parts[2], float(parts[3])
                self._seen.append((to, trace, mid, at))
                self._first_to.setdefault(to, at)
                self._first_trace.setdefault(trace, at)
        return self._seen

    def arrivals(self) -> dict[str, float]:
        """Recipient -> when the sink first accepted a message for it."""
        self.deliveries()
        return self._first_to

    def traced(self) -> dict[str, float]:
        """Trace id (one per command here) -> when the sink first accepted its email."""
        self.deliveries()
        return self._first_trace

    def count(self, wanted: set[str]) -> int:
        """How many of these recipients have mail."""
        return len(wanted.intersection(self.arrivals()))

    def count_traced(self, wanted: set[str]) -> int:
        """How many of these commands (by trace id) have their email."""
        return len(wanted.intersection(self.traced()))

    def duplicates(self) -> int:
        """Messages accepted more than once (by Message-ID): the ledger should make this 0."""
        ids = [mid for _to, _trace, mid, _at in self.deliveries() if mid != "-"]
        return len(ids) - len(set(ids))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class PostfixSink(Sink):
    """Postfix's smtp-sink (C, event-driven): a receiving server that is not the bottleneck.

    It dumps each message to its own file (-d); the file's mtime is when it was accepted.
    Same reading interface as Sink, so every figure and the duplicate check stay the same.
    """

    BINARY = "/usr/sbin/smtp-sink"
    keeps_order = False  # a file's mtime ticks coarsely (ms): equal times cannot be ordered

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        # Its own folder directly in the temp dir (`tmp` is private to us): run as root, it
        # writes as the unprivileged user it switches to. Removed on stop.
        self.folder = Path(tempfile.mkdtemp(prefix=f"c311-smtp-sink-{tmp.name}-"))
        self.folder.chmod(0o777)
        self._done: set[str] = set()
        self._seen = []
        self._first_to = {}
        self._first_trace = {}
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(
            [self.BINARY, *user, "-d", f"{self.folder}/%H%M%S.", f"127.0.0.1:{self.port}", "1024"]
        )
        while not port_answers(self.port):
            time.sleep(0.01)

    def deliveries(self) -> list[tuple[str, str, str, float]]:
        """Every message accepted (new dump files since the last call are read)."""
        with os.scandir(self.folder) as found:
            fresh = [entry for entry in found if entry.name not in self._done]
        for entry in sorted(fresh, key=lambda e: e.stat().st_mtime):
            raw = Path(entry.path).read_bytes()
            if b"\n\n" not in raw:
                continue  # its head is still being written: read it next time
            self._done.add(entry.name)
            head = raw.split(b"\n\n", 1)[0].replace(b"\n", b"\r\n")
            to = header(head, b"X-Rcpt-Args").strip("<>")
            trace, mid = header(head, b"X-Connect311-Trace"), header(head, b"Message-ID")
            at = entry.stat().st_mtime
            self._seen.append((to, trace, mid, at))
            self._first_to.setdefault(to, at)
            self._first_trace.setdefault(trace, at)
        return self._seen

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def header(content: bytes, name: bytes) -> str:
    """One header's value from the message head (no full parse: the sink must stay fast)."""
    head = content.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if line[: len(name) + 1].lower() == name.lower() + b":":
            return line[len(name) + 1 :].strip().split(b" ")[0].decode() or "-"
    return "-"


def serve_sink(port: int, path: Path) -> None:
    """The sink process: accept everything, note who, which and when, until SIGTERM."""
    out = path.open("a", buffering=1)

    class Handler:
        async def handle_EHLO(self, server, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]
            # Offer PIPELINING as Postfix (and the big providers) do; aiosmtpd reads
            # pipelined commands fine but does not say so itself.
            session.host_name = hostname
            return [*responses[:-1], "250-PIPELINING", responses[-1]]

        async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
            now = time.time()
            content = envelope.original_content or b""
            trace = header(content, b"X-Connect311-Trace")
            mid = header(content, b"Message-ID")
            for to in envelope.rcpt_tos:
                out.write(f"{to} {trace} {mid} {now:.6f}\n")
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    controller.stop()
    out.close()


def serve_hooks(port: int, path: Path) -> None:
    """The webhook receiver process: verify, answer, note "<sub> <webhook-id> <id> <at>"."""
    import json

    from aiohttp import web

    out = path.open("a", buffering=1)

    async def handle(request: web.Request) -> web.Response:
        sub = request.match_info["sub"]
        raw = await request.read()
        try:
            verify(webhook_secret(HOOK_KEY, sub, 1), request.headers, raw, time.time())
        except SignatureError:
            return web.Response(status=401)  # the notifier dead-letters it: the bench stalls
        payload = json.loads(raw)
        if payload.get("type") == VERIFICATION_TYPE:
            return web.json_response({"challenge": payload["challenge"]})
        hook_id = request.headers["webhook-id"]
        out.write(f"{sub} {hook_id} {hook_id} {time.time():.6f}\n")
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook/{sub}", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
    out.close()


def make_sink(tmp: Path, postfix: bool) -> Sink:
    """The receiving server: aiosmtpd in its own process, or Postfix's smtp-sink."""
    if not postfix:
        return Sink(tmp)
    if not Path(PostfixSink.BINARY).exists():
        raise SystemExit("smtp-sink not found: apt-get install postfix, or drop --smtp-sink")
    return PostfixSink(tmp)


def in_order(sink: Sink, traces: set[str]) -> bool:
    """Whether each recipient's emails were accepted in the order their commands were sent."""
    by_recipient: dict[str, list[int]] = {}
    for to, trace, _mid, _at in sink.deliveries():
        if trace in traces:
            by_recipient.setdefault(to, []).append(int(trace.rsplit(".", 1)[1]))
    return all(seq == sorted(seq) for seq in by_recipient.values())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A receiving server for bench/notifier.py")
    parser.add_argument("--serve-sink", nargs=2, metavar=("PORT", "FILE"))
    parser.add_argument("--serve-hooks", nargs=2, metavar=("PORT", "FILE"))
    args = parser.parse_args()
    if args.serve_sink:
        serve_sink(int(args.serve_sink[0]), Path(args.serve_sink[1]))
    elif args.serve_hooks:
        serve_hooks(int(args.serve_hooks[0]), Path(args.serve_hooks[1]))

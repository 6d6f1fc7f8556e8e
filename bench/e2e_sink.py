"""bench/e2e.py --smtp-sink: Postfix's smtp-sink (C) as the receiving server, so the relay's
CPU is not the bench's (the Python recorder costs ~0.8 ms per email on these shared cores).

Each message is a dump file whose mtime is when it was accepted (bench/notifier_sinks.py);
the recorder reads the files it has not read yet whenever asked, in the bench's own process.
"""

from __future__ import annotations

import os
from pathlib import Path

from e2e_stack import TAG
from notifier_sinks import PostfixSink, header


class SinkRecorder:
    """The Recorder's interface over smtp-sink's dump folder."""

    def __init__(self, tmp: Path) -> None:
        self.sink = PostfixSink(tmp)
        self.port = self.sink.port
        self.arrived: dict[tuple[int, str], float] = {}
        self.duplicates = 0
        self.untagged = 0
        self._read: set[str] = set()

    def _catch_up(self) -> None:
        with os.scandir(self.sink.folder) as found:
            fresh = [e for e in found if e.name not in self._read]
        for entry in fresh:
            raw = Path(entry.path).read_bytes()
            if not raw.endswith(b"\n") or b"\n\n" not in raw:
                continue  # still being written: read it next time
            self._read.add(entry.name)
            at = entry.stat().st_mtime
            head = raw.split(b"\n\n", 1)[0].replace(b"\n", b"\r\n")
            rcpt = header(head, b"X-Rcpt-Args").strip("<>").lower()
            numbers = {int(n) for n in TAG.findall(raw)}
            if not numbers:
                self.untagged += 1
            for number in numbers:
                if (number, rcpt) in self.arrived:
                    self.duplicates += 1
                else:
                    self.arrived[(number, rcpt)] = at

    def holds(self, keys: set[tuple[int, str]]) -> bool:
        """Whether every one of these emails has arrived."""
        self._catch_up()
        return keys <= self.arrived.keys()

    def snapshot(self) -> dict[tuple[int, str], float]:
        """The arrivals so far."""
        self._catch_up()
        return dict(self.arrived)

    def total(self) -> int:
        """Emails accepted so far."""
        self._catch_up()
        return len(self._read)

    def stop(self) -> None:
        """Stop the sink and remove its folder."""
        self.sink.stop()

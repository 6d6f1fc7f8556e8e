"""The demo feed that keeps flowing: the shipped day replayed lap after lap, with fresh ids.

One replay of the demo day opens all its requests within minutes and then only closes them, so
someone arriving later saw nothing new. Here a new lap starts whenever the previous lap's
openings are done (the day's span of opening times at the replay speed): lap 1 plays the file
as shipped, lap n the same rows with new request numbers (`Unique Key` + (n-1) x 100,000, as a
city's counter would run on). Each lap is the ingestor's own `replay --shift-to-now` of a lap
file with its own name, so its clock starts when the lap starts and never resumes an earlier
lap's saved clock.

A lap's replay runs until its last close, hours later for some requests; at most
`MAX_LAPS_PLAYING` laps play at once, and the oldest is stopped when a new one starts: its
requests that would close later stay open, as a real backlog does.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from connect311_local.stack import LocalPorts, demo_dir, lap_spec
from connect311_local.supervisor import Running, Supervisor

ID_COLUMN = "Unique Key"
CREATED_COLUMN = "Created Date"
CREATED_FORMAT = "%m/%d/%Y %I:%M:%S %p"  # NYC's Socrata export
ID_STRIDE = 100_000  # wider than the ids of one demo day, so laps never collide
MAX_LAPS_PLAYING = 3
MIN_LAP_WALL_S = 5.0  # a file whose openings all share one minute still paces itself
LAPS_PLAYED = "laps-played"  # in the demo folder: the last lap started on these databases


def fresh_id(request_id: str, lap: int) -> str:
    """The request number a row carries in `lap` (1 = as shipped)."""
    if lap == 1:
        return request_id
    if request_id.isdigit():
        return str(int(request_id) + (lap - 1) * ID_STRIDE)
    return f"{request_id}-lap{lap}"  # not a number: still unique per lap


def lap_rows(rows: Iterable[dict[str, str]], lap: int) -> Iterator[dict[str, str]]:
    """The rows of one lap: every column as shipped but the request number."""
    for row in rows:
        yield {**row, ID_COLUMN: fresh_id(row.get(ID_COLUMN, ""), lap)}


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The demo file's header and rows (read once; every lap reuses them)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def write_lap(header: list[str], rows: list[dict[str, str]], lap: int, folder: Path) -> Path:
    """Write lap `lap`'s file (its own name: the replay clock is saved per file name)."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(lap_rows(rows, lap))
    path = folder / f"demo-lap-{lap:05d}.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def opening_span(rows: Iterable[dict[str, str]]) -> timedelta:
    """Feed time from the first opening to the last (rows with unreadable dates are skipped)."""
    created: list[datetime] = []
    for row in rows:
        try:
            created.append(datetime.strptime(row.get(CREATED_COLUMN, ""), CREATED_FORMAT))
        except ValueError:
            continue
    return max(created) - min(created) if created else timedelta(0)


def lap_period_s(rows: Iterable[dict[str, str]], speed: float) -> float:
    """Wall seconds between lap starts: the day's openings played at `speed` x real time."""
    return max(MIN_LAP_WALL_S, opening_span(rows).total_seconds() / speed)


@dataclass
class LapClock:
    """When the next lap is due (monotonic seconds), counting laps from 1."""

    period_s: float
    next_at: float
    lap: int = 0

    def due(self, now: float) -> int | None:
        """The lap to start now, if one is due; the following one is then a period later."""
        if now < self.next_at:
            return None
        self.lap += 1
        # Scheduled from the plan, not from `now`: a late tick does not stretch every lap.
        self.next_at += self.period_s
        return self.lap


def laps_played(counter: Path) -> int:
    """How many laps earlier runs on the same databases started (0 when none or unreadable)."""
    try:
        return max(0, int(counter.read_text(encoding="utf-8").strip()))
    except (OSError, ValueError):
        return 0


class DemoLaps:
    """Starts a demo lap whenever one is due; stops the oldest beyond MAX_LAPS_PLAYING."""

    def __init__(
        self, supervisor: Supervisor, ports: LocalPorts, state: Path, demo_file: Path, speed: float
    ) -> None:
        self.supervisor, self.ports, self.state, self.speed = supervisor, ports, state, speed
        self.header, self.rows = read_rows(demo_file)
        # With kept databases the numbering goes on: an earlier lap's ids and saved replay
        # clock are in the ingestor's database, and replaying them would show nothing new.
        self.counter = demo_dir(state) / LAPS_PLAYED
        self.clock = LapClock(
            lap_period_s(self.rows, speed), next_at=time.monotonic(), lap=laps_played(self.counter)
        )
        self.playing: list[tuple[Running, Path]] = []

    def tick(self, now: float) -> None:
        """Forget finished laps; start the next lap if it is due (stopping the oldest first)."""
        for running in self.supervisor.forget_finished():
            self._drop(running)
        lap = self.clock.due(now)
        if lap is None:
            return
        while len(self.playing) >= MAX_LAPS_PLAYING:
            self.supervisor.stop(self.playing[0][0])
            self._drop(self.playing[0][0])
        path = write_lap(self.header, self.rows, lap, demo_dir(self.state))
        self.counter.write_text(f"{lap}\n", encoding="utf-8")
        self.playing.append(
            (self.supervisor.start(lap_spec(self.ports, self.state, path, self.speed)), path)
        )

    def remove_files(self) -> None:
        """Delete the lap files still playing (after the supervisor stopped every process)."""
        for _, path in self.playing:
            path.unlink(missing_ok=True)
        self.playing.clear()

    def _drop(self, running: Running) -> None:
        for entry in [e for e in self.playing if e[0] is running]:
            self.playing.remove(entry)
            entry[1].unlink(missing_ok=True)


__all__ = [
    "ID_STRIDE",
    "MAX_LAPS_PLAYING",
    "DemoLaps",
    "LapClock",
    "fresh_id",
    "lap_period_s",
    "lap_rows",
    "laps_played",
    "opening_span",
    "read_rows",
    "write_lap",
]

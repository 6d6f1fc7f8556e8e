"""The demo keeps flowing: every lap has fresh request numbers and starts its own clock."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from connect311_local import demo_laps
from connect311_local.demo_laps import (
    ID_STRIDE,
    LapClock,
    fresh_id,
    lap_period_s,
    laps_played,
    read_rows,
    write_lap,
)
from connect311_local.stack import DEMO_FILE, LocalPorts, lap_spec

ROOT = Path(__file__).resolve().parents[3]


def test_lap_one_is_the_file_as_shipped_and_later_laps_number_on() -> None:
    assert fresh_id("56922334", 1) == "56922334"
    assert fresh_id("56922334", 2) == str(56922334 + ID_STRIDE)
    assert fresh_id("56922334", 3) == str(56922334 + 2 * ID_STRIDE)
    assert fresh_id("SR-7", 2) == "SR-7-lap2"


@given(
    ids=st.lists(st.integers(0, ID_STRIDE - 1), min_size=1, max_size=50, unique=True),
    laps=st.integers(1, 40),
)
def test_no_request_number_repeats_across_laps(ids: list[int], laps: int) -> None:
    base = 56_900_000
    numbers = [fresh_id(str(base + i), lap) for lap in range(1, laps + 1) for i in ids]
    assert len(numbers) == len(set(numbers))


def test_a_lap_file_changes_only_the_request_numbers(tmp_path: Path) -> None:
    header, rows = read_rows(ROOT / DEMO_FILE)
    path = write_lap(header, rows, 7, tmp_path)
    assert path.name == "demo-lap-00007.csv"
    lap_header, lap = read_rows(path)
    assert lap_header == header and len(lap) == len(rows) == 1250
    for shipped, played in zip(rows, lap, strict=True):
        assert played["Unique Key"] == str(int(shipped["Unique Key"]) + 6 * ID_STRIDE)
        assert {**played, "Unique Key": shipped["Unique Key"]} == shipped


def test_laps_start_when_the_previous_laps_openings_are_done() -> None:
    _, rows = read_rows(ROOT / DEMO_FILE)
    # The shipped day opens requests from 11:31:12 to 23:45:00: 44,028 s of feed time.
    assert lap_period_s(rows, 120.0) == 44_028 / 120.0
    clock = LapClock(period_s=100.0, next_at=10.0)
    assert clock.due(9.9) is None
    assert clock.due(10.0) == 1
    assert clock.due(50.0) is None
    assert clock.due(111.0) == 2  # late by 1 s: the plan, not the tick, sets the next start
    assert clock.next_at == 210.0


def test_a_short_file_still_paces_its_laps() -> None:
    rows = [{"Created Date": "02/28/2023 11:00:00 AM"}, {"Created Date": "not a date"}]
    assert lap_period_s(rows, 120.0) == demo_laps.MIN_LAP_WALL_S


def test_each_lap_replays_its_own_file_shifted_to_now(tmp_path: Path) -> None:
    lap_file = tmp_path / "demo-lap-00003.csv"
    spec = lap_spec(LocalPorts(), tmp_path, lap_file, 120.0)
    argv = list(spec.argv)
    assert argv[1:3] == ["replay", str(lap_file)]
    # --shift-to-now: the lap's first request opens when the lap starts. The replay clock is
    # saved per file name, so a lap file of its own never resumes an earlier lap's clock.
    assert "--shift-to-now" in argv and "--restart" not in argv
    assert argv[argv.index("--speed") + 1] == "120.0"
    assert not spec.essential  # a finished or stopped lap does not stop the local run


def test_kept_databases_continue_the_lap_numbering(tmp_path: Path) -> None:
    counter = tmp_path / demo_laps.LAPS_PLAYED
    assert laps_played(counter) == 0  # a fresh start
    counter.write_text("12\n")
    clock = LapClock(period_s=1.0, next_at=0.0, lap=laps_played(counter))
    assert clock.due(0.0) == 13  # never lap 1 again: its ids and replay clock are taken
    counter.write_text("garbage")
    assert laps_played(counter) == 0

"""Ingest benchmark: records/s parsed, normalized and published for a 5,000-row city export.

Run: `uv run python bench/ingest.py [--file PATH --profile NAME]`. Starts its own local
broker and a fresh SQLite database. Prints the machine's figures and, in the same run,
baselines that isolate the stages:

  parse      read + parse + normalize only (no Kafka, no database)
  publish    publish pre-built events only (no parsing, no change detection, no database)
  rejects    publish pre-built rejects only (they carry the raw row: bigger messages)
  import     the full path: parse, normalize, detect changes, publish (acks=all), record
  reimport   the same file again: everything unchanged, nothing published
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from machine_info import machine

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = (
    (ROOT.parent / "shared/data/city311/chicago/chicago311_2021-01-01_5000rows.csv", "chicago"),
    (ROOT.parent / "shared/data/city311/nyc/nyc311_2023-02-28_sample4999.csv", "nyc"),
)


async def in_batches(
    send: Callable[[Sequence[Any]], Awaitable[None]], items: Sequence[Any], size: int
) -> None:
    """Send items batch by batch (each batch fully acknowledged before the next)."""
    for start in range(0, len(items), size):
        await send(items[start : start + size])


async def run(path: Path, profile_name: str, repeats: int) -> None:
    from connect311_bus.kafka import ensure_topics
    from connect311_contracts.events import RequestOpened
    from connect311_contracts.settings import KafkaSettings
    from connect311_ingestor.app import running
    from connect311_ingestor.parsers.profiles import get_profile
    from connect311_ingestor.pipeline import to_reject
    from connect311_ingestor.records import Accepted, Rejected
    from connect311_ingestor.settings import IngestorSettings
    from connect311_ingestor.sources.files import import_file, parse_file
    from connect311_local.broker import running_broker

    profile = get_profile(profile_name)
    print(f"machine : {machine()}")
    print(f"input   : {path.name} (profile {profile_name})")

    best_parse = float("inf")
    results: list[Any] = []
    for _ in range(repeats):
        start = time.perf_counter()
        results = list(parse_file(path, profile))
        best_parse = min(best_parse, time.perf_counter() - start)
    rows = len(results)
    accepted = [r.request for r in results if isinstance(r, Accepted)]
    print(f"rows    : {rows} ({len(accepted)} accepted, {rows - len(accepted)} rejected)")

    lines = [("parse", rows, best_parse)]
    best: dict[str, float] = {}

    def keep(name: str, seconds: float) -> None:
        best[name] = min(best.get(name, float("inf")), seconds)

    with running_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        await ensure_topics(kafka)
        events = [RequestOpened(request=r) for r in accepted]
        rejects = [to_reject(r, profile.source) for r in results if isinstance(r, Rejected)]
        for attempt in range(repeats):
            # A fresh database each round: the first import really is a first import.
            settings = IngestorSettings(database_url=f"sqlite:///{tmp}/bench{attempt}.db")
            async with running(settings, kafka) as runtime:
                publisher, size = runtime.ingestor.publisher, settings.batch_size
                started = time.perf_counter()
                await in_batches(publisher.publish_events, events, size)
                keep("publish", time.perf_counter() - started)
                started = time.perf_counter()
                await in_batches(publisher.publish_rejects, rejects, size)
                keep("rejects", time.perf_counter() - started)
                started = time.perf_counter()
                first = await import_file(runtime.ingestor, path, profile, batch_size=size)
                keep("import", time.perf_counter() - started)
                started = time.perf_counter()
                second = await import_file(runtime.ingestor, path, profile, batch_size=size)
                keep("reimport", time.perf_counter() - started)
        published = sum(first.events.values())
        print(f"events  : {published} on first import, {sum(second.events.values())} on reimport")
        print(
            f"timing  : best of {repeats} runs per stage (the least disturbed on a shared machine)"
        )
    lines += [
        ("publish", len(events), best["publish"]),
        ("rejects", len(rejects), best["rejects"]),
        ("import", rows, best["import"]),
        ("reimport", rows, best["reimport"]),
    ]

    print()
    print(f"{'stage':<10}{'records':>10}{'seconds':>10}{'records/s':>12}")
    for name, count, seconds in lines:
        print(f"{name:<10}{count:>10}{seconds:>10.3f}{count / seconds:>12,.0f}")
    parse_rate = rows / best_parse
    _, imported, import_seconds = next(line for line in lines if line[0] == "import")
    import_rate = imported / import_seconds
    print(
        f"\nfull import runs at {import_rate / parse_rate:.0%} of parse-only speed "
        f"({import_rate:,.0f} vs {parse_rate:,.0f} records/s)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, help="export to use (default: a 5,000-row city file)")
    parser.add_argument("--profile", help="column profile for --file (nyc, chicago, ...)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per stage (best kept)")
    args = parser.parse_args()
    if args.file:
        chosen = (args.file, args.profile or "nyc")
    else:
        found = [(p, name) for p, name in CANDIDATES if p.exists()]
        if not found:
            print("SKIPPED: no 5,000-row city export found; expected one of:")
            for p, _ in CANDIDATES:
                print(f"  {p}")
            print("or pass --file PATH --profile NAME")
            sys.exit(0)
        chosen = found[0]
    asyncio.run(run(chosen[0], chosen[1], args.repeats))


if __name__ == "__main__":
    main()

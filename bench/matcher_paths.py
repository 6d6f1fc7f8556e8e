"""bench/matcher.py's main table: the path the service runs, event in -> commands out, for each
design (new, today, lookup alone, PostGIS), raced in turns on the same events."""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matcher_floor import floor_designs, path_parts, print_parts
from matcher_workload import PG_URL, Workload, event_values, subscriptions

from connect311_bus.kafka import decode, encode
from connect311_contracts.events import REQUEST_EVENT_ADAPTER
from connect311_contracts.notifications import recipient_key
from connect311_matcher.commands import encoded_commands
from connect311_matcher.geodesy import EARTH_RADIUS_M, unit_vector
from connect311_matcher.index import SubscriptionIndex
from connect311_matcher.rules import (
    eligible_slots,
    find_hits,
    find_matches,
    grouped_notifications,
)


@dataclass
class Path:
    """One design's run of the per-event path over some events."""

    method: str
    events: int = 0
    seconds: float = 0.0
    commands: int = 0
    matches: int = 0
    outputs: dict[int, set[str]] = field(default_factory=dict)  # subscription ids per event
    loads: list[float] = field(default_factory=list)

    @property
    def eps(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def load(self) -> float:
        return float(np.mean(self.loads)) if self.loads else float("nan")


@dataclass
class Design:
    """How one design handles an event (`one`), what its output names (`digest`: commands,
    matches, subscription ids) and the share of the events it runs (the slow one: fewer)."""

    method: str
    one: Callable[[bytes], Any]
    digest: Callable[[Any], tuple[int, int, set[str]]]
    share: float = 1.0


def race(designs: list[Design], values: list[bytes], rounds: int = 10) -> list[Path]:
    """Every design in turn on each round's events (A B C A B C ...), so a machine whose load
    drifts (other work on it) weighs on each alike. Every output is kept; the clock runs only
    while they are made, and what they name is worked out between rounds (at 1M dense one
    event makes ~17k commands: holding every round's would not fit)."""
    for design in designs:  # warm-up: first-use costs (serializer set-up, caches) untimed
        design.one(values[0])
    paths = [Path(d.method) for d in designs]
    size = max(1, -(-len(values) // rounds))
    for start in range(0, len(values), size):
        chunk = list(enumerate(values[start : start + size], start=start))
        for design, path in zip(designs, paths, strict=True):
            mine = chunk[: max(1, round(len(chunk) * design.share))]
            path.loads.append(os.getloadavg()[0])
            t = time.perf_counter()
            kept = [design.one(value) for _, value in mine]
            path.seconds += time.perf_counter() - t
            path.events += len(mine)
            for (i, _), output in zip(mine, kept, strict=True):
                commands, matches, ids = design.digest(output)
                path.commands += commands
                path.matches += matches
                path.outputs[i] = ids
            # Freed here, off the clock: at 1M dense a chunk's outputs are ~160k objects, and
            # freeing them when `kept` was next bound charged the next design (~0.4 ms/event).
            del kept
    return paths


def path_today(index: SubscriptionIndex) -> Design:
    """The design before issue 15: a Match model per hit, a SubscriberMatched per command."""

    def one(value: bytes) -> Any:
        event = decode(REQUEST_EVENT_ADAPTER, value)
        grouped = grouped_notifications(find_matches(index, event), event)
        return grouped, [
            (recipient_key(c.subscription.email).encode(), encode(c)) for _, c in grouped
        ]

    def digest(output: Any) -> tuple[int, int, set[str]]:
        grouped, out = output
        ids = {m.compiled.subscription_id for matches, _ in grouped for m in matches}
        return len(out), len(ids), ids

    return Design("today: models", one, digest, share=0.1)


def path_new(index: SubscriptionIndex) -> Design:
    """What the service runs now (commands.encoded_commands): plain hits, JSON written once."""

    def one(value: bytes) -> Any:
        return encoded_commands(index, decode(REQUEST_EVENT_ADAPTER, value))

    def digest(out: Any) -> tuple[int, int, set[str]]:
        commands = [json.loads(o.value) for o in out]
        ids = {
            a["subscription"]["subscription_id"] for c in commands for a in [c, *c.get("also", ())]
        }
        return len(out), sum(len(o.kinds) for o in out), ids

    return Design("new: encoded", one, digest)


def path_lookup(index: SubscriptionIndex) -> Design:
    """The index lookup alone (what the earlier figures timed): slots and shapes, no commands."""

    def one(value: bytes) -> Any:
        event = decode(REQUEST_EVENT_ADAPTER, value)
        r = event.request
        slots = eligible_slots(index, index.circles_at(r.lat, r.long), event)
        return set(slots.tolist()) | {c.slot for c, _ in index.shapes_at(r.lat, r.long)}

    def digest(found: Any) -> tuple[int, int, set[str]]:
        return 0, len(found), {index.get(slot).subscription_id for slot in found}

    return Design("lookup only", one, digest)


def path_postgis(db: Any, max_radius: float, max_width: float) -> Design:
    """PostGIS returning the same fields per match: which subscription, distance, radius or
    width and label (the rule text's inputs); one prepared query per event."""
    query = (
        "WITH p AS (SELECT ST_MakePoint(%(o)s, %(a)s)::geography AS g) "
        "SELECT c.id, ST_Distance(c.geog, p.g, false), c.radius_m, c.label FROM circles c, p"
        f" WHERE ST_DWithin(c.geog, p.g, {max_radius}, false)"
        " AND ST_DWithin(c.geog, p.g, c.radius_m, false) "
        "UNION ALL SELECT s.id, ST_Distance(s.geog, p.g, false), s.width_m, s.label"
        f" FROM shapes s, p WHERE ST_DWithin(s.geog, p.g, {max_width}, false)"
        " AND ST_DWithin(s.geog, p.g, s.width_m, false)"
    )

    def one(value: bytes) -> Any:
        r = decode(REQUEST_EVENT_ADAPTER, value).request
        return db.execute(query, {"a": r.lat, "o": r.long}, prepare=True).fetchall()

    def digest(rows: Any) -> tuple[int, int, set[str]]:
        return 0, len(rows), {f"s{row[0]}" for row in rows}

    return Design("postgis", one, digest)


def load_postgis(db: Any, w: Workload, labels: list[str | None]) -> float:
    """Circles and shapes (areas as polygons, corridors as lines) with GiST indexes; seconds."""
    t = time.perf_counter()
    db.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    db.execute(
        "CREATE TABLE circles (id int, geog geography(Point, 4326), radius_m float8, label text)"
    )
    db.execute("CREATE TABLE shapes (id int, geog geography, width_m float8, label text)")
    n_circles = len(w.lat)
    with db.cursor().copy("COPY circles (id, geog, radius_m, label) FROM STDIN") as copy:
        for i, (a, o, r) in enumerate(zip(w.lat, w.lon, w.radius, strict=True)):
            copy.write_row((i, f"SRID=4326;POINT({float(o)!r} {float(a)!r})", float(r), labels[i]))
    with db.cursor().copy("COPY shapes (id, geog, width_m, label) FROM STDIN") as copy:
        for i, shape in enumerate(w.shapes, start=n_circles):
            copy.write_row((i, _shape_wkt(shape), float(shape.get("width_m", 0.0)), labels[i]))
    db.execute("CREATE INDEX ON circles USING gist (geog)")
    db.execute("CREATE INDEX ON shapes USING gist (geog)")
    db.execute("ANALYZE circles")
    db.execute("ANALYZE shapes")
    return time.perf_counter() - t


def _shape_wkt(shape: dict[str, Any]) -> str:
    if shape["kind"] == "corridor":
        line = ", ".join(f"{lon!r} {lat!r}" for lon, lat in shape["coordinates"])
        return f"SRID=4326;LINESTRING({line})"
    rings = ", ".join(
        "(" + ", ".join(f"{lon!r} {lat!r}" for lon, lat in ring) + ")"
        for ring in shape["geometry"]["coordinates"]
    )
    return f"SRID=4326;POLYGON({rings})"


@contextmanager
def postgis_database(skip: bool = False) -> Iterator[tuple[Any, str]]:
    """A fresh database with PostGIS, dropped after; (None, why) when there is none."""
    if skip:
        yield None, "skipped (--no-postgis)"
        return
    try:
        import psycopg
    except ImportError:
        yield None, "psycopg is not installed"
        return
    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        yield None, f"PostgreSQL unreachable at {PG_URL}: {exc}"
        return
    name = f"c311_bench_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(PG_URL.rsplit("/", 1)[0] + f"/{name}", autocommit=True) as db:
            try:
                db.execute("CREATE EXTENSION postgis")
            except psycopg.Error as exc:
                yield None, f"PostGIS missing ({exc}); apt-get install postgresql-15-postgis-3"
                return
            yield db, ""
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def compare_paths(
    label: str, n: int, w: Workload, args: argparse.Namespace, seed: int
) -> list[tuple[str, int, Path]]:
    """Every design over the same events of one workload; rows for the table."""
    t = time.perf_counter()
    subs = subscriptions(w)
    print(f"  {len(subs):,} subscriptions built in {time.perf_counter() - t:.1f} s", flush=True)
    index = SubscriptionIndex()
    index.bulk_loading = True
    t = time.perf_counter()
    for i, sub in enumerate(subs):
        index.upsert(sub)
        if len(subs) >= 200_000 and (i + 1) % 200_000 == 0:
            print(f"    {i + 1:,} indexed", flush=True)
    index.rebuild_now()
    print(f"  index loaded and grid built in {time.perf_counter() - t:.1f} s", flush=True)
    labels = [sub.label for sub in subs]
    del subs  # the service holds no models: their objects would weigh on every GC pass
    gc.collect()
    gc.freeze()  # as the service does once caught up: the index stays out of full GC passes
    values = event_values(w, seed)
    designs = [path_new(index), path_today(index), path_lookup(index)]
    matches = [len(find_hits(index, decode(REQUEST_EVENT_ADAPTER, v))) for v in values]
    designs += [Design(*row) for row in floor_designs(values, matches)]
    if args.parts:
        load = os.getloadavg()[0]
        parts = path_parts(index, values, passes=5 if np.mean(matches) < 1000 else 2)
        print_parts(label, n, parts, float(np.mean(matches)), (load + os.getloadavg()[0]) / 2)
    with postgis_database(args.no_postgis) as (db, why):
        if db is not None:
            built = load_postgis(db, w, labels)
            print(f"  postgis loaded and indexed in {built:.1f} s", flush=True)
            max_width = max((float(s.get("width_m", 0.0)) for s in w.shapes), default=0.0)
            designs.append(path_postgis(db, float(w.radius.max()), max_width))
        else:
            print(f"  postgis: {why}")
        runs = race(designs, values)
    for run in runs:
        print(f"  {run.method}: {run.eps:,.1f} events/s (load {run.load:.1f})", flush=True)
    new = runs[0]
    for run in runs[1:]:
        if run.method.startswith("floor"):  # names nothing: the floor finds no matches
            continue
        both = sorted(run.outputs)
        diff = sum(len(new.outputs[i] ^ run.outputs[i]) for i in both)
        edge = _edge_cases(
            w, [new.outputs[i] ^ run.outputs[i] for i in both], [values[i] for i in both]
        )
        verdict = "agree" if diff == edge else "DISAGREE"
        print(
            f"  new vs {run.method} on {len(both)} events: {verdict}"
            f" ({diff} differences, {edge} of them within 1 cm of a circle's edge)"
        )
    del index
    gc.unfreeze()
    gc.collect()
    return [(label, n, run) for run in runs]


def _edge_cases(w: Workload, differences: list[set[str]], values: list[bytes]) -> int:
    """Differences on a circle's edge (within 1 cm): either side is right there."""
    edge = 0
    for value, differing in zip(values, differences, strict=True):
        r = decode(REQUEST_EVENT_ADAPTER, value).request
        p = np.asarray(unit_vector(r.lat, r.long))
        for sid in differing:
            i = int(sid[1:])
            if i >= len(w.lat):
                continue
            c = np.asarray(unit_vector(w.lat[i], w.lon[i]))
            d = 2 * np.arcsin(min(1.0, float(np.linalg.norm(p - c)) / 2)) * EARTH_RADIUS_M
            edge += abs(d - w.radius[i]) <= 0.01
    return edge


def print_paths(rows: list[tuple[str, int, Path]]) -> None:
    head = (
        f"{'workload':<8} {'subs':>9} {'design':<15} {'events':>7} {'events/s':>10} "
        f"{'matches/ev':>10} {'cmds/ev':>8} {'us/match':>9} {'vs postgis':>10} {'load':>5}"
    )
    print(head)
    print("-" * len(head))
    pg = {(w, n): run.eps for w, n, run in rows if run.method == "postgis"}
    for w, n, run in rows:
        base = pg.get((w, n))
        ratio = f"{run.eps / base:,.1f}x" if base else "-"
        per_match = run.seconds / run.matches * 1e6 if run.matches else float("nan")
        events = max(1, run.events)
        print(
            f"{w:<8} {n:>9,} {run.method:<15} {run.events:>7,} {run.eps:>10,.1f} "
            f"{run.matches / events:>10,.1f} {run.commands / events:>8,.1f} "
            f"{per_match:>9.2f} {ratio:>10} {run.load:>5.1f}"
        )

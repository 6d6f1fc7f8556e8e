"""bench/matcher.py's floor and parts: what any Python matcher on this contract pays per event,
and where the service's path (commands.encoded_commands) spends each event's time.

- floor: decoding the event's bytes (the service's pydantic decode) and, per match, the cheapest
  command write there is (the per-event frame's one %-format, values ready-made): a matcher
  that found its matches for free would still pay this;
- parts: the path cut into its steps, timed step by step as it runs (the best of a few
  passes, so another process's burst does not count); their sum sits close to `whole`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from connect311_bus.kafka import decode
from connect311_contracts.envelope import utc_now
from connect311_contracts.events import REQUEST_EVENT_ADAPTER
from connect311_matcher.commands import _FRAME, _json_string, encoded_commands, uuid5
from connect311_matcher.index import SubscriptionIndex, circle_distances_m
from connect311_matcher.rules import (
    NOTIFICATION_NS,
    Hit,
    circle_rule,
    eligible_slots,
    passes_filters,
    shape_rule,
)

_ID = b"00000000-0000-5000-8000-000000000000"


Floor = tuple[str, Callable[[bytes], Any], Callable[[Any], tuple[int, int, set[str]]]]
"""A row for bench/matcher_paths.race: its name, what it does per event, its (empty) digest."""


def floor_designs(values: list[bytes], matches: list[int]) -> list[Floor]:
    """Two rows for the race: decode alone, and decode plus one frame fill per match (the
    event's match count, found beforehand, off the clock)."""
    count = dict(zip(values, matches, strict=True))
    now = utc_now()

    def decode_only(value: bytes) -> Any:
        return decode(REQUEST_EVENT_ADAPTER, value)

    def with_fills(value: bytes) -> Any:
        event = decode(REQUEST_EVENT_ADAPTER, value)
        frame = _FRAME.for_event(event, now)
        fill = frame.fill
        return [fill(_ID, b"{}", b"1.0", b'"r"') for _ in range(count[value])]

    def nothing(_: Any) -> tuple[int, int, set[str]]:
        return 0, 0, set()

    def fills(out: Any) -> tuple[int, int, set[str]]:
        return 0, len(out), set()  # as many matches as the event has, for us/match

    return [("floor: decode", decode_only, nothing), ("floor: +fills", with_fills, fills)]


def path_parts(index: SubscriptionIndex, values: list[bytes], passes: int = 5) -> dict[str, float]:
    """Microseconds per event for each step of decode + encoded_commands.

    The steps run in the path's own order, event after event (timed one by one, so caches
    are as cold as the service's), as commands.encoded_commands and rules.find_hits run
    them; the pass with the least total counts. `whole` is the real path, for comparison.
    """
    clock = time.perf_counter_ns
    names = list(_STEPS)
    best: list[int] = []
    now = utc_now()
    for _ in range(passes):
        spent = [0] * len(names)
        for value in values:
            t = [clock()]
            event = decode(REQUEST_EVENT_ADAPTER, value)
            t.append(clock())
            r = event.request
            found = index.circles_at(r.lat, r.long)
            t.append(clock())
            slots = eligible_slots(index, found, event)
            t.append(clock())
            circles = [index.get(x) for x in slots.tolist()]
            away = circle_distances_m(index.slots.unit[slots], r.lat, r.long)
            radii = index.slots.radius_m[slots].tolist()
            keys = index.recipients(slots)
            t.append(clock())
            hits: list[Hit] = [
                (k, c, d, circle_rule(radius, c.label, d))
                for k, c, d, radius in zip(keys, circles, away, radii, strict=True)
            ]
            t.append(clock())
            for c, d in index.shapes_at(r.lat, r.long):
                if passes_filters(c.filters, event):
                    hits.append((index.recipient(c.slot), c, d, shape_rule(c, d)))
            t.append(clock())
            index.citywide(r), index.followers(r.service_request_id)
            t.append(clock())
            frame = _FRAME.for_event(event, now)
            prefix = NOTIFICATION_NS.bytes + f"{event.event_id}/".encode()
            ids = hashlib.sha1(prefix, usedforsecurity=False)
            t.append(clock())
            uuids = [uuid5(ids, c.subscription_id).encode() for _, c, _, _ in hits]
            t.append(clock())
            for u, (_, c, d, rule) in zip(uuids, hits, strict=True):
                distance = b"null" if d is None else repr(d).encode()
                frame.fill(u, c.raw, distance, _json_string(rule[:500]).encode())
            t.append(clock())
            for i in range(len(names)):
                spent[i] += t[i + 1] - t[i]
        if not best or sum(spent) < sum(best):
            best = spent
    n = len(values)
    out = {name: ns / n / 1e3 for name, ns in zip(names, best, strict=True)}
    out["sum of the parts"] = sum(out.values())
    whole = float("inf")
    for _ in range(passes):
        t0 = clock()
        for value in values:
            encoded_commands(index, decode(REQUEST_EVENT_ADAPTER, value))
        whole = min(whole, clock() - t0)
    out["whole: decode + encoded_commands"] = whole / n / 1e3
    return out


_STEPS = (
    "decode (pydantic)",
    "circles: grid lookup",
    "circles: filters",
    "circles: distances, keys",
    "circles: rule text",
    "areas + corridors",
    "city-wide + follows",
    "command: event frame",
    "command: ids (uuid5)",
    "command: fills",
)


def print_parts(label: str, n: int, parts: dict[str, float], matches: float, load: float) -> None:
    print(f"  where the time goes ({label}, {n:,}; {matches:,.1f} matches/event; load {load:.1f}):")
    for name, us in parts.items():
        print(f"    {name:<34} {us:>10,.2f} us/event")

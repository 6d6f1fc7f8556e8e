"""Address search over the stored requests' own addresses (works offline, no third party).

Searching the requests table per keystroke cost ~0.5 s at 200,000 requests (LIKE '% x%'
cannot use an index), so the distinct addresses are read once into memory, most used first,
and re-read every few minutes; a search is then a plain substring scan with an early stop.
No regular expression is involved, so no text can make it backtrack.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from connect311_map_api.core.places import Place
from connect311_map_api.db.tables import requests

__all__ = ["MAX_ADDRESSES", "REFRESH_S", "AddressBook"]

r = requests.c
REFRESH_S = 300.0  # new addresses become searchable within five minutes
MAX_ADDRESSES = 300_000  # the most used ones; a city has far fewer distinct addresses


@dataclass(frozen=True)
class _Entry:
    key: str  # casefolded, whitespace-folded address
    label: str
    lat: float
    long: float
    requests: int

    def place(self) -> Place:
        return Place(self.label, self.lat, self.long, "requests", self.requests)


class AddressBook:
    """The distinct request addresses with their mean position, rebuilt when stale."""

    def __init__(
        self, engine: Engine, refresh_s: float = REFRESH_S, max_addresses: int = MAX_ADDRESSES
    ) -> None:
        self.engine = engine
        self.refresh_s = refresh_s
        self.max_addresses = max_addresses
        self._entries: list[_Entry] | None = None
        self._built_at = 0.0
        self._lock = threading.Lock()

    def _read(self) -> list[_Entry]:
        n = func.count().label("n")
        query = (
            select(r.address, func.avg(r.lat), func.avg(r.long), n)
            .where(r.address.is_not(None))
            .group_by(r.address)
            .order_by(n.desc(), r.address)
            .limit(self.max_addresses)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            _Entry(" ".join(a.split()).casefold(), a, float(lat), float(long), int(k))
            for a, lat, long, k in rows
            if a and a.strip()
        ]

    def _current(self) -> list[_Entry]:
        entries = self._entries
        fresh = time.monotonic() - self._built_at < self.refresh_s
        if entries is not None and fresh:
            return entries
        # One thread re-reads; the others answer from the previous list meanwhile.
        if not self._lock.acquire(blocking=entries is None):
            return entries or []
        try:
            if self._entries is None or time.monotonic() - self._built_at >= self.refresh_s:
                self._entries = self._read()
                self._built_at = time.monotonic()
            return self._entries
        finally:
            self._lock.release()

    def search(self, query: str, limit: int) -> list[Place]:
        """Addresses that start with `query`, then ones with a word that does, most used
        first ("Central" finds "100 Central Ave"); case and runs of spaces do not matter."""
        text = " ".join(query.split()).casefold()
        word = " " + text
        starts: list[_Entry] = []
        inner: list[_Entry] = []
        for entry in self._current():
            if entry.key.startswith(text):
                starts.append(entry)
                if len(starts) == limit:
                    break
            elif len(inner) < limit and word in entry.key:
                inner.append(entry)
        return [e.place() for e in (starts + inner)[:limit]]

"""Stable ids for exports that have none (a police incident list: time, address, offence).

With a profile's `id_columns`, a row's id is the first 16 hex digits of the SHA-256 of
those columns' values (trimmed, inner whitespace collapsed, joined by a separator that
cannot occur in a cell). Re-importing the same export gives every row the same id, so
nothing is published twice. Rows whose values are all the same (six missing persons
reported at one address and minute) are distinct records: the second gets "-2", the third
"-3", in file order, which a re-import repeats.

Address and coordinate columns enter the digest as they are published (the hundred block,
the rounded point; see `generalise`): a digest of the exact address could be reversed by
trying every house number on the block, so the id says no more than the map does.

A corrected row (another offence) is a new record; the old one stays as it was published.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from typing import Any

from connect311_ingestor.parsers.generalise import block_address, round_coordinate
from connect311_ingestor.parsers.profiles import ColumnProfile, column_names
from connect311_ingestor.parsers.text import present

__all__ = ["DerivedIds"]

_SEPARATOR = "\x1f"  # the ASCII unit separator: never part of a CSV cell's text


class DerivedIds:
    """Hands out the derived id of each row of ONE export, in file order."""

    def __init__(self, profile: ColumnProfile) -> None:
        self._columns = profile.id_columns
        self._addresses = (
            set(column_names(profile.columns.address)) if profile.generalise_address else set()
        )
        coordinates = (*column_names(profile.columns.lat), *column_names(profile.columns.long))
        self._coordinates = set(coordinates) if profile.coordinate_decimals else set()
        self._decimals = profile.coordinate_decimals
        self._seen: Counter[str] = Counter()

    def _published(self, column: str, value: Any) -> str:
        if not present(value):
            return ""
        text = " ".join(str(value).split())
        if column in self._addresses:
            return str(block_address(text))
        if column in self._coordinates:
            try:
                return repr(round_coordinate(float(text), self._decimals))
            except ValueError:
                return text  # not a number: the row is rejected for it anyway
        return text

    def next(self, row: Mapping[str, Any]) -> str | None:
        """The row's id, or None when every identifying column is empty."""
        values = [self._published(column, row.get(column)) for column in self._columns]
        if not any(values):
            return None
        digest = hashlib.sha256(_SEPARATOR.join(values).encode("utf-8", "replace")).hexdigest()
        key = digest[:16]
        self._seen[key] += 1
        count = self._seen[key]
        return key if count == 1 else f"{key}-{count}"

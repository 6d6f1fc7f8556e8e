"""A row's cells made ready before any field is read (pure): the profile's "empty" markers
(`missing_values`, e.g. R's `NA`) become empty cells, and with `drop_address_notes` the
parenthesised notes after an address go.

Why drop address notes: the Syracuse code-enforcement export writes the unit
(`508-10 Brighton Ave W (Unit 30)`) and, on a few rows, people's names
(`100 Buckingham Ave (norman Jemal)`) in brackets after the address. A unit ties a case to
one flat, a name to a person; neither belongs on a public map. Done here, before parsing,
so the note reaches no event, no state table and no reject.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connect311_ingestor.parsers.profiles import ColumnProfile, column_names

__all__ = ["drop_notes", "prepare_row"]

# "(" up to the next ")" or the end: one negated class, so matching is linear.
_NOTE = re.compile(r"\([^)]*\)?")


def drop_notes(text: str) -> str:
    """An address without its parenthesised notes (whitespace collapsed)."""
    if "(" not in text and ")" not in text:
        return text
    return " ".join(_NOTE.sub(" ", text).replace(")", " ").split())


def prepare_row(row: Mapping[str, Any], profile: ColumnProfile) -> Mapping[str, Any]:
    """The row with missing markers emptied and address notes dropped (as the profile says)."""
    marks = frozenset(profile.missing_values)
    addresses = column_names(profile.columns.address) if profile.drop_address_notes else ()
    if not marks and not addresses:
        return row
    out = {k: "" if isinstance(v, str) and v.strip() in marks else v for k, v in row.items()}
    for name in addresses:
        value = out.get(name)
        if isinstance(value, str):
            out[name] = drop_notes(value)
    return out

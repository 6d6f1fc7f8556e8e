"""Exact places made coarse before a record is stored, for exports that name crime scenes.

A public map of crime incidents must not point at a home. With a profile's
`generalise_address = "block"` the address keeps only its hundred block, and with
`coordinate_decimals` the point is rounded, both in the parser: the exact values never
reach an event, the ingestor's state table or the map.

Block rule (`block_address`): a LEADING house number becomes the hundred block it is in,
and its unit letter, range end or fraction is dropped:

- "3108 OCCIDENTAL DR" -> "3100 block of OCCIDENTAL DR"
- "22 BECKFORD CT" -> "0 block of BECKFORD CT" (numbers under 100 are the 0 block)
- "1514A MCALLISTER AVE", "4488 1/2 65TH ST", "122-24 Fage Ave" -> the 1500, 4400, 100 block
- intersections ("3RD ST / O ST") and addresses that do not start with a house number are
  kept as they are: they name no house. An ordinal street ("14TH AVE") is not a number.

Rounding (`round_coordinate`): 3 decimals is a grid of about 110 m north-south (90 m
east-west at 40 degrees latitude): enough for "near my school" alerts within 500 m, too
coarse to single out a house. Every incident in a grid cell shares its corner point.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["block_address", "round_coordinate"]

# A house number, an optional range end ("122-24") or unit letter ("1514A"), an optional
# fraction ("1/2"), then the street (whitespace is collapsed first). Each part is a single
# character class in sequence, so matching is linear; an ordinal ("14TH") fails on its
# second letter and a number before "/" is one street of an intersection: both are kept.
_HOUSE = re.compile(r"(\d+)(?:-\d+)?[A-Za-z]?(?:\s\d/\d)?(?:\s([^\s/].*))?", re.DOTALL)


def block_address(value: Any) -> Any:
    """The hundred block of an address that starts with a house number; others unchanged."""
    if not isinstance(value, str):
        return value
    text = " ".join(value.split())
    match = _HOUSE.fullmatch(text)
    if match is None:
        return value
    number = match.group(1).lstrip("0") or "0"
    # The hundred block by the digits themselves (no int(): any length is fine).
    block = number[:-2] + "00" if len(number) > 2 else "0"
    street = match.group(2)
    return f"{block} block of {street}" if street else f"{block} block"


def round_coordinate(value: float, decimals: int | None) -> float:
    """A coordinate rounded to `decimals` places (unchanged when None)."""
    return value if decimals is None else round(value, decimals)

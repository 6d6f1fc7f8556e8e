"""Categories a source's operator does not want ingested (test issues, internal work orders).

Set per source: `exclude_service_codes` / `exclude_service_names` on a profile, an Open311
feed or a SeeClickFix feed. Applied in one place, the ingest step (`pipeline.Ingestor`),
which every source passes through, and by `check`: an excluded record is counted as
`excluded` for its source (summary and `ingestor_records_excluded`), never published,
never stored and never a reject (nothing is wrong with it).

Codes match exactly (after trimming); names match ignoring case and surrounding spaces,
since cities retype their category titles.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from connect311_contracts.request import ServiceRequest

__all__ = ["NOTHING_EXCLUDED", "Exclusion"]


@dataclass(frozen=True)
class Exclusion:
    """The service codes and names a source leaves out."""

    codes: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()

    @classmethod
    def of(cls, codes: Iterable[str] = (), names: Iterable[str] = ()) -> Exclusion:
        """From settings lists (blank entries ignored)."""
        return cls(
            frozenset(c.strip() for c in codes if c.strip()),
            frozenset(n.strip().casefold() for n in names if n.strip()),
        )

    def __bool__(self) -> bool:
        return bool(self.codes or self.names)

    def excludes(self, request: ServiceRequest) -> bool:
        """Whether the request's category is one the source leaves out."""
        code = (request.service_code or "").strip()
        name = (request.service_name or "").strip().casefold()
        return (bool(code) and code in self.codes) or (bool(name) and name in self.names)


NOTHING_EXCLUDED = Exclusion()

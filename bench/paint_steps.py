"""Where a repaint's time goes (bench/map_paint.py): the map's own Performance API marks.

mapview.js marks the steps of a view change (`c311:<step>`): a zoom's `zoomanim` (its tiles
asked as the animation starts), `ready` (what the view it goes to shows, built hidden while
the animation plays), `moveend` (the animation's end), `tiles` (the view's tile bodies in
hand), `drawn` (markers and groups placed) and `painted` (the frame after). Each step is
timed from the person's pointer release, its first mark after it; a step that a variant
never marks (an older mapview.js) is left out. Also counted: the data tiles a visit read over
the network (tiles read ahead for a zoom included).
"""

from __future__ import annotations

from playwright.sync_api import Page

# {step: ms after the action} for the first `c311:*` mark of each step after `since`.
STEPS_AFTER = """since => {
  const out = {};
  for (const e of performance.getEntriesByType("mark")) {
    if (!e.name.startsWith("c311:") || e.startTime < since) continue;
    const step = e.name.slice(5);
    if (!(step in out)) out[step] = e.startTime - since;
    if (step === "painted") break;
  }
  return out;
}"""


# Data tiles the page read over the network (a browser-cache hit transfers 0 bytes): what a
# visit costs the server or the proxy in front, tiles read ahead included.
TILE_READS = """() => performance.getEntriesByType("resource")
  .filter(e => e.name.includes("/api/tiles/") && e.transferSize > 0).length"""
# Resource Timing keeps 250 entries by default, fewer than a visit's base-map and data tiles.
MORE_ENTRIES = "performance.setResourceTimingBufferSize(5000);"


def tile_reads(page: Page) -> int:
    """The data tiles this page has read over the network so far."""
    return int(page.evaluate(TILE_READS))


def steps_after(page: Page, since: float) -> dict[str, float]:
    """The map's steps after `since` (ms in the page's clock), up to its next paint."""
    return {str(k): float(v) for k, v in page.evaluate(STEPS_AFTER, since).items()}


def show_steps(action: str, samples: list[dict[str, float]]) -> str:
    """One line: each step's median ms after the action, in the order they happened."""
    if not samples:
        return ""
    names = {name for sample in samples for name in sample}
    medians, counts = {}, {}
    for name in names:
        values = sorted(sample[name] for sample in samples if name in sample)
        medians[name], counts[name] = values[len(values) // 2], len(values)
    order = sorted(medians, key=lambda name: medians[name])
    # A step some repetitions never reached (e.g. a zoom's tiles arrived after it ended, so
    # nothing was made ready while it played) says in how many it did.
    return f"  {action} steps (ms p50 after release): " + ", ".join(
        f"{name} {medians[name]:.0f}"
        + (f" ({counts[name]}/{len(samples)})" if counts[name] < len(samples) else "")
        for name in order
    )

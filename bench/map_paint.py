"""Map paint benchmark: real headless Chromium times the map's first view, a pan and a zoom.

    uv run python bench/map_paint.py                  # 1M requests, 20 repetitions per row
    uv run python bench/map_paint.py --quick          # 5k requests, 3 repetitions (CI smoke)
    uv run python bench/map_paint.py --db /tmp/city1m.db --reduced-motion   # no zoom animation

Seeds the synthetic city of bench/map_api.py into SQLite, starts the map API (one uvicorn
worker, no Kafka; bench/map_tiles.py starts it) and times the map page (`/`) in Debian's
headless Chromium (tests/e2e/web/conftest.py: same binary and flags) with the Performance
API inside the page:
- first view: navigation start -> the map's `c311:painted` mark (mapview.js sets it on the
  frame after a view's markers or groups are drawn, MarkerCluster's chunks included);
- pan (a mouse drag of 400 x 250 px, held still before release, so no inertia), zoom in and
  zoom out (the map's + and - buttons): the `pointerup` event's timestamp -> the next
  `c311:painted` mark. That includes Leaflet's 250 ms zoom animation and the map's 150 ms
  wait after a move (a drag's burst of moves loads once); "load" is the map's own part,
  from asking the tiles to drawing them (`data-load-ms`).
Rows: empty browser cache (a new browser context per repetition) or warm (one context,
visited once before timing), the API with its tile cache off (every tile rendered from the
database) or on (the default max-age), directly or through nginx with
deploy/nginx/map-api.conf (when installed). The first view is a street view at --zoom
centred on the city (MAP_API_MAP_CENTER_*). Base-map tiles come from a local server (a
blank PNG, cached a day), so only the map's own data is timed. The per-client read limit is
off (every repetition is 127.0.0.1). Each row also names the API request the first view
waited for last (Resource Timing). `--db FILE` keeps the seeded city for the next run (also
bench/map_tiles.py's). `--baseline-js DIR` also times a copy of the API serving DIR's page
scripts (e.g. the previous mapview.js and mapparts.js), interleaved with this tree's, row by
row (paint_servers.py). Each row also says where a zoom's time went, from the map's own
marks, and how many data tiles a visit read over the network (paint_steps.py). `--dwell-ms`
holds each view that long before the next gesture, as a person looks at it (the map reads a
zoom's tiles ahead once a view stays still; 0, the default, acts at once). Targets (issue
15): first view <= 1 s, pan/zoom <= 300 ms. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine_info import machine
from map_api import CITY, percentiles  # the other map benches' synthetic city
from map_tiles import seeded_database, stop  # the same city, server and proxy set-up
from paint_servers import base_map_server, baseline_env, baseline_tree, start_servers
from paint_steps import MORE_ENTRIES, show_steps, steps_after, tile_reads
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

from tests.e2e.web.conftest import CHROMIUM, CHROMIUM_ARGS

FIRST_VIEW_TARGET_MS = 1000.0
REPAINT_TARGET_MS = 300.0
VIEWPORT: ViewportSize = {"width": 1440, "height": 900}
PAN_PX = (400, 250)
WAIT_MS = 30_000  # one step that has not painted by then counts as failed
ACTIONS = ("pan", "zoom in", "zoom out")
BASE = "~base"  # the rows timed with --baseline-js's page scripts

# Every pointer release stamps a mark in the page's own clock (capture phase: before
# Leaflet sees the event), so an action is timed from when the person let go.
ACTION_MARKS = """
addEventListener("pointerup", function (e) {
  performance.mark("bench:action", { startTime: e.timeStamp });
}, true);
"""
PAINTED = "performance.getEntriesByName('c311:painted')"
# [path, ms] of the same-origin /api/ request that finished last before `painted`.
LAST_API = r"""painted => performance.getEntriesByType("resource")
  .filter(e => e.name.startsWith(location.origin + "/api/") && e.responseEnd <= painted)
  .map(e => [new URL(e.name).pathname.replace(/\d+\/\d+\/\d+\.json$/, "{z}/{x}/{y}.json"),
             e.responseEnd - e.startTime, e.responseEnd])
  .reduce((last, e) => (last && last[2] > e[2] ? last : e), null)"""


@dataclass(frozen=True)
class Row:
    """One configuration: where the page comes from and what the browser has cached."""

    key: str
    title: str
    server: str  # "cold" (tile cache off), "warm" (default tile cache) or "proxy" (nginx)
    warm_browser: bool


ROWS = (
    Row("cold", "direct, empty browser cache, API tile cache off", "cold", False),
    Row("server-warm", "direct, empty browser cache, API tile cache on", "warm", False),
    Row("browser-warm", "direct, warm browser cache", "warm", True),
    Row("proxy", "via nginx, empty browser cache, proxy cache warm", "proxy", False),
    Row("proxy-browser-warm", "via nginx, warm browser cache", "proxy", True),
)


@dataclass
class Figures:
    """Milliseconds per step over the repetitions of one row."""

    first: list[float] = field(default_factory=list)
    repaint: dict[str, list[float]] = field(default_factory=lambda: {a: [] for a in ACTIONS})
    load: dict[str, list[float]] = field(default_factory=lambda: {a: [] for a in ACTIONS})
    # The map's own marks per action (paint_steps.py): where a repaint's time went.
    steps: dict[str, list[dict[str, float]]] = field(
        default_factory=lambda: {a: [] for a in ACTIONS}
    )
    failed: int = 0
    reads: list[float] = field(default_factory=list)  # data tiles read from the network per visit
    icons: int = 0  # markers and groups on screen at the first view (the last repetition)
    # The first view's long pole: the API request that answered last before it was painted.
    last_api: list[tuple[str, float]] = field(default_factory=list)


def painted_count(page: Page) -> int:
    return int(page.evaluate(f"{PAINTED}.length"))


def wait_painted(page: Page, before: int) -> float:
    """Wait for the next `c311:painted` mark; its time (ms since navigation start)."""
    page.wait_for_function(f"n => {PAINTED}.length > n", arg=before, timeout=WAIT_MS)
    return float(page.evaluate(f"{PAINTED}[{before}].startTime"))


def load_ms(page: Page) -> float:
    return float(page.locator("#map").get_attribute("data-load-ms") or "nan")


def act(page: Page, action: str) -> tuple[float, float, dict[str, float]]:
    """Do one action as a person would; (action -> repainted, the map's load) in ms, and
    the map's steps in between."""
    before = painted_count(page)
    page.evaluate("performance.clearMarks('bench:action')")
    box = page.locator("#map").bounding_box()
    assert box is not None, "the map has no box"
    if action == "pan":
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x - PAN_PX[0], y - PAN_PX[1], steps=12)
        page.wait_for_timeout(100)  # held still: Leaflet adds no inertia after the release
        page.mouse.up()
    else:
        button = "in" if action == "zoom in" else "out"
        page.locator(f".leaflet-control-zoom-{button}").click()
    painted = wait_painted(page, before)
    acted = float(page.evaluate("performance.getEntriesByName('bench:action').pop().startTime"))
    return painted - acted, load_ms(page), steps_after(page, acted)


def visit(context: BrowserContext, url: str, figures: Figures | None, dwell_ms: int = 0) -> None:
    """Open the map, wait for its first view, then pan, zoom in and zoom out; each view is
    held `dwell_ms` before the next gesture (and after the last, so that every visit's tile
    reads are counted alike)."""
    page = context.new_page()
    try:
        page.goto(url)
        first = wait_painted(page, 0)
        icons = page.locator("#map .leaflet-marker-icon").count()
        last_api = page.evaluate(LAST_API, first)
        repaints = []
        for action in ACTIONS:
            if dwell_ms:
                page.wait_for_timeout(dwell_ms)
            repaints.append(act(page, action))
        if dwell_ms:
            page.wait_for_timeout(dwell_ms)
        reads = tile_reads(page)
    finally:
        page.close()
    if figures is not None:
        figures.first.append(first)
        figures.reads.append(reads)
        figures.icons = icons
        if last_api:
            figures.last_api.append((last_api[0], last_api[1]))
        for action, (repaint, load, steps) in zip(ACTIONS, repaints, strict=True):
            figures.repaint[action].append(repaint)
            figures.load[action].append(load)
            figures.steps[action].append(steps)


def new_context(browser: Browser, still: bool) -> BrowserContext:
    """A browser profile of its own (its own HTTP cache) whose pages mark pointer releases;
    `still`: the person asked their system for reduced motion (the map then skips its zoom
    and fade animations)."""
    motion: Literal["reduce", "no-preference"] = "reduce" if still else "no-preference"
    context = browser.new_context(viewport=VIEWPORT, reduced_motion=motion)
    context.add_init_script(ACTION_MARKS + MORE_ENTRIES)
    return context


def run_row(
    browser: Browser, row: Row, urls: list[str], reps: int, still: bool, dwell_ms: int = 0
) -> list[Figures]:
    """`reps` timed visits per variant (one URL each), interleaved, the order alternating per
    repetition; a warm row visits once untimed first, in each variant's own context."""
    figures = [Figures() for _ in urls]
    warm = [new_context(browser, still) for _ in urls] if row.warm_browser else []
    try:
        for context, url in zip(warm, urls, strict=False):
            visit(context, url, None, dwell_ms)
        for rep in range(reps):
            order = list(range(len(urls)))
            for i in order if rep % 2 == 0 else order[::-1]:
                context = warm[i] if warm else new_context(browser, still)
                try:
                    visit(context, urls[i], figures[i], dwell_ms)
                except Exception as exc:  # a step that never painted: counted, said, run goes on
                    figures[i].failed += 1
                    print(f"  {row.key}: a repetition failed: {str(exc).splitlines()[0]}")
                finally:
                    if not warm:
                        context.close()
    finally:
        for context in warm:
            context.close()
    return figures


def show(samples: list[float]) -> str:
    if not samples:
        return f"{'-':>13}"
    p50, p95 = percentiles(samples)
    return f"{p50:>6.0f}/{p95:>6.0f}"


def report(key: str, figures: Figures) -> None:
    cells = [show(figures.first)] + [show(figures.repaint[a]) for a in ACTIONS]
    loads = " ".join(show(figures.load[a]) for a in ACTIONS)
    print(
        f"{key:<19} {'  '.join(cells)}   load {loads}  icons {figures.icons:>4}"
        f"  tile reads {percentiles(figures.reads)[0] if figures.reads else 0:.0f}"
        f"  n={len(figures.first)} failed={figures.failed}",
        flush=True,
    )
    if figures.last_api:
        paths = [path for path, _ in figures.last_api]
        common = max(set(paths), key=paths.count)
        took = percentiles([ms for path, ms in figures.last_api if path == common])[0]
        print(
            f"  first view waited last for {common} ({paths.count(common)} of {len(paths)}; "
            f"it took {took:.0f} ms p50)"
        )
    for action in ACTIONS[1:]:  # the zooms: where their time went
        if line := show_steps(action, figures.steps[action]):
            print(line)


def verdict(results: dict[str, Figures]) -> None:
    """Which rows meet the targets (p95 of every repetition)."""
    for key, figures in results.items():
        if not figures.first:
            continue
        first95 = percentiles(figures.first)[1]
        worst = max(percentiles(figures.repaint[a])[1] for a in ACTIONS if figures.repaint[a])
        print(
            f"{key}: first view p95 {first95:.0f} ms "
            f"({'meets' if first95 <= FIRST_VIEW_TARGET_MS else 'misses'} <= "
            f"{FIRST_VIEW_TARGET_MS:.0f}); slowest pan/zoom p95 {worst:.0f} ms "
            f"({'meets' if worst <= REPAINT_TARGET_MS else 'misses'} <= {REPAINT_TARGET_MS:.0f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeded", type=int, default=1_000_000, help="requests stored")
    parser.add_argument("--reps", type=int, default=20, help="timed repetitions per row")
    parser.add_argument("--zoom", type=int, default=16, help="zoom of the first view")
    parser.add_argument(
        "--rows", default=",".join(r.key for r in ROWS), help="rows to run, comma-separated"
    )
    parser.add_argument("--quick", action="store_true", help="5k requests, 3 repetitions")
    parser.add_argument(
        "--reduced-motion",
        action="store_true",
        help="as a person who asked for reduced motion: no zoom animations",
    )
    parser.add_argument(
        "--dwell-ms",
        type=int,
        default=0,
        help="hold each view this long before the next gesture, as a person looks at it",
    )
    parser.add_argument(
        "--screenshot", type=Path, help="save the first view here (PNG), and after a zoom in"
    )
    parser.add_argument("--db", type=Path, help="SQLite file to keep the seeded city in (reused)")
    parser.add_argument(
        "--baseline-js",
        type=Path,
        help="also time page scripts from this folder (e.g. the previous mapview.js), interleaved",
    )
    args = parser.parse_args()
    if args.quick:
        args.seeded, args.reps = min(args.seeded, 5_000), min(args.reps, 3)
    rows = [r for r in ROWS if r.key in args.rows.split(",")]
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: run scripts/install-system-packages.sh")
    print(f"machine: {machine()}; browser and 1 uvicorn worker on the same cores")
    with tempfile.TemporaryDirectory() as name, base_map_server() as tile_url:
        tmp = Path(name)
        db_url = seeded_database(args.db or tmp / "paint.db", args.seeded)
        page_env = {
            "MAP_API_TILE_URL": tile_url,
            "MAP_API_MAP_CENTER_LAT": str((CITY.min_lat + CITY.max_lat) / 2),
            "MAP_API_MAP_CENTER_LONG": str((CITY.min_long + CITY.max_long) / 2),
            "MAP_API_MAP_ZOOM": str(args.zoom),
        }
        servers: list[Any] = []
        kinds = {r.server for r in rows}
        try:
            urls = start_servers(tmp, db_url, kinds, page_env, "", servers)
            if args.baseline_js:
                src = baseline_tree(tmp, args.baseline_js)
                env = {**page_env, **baseline_env(src)}
                urls.update(start_servers(tmp / "base", db_url, kinds, env, BASE, servers))
            if "proxy" not in urls:
                rows = [r for r in rows if r.server != "proxy"]
            results = measure(rows, urls, args)
        finally:
            for process in servers:
                stop(process)
    verdict(results)


def measure(rows: list[Row], urls: dict[str, str], args: argparse.Namespace) -> dict[str, Figures]:
    """Every row in one browser: the table as it goes."""
    print(
        f"\nfirst view: street view at zoom {args.zoom}, viewport {VIEWPORT['width']}x"
        f"{VIEWPORT['height']}; {args.reps} repetitions per row; ms p50/p95; read limit off"
        + ("; reduced motion (no zoom animations)" if args.reduced_motion else "")
        + (f"; each view held {args.dwell_ms} ms before the next gesture" if args.dwell_ms else "")
    )
    print(f"{'row':<19} {'first view':>13}  {'pan':>13}  {'zoom in':>13}  {'zoom out':>13}   "
          f"(of which the map's load: pan, zoom in, zoom out)")  # fmt: skip
    results: dict[str, Figures] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for row in rows:
                started = time.perf_counter()
                keys = [k for k in (row.server + BASE, row.server) if k in urls]
                runs = run_row(
                    browser,
                    row,
                    [urls[k] for k in keys],
                    args.reps,
                    args.reduced_motion,
                    args.dwell_ms,
                )
                for key, figures in zip(keys, runs, strict=True):
                    name = row.key + key.removeprefix(row.server)
                    results[name] = figures
                    report(name, figures)
                if args.screenshot and row is rows[0]:
                    screenshot(browser, urls[row.server], args.screenshot, args.dwell_ms)
                print(f"  ({row.title}; {time.perf_counter() - started:.0f} s)", flush=True)
        finally:
            browser.close()
    return results


def screenshot(browser: Browser, url: str, path: Path, dwell_ms: int) -> None:
    """What a person sees at the first view, and after a zoom in (`<path>-zoom-in.png`)."""
    context = new_context(browser, still=False)
    try:
        page = context.new_page()
        page.goto(url)
        wait_painted(page, 0)
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path))
        page.wait_for_timeout(dwell_ms)
        act(page, "zoom in")
        page.wait_for_timeout(300)  # the list view follows the map's frame
        zoomed = path.with_name(f"{path.stem}-zoom-in{path.suffix}")
        page.screenshot(path=str(zoomed), full_page=True)  # the list view too
    finally:
        context.close()


if __name__ == "__main__":
    main()

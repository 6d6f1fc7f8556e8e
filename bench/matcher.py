"""Matcher benchmark: the path the service runs per event, against PostGIS, in one run.

For each size and workload, every design handles the same request events, in turns (A B C D
A B C D ...) so a busy machine weighs on each alike, keeping its per-event output:
- new:      what the service runs (commands.encoded_commands): decode the event, match, write
            each notification command's Kafka key and JSON value;
- today:    the design before issue 15 (a Match and a Subscription model per hit, a
            SubscriberMatched per command, encode), on a tenth of the events;
- lookup:   the index lookup alone (what earlier figures timed), for scale;
- postgis:  PostgreSQL + PostGIS returning the same fields per match (subscription,
            distance, radius or width, label): one prepared query per event, GiST indexes;
- floor:    what any Python matcher on this contract pays whatever its index: "decode" is
            the event's decode alone (pydantic, as the service does), "+fills" adds the
            cheapest command write per match (one %-format of a ready frame) for as many
            matches as the event has. Neither finds anything (no agreement check).
With --parts, the new path cut into its steps (decode, grid lookup, filters, distances, rule
text, areas and corridors, the event's frame, ids, fills), timed one after the other as the
path runs them, in us/event, beside the real path on the same events.
Workloads: dense (one 40 x 40 km city, circles 100 m-5 km, 1 % areas with holes, 1 %
corridors: ~1.7 % of circles match each event) and sparse (10k subscriptions per city box,
radii 100 m-1 km: a handful of matches per event at every size). One email per subscription.
Every design must name the same subscriptions per event (checked; 1 cm edge cases excepted).
With --lookup, also the index lookup against an R-tree and brute force; with --process, the
whole matcher process (consume, match, produce) on a private local broker.

    uv run python bench/matcher.py                 # 10k and 100k subscriptions
    uv run python bench/matcher.py --million       # also 1M (slow to build: minutes)
    uv run python bench/matcher.py --quick         # CI: 2,000 subscriptions, 40 events
    uv run python bench/matcher.py --parts --workloads sparse --sizes 100000 --no-postgis
    uv run python bench/matcher.py --lookup        # also the lookup-only comparison
    uv run python bench/matcher.py --process       # also the whole process on the broker
"""

from __future__ import annotations

import argparse
import asyncio

import numpy as np
from machine_info import machine
from matcher_lookup import lookup_comparison
from matcher_paths import Path, compare_paths, print_paths
from matcher_process import run_process
from matcher_workload import sparse_workload, workload


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="10000,100000", help="comma-separated subscription counts"
    )
    parser.add_argument("--million", action="store_true", help="also run 1,000,000 subscriptions")
    parser.add_argument("--workloads", default="dense,sparse", help="dense, sparse or both")
    parser.add_argument(
        "--path-events", type=int, default=300, help="events per design (today's: a tenth)"
    )
    parser.add_argument("--quick", action="store_true", help="CI: 2,000 subscriptions, 40 events")
    parser.add_argument("--lookup", action="store_true", help="also the index-lookup comparison")
    parser.add_argument("--events", type=int, default=100_000, help="lookup: events for the core")
    parser.add_argument("--sample", type=int, default=300, help="lookup: events for the baselines")
    parser.add_argument("--cells", default="500,1000", help="lookup: cover-grid cell sizes (m)")
    parser.add_argument(
        "--parts", action="store_true", help="also time each step of the path on its own"
    )
    parser.add_argument("--no-postgis", action="store_true", help="skip the PostGIS baseline")
    parser.add_argument("--process", action="store_true", help="also run the whole process")
    parser.add_argument("--process-subs", type=int, default=100_000)
    parser.add_argument("--process-events", type=int, default=30_000)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.million, args.path_events = "2000", False, 40
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([1_000_000] if args.million else [])
    print(f"machine: {machine(f'numpy {np.__version__}')}")
    print(
        "\nThe path the service runs, event in -> commands out (decode, match, write the"
        " commands),\ntoday's design and the new one on the same events, beside PostGIS"
        " returning the same fields\n(subscription, distance, radius or width, label)."
        " Every design keeps its per-event output.",
        flush=True,
    )
    paths: list[tuple[str, int, Path]] = []
    for n in sizes:
        for kind in args.workloads.split(","):
            print(f"\n== {kind}, {n:,} subscriptions ==", flush=True)
            make = workload if kind == "dense" else sparse_workload
            paths += compare_paths(kind, n, make(n, args.path_events, n), args, seed=n)
    print()
    print_paths(paths)
    print(f"machine at the end: {machine()}")
    if args.lookup:
        lookup_comparison(args, sizes)
    if args.process:
        print(
            f"\n== whole process on a private local broker, {args.process_subs:,} subscriptions =="
        )
        asyncio.run(run_process(args.process_subs, args.process_events))


if __name__ == "__main__":
    main()

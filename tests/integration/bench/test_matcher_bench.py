"""bench/matcher.py --quick (issue 15): the path the service runs, today's design and the new
one beside PostGIS, as CI runs it (figures printed only, never asserted).

Asserted: the run completes, every design that ran names the same subscriptions per event as
the new one, and the table holds both designs for both workloads.
"""

from __future__ import annotations

from tests.integration.bench.quick import run_quick


def test_quick_run_prints_both_designs_and_they_agree() -> None:
    out = run_quick("matcher.py")
    verdicts = [line for line in out.splitlines() if line.startswith("  new vs ")]
    assert verdicts and all(": agree (" in line for line in verdicts), verdicts
    rows = {tuple(line.split()[:3]) for line in out.splitlines()}
    for workload in ("dense", "sparse"):
        for design in ("new:", "today:", "lookup"):
            assert (workload, "2,000", design) in rows, (workload, design)

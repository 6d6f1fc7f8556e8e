"""bench/map_api.py and bench/load_map_api.py --quick (issue 15), figures printed only.

Asserted: the runs complete (map_api.py stops when an indexed and an unindexed database, or
the scan and the aggregate tables, answer one question differently), every p95 comes from
enough samples, and the cluster load figures are shown warm (cache hits, said so) and cold.
"""

from __future__ import annotations

from tests.integration.bench.quick import run_quick


def test_quick_map_api_run_compares_equal_answers_alternately() -> None:
    out = run_quick("map_api.py")
    assert "(20 each, alternating;" in out
    assert out.count(" p95 ") >= 2 * 12  # both sides of every case
    consumer = [line for line in out.splitlines() if "batch  500," in line]
    assert len(consumer) == 2 and all("(median of 3:" in line for line in consumer)


def test_quick_load_run_shows_clusters_warm_and_cold() -> None:
    out = run_quick("load_map_api.py")
    assert "mostly cache hits" in out and "cache hits (at least)" in out
    assert "clusters, cold: MAP_API_AGGREGATE_CACHE_S=0" in out
    for query in ("bbox", "clusters", "clusters-cold"):
        assert any(line.startswith(f"{query}: ") for line in out.splitlines()), query

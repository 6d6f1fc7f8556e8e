"""bench/map_api.py: the request routes end to end through FastAPI (validation + JSON)."""

from __future__ import annotations

import random
import time

from map_api_city import CITY, percentiles, random_view


def http_suite(url: str) -> None:
    """End to end through FastAPI (validation + JSON), on the indexed database."""
    from fastapi.testclient import TestClient

    from connect311_contracts.settings import SigningSettings
    from connect311_map_api.app import create_app
    from connect311_map_api.settings import MapApiSettings

    # No per-client read limit: this measures the routes, from one client, as fast as it can;
    # no heavy-answer cache: the same city page asked 20 times would measure the cache.
    settings = MapApiSettings(
        database_url=url, consume=False, read_limit="", heavy_answer_cache_s=0
    )
    print("  (HTTP suite: per-client read limit and heavy-answer cache off)", flush=True)
    app = create_app(settings, signing=SigningSettings())
    rnd = random.Random(3)
    with TestClient(app) as client:
        for name, span, limit in (("street", 0.01, 500), ("city", None, 500), ("city", None, 1000)):
            samples = []
            for _ in range(20):
                box = random_view(rnd, span) if span else CITY
                params = {
                    "bbox": f"{box.min_long},{box.min_lat},{box.max_long},{box.max_lat}",
                    "limit": limit,
                }
                t = time.perf_counter()
                response = client.get("/api/requests", params=params)
                samples.append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200
            p50, p95 = percentiles(samples)
            print(
                f"  HTTP GET /api/requests {name} bbox limit {limit:5d}:"
                f" p50 {p50:7.1f} p95 {p95:7.1f} ms",
                flush=True,
            )
        for path, params in (
            ("/api/requests/clusters", {"zoom": 12}),
            ("/api/stats", {"interval": "week"}),
        ):
            t = time.perf_counter()
            assert client.get(path, params=params).status_code == 200
            cold = (time.perf_counter() - t) * 1000
            warm = []
            for _ in range(20):
                box = random_view(rnd, 0.1)
                view = {
                    **params,
                    "bbox": f"{box.min_long},{box.min_lat},{box.max_long},{box.max_lat}",
                }
                t = time.perf_counter()
                assert (
                    client.get(path, params=params if "stats" in path else view).status_code == 200
                )
                warm.append((time.perf_counter() - t) * 1000)
            w50, w95 = percentiles(warm)
            print(
                f"  HTTP GET {path} {params}: first {cold:7.1f} ms; then from the cache"
                f" p50 {w50:6.1f} p95 {w95:6.1f} ms",
                flush=True,
            )

"""bench/e2e.py's workload: residents' circles over the bench city, where each pushed request
falls (so whom it reaches), the fan-out audiences, and seeding them all on subscriptions.v1.

Seeding goes straight to the compacted subscriptions topic, as the map API publishes a
confirmed sign-up (and as bench/soak_matcher.py seeds): the matcher reads only that topic,
and the notifier gets each subscription inside its command, so no database is involved.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from connect311_bus.kafka import encode, producer
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.subscriptions import Subscription, SubscriptionChanged
from connect311_contracts.topics import SUBSCRIPTIONS
from connect311_matcher.geodesy import EARTH_RADIUS_M, chord_angle, unit_vectors

# St. Petersburg, FL: ~16 x 12 km of city. Residents cluster in a few neighbourhoods (half of
# them within ~1 km of one of HOTSPOTS centres), the rest anywhere; each watches a circle of
# 100-800 m (log-uniform: most watch their street, a few their part of town).
CITY = (27.70, 27.84, -82.74, -82.62)
HOTSPOTS = 6
RADIUS_M = (100.0, 800.0)
EDGE_M = 1.0  # no bench request within this of a circle's edge: float noise decides nothing
FANOUT_POINT = (27.60, -82.70)  # south of every circle: a fan-out event reaches only its feed
CREATED = datetime(2024, 1, 1, tzinfo=UTC)


def resident(i: int) -> str:
    """The address of resident i (a circle subscriber)."""
    return f"resident-{i}@bench.example"


def fan_reader(size: int, i: int) -> str:
    """The address of reader i of the city-wide feed with `size` readers."""
    return f"feed{size}-{i}@bench.example"


def fan_agency(size: int) -> str:
    """The agency whose requests only the feed with `size` readers follows."""
    return f"Fanout {size}"


@dataclass(frozen=True)
class Place:
    """Where one bench request is, and the residents whose circles hold it."""

    lat: float
    long: float
    recipients: tuple[str, ...]


class Traffic:
    """Residents' circles, and a pool of request places each inside at least one circle."""

    def __init__(self, residents: int, places: int = 2_000, seed: int = 11) -> None:
        rng = np.random.default_rng(seed)
        lat0, lat1, lon0, lon1 = CITY
        hot = np.column_stack(
            (rng.uniform(lat0, lat1, HOTSPOTS), rng.uniform(lon0, lon1, HOTSPOTS))
        )
        clustered = rng.random(residents) < 0.5
        near = hot[rng.integers(0, HOTSPOTS, residents)] + rng.normal(0, 0.009, (residents, 2))
        anywhere = np.column_stack(
            (rng.uniform(lat0, lat1, residents), rng.uniform(lon0, lon1, residents))
        )
        centres = np.where(clustered[:, None], near, anywhere)
        self.lat, self.long = centres[:, 0], centres[:, 1]
        self.radius = np.exp(rng.uniform(*np.log(RADIUS_M), residents))
        self.places = self._places(rng, places)

    def _places(self, rng: np.random.Generator, n: int) -> list[Place]:
        """n places, each drawn inside one random circle (so it reaches at least its owner)."""
        centres = unit_vectors(self.lat, self.long)
        places: list[Place] = []
        while len(places) < n:
            owner = int(rng.integers(0, len(self.radius)))
            dist = self.radius[owner] * np.sqrt(rng.random()) * 0.95
            bearing = rng.uniform(0, 2 * np.pi)
            dlat = np.degrees(dist * np.cos(bearing) / EARTH_RADIUS_M)
            dlon = np.degrees(dist * np.sin(bearing) / EARTH_RADIUS_M) / np.cos(
                np.radians(self.lat[owner])
            )
            lat, lon = float(self.lat[owner] + dlat), float(self.long[owner] + dlon)
            point = unit_vectors(np.array([lat]), np.array([lon]))[0]
            metres = chord_angle(centres, point) * EARTH_RADIUS_M
            if np.abs(metres - self.radius).min() < EDGE_M:
                continue
            inside = np.flatnonzero(metres <= self.radius)
            places.append(Place(lat, lon, tuple(resident(int(i)) for i in inside)))
        return places

    def place(self, number: int) -> Place:
        """Where bench request `number` is (the pool, in turn)."""
        return self.places[number % len(self.places)]

    def spread(self) -> str:
        """Recipients per request over the pool: mean, median, p99, max."""
        counts = np.array([len(p.recipients) for p in self.places])
        return (
            f"recipients per request: mean {counts.mean():.1f}, median {np.median(counts):.0f}, "
            f"p99 {np.percentile(counts, 99):.0f}, max {counts.max()} (min {counts.min()})"
        )

    def circle(self, i: int) -> Subscription:
        """Resident i's confirmed circle subscription (no filters: everything nearby)."""
        return _subscription(
            f"res-{i}",
            resident(i),
            {
                "kind": "circle",
                "lat": float(self.lat[i]),
                "long": float(self.long[i]),
                "radius_m": float(self.radius[i]),
            },
        )


def feed(size: int) -> list[Subscription]:
    """A city-wide instant feed of one agency with `size` confirmed readers."""
    return [
        _subscription(
            f"feed{size}-{i}",
            fan_reader(size, i),
            {"kind": "citywide"},
            {"agencies": [fan_agency(size)]},
        )
        for i in range(size)
    ]


def _subscription(
    sub_id: str, email: str, target: dict[str, object], filters: dict[str, object] | None = None
) -> Subscription:
    return Subscription.model_validate(
        {
            "subscription_id": sub_id,
            "email": email,
            "label": "Home",
            "target": target,
            "filters": filters or {},
            "delivery": "instant",
            "status": "active",
            "created_at": CREATED,
            "confirmed_at": CREATED,
        }
    )


async def _publish(bootstrap: str, subs: list[Subscription]) -> None:
    prod = producer(KafkaSettings(bootstrap_servers=bootstrap), "bench-e2e", linger_ms=20)
    await prod.start()
    try:
        pending = [
            await prod.send(
                SUBSCRIPTIONS.name,
                encode(SubscriptionChanged(subscription=s)),
                key=s.subscription_id.encode(),
            )
            for s in subs
        ]
        await asyncio.gather(*pending)
    finally:
        await prod.stop()


def seed(bootstrap: str, traffic: Traffic, feeds: list[int]) -> int:
    """Publish every resident's circle and every feed's readers; how many were published."""
    subs = [traffic.circle(i) for i in range(len(traffic.radius))]
    for size in feeds:
        subs += feed(size)
    asyncio.run(_publish(bootstrap, subs))
    return len(subs)

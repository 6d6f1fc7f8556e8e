"""Demo subscribers for the local run: signed up through the map API, confirmed from the inbox."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

# Real places in the shipped NYC demo day (data/demo), chosen where requests are dense.
DEMO_SUBSCRIPTIONS: tuple[dict[str, Any], ...] = (
    {
        "email": "corner-shop@example.org",
        "label": "Shop on Tremont Ave",
        "target": {"kind": "circle", "lat": 40.85, "long": -73.90, "radius_m": 1500},
        "delivery": "instant",
    },
    {
        "email": "ps-139-parents@example.org",
        "label": "Flatbush school zone",
        "target": {
            "kind": "area",
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [
                        [-73.975, 40.640],
                        [-73.950, 40.640],
                        [-73.950, 40.660],
                        [-73.975, 40.660],
                        [-73.975, 40.640],
                    ]
                ],
            },
        },
        "delivery": "instant",
    },
    {
        "email": "grand-concourse-walk@example.org",
        "label": "Walk to school",
        "target": {
            "kind": "corridor",
            "coordinates": [[-73.9170, 40.8300], [-73.9100, 40.8450], [-73.9020, 40.8600]],
            "width_m": 300,
        },
        "delivery": "hourly",
    },
)

CONFIRM_LINK = re.compile(r"https?://[^\s\"'<>]+/api/subscriptions/confirm\?token=[\w.\-]+")


def sign_up(map_api: str, subscriptions: tuple[dict[str, Any], ...] = DEMO_SUBSCRIPTIONS) -> None:
    """Create the demo subscriptions through the public API, as a person would."""
    with httpx.Client(base_url=map_api, timeout=10) as client:
        for body in subscriptions:
            response = client.post("/api/subscriptions", json=body)
            response.raise_for_status()


def confirm_from_inbox(inbox_api: str, emails: set[str], timeout_s: float = 60.0) -> set[str]:
    """Click each address's confirmation link in the local inbox; returns those confirmed."""
    confirmed: set[str] = set()
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=10, follow_redirects=False) as client:
        while confirmed != emails and time.monotonic() < deadline:
            for message in client.get(f"{inbox_api}/api/messages").json():
                to = set(message["to"]) & (emails - confirmed)
                link = CONFIRM_LINK.search(message["text"] or "")
                if to and link:
                    client.get(link.group(0))
                    confirmed |= to
            time.sleep(0.5)
    return confirmed

"""Sign-up limits are shared through the database: replicas, restarts, hashed keys, races."""

from __future__ import annotations

import hashlib
import threading
from fractions import Fraction

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from connect311_contracts.notifications import recipient_key
from connect311_map_api.app import create_app
from connect311_map_api.core.ratewindow import Limit, allowed, wait_s
from connect311_map_api.db.engine import create_schema, make_engine
from connect311_map_api.db.tables import signup_limits
from connect311_map_api.ratelimit import SignupLimiter
from connect311_map_api.settings import MapApiSettings
from tests.unit.map_api.conftest import SECRET
from tests.unit.map_api.factories import RecordingPublisher

CIRCLE = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 500}
IP = "203.0.113.77"
EMAIL = "Quentin.Limit@Example.org"


def _sign_up(client: TestClient, email: str) -> int:
    return client.post("/api/subscriptions", json={"email": email, "target": CIRCLE}).status_code


def _client(url: str, publisher: RecordingPublisher, signing, **limits: str) -> TestClient:
    settings = MapApiSettings(database_url=url, consume=False, **limits)  # type: ignore[arg-type]
    app = create_app(settings, signing=signing, publisher=publisher)
    return TestClient(app, client=(IP, 50000))  # the peer address the app sees


def test_two_instances_on_one_database_share_the_limits(
    database_url: str, publisher: RecordingPublisher, signing
) -> None:
    limits = {"rate_limit_email": "3/hour", "rate_limit_ip": "5/hour"}
    with (
        _client(database_url, publisher, signing, **limits) as one,
        _client(database_url, publisher, signing, **limits) as two,
    ):
        # Same address through both instances: 3 in all, not 3 each.
        by_address = [_sign_up(c, EMAIL) for c in (one, two, one, two, one, two)]
        assert sorted(by_address) == [202, 202, 202, 429, 429, 429]
        assert by_address[:3] == [202, 202, 202]
        # Same IP, other addresses: the IP's 5 in all (3 used above), again across both.
        by_ip = [_sign_up(c, f"other{i}@example.org") for i, c in enumerate((two, one, two))]
        assert by_ip == [202, 202, 429]
    assert len(publisher.confirmations) == 5


def test_a_restart_keeps_the_count(
    database_url: str, publisher: RecordingPublisher, signing
) -> None:
    with _client(database_url, publisher, signing, rate_limit_email="2/day") as before:
        assert [_sign_up(before, EMAIL) for _ in range(2)] == [202, 202]
    with _client(database_url, publisher, signing, rate_limit_email="2/day") as after:
        refused = after.post("/api/subscriptions", json={"email": EMAIL, "target": CIRCLE})
        assert refused.status_code == 429
        assert 0 < int(refused.headers["Retry-After"]) <= 2 * 86_400
        assert _sign_up(after, "someone.else@example.org") == 202


def test_stored_keys_reveal_neither_address_nor_ip(
    database_url: str, publisher: RecordingPublisher, signing
) -> None:
    with _client(database_url, publisher, signing) as client:
        assert _sign_up(client, EMAIL) == 202
        engine: Engine = client.app.state.ctx.engine  # type: ignore[attr-defined]
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(signup_limits))]
    assert len(rows) == 8  # two limits each for IP, mailbox, domain and in all; one window each
    stored = " ".join(str(v) for row in rows for v in row.values())
    plain = EMAIL.lower()
    guesses = [
        plain,
        "quentin",
        "example.org",
        IP,
        "203.0.113",
        recipient_key(EMAIL),
        hashlib.sha256(plain.encode()).hexdigest(),
        hashlib.sha256(IP.encode()).hexdigest(),
        hashlib.md5(plain.encode()).hexdigest(),
    ]
    for guess in guesses:
        assert guess not in stored, guess
    # Keyed: the same values under another secret give other keys.
    other = SignupLimiter("10/minute", "3/hour", "another-secret")
    mine = SignupLimiter("10/minute", "3/hour", SECRET)
    keys = {row["key"] for row in rows}
    assert mine.key("addr", plain) in keys and mine.key("ip", IP) in keys
    assert other.key("addr", plain) not in keys and other.key("ip", IP) not in keys


def test_concurrent_attempts_on_two_engines_accept_exactly_the_limit(database_url: str) -> None:
    engines = [make_engine(database_url), make_engine(database_url)]
    create_schema(engines[0])
    limiters = [SignupLimiter("1000/hour", "7/hour", SECRET) for _ in engines]
    accepted: list[int] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        engine, limiter = engines[i % 2], limiters[i % 2]
        with engine.begin() as conn:
            wait = limiter.count(conn, f"198.51.100.{i}", "race@example.org", 1_000_000.0)
            if wait is not None:
                conn.rollback()
                return
        with lock:
            accepted.append(i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(accepted) == 7
        with engines[0].connect() as conn:
            key = limiters[0].key("addr", "race@example.org")
            hits = conn.execute(
                select(signup_limits.c.hits).where(signup_limits.c.key == key)
            ).scalar_one()
        assert hits == 7  # refused attempts were rolled back, not counted
    finally:
        for engine in engines:
            engine.dispose()


def test_old_windows_are_pruned(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    create_schema(engine)
    limiter = SignupLimiter("10/minute", "3/hour", SECRET)
    with engine.begin() as conn:
        assert limiter.count(conn, IP, "p@example.org", 1_000_000.0) is None
    # Two hours later the hour windows can no longer be anyone's previous window.
    later = SignupLimiter("10/minute", "3/hour", SECRET)  # a fresh process prunes at once
    with engine.begin() as conn:
        assert later.count(conn, "192.0.2.1", "q@example.org", 1_000_000.0 + 7_300) is None
        starts = conn.execute(select(signup_limits.c.window_start)).scalars().all()
    assert starts and all(start >= 1_000_000 + 3_600 for start in starts)
    engine.dispose()


@given(
    amount=st.integers(1, 20),
    window_s=st.sampled_from([60, 3600, 86_400]),
    previous=st.integers(0, 40),
    before=st.integers(0, 20),
    fraction=st.floats(0, 0.999),
)
def test_wait_is_the_first_whole_second_the_next_attempt_fits(
    amount: int, window_s: int, previous: int, before: int, fraction: float
) -> None:
    limit = Limit(amount, window_s)
    before = min(before, amount)  # refused attempts are never counted, so never above
    elapsed = fraction * window_s
    if allowed(limit, previous, before + 1, elapsed):
        return

    def fits_after(seconds: int) -> bool:
        t = Fraction(elapsed) + seconds  # exact; no other attempt meanwhile
        if t < window_s:
            return allowed(limit, previous, before + 1, t)
        if t < 2 * window_s:
            return allowed(limit, before, 1, t - window_s)
        return True

    wait = wait_s(limit, previous, before, elapsed)
    assert wait >= 1
    assert fits_after(wait)
    assert wait == 1 or not fits_after(wait - 1)

"""Sign-up cannot mail-bomb one inbox, one domain or the city's mail server (issue 12).

Through the real API and its real database (SQLite file; PostgreSQL when TEST_POSTGRES_URL
answers): address variants that reach one inbox share one limit, per-domain and global caps
hold across many IPs and mailboxes, and the label a requester typed never travels in the
confirmation command.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from connect311_contracts.settings import SigningSettings
from connect311_map_api.app import create_app
from connect311_map_api.settings import MapApiSettings
from tests.unit.map_api.factories import RecordingPublisher

CIRCLE = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 500}
SIGNING = SigningSettings(secret_key="abuse-secret", public_base_url="http://testserver")
VARIANTS = [  # one inbox, five spellings
    "victim+1@gmail.com",
    "VICTIM@gmail.com",
    "vic.tim@gmail.com",
    "Vic.Tim+promo@googlemail.com",
    "v.i.c.t.i.m+2@GMAIL.COM",
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'abuse.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


def _client(url: str, publisher: RecordingPublisher, ip: str, **limits: str) -> TestClient:
    settings = MapApiSettings(database_url=url, consume=False, **limits)  # type: ignore[arg-type]
    return TestClient(create_app(settings, signing=SIGNING, publisher=publisher), client=(ip, 1))


def _sign_up(client: TestClient, email: str, **extra: object) -> int:
    body = {"email": email, "target": CIRCLE, **extra}
    return client.post("/api/subscriptions", json=body).status_code


def test_address_variants_after_the_limit_get_no_email(
    database_url: str, publisher: RecordingPublisher
) -> None:
    with _client(database_url, publisher, "203.0.113.5", rate_limit_email="3/hour") as client:
        assert [_sign_up(client, "victim@gmail.com") for _ in range(3)] == [202] * 3
        refused = [
            client.post("/api/subscriptions", json={"email": e, "target": CIRCLE}) for e in VARIANTS
        ]
    assert [r.status_code for r in refused] == [429] * 5
    assert all("for this address" in r.json()["detail"] for r in refused)
    assert len(publisher.confirmations) == 3  # no email for any variant
    assert {c.subscription.email for c in publisher.confirmations} == {"victim@gmail.com"}


def test_plain_different_mailboxes_are_not_folded(
    database_url: str, publisher: RecordingPublisher
) -> None:
    with _client(database_url, publisher, "203.0.113.6", rate_limit_email="1/hour") as client:
        # Dots matter outside gmail: two people at the city's own domain.
        answers = [_sign_up(client, e) for e in ("jo.ann@city.gov", "joann@city.gov")]
    assert answers == [202, 202]


def test_a_domain_cap_holds_across_ips_and_mailboxes(
    database_url: str, publisher: RecordingPublisher
) -> None:
    limits = {"rate_limit_domain": "4/hour", "rate_limit_ip": "100/hour"}
    answers = []
    for n in range(6):  # a new IP and a new mailbox each time
        with _client(database_url, publisher, f"198.51.100.{n}", **limits) as client:
            answers.append(_sign_up(client, f"person{n}@target-company.example"))
        with _client(database_url, publisher, f"192.0.2.{n}", **limits) as client:
            answers.append(_sign_up(client, f"person{n}@elsewhere.example"))
    by_domain = answers[0::2], answers[1::2]
    assert by_domain[0] == [202] * 4 + [429] * 2
    assert by_domain[1] == [202] * 4 + [429] * 2  # one domain's cap does not block another
    assert len(publisher.confirmations) == 8


def test_a_global_cap_bounds_confirmation_emails(
    database_url: str, publisher: RecordingPublisher
) -> None:
    limits = {"rate_limit_confirmations": "5/hour", "rate_limit_ip": "100/hour"}
    answers = []
    for n in range(8):
        with _client(database_url, publisher, f"198.51.100.{n}", **limits) as client:
            response = client.post(
                "/api/subscriptions", json={"email": f"p{n}@d{n}.example", "target": CIRCLE}
            )
            answers.append(response.status_code)
            if response.status_code == 429:
                assert "across the city" in response.json()["detail"]
                assert int(response.headers["Retry-After"]) >= 1
    assert answers == [202] * 5 + [429] * 3
    assert len(publisher.confirmations) == 5


def test_the_label_never_travels_in_the_confirmation_command(
    database_url: str, publisher: RecordingPublisher
) -> None:
    phishing = "URGENT: your tax refund is ready, log in at https://evil.example/login"
    with _client(database_url, publisher, "203.0.113.7") as client:
        assert _sign_up(client, "someone@example.org", label=phishing) == 202
    assert publisher.changed[0].label == phishing  # the subscriber still has it to manage
    command = publisher.confirmations[0]
    assert command.subscription.label is None
    assert "evil.example" not in command.model_dump_json()


def test_refused_attempts_count_nowhere(database_url: str, publisher: RecordingPublisher) -> None:
    limits = {"rate_limit_email": "1/hour", "rate_limit_domain": "2/hour"}
    with _client(database_url, publisher, "203.0.113.8", **limits) as client:
        assert _sign_up(client, "a@dom.example") == 202
        for _ in range(5):  # refused by the mailbox limit: must not use up the domain's
            assert _sign_up(client, "A+x@dom.example") == 429
        assert _sign_up(client, "b@dom.example") == 202

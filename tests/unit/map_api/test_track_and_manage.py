"""Issue 13: look a request up by the city's own number, its photo, and managing an alert
(edit radius and filters, pause, resume) with every change published; the unsubscribe page
names the alert and links back."""

from __future__ import annotations

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from connect311_contracts.media import public_media_url
from connect311_contracts.subscriptions import SubscriptionStatus
from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from connect311_map_api.db.state_store import apply_events
from tests.unit.map_api.conftest import SECRET
from tests.unit.map_api.factories import RecordingPublisher, event, snapshot

CIRCLE = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 250}


def _store(engine: Engine, *requests: object) -> None:
    with engine.begin() as conn:
        apply_events(conn, [event("opened", r) for r in requests])  # type: ignore[arg-type]


def test_the_city_number_finds_the_request_and_a_shared_number_lists_each(
    client: TestClient, engine: Engine
) -> None:
    photo = "https://photos.example.org/56922334.jpg"
    one = snapshot("56922334", source="stpete").model_copy(update={"media_url": photo})
    _store(engine, one, snapshot("4411", source="stpete"), snapshot("4411", source="scf"))
    found = client.get("/api/requests/lookup", params={"number": " #56922334 "}).json()
    assert [m["service_request_id"] for m in found["matches"]] == ["stpete:56922334"]
    assert (
        client.get("/api/requests/lookup", params={"number": "stpete:56922334"}).json()["matches"][
            0
        ]["source"]
        == "stpete"
    )
    shared = client.get("/api/requests/lookup", params={"number": "4411"}).json()
    assert [m["service_request_id"] for m in shared["matches"]] == ["scf:4411", "stpete:4411"]
    assert client.get("/api/requests/lookup", params={"number": "999"}).json()["matches"] == []
    assert client.get("/api/requests/lookup", params={"number": "#"}).status_code == 422
    assert client.get("/api/requests/stpete:56922334").json()["media_url"] == photo


def test_a_script_or_credentials_photo_url_is_never_served(
    client: TestClient, engine: Engine
) -> None:
    bad = snapshot("1", source="x").model_copy(update={"media_url": "javascript:alert(1)"})
    _store(engine, bad)
    assert client.get("/api/requests/x:1").json()["media_url"] is None


@given(st.text(max_size=60))
def test_only_plain_http_urls_pass(text: str) -> None:
    shown = public_media_url(text)
    assert shown is None or (
        shown.lower().startswith(("http://", "https://")) and "@" not in shown.split("/")[2]
    )


def test_photo_pages_allow_https_images_and_other_pages_do_not(client: TestClient) -> None:
    for path in ("/", "/track"):
        assert "https:" in client.get(path).headers["content-security-policy"].split("img-src")[1]
    stats_img = client.get("/stats").headers["content-security-policy"].split("img-src")[1]
    assert " https:;" not in stats_img.split(";")[0] + ";"


def _manage(sid: str) -> str:
    token = sign_subscription_token(SECRET, TokenPurpose.MANAGE, sid)
    return f"/api/subscriptions/manage?token={token}"


def _signed_up(client: TestClient, publisher: RecordingPublisher, **extra: object) -> str:
    body = {"email": "shop@example.org", "target": CIRCLE, "label": "Shop", **extra}
    assert client.post("/api/subscriptions", json=body).status_code == 202
    confirm = publisher.confirmations[-1].confirm_url.split("testserver", 1)[1]
    client.get(confirm, follow_redirects=False)
    return publisher.changed[-1].subscription_id


def test_edit_pause_resume_are_published_and_a_pause_can_be_resumed(
    client: TestClient, publisher: RecordingPublisher
) -> None:
    sid = _signed_up(client, publisher)
    url = _manage(sid)
    filters = {"service_codes": ["POT"], "agencies": [], "datasets": [], "event_kinds": []}
    edited = client.post(
        url, json={"subscription_id": sid, "action": "edit", "radius_m": 500, "filters": filters}
    )
    assert edited.status_code == 200, edited.text
    assert publisher.changed[-1].target.radius_m == 500  # type: ignore[union-attr]
    assert publisher.changed[-1].filters.service_codes == ("POT",)
    assert (
        client.post(url, json={"subscription_id": sid, "action": "edit", "radius_m": 5}).status_code
        == 422
    )
    client.post(url, json={"subscription_id": sid, "action": "unsubscribe"})
    assert publisher.changed[-1].status is SubscriptionStatus.UNSUBSCRIBED
    resumed = client.post(url, json={"subscription_id": sid, "action": "resume"})
    assert resumed.json()["subscriptions"][0]["status"] == "active"
    assert publisher.changed[-1].status.value == "active"  # (mypy narrows the enum above)


def test_a_pending_or_bounced_alert_does_not_resume(
    client: TestClient, publisher: RecordingPublisher
) -> None:
    body = {"email": "new@example.org", "target": CIRCLE}
    assert client.post("/api/subscriptions", json=body).status_code == 202
    sid = publisher.changed[-1].subscription_id
    url = _manage(sid)
    refused = client.post(url, json={"subscription_id": sid, "action": "resume"})
    assert refused.status_code == 403 and "confirmation email" in refused.json()["detail"]


def test_manage_names_the_followed_request(
    client: TestClient, engine: Engine, publisher: RecordingPublisher
) -> None:
    _store(engine, snapshot("77", source="stpete"))
    target = {"kind": "follow", "service_request_id": "stpete:77"}
    assert (
        client.post(
            "/api/subscriptions", json={"email": "r@example.org", "target": target}
        ).status_code
        == 202
    )
    sid = publisher.changed[-1].subscription_id
    token = sign_subscription_token(SECRET, TokenPurpose.MANAGE, sid)
    listed = client.get(f"/api/subscriptions/manage?token={token}").json()["subscriptions"][0]
    assert listed["followed"] == {
        "service_request_id": "stpete:77",
        "service_name": "Pothole",
        "address": "100 Central Ave",
        "status": "open",
    }


def test_unsubscribe_pages_name_the_alert_and_link_back(
    client: TestClient, publisher: RecordingPublisher
) -> None:
    sid = _signed_up(client, publisher)
    token = sign_subscription_token(SECRET, TokenPurpose.UNSUBSCRIBE, sid)
    ask = client.get(f"/api/subscriptions/unsubscribe?token={token}").text
    done = client.post(f"/api/subscriptions/unsubscribe?token={token}").text
    for page in (ask, done):
        assert "Requests within 250 m of a point on the map" in page and "Shop" in page
        assert "/static/web/css/site.css" in page and 'href="/"' in page
        assert "/subscriptions/manage?token=" in page and "<script" not in page
    assert "You are unsubscribed" in done

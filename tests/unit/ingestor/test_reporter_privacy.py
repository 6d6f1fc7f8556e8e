"""Reporter personal data is removed from anything kept for a rejected record."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connect311_ingestor.parsers.redact import _EMAIL, raw_text, redact_text


@pytest.mark.parametrize(
    "text",
    [
        '{"email": "ann@example.org", "first_name": "Annabel", "phone": "555-0199", "lat": ',
        "<request><first_name>Annabel</first_name><phone>555-0199</phone><lat>1",
        "service_code=1&first_name=Annabel&phone=555-0199&email=ann%40example.org",
        "free text: write to ann@example.org (Annabel's phone ends 555-0199)",
    ],
)
def test_reporter_fields_and_addresses_are_blanked_in_broken_text(text: str) -> None:
    cleaned = redact_text(text)
    assert "ann@example.org" not in cleaned and "ann%40example.org" not in cleaned
    if not text.startswith("free text"):
        assert "Annabel" not in cleaned and "555-0199" not in cleaned
    assert cleaned != text


def test_parsed_records_lose_reporter_fields_at_any_depth_and_keep_the_rest() -> None:
    record = {
        "service_request_id": "7",
        "Email": "ann@example.org",
        "contact": {"First-Name": "Annabel", "street": "1 Main"},
        "media": [{"device_id": "d-1", "url": "http://x"}],
    }
    text = raw_text(record)
    assert "Annabel" not in text and "ann@" not in text and "d-1" not in text
    assert '"service_request_id": "7"' in text and "1 Main" in text and "http://x" in text


@given(st.text(max_size=300), st.emails())
def test_no_address_survives_anywhere_in_the_text(prefix: str, address: str) -> None:
    cleaned = redact_text(f"{prefix} {address} {prefix}")
    assert address not in cleaned
    assert not _EMAIL.search(cleaned)

"""The reject allow-list: known keys kept, everything else dropped or masked."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from connect311_ingestor.parsers.profiles import get_profile
from connect311_ingestor.scrub import (
    _KNOWN_WORDS,
    ID,
    KEEP,
    OPEN311_REQUEST,
    SEECLICKFIX_ISSUE,
    TEXT,
    columns_allow_list,
    mask_text,
    record_id,
    scrub_record,
)


def test_unknown_keys_are_dropped_at_every_depth_and_only_counted() -> None:
    issue = {
        "id": 7,
        "status": "Closed",
        "description": "call Ann on 555-0199",
        "request_type": {"id": 3, "title": "Pothole", "owner": "Ann"},
        "reporter": {"name": "Ann"},
        "comments": [{"comment": "done", "commenter": {"name": "Bob"}}],
        "questions": [{"answer": "Ann"}],
    }
    kept = scrub_record(issue, SEECLICKFIX_ISSUE)
    assert kept == {
        "id": 7,
        "status": "Closed",
        "description": "[text: 20 chars]",
        "request_type": {"id": 3, "title": "Pothole"},
        "_dropped": 4,  # request_type.owner, reporter, comments, questions
    }
    assert record_id(issue, SEECLICKFIX_ISSUE) == "7"


def test_an_object_where_a_value_belongs_is_dropped_and_long_values_are_cut() -> None:
    record = {"address": {"name": "Ann", "street": "1 Main"}, "service_code": "x" * 400}
    kept = scrub_record(record, OPEN311_REQUEST)
    assert "address" not in kept and kept["_dropped"] == 1
    assert len(kept["service_code"]) == 301
    media = scrub_record({"media_url": [{"url": "http://p/1", "tags": ["Ann"]}]}, OPEN311_REQUEST)
    assert media == {"media_url": [{"url": "http://p/1"}], "_dropped": 1}


def test_an_export_keeps_only_the_columns_its_profile_maps() -> None:
    allow = columns_allow_list(get_profile("nyc").columns.model_dump())
    assert allow["Unique Key"] is ID and allow["Latitude"] is KEEP
    assert allow["Resolution Description"] is TEXT and allow["Descriptor"] is TEXT
    row = {"Unique Key": "1", "Latitude": "", "Owner Name": "Ann", "Descriptor": "Loud"}
    assert scrub_record(row, allow) == {
        "Unique Key": "1",
        "Latitude": "",
        "Descriptor": "[text: 4 chars]",
        "_dropped": 1,
    }


def test_unparseable_text_keeps_its_shape_and_known_keys_only() -> None:
    assert mask_text('[{"service_code":001, "first_name":"Ann"}') == (
        '[{"service_code":999, "xxxxx_xxxx":"xxx"}'
    )


@given(st.text(max_size=200))
def test_no_unknown_word_survives_masking(text: str) -> None:
    masked = mask_text(text)
    assert len(masked) == len(text)  # the shape (positions, punctuation) is kept
    for word in re.findall(r"\w+", masked):
        assert set(word) <= {"x", "9", "_"} or word in _KNOWN_WORDS, word

"""The piecewise encoder writes exactly what one json.dumps call writes."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connect311_map_api.api.json_pieces import compact_json_bytes

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _dumps(content: Any) -> bytes:
    text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8")


@given(st.dictionaries(st.text(), values | st.lists(values, max_size=6), max_size=5))
def test_the_bytes_equal_one_dumps_call(content: dict[str, Any]) -> None:
    assert compact_json_bytes(content) == _dumps(content)


def test_a_non_finite_number_in_an_item_is_still_refused() -> None:
    with pytest.raises(ValueError):
        compact_json_bytes({"features": [{"x": math.inf}]})

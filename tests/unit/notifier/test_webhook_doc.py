"""The verification code in docs/webhooks.md verifies what the notifier signs, and only that."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connect311_contracts.webhooks import webhook_secret
from connect311_notifier.webhook_signing import signed_headers

DOC = Path(__file__).parents[3] / "docs" / "webhooks.md"


def documented_verify() -> Callable[..., bool]:
    text = DOC.read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # our own document's code
    return namespace["verify"]  # type: ignore[no-any-return]


def test_the_documented_verify_accepts_our_signatures_and_refuses_the_rest() -> None:
    verify = documented_verify()
    secret, old = webhook_secret("k", "sub", 2), webhook_secret("k", "sub", 1)
    body = b'{"type":"request.matched"}'
    now = int(time.time())
    headers = signed_headers([secret, old], "msg_abc", now, body)
    assert verify(secret, headers, body) and verify(old, headers, body)  # rotation
    assert not verify(webhook_secret("k", "other", 1), headers, body)
    assert not verify(secret, headers, body + b" ")
    stale = signed_headers([secret], "msg_abc", now - 3600, body)
    assert not verify(secret, stale, body)

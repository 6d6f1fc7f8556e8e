"""The /webhooks help page (issue 19): it shows exactly the verification code of
docs/webhooks.md (which tests/unit/notifier/test_webhook_doc.py runs against the notifier's
signatures), in every language; the sign-up form links to it."""

from __future__ import annotations

import html
import re

from connect311_contracts.settings import SigningSettings
from tests.unit.map_api.conftest import make_client
from tests.unit.map_api.factories import RecordingPublisher
from tests.unit.notifier.test_webhook_doc import DOC

CODE = re.compile(r'<code id="verify-code">(.*?)</code>', flags=re.DOTALL)


def test_the_help_page_shows_the_documented_verification_code(
    sqlite_url: str, publisher: RecordingPublisher, signing: SigningSettings
) -> None:
    client = make_client(sqlite_url, publisher, signing)
    page = client.get("/webhooks")
    assert page.status_code == 200
    assert "webhook-signature" in page.text and "<h1>Alerts by webhook</h1>" in page.text
    (documented,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert [html.unescape(code) for code in CODE.findall(page.text)] == [documented]
    spanish = client.get("/webhooks?lang=es").text
    assert "Alertas por webhook" in spanish and CODE.findall(spanish) == CODE.findall(page.text)
    assert 'href="/webhooks"' in client.get("/").text

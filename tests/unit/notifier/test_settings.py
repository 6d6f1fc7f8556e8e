"""Settings come from NOTIFIER_* variables, departments' branding as JSON."""

from __future__ import annotations

import pytest

from connect311_notifier.settings import NotifierSettings


def test_environment_configures_smtp_and_department_branding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFIER_SMTP_HOST", "smtp.example.city")
    monkeypatch.setenv("NOTIFIER_SMTP_PORT", "465")
    monkeypatch.setenv("NOTIFIER_SMTP_IMPLICIT_TLS", "true")
    monkeypatch.setenv("NOTIFIER_SMTP_PASSWORD", "s3cret")
    monkeypatch.setenv(
        "NOTIFIER_AGENCIES",
        '{"Stormwater": {"from_name": "St. Pete Stormwater", "footer": "Call 893-7111"}}',
    )
    settings = NotifierSettings()
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_implicit_tls) == (
        "smtp.example.city",
        465,
        True,
    )
    assert "s3cret" not in repr(settings)  # secrets never printed
    assert settings.branding("Stormwater").from_name == "St. Pete Stormwater"
    assert settings.branding("Stormwater").footer == "Call 893-7111"
    assert settings.branding("Parks").from_name == settings.from_name  # default
    assert settings.branding(None).footer == settings.footer

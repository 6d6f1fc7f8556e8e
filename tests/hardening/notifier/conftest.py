"""The in-process notifier fixture of the integration tests, for hardening tests too."""

from tests.integration.notifier.conftest import start_notifier

__all__ = ["start_notifier"]

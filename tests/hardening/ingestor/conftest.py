"""The ingestor's hardening tests reuse the integration fixtures (a real local feed server)."""

from tests.integration.ingestor.conftest import feed_server, source_name

__all__ = ["feed_server", "source_name"]

"""The test servers themselves are real: SMTP accepts and parses mail, PostgreSQL answers."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import sqlalchemy as sa

from tests.support.smtp import SmtpSink


def test_smtp_sink_receives_a_real_message(smtp_sink: SmtpSink) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.org", "b@example.org", "Grüße"
    msg.set_content("hello")
    with smtplib.SMTP("127.0.0.1", smtp_sink.port) as client:  # type: ignore[attr-defined]
        client.send_message(msg)
    (received,) = smtp_sink.wait_for(1)
    assert received["Subject"] == "Grüße"


def test_postgres_database_is_fresh_and_writable(postgres_database: str) -> None:
    engine = sa.create_engine(postgres_database)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x int)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar() == 1
    engine.dispose()

"""The local broker launcher: a real process on a free port, clear errors when it cannot start."""

from __future__ import annotations

import socket

import pytest

from connect311_local.broker import BrokerStartError, port_answers, running_broker, start_broker


def test_broker_starts_answers_and_stops() -> None:
    with running_broker() as broker:
        assert port_answers(broker.port)
        assert broker.process.poll() is None
    assert broker.process.poll() is not None
    assert not port_answers(broker.port)


def test_a_taken_port_is_refused_with_a_clear_message() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(BrokerStartError, match="already in use"):
            start_broker(port)

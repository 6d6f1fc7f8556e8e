"""A demo lap stops on its first SIGTERM: no acknowledgement can swallow the cancellation.

`run_async` turns SIGTERM into one `cancel()` of the replay's task, and the local run's
supervisor sends SIGTERM once. On Python 3.11 `asyncio.wait_for` returns the result instead
of raising when the cancellation lands in the loop turn its awaitable finishes (gh-86296):
the publisher waited for each batch's acknowledgement that way, so a lap stopped at that
moment lost its only cancel and played on until the supervisor killed it 15 s later.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connect311_contracts.rejects import RecordRejected, RejectReason
from connect311_ingestor.publisher import BrokerUnavailable, Publisher

REJECT = RecordRejected(source="demo", reason=RejectReason.INVALID_DATE, detail="x", raw="{}")


class AckedLater:
    """A producer whose every send is acknowledged when `ack` is resolved."""

    def __init__(self) -> None:
        self.ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def send(self, *_args: Any, **_kwargs: Any) -> asyncio.Future[None]:
        return self.ack


async def _cancel_after_the_ack(turns: int) -> str:
    producer = AckedLater()
    publisher = Publisher(producer, timeout_s=30)

    async def lap() -> None:
        for _ in range(3):  # a lap publishes batch after batch until it is stopped
            await publisher.publish_rejects([REJECT])

    task = asyncio.create_task(lap())
    await asyncio.sleep(0.01)  # the lap waits for the broker's acknowledgement
    producer.ack.set_result(None)  # the acknowledgement lands...
    for _ in range(turns):  # ...and SIGTERM's cancel comes this many loop turns later
        await asyncio.sleep(0)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return "stopped"
    return "played on"  # the cancel was lost


@pytest.mark.parametrize("turns", range(6))
def test_a_cancel_landing_with_an_acknowledgement_stops_the_lap(turns: int) -> None:
    # Each turn count is one fixed interleaving (asyncio runs callbacks in order): together
    # they cover the turns between the acknowledgement and the publisher resuming.
    assert asyncio.run(_cancel_after_the_ack(turns)) == "stopped"


def test_an_acknowledgement_that_never_comes_is_still_a_timeout() -> None:
    async def publish() -> None:
        publisher = Publisher(AckedLater(), timeout_s=0.05)
        await publisher.publish_rejects([REJECT])

    with pytest.raises(BrokerUnavailable, match=r"no acknowledgement within 0\.05 s"):
        asyncio.run(publish())

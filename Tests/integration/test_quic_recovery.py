"""Congestion control from the config (`quic.congestion_control`): both algorithms recover a transfer through a
lossy relay, and the setting applies to connections that start after a change."""

import pytest

from quic_clients import echo, run, start_relay
from test_quic import quic  # noqa: F401  (fixture)


@pytest.mark.parametrize("algorithm", ["cubic", "new_reno"])
def test_each_algorithm_recovers_a_lossy_transfer(quic, algorithm):
    assert quic.api("PUT", "/config/quic", {"congestion_control": algorithm}).status_code == 200

    async def session():
        relay, port = await start_relay(quic.https_port, 0.05)
        sent, received = await echo("aioquic", port, quic.root, [1 << 20])
        assert received == sent and relay.dropped > 0

    run(session(), timeout=60)


def test_unknown_algorithms_are_refused(quic):
    response = quic.api("PUT", "/config/quic", {"congestion_control": "bbr"})
    assert response.status_code == 400 and "/quic/congestion_control" in response.text

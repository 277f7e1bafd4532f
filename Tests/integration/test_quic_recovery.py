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


def test_qlog_records_each_connection(quic, tmp_path):
    """With `quic.qlog_dir`, a connection leaves a JSON-SEQ qlog with its packets, losses and metrics."""
    import json

    directory = tmp_path / "qlog"
    directory.mkdir()
    assert quic.api("PUT", "/config/quic", {"qlog_dir": str(directory)}).status_code == 200

    async def session():
        relay, port = await start_relay(quic.https_port, 0.05)
        sent, received = await echo("aioquic", port, quic.root, [300_000])
        assert received == sent

    run(session())
    files = list(directory.glob("*.sqlog"))
    assert len(files) == 1 and oct(files[0].stat().st_mode & 0o777) == "0o600"
    records = [json.loads(part) for part in files[0].read_bytes().split(b"\x1e") if part.strip()]
    assert records[0]["qlog_format"] == "JSON-SEQ"
    names = {record.get("name") for record in records[1:]}
    assert {"transport:packet_received", "transport:packet_sent", "recovery:metrics_updated"} <= names
    assert "recovery:packet_lost" in names and "transport:connection_closed" in names
    frames = {frame["frame_type"] for record in records[1:] for frame in record.get("data", {}).get("frames", [])}
    assert {"crypto", "ack", "stream", "handshake_done"} <= frames
    # A relative qlog_dir is refused.
    response = quic.api("PATCH", "/config/quic", {"qlog_dir": "qlog"})
    assert response.status_code == 400 and "/quic/qlog_dir" in response.text

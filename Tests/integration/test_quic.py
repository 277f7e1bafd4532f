"""The QUIC transport (experimental, VELOCITY_EXPERIMENTAL_QUIC=1) against real QUIC stacks: aioquic (classical
key exchange, every cipher suite) and qh3 (X25519MLKEM768) carry data both ways over the `velocity-echo`
protocol; loss is recovered; bad datagrams are dropped without harm; config changes keep the socket and live
connections."""

import asyncio
import json
import os
import socket

import pytest
from aioquic.tls import CipherSuite

from quic_clients import ECHO, configuration, echo, echo_stream, payload, run, start_relay, LIBRARIES
from test_https import exported_root
from velocity import free_port, site_config

EXPERIMENTAL = {"VELOCITY_EXPERIMENTAL_QUIC": "1"}


def log_lines(server) -> list[dict]:
    lines = []
    for text in server.log().splitlines():
        try:
            lines.append(json.loads(text))
        except ValueError:
            pass
    return lines


def quic_config(port: int) -> dict:
    """HTTPS and QUIC on the same port, as sites usually run them."""
    listeners = [
        {"protocol": "https", "address": f"127.0.0.1:{port}"},
        {"@id": "quic", "protocol": "quic", "address": f"127.0.0.1:{port}"},
    ]
    return site_config(port, "hello\n", listeners=listeners)


@pytest.fixture
def quic(make_velocity, tmp_path):
    server = make_velocity()
    server.https_port = free_port()
    server.start(quic_config(server.https_port), env=EXPERIMENTAL)
    server.root = str(tmp_path / "root.pem")
    (tmp_path / "root.pem").write_text(exported_root(server))
    return server


@pytest.mark.parametrize("library", ["aioquic", "qh3"])
def test_streams_echo_both_ways(quic, library):
    sent, received = run(echo(library, quic.https_port, quic.root, [0, 1, 1500, 100_000, 3 << 20]))
    assert received == sent


@pytest.mark.parametrize(
    "suite",
    [CipherSuite.AES_128_GCM_SHA256, CipherSuite.AES_256_GCM_SHA384, CipherSuite.CHACHA20_POLY1305_SHA256],
)
def test_every_cipher_suite_protects_packets(quic, suite):
    sent, received = run(echo("aioquic", quic.https_port, quic.root, [50_000], cipher_suites=[suite]))
    assert received == sent


def test_qh3_negotiates_the_post_quantum_group(quic):
    async def session():
        connect, _ = LIBRARIES["qh3"]
        async with connect("127.0.0.1", quic.https_port, configuration=configuration("qh3", quic.root)) as protocol:
            assert await echo_stream(protocol, b"pq") == b"pq"

    run(session())
    established = [line for line in log_lines(quic) if line.get("msg") == "QUIC connection established"]
    assert established, quic.log()
    assert established[-1]["tls_group"] == "X25519MLKEM768" and established[-1]["alpn"] == ECHO, established
    assert established[-1]["tls_version"] == "TLSv1.3"


def test_more_streams_than_the_initial_limit(quic):
    """150 streams one after another on one connection: the server raises MAX_STREAMS as streams finish."""

    async def session():
        connect, _ = LIBRARIES["aioquic"]
        async with connect("127.0.0.1", quic.https_port, configuration=configuration("aioquic", quic.root)) as protocol:
            for index in range(150):
                data = f"stream {index}".encode()
                assert await echo_stream(protocol, data) == data

    run(session())


def test_key_update_keeps_the_connection(quic):
    async def session():
        connect, _ = LIBRARIES["aioquic"]
        async with connect("127.0.0.1", quic.https_port, configuration=configuration("aioquic", quic.root)) as protocol:
            assert await echo_stream(protocol, b"before") == b"before"
            for round in range(3):
                protocol._quic.request_key_update()
                protocol.transmit()
                data = payload(200_000, round)
                assert await echo_stream(protocol, data) == data

    run(session())


@pytest.mark.parametrize("drop", [0.05, 0.2])
def test_lost_packets_are_sent_again(quic, drop):
    """A relay drops a share of the datagrams both ways, handshake included; every byte still arrives."""

    async def session():
        relay, port = await start_relay(quic.https_port, drop)
        sent, received = await echo("aioquic", port, quic.root, [500_000, 20_000])
        assert received == sent
        assert relay.dropped > 0

    run(session(), timeout=120)


def test_wrong_alpn_fails_the_handshake_only(quic):
    with pytest.raises(ConnectionError):
        run(echo("aioquic", quic.https_port, quic.root, [10], alpn="h3"), timeout=20)
    sent, received = run(echo("aioquic", quic.https_port, quic.root, [10]))
    assert received == sent


def test_garbage_datagrams_are_dropped_and_unknown_versions_negotiated(quic):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2)
    target = ("127.0.0.1", quic.https_port)
    for size in [0, 1, 5, 40, 1200, 1500]:
        sock.sendto(os.urandom(size), target)
    # A long header with a truncated connection ID, and an Initial too short to start a connection.
    sock.sendto(bytes([0xC0, 0, 0, 0, 1, 20]) + b"\x01" * 5, target)
    sock.sendto(bytes([0xC0, 0, 0, 0, 1, 8]) + os.urandom(8) + bytes([0]) + b"\x00" * 100, target)
    # An unknown version in a full-size datagram gets a Version Negotiation packet listing version 1.
    destination, source = os.urandom(8), os.urandom(5)
    probe = bytes([0xC0]) + (0x1A2A3A4A).to_bytes(4, "big") + bytes([8]) + destination + bytes([5]) + source
    sock.sendto(probe + b"\x00" * (1200 - len(probe)), target)
    reply, _ = sock.recvfrom(2048)
    assert reply[0] & 0x80 and reply[1:5] == b"\x00\x00\x00\x00"
    assert reply[5] == 5 and reply[6:11] == source and reply[11] == 8 and reply[12:20] == destination
    assert (1).to_bytes(4, "big") in [reply[i : i + 4] for i in range(20, len(reply), 4)]
    sock.close()
    sent, received = run(echo("qh3", quic.https_port, quic.root, [70_000]))
    assert received == sent


def test_config_changes_keep_the_socket_and_live_connections(quic):
    async def session():
        connect, _ = LIBRARIES["aioquic"]
        async with connect("127.0.0.1", quic.https_port, configuration=configuration("aioquic", quic.root)) as protocol:
            assert await echo_stream(protocol, b"one") == b"one"
            await asyncio.to_thread(
                lambda: quic.api("PATCH", "/config/sites/0/routes/0/handle/0/body", "changed\n").raise_for_status()
            )
            assert await echo_stream(protocol, b"two") == b"two"
            await asyncio.to_thread(
                lambda: quic.api("PUT", "/config/tls", {"groups": ["X25519", "P-256"]}).raise_for_status()
            )
            assert await echo_stream(protocol, b"three") == b"three"

    run(session())
    # Removing the listener closes the socket: new connections find nothing.
    assert quic.api("DELETE", "/id/quic").status_code == 200
    with pytest.raises((ConnectionError, asyncio.TimeoutError)):
        run(echo("aioquic", quic.https_port, quic.root, [10], idle_timeout=2.0), timeout=5)


def test_quic_listeners_need_the_experimental_switch(make_velocity):
    server = make_velocity()
    port = free_port()
    server.start(site_config(free_port()))
    response = server.api("PUT", "/config/listeners/0", {"protocol": "quic", "address": f"127.0.0.1:{port}"})
    assert response.status_code == 400
    assert "VELOCITY_EXPERIMENTAL_QUIC" in response.text

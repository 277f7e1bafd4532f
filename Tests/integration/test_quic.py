"""The QUIC transport against real QUIC stacks: aioquic (classical
key exchange, every cipher suite) and qh3 (X25519MLKEM768) carry data both ways over the `velocity-echo`
protocol, 10 MiB included; loss, duplication and reordering are recovered; an unvalidated address never gets
more than three times what it sent; bad datagrams, floods of them and clients breaking the stream rules are
dropped or closed without harm to anything else; config changes keep the socket and live connections."""

import asyncio
import json
import os
import random
import socket

import pytest
from aioquic.tls import CipherSuite

from quic_clients import (
    ECHO,
    LIBRARIES,
    Progress,
    configuration,
    echo,
    echo_along,
    echo_stream,
    flood,
    payload,
    run,
    short_header,
    start_first_flight_relay,
    start_relay,
)
from test_https import exported_root, fetch
from velocity import LocalCA, free_port, site_config

TEN_MIB = 10 << 20


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
    server.start(quic_config(server.https_port))
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


@pytest.mark.parametrize("library", ["aioquic", "qh3"])
def test_ten_mebibytes_up_and_down_one_stream(quic, library):
    """One stream carries 10 MiB up and its echo 10 MiB down, flow control windows turning over many times;
    both digests match."""
    sent, received = run(echo(library, quic.https_port, quic.root, [TEN_MIB]), timeout=120)
    assert received == sent


@pytest.mark.parametrize("library", ["aioquic", "qh3"])
def test_loss_duplication_and_reordering_both_ways(quic, library):
    """A relay drops, duplicates and reorders 5% of the datagrams each, both ways, handshake included; 10 MiB
    up and down one stream still arrive intact in bounded time."""

    async def session():
        relay, port = await start_relay(quic.https_port, drop=0.05, duplicate=0.05, reorder=0.05)
        sent, received = await echo(library, port, quic.root, [TEN_MIB])
        assert received == sent
        assert relay.dropped > 0 and relay.duplicated > 0 and relay.reordered > 0, vars(relay)

    run(session(), timeout=240)


@pytest.fixture
def big_certificate(make_velocity, tmp_path):
    """A QUIC server whose certificate for localhost carries 250 more names (about 7 KB): its first flight is
    more than three times a client's Initial."""
    ca = LocalCA("Big Certificate CA")
    certificate, key = ca.issue("localhost", *(f"name-{index:03d}.padding.example" for index in range(250)))
    server = make_velocity()
    server.https_port = free_port()
    config = quic_config(server.https_port)
    config["tls"] = {"certificates": [{"certificate_pem": certificate, "key_pem": key}]}
    server.start(config)
    server.root = str(tmp_path / "big-ca.pem")
    (tmp_path / "big-ca.pem").write_text(ca.pem)
    return server


@pytest.mark.parametrize("certificate", ["internal", "big"])
@pytest.mark.parametrize("library", ["aioquic", "qh3"])
def test_unvalidated_address_gets_at_most_three_times_what_it_sent(request, library, certificate):
    """A relay lets only the client's first flight through, so the server never sees the client's address
    validated; over 5 s, long enough for several probe timeouts, the server answers but never sends more than
    three times the bytes it received (RFC 9000 §8.1), whether its flight fits in that budget (the internal CA's
    certificate: the probes must stay within it) or not (a big certificate)."""
    server = request.getfixturevalue("quic" if certificate == "internal" else "big_certificate")

    async def session():
        relay, port = await start_first_flight_relay(server.https_port)
        attempt = asyncio.ensure_future(echo(library, port, server.root, [10], idle_timeout=30.0))
        await asyncio.wait([attempt], timeout=5)
        attempt.cancel()
        await asyncio.gather(attempt, return_exceptions=True)
        return relay

    relay = run(session())
    counts = {key: value for key, value in vars(relay).items() if key != "transport"}
    assert relay.received_by_server >= 1200 and relay.dropped > 0, counts
    assert 0 < relay.sent_by_server <= 3 * relay.received_by_server, counts


def test_a_flood_of_bad_datagrams_during_a_transfer(quic):
    """100,000 hostile datagrams (random bytes of 0..1500, full-size Initials with random IDs, short-header
    packets to random IDs and to the live connection's IDs) arrive from another socket, paced so that the server
    reads nearly all of them, while a connection echoes a stream; the echo completes intact, and afterwards the
    admin API, new QUIC connections and HTTPS answer."""

    async def session():
        connect, _ = LIBRARIES["aioquic"]
        config = configuration("aioquic", quic.root)
        async with connect("127.0.0.1", quic.https_port, configuration=config) as protocol:
            assert await echo_stream(protocol, b"ready") == b"ready"
            live = [protocol._quic._peer_cid.cid] + [id.cid for id in protocol._quic._peer_cid_available]
            progress = Progress()
            flooding = asyncio.ensure_future(asyncio.to_thread(flood, quic.https_port, 100_000, 11, live, progress))
            sent, received = await echo_along(protocol, progress, flooding, 8 << 20, seed=12)
            assert received == sent
            return await flooding

    seconds, dropped = run(session(), timeout=180)
    print(f"flood of 100,000 datagrams beside an 8 MiB echo: {seconds:.1f} s, {dropped} dropped by the kernel")
    assert dropped < 1000, f"the server read only {100_000 - dropped} of the datagrams"
    assert quic.api("GET", "/health").status_code == 200
    sent, received = run(echo("qh3", quic.https_port, quic.root, [100_000]))
    assert received == sent
    port = quic.https_port
    body, _ = fetch(f"https://localhost:{port}/", "--cacert", quic.root, "--resolve", f"localhost:{port}:127.0.0.1")
    assert body == "hello\n"


def test_forged_reset_sized_packets_leave_the_connection_alone(quic):
    """2,000 short-header packets of 21..40 random bytes (the size of a stateless reset), to random IDs and to
    the connection's own IDs, from another socket and from the client's own address and port, are dropped: the
    connection keeps echoing."""

    async def session():
        relay, port = await start_relay(quic.https_port)
        connect, _ = LIBRARIES["aioquic"]
        async with connect("127.0.0.1", port, configuration=configuration("aioquic", quic.root)) as protocol:
            assert await echo_stream(protocol, b"before") == b"before"
            live = [protocol._quic._peer_cid.cid] + [id.cid for id in protocol._quic._peer_cid_available]
            rng = random.Random(21)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
                for index in range(2000):
                    destination = rng.choice(live) if index % 2 else rng.randbytes(8)
                    packet = short_header(destination, rng.randint(21, 40), rng)
                    if index % 4 < 2:
                        relay.inject(packet)
                    else:
                        stranger.sendto(packet, ("127.0.0.1", quic.https_port))
            data = payload(300_000, 5)
            assert await echo_stream(protocol, data) == data
            assert protocol._quic._close_event is None

    run(session())


async def break_stream_limit(protocol):
    """Opens stream 400, the 101st, past the MAX_STREAMS of 100 a fresh connection starts with."""
    protocol._quic._remote_max_streams_bidi = 1 << 20
    protocol._quic.send_stream_data(4 * 100, b"one too many", end_stream=True)
    protocol.transmit()
    assert protocol._quic._streams[4 * 100].sender.highest_offset == 12, "the frame went out"


async def break_flow_control(protocol):
    """Sends stream data at an offset far past the stream and connection windows (1 and 4 MiB)."""
    quic = protocol._quic
    stream_id = quic.get_next_available_stream_id()
    quic.send_stream_data(stream_id, b"")
    stream = quic._streams[stream_id]
    stream.max_stream_data_remote = quic._remote_max_data = 1 << 40
    stream.sender._buffer_start = stream.sender._buffer_stop = stream.sender.highest_offset = 8 << 20
    quic.send_stream_data(stream_id, b"past the window", end_stream=True)
    protocol.transmit()
    assert stream.sender.highest_offset == (8 << 20) + 15, "the frame went out"


async def end_a_stream_at_three_bytes(protocol):
    """Sends b"abc" and the FIN on a new stream, at once; returns the stream's sender."""
    _, writer = await protocol.create_stream()
    writer.write(b"abc")
    writer.write_eof()
    protocol.transmit()
    sender = protocol._quic._streams[writer.get_extra_info("stream_id")].sender
    assert sender.highest_offset == 3, "the FIN went out first"
    return sender, writer.get_extra_info("stream_id")


async def break_final_size(protocol):
    """Ends a stream at 3 bytes, then sends 4 more bytes after them on it."""
    sender, stream_id = await end_a_stream_at_three_bytes(protocol)
    sender._buffer_fin = None
    protocol._quic.send_stream_data(stream_id, b"defg")
    protocol.transmit()
    sender._buffer_fin = 3
    assert sender.highest_offset == 7, "the frame went out"


async def break_final_size_by_reset(protocol):
    """Ends a stream at 3 bytes, then resets it claiming a final size of 10."""
    sender, stream_id = await end_a_stream_at_three_bytes(protocol)
    sender.highest_offset = 10
    protocol._quic.reset_stream(stream_id, 0)
    protocol.transmit()
    assert not sender.reset_pending, "the RESET_STREAM went out"


@pytest.mark.parametrize(
    "violation, error",
    [
        (break_stream_limit, 0x4),
        (break_flow_control, 0x3),
        (break_final_size, 0x6),
        (break_final_size_by_reset, 0x6),
    ],
    ids=["stream_limit", "flow_control", "final_size", "final_size_by_reset"],
)
def test_frames_breaking_stream_rules_close_that_connection_only(quic, violation, error):
    """A client made to break a stream rule (too many streams, data past flow control, data past the FIN, a
    RESET_STREAM changing the final size) gets CONNECTION_CLOSE with the RFC 9000 error code (RFC 9000 §4.5,
    §4.6, §4.1); another connection open meanwhile keeps echoing."""

    async def session():
        connect, _ = LIBRARIES["aioquic"]
        config = configuration("aioquic", quic.root)
        async with connect("127.0.0.1", quic.https_port, configuration=config) as bystander:
            async with connect("127.0.0.1", quic.https_port, configuration=config) as protocol:
                await violation(protocol)
                closing = asyncio.ensure_future(protocol.wait_closed())
                done, _ = await asyncio.wait([closing], timeout=10)
                assert done, f"no CONNECTION_CLOSE within 10 s; server log:\n{quic.log()[-2000:]}"
                closed = protocol._quic._close_event
                assert closed.error_code == error, closed
            assert await echo_stream(bystander, b"still here") == b"still here"

    run(session(), timeout=30)


def test_wrong_alpn_fails_the_handshake_only(quic):
    with pytest.raises(ConnectionError):
        run(echo("aioquic", quic.https_port, quic.root, [10], alpn="hq-interop"), timeout=20)
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
    # Random bytes may look like short-header packets (answered with stateless resets) or other versions.
    reply, _ = sock.recvfrom(2048)
    while not (reply[0] & 0x80 and reply[1:5] == b"\x00\x00\x00\x00" and reply[6:11] == source):
        reply, _ = sock.recvfrom(2048)
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

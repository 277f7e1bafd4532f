"""QUIC Retry (RFC 9000 §8.1.2) under `quic.retry: always`: real clients follow the Retry and complete, the
server's Retry packets carry a valid integrity tag, and a token replayed from another address or altered does
not let a client skip the Retry."""

import asyncio
import os
import socket
import time

import pytest

from quic_clients import echo, run
from test_https import exported_root
from test_quic import quic_config
from velocity import free_port


@pytest.fixture
def retrying(make_velocity, tmp_path):
    server = make_velocity()
    server.https_port = free_port()
    server.start(quic_config(server.https_port) | {"quic": {"retry": "always"}})
    server.root = str(tmp_path / "root.pem")
    (tmp_path / "root.pem").write_text(exported_root(server))
    return server


@pytest.mark.parametrize("library", ["aioquic", "qh3"])
def test_clients_complete_after_a_retry(retrying, library):
    sent, received = run(echo(library, retrying.https_port, retrying.root, [0, 200_000]))
    assert received == sent


def retry_for(port: int, destination: bytes, source: bytes) -> bytes:
    """Sends a full-size Initial (garbage payload; the server answers with Retry before decrypting)."""
    header = bytes([0xC3]) + (1).to_bytes(4, "big") + bytes([len(destination)]) + destination
    header += bytes([len(source)]) + source + bytes([0]) + (0x4000 | 1100).to_bytes(2, "big")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(header + os.urandom(1200 - len(header)), ("127.0.0.1", port))
        reply, _ = sock.recvfrom(2048)
    return reply


def test_retry_packets_are_well_formed(retrying):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    destination, source = os.urandom(8), os.urandom(6)
    reply = retry_for(retrying.https_port, destination, source)
    assert reply[0] & 0xF0 == 0xF0 and reply[1:5] == (1).to_bytes(4, "big")
    assert reply[5] == len(source) and reply[6 : 6 + len(source)] == source
    offset = 6 + len(source)
    retry_id = reply[offset + 1 : offset + 1 + reply[offset]]
    assert len(retry_id) == 8 and retry_id != destination
    token = reply[offset + 1 + len(retry_id) : -16]
    assert len(token) > 16 and destination not in token  # sealed, not in the clear
    # RFC 9001 §5.8: the tag is AES-128-GCM over the original destination ID and the packet.
    key = bytes.fromhex("be0c690b9f66575a1d766b54e368c84e")
    nonce = bytes.fromhex("461599d35d632bf2239825bb")
    pseudo = bytes([len(destination)]) + destination + reply[:-16]
    assert AESGCM(key).encrypt(nonce, b"", pseudo) == reply[-16:]


def test_a_token_does_not_work_when_altered_or_for_another_destination(retrying):
    destination, source = os.urandom(8), os.urandom(6)
    reply = retry_for(retrying.https_port, destination, source)
    offset = 6 + len(source)
    retry_id = reply[offset + 1 : offset + 9]
    token = reply[offset + 9 : -16]

    def initial_with(token: bytes, to: bytes) -> bytes:
        header = bytes([0xC3]) + (1).to_bytes(4, "big") + bytes([len(to)]) + to + bytes([len(source)]) + source
        header += bytes([len(token)]) + token + (0x4000 | 1000).to_bytes(2, "big")
        return header + os.urandom(1200 - len(header))

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        altered = bytes([token[0] ^ 1]) + token[1:]
        for packet in [initial_with(altered, retry_id), initial_with(token, os.urandom(8))]:
            sock.sendto(packet, ("127.0.0.1", retrying.https_port))
            reply, _ = sock.recvfrom(2048)
            # Not accepted: the server asks for a Retry again rather than starting a handshake.
            assert reply[0] & 0xF0 == 0xF0, reply[:8]


def client_initials(port: int, count: int) -> list[bytes]:
    """The first datagram of `count` real aioquic handshakes (valid Initials, each with its own IDs)."""
    import time

    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    datagrams = []
    for _ in range(count):
        connection = QuicConnection(
            configuration=QuicConfiguration(is_client=True, alpn_protocols=["velocity-echo"], server_name="localhost")
        )
        connection.connect(("127.0.0.1", port), now=time.time())
        datagrams.append(connection.datagrams_to_send(now=time.time())[0][0])
    return datagrams


def test_auto_asks_for_retry_only_while_many_handshakes_are_open(make_velocity):
    """Under `auto` (the default), handshakes that never finish pile up like a flood of spoofed Initials; past
    256 of them, new clients are asked to Retry instead of getting a key exchange."""
    server = make_velocity()
    server.https_port = free_port()
    server.start(quic_config(server.https_port))
    initials = client_initials(server.https_port, 300)
    retries = handshakes = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.settimeout(2)
        for index, datagram in enumerate(initials):
            sock.sendto(datagram, ("127.0.0.1", server.https_port))
            if index == 0:
                # The first client is answered with a handshake, not a Retry.
                reply, _ = sock.recvfrom(4096)
                assert reply[0] & 0xF0 == 0xC0, reply[:8]
        try:
            while True:
                reply, _ = sock.recvfrom(4096)
                if reply[0] & 0xF0 == 0xF0:
                    retries += 1
                elif reply[0] & 0xF0 == 0xC0:
                    handshakes += 1
        except socket.timeout:
            pass
    assert retries == 300 - 256, (retries, handshakes)


def test_a_new_token_lets_the_next_connection_skip_the_retry(retrying):
    """The server sends NEW_TOKEN after the handshake; a client presenting it next time is not asked to Retry."""
    import aioquic.asyncio

    from quic_clients import configuration, echo_stream

    tokens: list[bytes] = []

    async def connection(token: bytes | None) -> int:
        config = configuration("aioquic", retrying.root)
        if token:
            config.token = token
        async with aioquic.asyncio.connect(
            "127.0.0.1", retrying.https_port, configuration=config, token_handler=tokens.append
        ) as protocol:
            assert await echo_stream(protocol, b"hello") == b"hello"
            await asyncio.sleep(0.1)
            return protocol._quic._retry_count

    assert run(connection(None)) == 1
    assert tokens, "no NEW_TOKEN received"
    assert run(connection(tokens[0])) == 0
    # An altered token is worth nothing: the client is asked to Retry again.
    assert run(connection(bytes([tokens[0][0] ^ 1]) + tokens[0][1:])) == 1


def test_one_address_gets_at_most_1024_connections(make_velocity):
    """With Retry off, Initials from one address beyond 1,024 open connections are dropped unanswered."""
    server = make_velocity()
    server.https_port = free_port()
    server.start(quic_config(server.https_port) | {"quic": {"retry": "never"}})
    initials = client_initials(server.https_port, 1100)
    answered = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        sock.settimeout(2)
        for index, datagram in enumerate(initials):
            sock.sendto(datagram, ("127.0.0.1", server.https_port))
            if index % 50 == 49:
                time.sleep(0.02)  # let the server keep up, so no Initial is lost in the socket
        try:
            while True:
                reply, _ = sock.recvfrom(4096)
                if reply[0] & 0xF0 == 0xC0:
                    answered.add(reply[6 : 6 + reply[5]])  # the client's ID, which the server answers to
        except socket.timeout:
            pass
    assert len(answered) == 1024

"""Connection IDs the QUIC server gives out (RFC 9000 §5.1): spare IDs with stateless reset tokens, switching
to them mid-connection, and stateless resets (§10.3) for packets to IDs of connections that are gone."""

import asyncio
import os
import socket

import pytest

from quic_clients import LIBRARIES, configuration, echo, echo_stream, run
from test_quic import quic  # noqa: F401  (fixture)


def test_client_switches_to_spare_ids_and_keeps_the_connection(quic):
    async def session():
        connect, _ = LIBRARIES["aioquic"]
        config = configuration("aioquic", quic.root)
        async with connect("127.0.0.1", quic.https_port, configuration=config) as protocol:
            assert await echo_stream(protocol, b"first") == b"first"
            client = protocol._quic
            # The server gave three spare IDs beyond the handshake's (active_connection_id_limit is 8 here).
            assert len(client._peer_cid_available) == 3
            used = {client._peer_cid.cid}
            for round in range(6):  # more switches than spare IDs: retired IDs are replaced
                client.change_connection_id()
                protocol.transmit()
                used.add(client._peer_cid.cid)
                data = f"after switch {round}".encode() * 1000
                assert await echo_stream(protocol, data) == data
            assert len(used) == 7

    run(session())


def test_packets_for_a_closed_connection_get_a_stateless_reset(quic):
    async def session():
        connect, _ = LIBRARIES["aioquic"]
        async with connect("127.0.0.1", quic.https_port, configuration=configuration("aioquic", quic.root)) as protocol:
            assert await echo_stream(protocol, b"x") == b"x"
            return [(entry.cid, entry.stateless_reset_token) for entry in protocol._quic._peer_cid_available]

    spare = run(session())
    assert spare
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        for cid, token in spare:
            # A short-header packet to an ID of the closed connection, once its draining period is over.
            for _ in range(25):
                sock.sendto(bytes([0x40 | 0x01]) + cid + os.urandom(40), ("127.0.0.1", quic.https_port))
                try:
                    reply, _ = sock.recvfrom(2048)
                    break
                except socket.timeout:
                    continue
            else:
                raise AssertionError("no stateless reset")
            assert reply[0] & 0xC0 == 0x40 and len(reply) == 43, reply
            assert reply[-16:] == token
        # Too short a packet to answer with something smaller that still looks like a packet: no reply.
        sock.sendto(bytes([0x41]) + spare[0][0] + os.urandom(12), ("127.0.0.1", quic.https_port))
        sock.settimeout(0.5)
        try:
            reply, _ = sock.recvfrom(2048)
            raise AssertionError(f"unexpected reply {reply!r}")
        except socket.timeout:
            pass


def test_a_stateless_reset_from_the_client_ends_the_connection(quic):
    """The client's NEW_CONNECTION_ID frames carry reset tokens; a datagram from the client's address that ends
    in one makes the server drop the connection at once, without answering."""
    import aioquic.asyncio

    async def session():
        config = configuration("aioquic", quic.root)
        async with aioquic.asyncio.connect("127.0.0.1", quic.https_port, configuration=config) as protocol:
            assert await echo_stream(protocol, b"before") == b"before"
            token = protocol._quic._host_cids[-1].stateless_reset_token
            # Looks like a short-header packet for an unknown ID, ends in the token (RFC 9000 §10.3).
            reset = bytes([0x40 | 0x15]) + os.urandom(30) + token
            # From the client's own socket (aioquic's is IPv6, dual-stack).
            protocol._transport.sendto(reset, ("::ffff:127.0.0.1", quic.https_port))
            with pytest.raises((asyncio.TimeoutError, ConnectionError)):
                await asyncio.wait_for(echo_stream(protocol, b"after"), 3)

    run(session())
    # Another connection is unaffected.
    sent, received = run(echo("aioquic", quic.https_port, quic.root, [1000]))
    assert received == sent


def test_a_forged_reset_from_elsewhere_changes_nothing(quic):
    import aioquic.asyncio

    async def session():
        config = configuration("aioquic", quic.root)
        async with aioquic.asyncio.connect("127.0.0.1", quic.https_port, configuration=config) as protocol:
            token = protocol._quic._host_cids[-1].stateless_reset_token
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
                stranger.sendto(bytes([0x40 | 0x15]) + os.urandom(30) + token, ("127.0.0.1", quic.https_port))
            await asyncio.sleep(0.2)
            assert await echo_stream(protocol, b"still here") == b"still here"

    run(session())

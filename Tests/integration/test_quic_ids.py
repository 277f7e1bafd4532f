"""Connection IDs the QUIC server gives out (RFC 9000 §5.1): spare IDs with stateless reset tokens, switching
to them mid-connection, and stateless resets (§10.3) for packets to IDs of connections that are gone."""

import os
import socket

from quic_clients import LIBRARIES, configuration, echo_stream, run
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

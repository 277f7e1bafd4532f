"""ECN on the QUIC server (RFC 9000 §13.4): it counts the ECN codepoints of what it receives and reports them
in ACK frames, and it marks its own first packets ECT(0), going on only if the client's ACKs count them
(aioquic's do not, so marking stops after the test packets)."""

import select
import socket
import threading

import aioquic.quic.connection
from aioquic.buffer import Buffer
from aioquic.quic.packet import QuicFrameType, pull_ack_frame

from quic_clients import echo, run
from test_quic import quic  # noqa: F401  (fixture)

IP_RECVTOS = getattr(socket, "IP_RECVTOS", 13)
ECT0 = 0x02


class MarkingRelay(threading.Thread):
    """Relays one client's datagrams to the server with the ECT(0) codepoint, and reads the codepoint of every
    datagram the server sends back."""

    def __init__(self, server_port: int):
        super().__init__(daemon=True)
        self.server = ("127.0.0.1", server_port)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, ECT0)
        self.back.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
        self.client = None
        self.from_server = self.marked_by_server = 0
        self.running = True

    @property
    def port(self) -> int:
        return self.front.getsockname()[1]

    def run(self):
        while self.running:
            readable, _, _ = select.select([self.front, self.back], [], [], 0.1)
            if self.front in readable:
                data, self.client = self.front.recvfrom(65536)
                self.back.sendto(data, self.server)
            if self.back in readable:
                data, ancillary, _, _ = self.back.recvmsg(65536, socket.CMSG_SPACE(4))
                self.from_server += 1
                for level, kind, value in ancillary:
                    if level == socket.IPPROTO_IP and kind == socket.IP_TOS and value[0] & 0x03 == ECT0:
                        self.marked_by_server += 1
                if self.client:
                    self.front.sendto(data, self.client)

    def stop(self):
        self.running = False
        self.join()
        self.front.close()
        self.back.close()


def test_ecn_counts_are_reported_and_marking_stops_without_confirmation(quic, monkeypatch):
    reported = []
    original = aioquic.quic.connection.QuicConnection._handle_ack_frame

    def handle_ack(self, context, frame_type, buf: Buffer):
        if frame_type == QuicFrameType.ACK_ECN:
            start = buf.tell()
            pull_ack_frame(buf)
            reported.append(tuple(buf.pull_uint_var() for _ in range(3)))
            buf.seek(start)
        return original(self, context, frame_type, buf)

    monkeypatch.setattr(aioquic.quic.connection.QuicConnection, "_handle_ack_frame", handle_ack)
    relay = MarkingRelay(quic.https_port)
    relay.start()
    try:
        sent, received = run(echo("aioquic", relay.port, quic.root, [2 << 20]))
        assert received == sent
    finally:
        relay.stop()
    # Every client packet arrived ECT(0): the server's ACK frames count them, and nothing else.
    assert reported, "no ACK_ECN frames"
    assert reported[-1][0] > 100 and reported[-1][1] == 0 and reported[-1][2] == 0, reported[-1]
    # The server tested the path with its first ten packets, then stopped: aioquic reports no counts.
    assert 1 <= relay.marked_by_server <= 10 < relay.from_server, (relay.marked_by_server, relay.from_server)

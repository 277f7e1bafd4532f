"""Stream state on the QUIC server: a client's RESET_STREAM and STOP_SENDING end the echo of that stream only
(the server answers with RESET_STREAM), unidirectional client streams are read and not echoed, and the
connection goes on."""

import asyncio

import aioquic.asyncio
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.events import DatagramFrameReceived, StreamDataReceived, StreamReset

from quic_clients import configuration, echo_stream, run
from test_quic import quic  # noqa: F401  (fixture)


class Recorder(QuicConnectionProtocol):
    """Keeps every stream event, so a test can wait for the one it expects."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.events = []
        self.changed = asyncio.Event()

    def quic_event_received(self, event):
        if isinstance(event, (StreamDataReceived, StreamReset)):
            self.events.append(event)
            self.changed.set()
        super().quic_event_received(event)

    async def wait_for(self, predicate, timeout: float = 5):
        async def wait():
            while not any(predicate(event) for event in self.events):
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)
        return [event for event in self.events if predicate(event)]


def session(server, body):
    async def run_session():
        async with aioquic.asyncio.connect(
            "127.0.0.1", server.https_port, configuration=configuration("aioquic", server.root), create_protocol=Recorder
        ) as protocol:
            await body(protocol, protocol._quic)

    run(run_session())


def test_a_client_reset_ends_that_stream_only(quic):
    async def body(protocol, client):
        # The reset goes out before any data: RESET_STREAM alone opens the stream on the server.
        stream = client.get_next_available_stream_id()
        client.send_stream_data(stream, b"never sent")
        client.reset_stream(stream, error_code=0x42)
        protocol.transmit()
        resets = await protocol.wait_for(lambda e: isinstance(e, StreamReset) and e.stream_id == stream)
        assert resets[0].error_code == 0x42
        assert await echo_stream(protocol, b"still fine") == b"still fine"

    session(quic, body)


def test_stop_sending_makes_the_server_reset_its_side(quic):
    async def body(protocol, client):
        stream = client.get_next_available_stream_id()
        client.send_stream_data(stream, b"x" * 100_000)
        client.stop_stream(stream, error_code=0x7)
        protocol.transmit()
        resets = await protocol.wait_for(lambda e: isinstance(e, StreamReset) and e.stream_id == stream)
        assert resets[0].error_code == 0x7
        assert await echo_stream(protocol, b"next") == b"next"

    session(quic, body)


def test_unidirectional_client_streams_are_read_not_echoed(quic):
    async def body(protocol, client):
        stream = client.get_next_available_stream_id(is_unidirectional=True)
        client.send_stream_data(stream, b"one way" * 1000, end_stream=True)
        protocol.transmit()
        assert await echo_stream(protocol, b"two way") == b"two way"
        assert not [e for e in protocol.events if getattr(e, "stream_id", None) == stream]

    session(quic, body)


class DatagramRecorder(Recorder):
    def quic_event_received(self, event):
        if isinstance(event, DatagramFrameReceived):
            self.events.append(event)
            self.changed.set()
        super().quic_event_received(event)


def datagram_session(server, body, **options):
    async def run_session():
        config = configuration("aioquic", server.root, max_datagram_frame_size=65536, **options)
        async with aioquic.asyncio.connect(
            "127.0.0.1", server.https_port, configuration=config, create_protocol=DatagramRecorder
        ) as protocol:
            await body(protocol, protocol._quic)

    run(run_session())


def test_datagrams_are_echoed_when_enabled(quic):
    assert quic.api("PUT", "/config/quic", {"datagrams": True}).status_code == 200

    async def body(protocol, client):
        assert client._remote_max_datagram_frame_size == 65535
        sent = [f"datagram {index}".encode() * (index + 1) for index in range(20)]
        for data in sent:
            client.send_datagram_frame(data)
        protocol.transmit()
        echoed = await protocol.wait_for(lambda e: isinstance(e, DatagramFrameReceived) and e.data == sent[-1])
        received = {e.data for e in protocol.events if isinstance(e, DatagramFrameReceived)}
        # Unreliable, but nothing is lost on loopback.
        assert echoed and received == set(sent)

    datagram_session(quic, body)


def test_a_datagram_when_they_are_off_closes_the_connection(quic):
    """Off by default: the server does not offer them, and a client sending one anyway breaks the protocol."""

    async def body(protocol, client):
        assert client._remote_max_datagram_frame_size is None
        client._remote_max_datagram_frame_size = 65535  # pretend it was offered
        client.send_datagram_frame(b"unwanted")
        protocol.transmit()
        await asyncio.wait_for(protocol.wait_closed(), 5)
        assert client._close_event.error_code == 0x0A  # PROTOCOL_VIOLATION

    datagram_session(quic, body)

"""QUIC clients for the transport tests: aioquic (classical key exchange) and qh3 (offers X25519MLKEM768),
speaking the `velocity-echo` protocol, plus a lossy UDP relay to put between a client and the server."""

import asyncio
import hashlib
import random
import ssl

import aioquic.asyncio
import aioquic.quic.configuration
import qh3.asyncio
import qh3.quic.configuration

ECHO = "velocity-echo"

LIBRARIES = {
    "aioquic": (aioquic.asyncio.connect, aioquic.quic.configuration.QuicConfiguration),
    "qh3": (qh3.asyncio.connect, qh3.quic.configuration.QuicConfiguration),
}


def configuration(library: str, cafile: str, alpn: str = ECHO, **options):
    make = LIBRARIES[library][1]
    config = make(alpn_protocols=[alpn], is_client=True, server_name="localhost", **options)
    config.cafile = cafile
    config.verify_mode = ssl.CERT_REQUIRED
    return config


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


async def echo_stream(protocol, data: bytes, chunk: int = 65536) -> bytes:
    """Sends `data` on a new bidirectional stream, ends it, and returns everything echoed back."""
    reader, writer = await protocol.create_stream()
    for start in range(0, len(data), chunk):
        writer.write(data[start : start + chunk])
        await asyncio.sleep(0)
    writer.write_eof()
    return await reader.read()


async def echo(library: str, port: int, cafile: str, sizes: list[int], host: str = "127.0.0.1", **options):
    """Opens one connection and echoes one stream per size concurrently; returns the digests sent and
    received, and the protocol's cipher where the library tells."""
    connect = LIBRARIES[library][0]
    config = configuration(library, cafile, **options)
    async with connect(host, port, configuration=config) as protocol:
        blobs = [payload(size, seed) for seed, size in enumerate(sizes)]
        echoed = await asyncio.gather(*(echo_stream(protocol, blob) for blob in blobs))
        return [hashlib.sha256(b).hexdigest() for b in blobs], [hashlib.sha256(b).hexdigest() for b in echoed]


def run(coroutine, timeout: float = 60):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


class LossyRelay(asyncio.DatagramProtocol):
    """Relays datagrams between one client and a server, dropping a share of them both ways."""

    def __init__(self, server: tuple[str, int], drop: float, seed: int = 7):
        self.server = server
        self.drop = drop
        self.random = random.Random(seed)
        self.client: tuple[str, int] | None = None
        self.dropped = 0
        self.upstream: asyncio.DatagramTransport | None = None
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, address):
        if self.random.random() < self.drop:
            self.dropped += 1
            return
        if address == self.server:
            if self.client:
                self.transport.sendto(data, self.client)
        else:
            self.client = address
            self.transport.sendto(data, self.server)


async def start_relay(server_port: int, drop: float) -> tuple[LossyRelay, int]:
    loop = asyncio.get_running_loop()
    transport, relay = await loop.create_datagram_endpoint(
        lambda: LossyRelay(("127.0.0.1", server_port), drop), local_addr=("127.0.0.1", 0)
    )
    return relay, transport.get_extra_info("sockname")[1]

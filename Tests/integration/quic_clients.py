"""QUIC clients for the transport tests: aioquic (classical key exchange) and qh3 (offers X25519MLKEM768),
speaking the `velocity-echo` protocol; UDP relays to put between a client and the server (one that drops,
duplicates and reorders datagrams, one that lets only the client's first flight through); and a flood of
datagrams that are not QUIC or not for any live connection."""

import asyncio
import hashlib
import random
import socket
import ssl
import time

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


class ImpairedRelay(asyncio.DatagramProtocol):
    """Relays datagrams between one client and a server. Each way, each datagram is dropped with probability
    `drop`, else sent twice with probability `duplicate`, and held back with probability `reorder` until the
    next datagram that way has gone (or `hold` seconds have passed, whichever comes first). Counts what it did:
    `reordered` counts only datagrams that really went after a later one."""

    def __init__(
        self, server: tuple[str, int], drop: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0,
        hold: float = 0.005, seed: int = 7,
    ):
        self.server = server
        self.drop, self.duplicate, self.reorder, self.hold = drop, duplicate, reorder, hold
        self.random = random.Random(seed)
        self.client: tuple[str, int] | None = None
        self.dropped = self.duplicated = self.reordered = 0
        # Per destination: the datagram held back, how many copies of it to send, and its timer.
        self.held: dict[tuple[str, int], tuple[bytes, int, asyncio.TimerHandle]] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, address):
        if address == self.server:
            if self.client:
                self.impair(data, self.client)
        else:
            self.client = address
            self.impair(data, self.server)

    def impair(self, data: bytes, destination: tuple[str, int]):
        if self.drop and self.random.random() < self.drop:
            self.dropped += 1
            return
        copies = 2 if self.duplicate and self.random.random() < self.duplicate else 1
        self.duplicated += copies - 1
        held = self.held.pop(destination, None)
        if held is None and self.reorder and self.random.random() < self.reorder:
            timer = asyncio.get_running_loop().call_later(self.hold, self.release, destination)
            self.held[destination] = (data, copies, timer)
            return
        self.send(data, copies, destination)
        if held:
            held[2].cancel()
            self.send(held[0], held[1], destination)
            self.reordered += 1

    def release(self, destination: tuple[str, int]):
        data, copies, _ = self.held.pop(destination)
        self.send(data, copies, destination)

    def send(self, data: bytes, copies: int, destination: tuple[str, int]):
        for _ in range(copies):
            self.transport.sendto(data, destination)

    def inject(self, data: bytes):
        """Sends `data` to the server from the relay's socket: as if from the client's address and port."""
        self.transport.sendto(data, self.server)


async def start_relay(
    server_port: int, drop: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0, seed: int = 7
) -> tuple[ImpairedRelay, int]:
    loop = asyncio.get_running_loop()
    transport, relay = await loop.create_datagram_endpoint(
        lambda: ImpairedRelay(("127.0.0.1", server_port), drop, duplicate, reorder, seed=seed),
        local_addr=("127.0.0.1", 0),
    )
    return relay, transport.get_extra_info("sockname")[1]


def is_initial(datagram: bytes) -> bool:
    """Whether a datagram starts with a QUIC v1 long-header Initial packet."""
    return len(datagram) >= 5 and datagram[0] & 0xF0 == 0xC0 and datagram[1:5] == b"\x00\x00\x00\x01"


class FirstFlightRelay(asyncio.DatagramProtocol):
    """Lets through the client's first flight (its Initial datagrams until the server first answers) and drops
    everything the client sends after it, so the server never sees the client's address validated. Everything
    the server sends reaches the client. Counts the bytes the server received from the client and sent."""

    def __init__(self, server: tuple[str, int]):
        self.server = server
        self.client: tuple[str, int] | None = None
        self.received_by_server = self.sent_by_server = 0
        self.datagrams_from_server = self.dropped = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, address):
        if address == self.server:
            self.sent_by_server += len(data)
            self.datagrams_from_server += 1
            if self.client:
                self.transport.sendto(data, self.client)
        elif self.datagrams_from_server == 0 and is_initial(data):
            self.client = address
            self.received_by_server += len(data)
            self.transport.sendto(data, self.server)
        else:
            self.dropped += 1


async def start_first_flight_relay(server_port: int) -> tuple[FirstFlightRelay, int]:
    loop = asyncio.get_running_loop()
    transport, relay = await loop.create_datagram_endpoint(
        lambda: FirstFlightRelay(("127.0.0.1", server_port)), local_addr=("127.0.0.1", 0)
    )
    return relay, transport.get_extra_info("sockname")[1]


class Progress:
    """How far a job on another thread has got, as a fraction, with an event the loop can wait on."""

    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.fraction = 0.0
        self.changed = asyncio.Event()

    def report(self, fraction: float):
        """Called from the job's thread."""
        self.loop.call_soon_threadsafe(self._set, fraction)

    def _set(self, fraction: float):
        self.fraction = fraction
        self.changed.set()


async def echo_along(protocol, progress: Progress, busy: asyncio.Future, size: int, seed: int):
    """Echoes `size` seeded bytes on one stream spread over a job's `progress` (each 64 KiB chunk once the job
    is that far along), ending the stream only once `busy` is done; returns the sha256 digests of what was sent
    and what came back."""
    source = random.Random(seed)
    reader, writer = await protocol.create_stream()
    sent_digest = hashlib.sha256()
    reading = asyncio.ensure_future(reader.read())
    for start in range(0, size, 65536):
        while start / size > progress.fraction and not busy.done():
            progress.changed.clear()
            changed = asyncio.ensure_future(progress.changed.wait())
            await asyncio.wait([changed, busy, reading], return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            if reading.done():
                raise ConnectionError(f"the echo ended early: {reading.result()[:100]!r}")
        data = source.randbytes(min(65536, size - start))
        writer.write(data)
        sent_digest.update(data)
    await asyncio.wait([busy, reading], return_when=asyncio.FIRST_COMPLETED)
    writer.write_eof()
    return sent_digest.hexdigest(), hashlib.sha256(await reading).hexdigest()


def short_header(destination: bytes, size: int, rng: random.Random) -> bytes:
    """A 1-RTT-looking packet (fixed bit set) to `destination` with random protected bytes."""
    return bytes([0x40 | rng.getrandbits(6)]) + destination + rng.randbytes(max(0, size - 1 - len(destination)))


def fake_initial(rng: random.Random, size: int = 1200) -> bytes:
    """A full-size QUIC v1 Initial with random connection IDs and a random (undecryptable) payload."""
    destination = rng.randbytes(rng.randint(8, 20))
    source = rng.randbytes(rng.randint(0, 20))
    header = bytes([0xC0 | rng.getrandbits(4)]) + (1).to_bytes(4, "big") + bytes([len(destination)]) + destination
    header += bytes([len(source)]) + source + bytes([0])
    header += (0x4000 | (size - len(header) - 2)).to_bytes(2, "big")
    return header + rng.randbytes(size - len(header))


def flood_datagrams(count: int, seed: int, live_ids: list[bytes] = ()):
    """`count` hostile datagrams, seeded: 70% random bytes of 0..1500, 15% full-size Initials with random IDs,
    15% short-header packets of 21..1400 bytes to random 8-byte IDs or, a third of them, to `live_ids`."""
    rng = random.Random(seed)
    for _ in range(count):
        kind = rng.random()
        if kind < 0.70:
            yield rng.randbytes(rng.randint(0, 1500))
        elif kind < 0.85:
            yield fake_initial(rng)
        else:
            destination = rng.choice(live_ids) if live_ids and rng.random() < 1 / 3 else rng.randbytes(8)
            yield short_header(destination, rng.randint(21, 1400), rng)


def udp_socket_state(port: int) -> tuple[int, int]:
    """The bytes waiting in the receive queue of the UDP socket on 127.0.0.1:`port` and the datagrams the kernel
    dropped at it so far (Linux, /proc/net/udp)."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as table:
        for line in table:
            fields = line.split()
            if fields[1] == local:
                return int(fields[4].split(":")[1], 16), int(fields[-1])
    raise LookupError(f"no UDP socket on 127.0.0.1:{port}")


def flood(
    port: int, count: int, seed: int, live_ids: list[bytes] = (), progress: Progress | None = None,
    burst: int = 64, backlog: int = 256 << 10,
):
    """Sends `flood_datagrams` to the port on 127.0.0.1 from a socket of its own, in bursts, each once the
    server's socket has fewer than `backlog` bytes waiting: the server reads the flood rather than the kernel
    dropping most of it. Reports each burst to `progress`. Returns the seconds it took and the datagrams the
    kernel dropped at the server's socket meanwhile."""
    started = time.monotonic()
    _, dropped = udp_socket_state(port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for index, datagram in enumerate(flood_datagrams(count, seed, live_ids)):
            if index % burst == 0:
                if progress:
                    progress.report(index / count)
                deadline = time.monotonic() + 10
                while udp_socket_state(port)[0] >= backlog:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"the server left its socket unread for 10 s after {index} datagrams")
                    time.sleep(0.0005)
            sock.sendto(datagram, ("127.0.0.1", port))
    return time.monotonic() - started, udp_socket_state(port)[1] - dropped

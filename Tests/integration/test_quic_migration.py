"""Connection migration (RFC 9000 §9): when a NAT rebinds the client to a new port mid-transfer, the server
follows it to the new address after validating the path, and the transfer completes intact."""

import asyncio
import hashlib

import aioquic.asyncio

from quic_clients import configuration, echo_stream, payload, run
from test_quic import quic  # noqa: F401  (fixture)


class RebindingRelay:
    """Forwards one client's datagrams to the server from a socket it can swap for a new one (a new source
    port, as a NAT rebinding gives), and the server's answers back to the client."""

    def __init__(self, server_port: int):
        self.server = ("127.0.0.1", server_port)
        self.client = None
        self.front = None
        self.back = None
        self.received_on = {}  # back socket port -> datagrams from the server

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        relay = self

        class Front(asyncio.DatagramProtocol):
            def datagram_received(self, data, address):
                relay.client = address
                relay.back.sendto(data, relay.server)

        self.front, _ = await loop.create_datagram_endpoint(Front, local_addr=("127.0.0.1", 0))
        await self.rebind()
        return self.front.get_extra_info("sockname")[1]

    async def rebind(self) -> None:
        loop = asyncio.get_running_loop()
        relay = self

        class Back(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.port = transport.get_extra_info("sockname")[1]
                relay.received_on.setdefault(self.port, 0)

            def datagram_received(self, data, address):
                relay.received_on[self.port] += 1
                if relay.client:
                    relay.front.sendto(data, relay.client)

        # The old socket stays open, so late packets to it still arrive, as they would at a NAT.
        self.back, _ = await loop.create_datagram_endpoint(Back, local_addr=("127.0.0.1", 0))


def test_transfer_survives_a_nat_rebinding(quic):
    async def session():
        relay = RebindingRelay(quic.https_port)
        port = await relay.start()
        config = configuration("aioquic", quic.root)
        async with aioquic.asyncio.connect("127.0.0.1", port, configuration=config) as protocol:
            assert await echo_stream(protocol, b"before") == b"before"
            first = relay.back.get_extra_info("sockname")[1]
            data = payload(2 << 20, 3)
            transfer = asyncio.ensure_future(echo_stream(protocol, data))
            await asyncio.sleep(0.2)
            await relay.rebind()
            second = relay.back.get_extra_info("sockname")[1]
            echoed = await transfer
            assert hashlib.sha256(echoed).digest() == hashlib.sha256(data).digest()
            assert await echo_stream(protocol, b"after") == b"after"
            # The server moved to the new port.
            assert relay.received_on[second] > 0, relay.received_on
            before = relay.received_on[first]
            assert await echo_stream(protocol, b"again") == b"again"
            assert relay.received_on[first] == before

    run(session())

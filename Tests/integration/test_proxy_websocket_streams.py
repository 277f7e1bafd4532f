"""WebSocket through reverse_proxy from HTTP/2 and HTTP/3 clients (extended CONNECT, RFC 8441 and RFC 9220): the
server advertises SETTINGS_ENABLE_CONNECT_PROTOCOL, a CONNECT with `:protocol websocket` reaches the upstream as an
ordinary HTTP/1.1 Upgrade handshake, the upstream's 101 comes back as 200, and the stream then carries frames both
ways until either side closes. Other protocols, routes without a proxy and upstreams that do not switch properly
are refused; an open tunnel survives config commits."""

import asyncio
import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import time
from collections import defaultdict

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from aioquic.asyncio import QuicConnectionProtocol, connect
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import StreamReset

from test_https import exported_root
from test_proxy_websocket import EchoWebSocketServer, HoldingUpstream
from velocity import free_port

ONE_MIB = 1 << 20
ENABLE_CONNECT_PROTOCOL = 0x8
CLOSE, TEXT, BINARY = 0x8, 0x1, 0x2


# MARK: WebSocket frames (RFC 6455 §5)


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A final frame as a client must send it: masked."""
    length = len(payload)
    if length < 126:
        header = bytes([0x80 | opcode, 0x80 | length])
    elif length < 65536:
        header = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack("!H", length)
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack("!Q", length)
    key = os.urandom(4)
    stream = (key * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(length, "big")
    return header + key + masked


def next_frame(buffer: bytearray) -> tuple[int, bytes] | None:
    """Takes one whole unmasked frame (as servers send them) off the front of `buffer`: (opcode, payload)."""
    if len(buffer) < 2:
        return None
    length, start = buffer[1] & 0x7F, 2
    if length == 126:
        if len(buffer) < 4:
            return None
        length, start = struct.unpack("!H", buffer[2:4])[0], 4
    elif length == 127:
        if len(buffer) < 10:
            return None
        length, start = struct.unpack("!Q", buffer[2:10])[0], 10
    if len(buffer) < start + length:
        return None
    frame = (buffer[0] & 0x0F, bytes(buffer[start : start + length]))
    del buffer[: start + length]
    return frame


MESSAGES = [
    (TEXT, b"hello"),
    (BINARY, bytes(range(256))),
    (BINARY, os.urandom(ONE_MIB)),
    (TEXT, "unicode \u00e9\u4e16".encode()),
    (BINARY, os.urandom(70_000)),
]


# MARK: HTTP/2 client


class H2Client:
    """The h2 library on a TLS connection with ALPN h2, driven by hand: enough to open extended CONNECT streams
    and move WebSocket frames on them."""

    def __init__(self, port: int, cafile: str):
        context = ssl.create_default_context(cafile=cafile)
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        assert self.sock.selected_alpn_protocol() == "h2"
        self.authority = f"localhost:{port}"
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(4 * ONE_MIB)
        self.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: ONE_MIB})
        self.send()
        self.server_settings: dict[int, int] | None = None
        # While holding, received data is kept but not acknowledged, so the server's windows run out.
        self.holding = False
        self.unacknowledged: list[tuple[int, int]] = []
        self.responses: dict[int, dict[str, str]] = {}
        self.data: dict[int, bytearray] = defaultdict(bytearray)
        self.ended: set[int] = set()
        self.reset: dict[int, int] = {}
        while self.server_settings is None:
            self.pump()

    def send(self):
        self.sock.sendall(self.h2.data_to_send())

    def pump(self):
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("the server closed the connection")
        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.RemoteSettingsChanged):
                self.server_settings = {code: change.new_value for code, change in event.changed_settings.items()}
            elif isinstance(event, h2.events.ResponseReceived):
                self.responses[event.stream_id] = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                self.data[event.stream_id] += event.data
                if self.holding:
                    self.unacknowledged.append((event.flow_controlled_length, event.stream_id))
                else:
                    self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.ended.add(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self.reset[event.stream_id] = event.error_code
        self.send()

    def connect(
        self, path: str, protocol: str = "websocket", headers: list | None = None, early: bytes | None = None
    ) -> tuple[int, dict]:
        """Opens an extended CONNECT stream: its id and the response head. `early` goes out at once, before the
        answer, and ends the client's side of the stream."""
        stream = self.h2.get_next_available_stream_id()
        self.h2.send_headers(stream, [
            (":method", "CONNECT"), (":protocol", protocol), (":scheme", "https"), (":path", path),
            (":authority", self.authority), ("sec-websocket-version", "13"), *(headers or []),
        ])
        self.send()
        if early is not None:
            self.write(stream, early, end=True)
        while stream not in self.responses and stream not in self.reset:
            self.pump()
        return stream, self.responses.get(stream, {})

    def write(self, stream: int, data: bytes, end: bool = False):
        """Sends `data` in frames as flow control allows; `end` ends the client's side of the stream with it."""
        view = memoryview(data)
        while view:
            window = min(self.h2.local_flow_control_window(stream), self.h2.max_outbound_frame_size)
            if window <= 0:
                self.pump()
                continue
            self.h2.send_data(stream, bytes(view[:window]), end_stream=end and len(view) <= window)
            view = view[window:]
            self.send()

    def write_until_blocked(self, stream: int, data: bytes, stall: float = 1.0) -> int:
        """Sends `data` until the server grants no window for `stall` seconds; returns how much went."""
        self.sock.settimeout(stall)
        sent = 0
        try:
            while sent < len(data):
                window = min(self.h2.local_flow_control_window(stream), self.h2.max_outbound_frame_size)
                if window <= 0:
                    self.pump()
                    continue
                chunk = data[sent : sent + window]
                self.h2.send_data(stream, chunk)
                sent += len(chunk)
                self.send()
        except TimeoutError:
            pass
        finally:
            self.sock.settimeout(10)
        return sent

    def release(self):
        """Stops holding: acknowledges what was kept, which opens the server's windows again."""
        self.holding = False
        for length, stream in self.unacknowledged:
            self.h2.acknowledge_received_data(length, stream)
        self.unacknowledged = []
        self.send()

    def read_frame(self, stream: int) -> tuple[int, bytes]:
        while (frame := next_frame(self.data[stream])) is None:
            assert stream not in self.ended and stream not in self.reset, "the stream ended mid-message"
            self.pump()
        return frame

    def wait_end(self, stream: int):
        while stream not in self.ended and stream not in self.reset:
            self.pump()

    def close(self):
        self.sock.close()


# MARK: HTTP/3 client


class H3Client(QuicConnectionProtocol):
    """aioquic's H3Connection on a QUIC connection; events are queued per stream."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.http = H3Connection(self._quic)
        self.events: dict[int, asyncio.Queue] = defaultdict(asyncio.Queue)
        self.settings = asyncio.get_running_loop().create_future()

    def quic_event_received(self, event):
        if isinstance(event, StreamReset):
            self.events[event.stream_id].put_nowait(event)
        for http_event in self.http.handle_event(event):
            self.events[http_event.stream_id].put_nowait(http_event)
        if self.http.received_settings is not None and not self.settings.done():
            self.settings.set_result(self.http.received_settings)


class H3Tunnel:
    """One extended CONNECT stream of an H3Client."""

    def __init__(self, client: H3Client, stream: int):
        self.client, self.stream = client, stream
        self.buffer = bytearray()
        self.ended = False

    @classmethod
    async def open(cls, client: H3Client, port: int, path: str, protocol: str = "websocket"):
        stream = client._quic.get_next_available_stream_id()
        client.http.send_headers(stream, [
            (b":method", b"CONNECT"), (b":protocol", protocol.encode()), (b":scheme", b"https"),
            (b":path", path.encode()), (b":authority", f"localhost:{port}".encode()), (b"sec-websocket-version", b"13"),
        ])
        client.transmit()
        tunnel = cls(client, stream)
        event = await client.events[stream].get()
        assert isinstance(event, HeadersReceived), event
        tunnel.ended = event.stream_ended
        return tunnel, dict(event.headers)

    def write(self, data: bytes, end: bool = False):
        self.client.http.send_data(self.stream, data, end_stream=end)
        self.client.transmit()

    async def pump(self):
        event = await self.client.events[self.stream].get()
        assert not isinstance(event, StreamReset), event
        if isinstance(event, DataReceived):
            self.buffer += event.data
        self.ended = self.ended or getattr(event, "stream_ended", False)

    async def read_frame(self) -> tuple[int, bytes]:
        while (frame := next_frame(self.buffer)) is None:
            assert not self.ended, "the stream ended mid-message"
            await self.pump()
        return frame

    async def wait_end(self):
        while not self.ended:
            await self.pump()


def h3_configuration(cafile: str) -> QuicConfiguration:
    config = QuicConfiguration(alpn_protocols=H3_ALPN, is_client=True, server_name="localhost")
    config.load_verify_locations(cafile)
    return config


# MARK: The server


def proxy(dial: str) -> dict:
    return {"handler": "reverse_proxy", "upstreams": [{"dial": dial}]}


def start(make_velocity, tmp_path, routes: list, quic: bool = False):
    """A server with `routes` behind HTTPS (and QUIC on the same port), an unrelated second site, and the access
    log on; `server.root` is the file of its internal root."""
    server = make_velocity()
    server.https_port = port = free_port()
    listeners = [{"protocol": "https", "address": f"127.0.0.1:{port}"}]
    if quic:
        listeners.append({"protocol": "quic", "address": f"127.0.0.1:{port}"})
    config = {
        "listeners": listeners,
        "sites": [
            {"routes": routes},
            {"@id": "other", "hosts": ["other.localhost"],
             "routes": [{"handle": [{"handler": "static_response", "body": "other\n"}]}]},
        ],
        "logging": {"access_log": True, "format": "json"},
    }
    server.start(config)
    server.root = str(tmp_path / "root.pem")
    (tmp_path / "root.pem").write_text(exported_root(server))
    return server


def access_line(server, uri: str) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for text in server.log().splitlines():
            if '"velocity.access"' in text and (line := json.loads(text))["uri"] == uri:
                return line
        time.sleep(0.05)
    raise AssertionError(f"no access log line for {uri}:\n{server.log()[-3000:]}")


def assert_upgrade_handshake(head: bytes, path: str, via: str):
    """The upstream saw an ordinary HTTP/1.1 WebSocket handshake, with a key of 16 random bytes."""
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == f"GET {path} HTTP/1.1", lines
    fields = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            fields.setdefault(name.strip().lower(), []).append(value.strip())
    assert fields["upgrade"] == ["websocket"] and fields["connection"] == ["Upgrade"], fields
    assert len(fields["sec-websocket-key"]) == 1 and len(base64.b64decode(fields["sec-websocket-key"][0])) == 16
    assert fields["sec-websocket-version"] == ["13"], fields
    assert fields["x-forwarded-proto"] == ["https"] and fields["via"] == [via], fields
    assert "content-length" not in fields and "transfer-encoding" not in fields, fields


# MARK: HTTP/2


def test_h2_websocket_frames_pass_both_ways_and_survive_a_commit(make_velocity, tmp_path):
    upstream = EchoWebSocketServer()
    server = start(make_velocity, tmp_path, [{"match": [{"path": ["/ws"]}], "handle": [proxy(upstream.dial)]}])
    client = H2Client(server.https_port, server.root)
    try:
        assert client.server_settings.get(ENABLE_CONNECT_PROTOCOL) == 1
        stream, response = client.connect("/ws", headers=[("sec-websocket-protocol", "chat")])
        assert response[":status"] == "200", response
        assert not {"upgrade", "connection", "sec-websocket-accept"} & response.keys(), response
        for opcode, payload in MESSAGES:
            client.write(stream, client_frame(opcode, payload))
            assert client.read_frame(stream) == (opcode, payload)
        # Several messages in flight at once come back in order.
        client.write(stream, b"".join(client_frame(TEXT, b"m%d" % i) for i in range(20)))
        assert [client.read_frame(stream) for _ in range(20)] == [(TEXT, b"m%d" % i) for i in range(20)]

        assert len(upstream.handshakes) == 1
        assert_upgrade_handshake(upstream.handshakes[0], "/ws", "2.0 velocity")
        assert b"sec-websocket-protocol: chat" in upstream.handshakes[0].lower()
        line = access_line(server, "/ws")
        assert line["proto"] == "HTTP/2" and line["status"] == "200" and line["upstream"] == upstream.dial, line

        # A commit to an unrelated site leaves the tunnel alone.
        assert server.api("PATCH", "/id/other/routes/0/handle/0/body", "changed\n").status_code == 200
        client.write(stream, client_frame(TEXT, b"after the commit"))
        assert client.read_frame(stream) == (TEXT, b"after the commit")

        # The closing handshake; the upstream then closes its connection, which ends the stream.
        client.write(stream, client_frame(CLOSE, struct.pack("!H", 1000)))
        assert client.read_frame(stream) == (CLOSE, struct.pack("!H", 1000))
        client.wait_end(stream)
        assert stream in client.ended, client.reset
        client.h2.end_stream(stream)
        client.send()
        # The connection serves on.
        stream, response = client.connect("/ws")
        assert response[":status"] == "200"
        client.write(stream, client_frame(TEXT, b"again"))
        assert client.read_frame(stream) == (TEXT, b"again")
    finally:
        client.close()
        upstream.close()


def test_h2_stream_end_and_reset_reach_the_upstream(make_velocity, tmp_path):
    upstream = EchoWebSocketServer()
    server = start(make_velocity, tmp_path, [{"handle": [proxy(upstream.dial)]}])
    client = H2Client(server.https_port, server.root)
    try:
        # Frames sent before the tunnel opened wait for it. The client's END_STREAM half-closes the upstream
        # connection, which still gets everything written before it, and the upstream's close ends the stream.
        blob = os.urandom(100_000)
        stream, response = client.connect("/one", early=client_frame(TEXT, b"early") + client_frame(BINARY, blob))
        assert response[":status"] == "200"
        assert [client.read_frame(stream), client.read_frame(stream)] == [(TEXT, b"early"), (BINARY, blob)]
        assert upstream.finished.acquire(timeout=10)
        client.wait_end(stream)
        # A reset stream closes the upstream connection.
        stream, response = client.connect("/two")
        assert response[":status"] == "200"
        client.write(stream, client_frame(TEXT, b"ping"))
        assert client.read_frame(stream) == (TEXT, b"ping")
        client.h2.reset_stream(stream)
        client.send()
        assert upstream.finished.acquire(timeout=10)
    finally:
        client.close()
        upstream.close()


def test_h2_extended_connect_is_refused_where_no_websocket_can_open(make_velocity, tmp_path, upstream):
    echo = EchoWebSocketServer()
    wrong_accept = upstream.raw(lambda target: (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", False))
    plain = upstream.raw(lambda target: (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n", False))
    server = start(make_velocity, tmp_path, [
        {"match": [{"path": ["/ws"]}], "handle": [proxy(echo.dial)]},
        {"match": [{"path": ["/wrong-accept"]}], "handle": [proxy(wrong_accept.dial)]},
        {"match": [{"path": ["/no-switch"]}], "handle": [proxy(plain.dial)]},
        {"handle": [{"handler": "static_response", "body": "no socket here\n"}]},
    ])
    client = H2Client(server.https_port, server.root)
    try:
        # Only `websocket` is carried.
        stream, response = client.connect("/ws", protocol="connect-udp")
        assert response[":status"] == "501", response
        client.wait_end(stream)
        assert echo.handshakes == []
        # A route that does not proxy cannot open a tunnel: its 200 would say it had.
        stream, response = client.connect("/elsewhere")
        assert response[":status"] == "501", response
        client.wait_end(stream)
        assert access_line(server, "/elsewhere")["status"] == "501"
        # An upstream that does not switch, or does not accept the key it was sent, is a bad gateway.
        for path, raw in [("/wrong-accept", wrong_accept), ("/no-switch", plain)]:
            stream, response = client.connect(path)
            assert response[":status"] == "502", (path, response)
            client.wait_end(stream)
            assert raw.targets == [path]
        # None of that harmed the connection.
        stream, response = client.connect("/ws")
        assert response[":status"] == "200"
        client.write(stream, client_frame(TEXT, b"still here"))
        assert client.read_frame(stream) == (TEXT, b"still here")
    finally:
        client.close()
        echo.close()


def test_h2_an_upstream_greeting_right_after_its_101_reaches_the_client(make_velocity, tmp_path):
    upstream = HoldingUpstream(send=bytes([0x81, 7]) + b"welcome")
    server = start(make_velocity, tmp_path, [{"handle": [proxy(upstream.dial)]}])
    client = H2Client(server.https_port, server.root)
    try:
        stream, response = client.connect("/greeting")
        assert response[":status"] == "200"
        assert client.read_frame(stream) == (TEXT, b"welcome")
    finally:
        client.close()
        upstream.close()


def test_h2_tunnel_back_pressure_holds_each_side_and_loses_nothing(make_velocity, tmp_path):
    """A side that does not read stops the other: the upstream's sends block while the HTTP/2 client keeps its
    windows shut, and the client's sends block while the upstream reads nothing. Once both read, everything
    arrives."""
    down = os.urandom(1 << 20) * 16
    upstream = HoldingUpstream(send=down)
    server = start(make_velocity, tmp_path, [{"handle": [proxy(upstream.dial)]}])
    client = H2Client(server.https_port, server.root)
    try:
        client.holding = True
        stream, response = client.connect("/hold")
        assert response[":status"] == "200"
        up = os.urandom(1 << 20) * 16
        sent = client.write_until_blocked(stream, up)
        assert sent < len(up) and upstream.sent < len(down), (sent, upstream.sent)
        # Once both read, everything flows to the last byte.
        upstream.reading.set()
        client.release()
        client.write(stream, up[sent:], end=True)
        while len(client.data[stream]) < len(down):
            client.pump()
        assert client.data[stream] == down
        assert upstream.done.wait(20)
        assert (upstream.received_bytes, upstream.received.digest()) == (len(up), hashlib.sha256(up).digest())
    finally:
        client.close()
        upstream.close()


# MARK: HTTP/3


def test_h3_websocket_frames_pass_both_ways(make_velocity, tmp_path):
    upstream = EchoWebSocketServer()
    server = start(make_velocity, tmp_path, [
        {"match": [{"path": ["/ws"]}], "handle": [proxy(upstream.dial)]},
        {"handle": [{"handler": "static_response", "body": "no socket here\n"}]},
    ], quic=True)
    port = server.https_port

    async def session():
        async with connect("127.0.0.1", port, configuration=h3_configuration(server.root),
                           create_protocol=H3Client) as client:
            settings = await asyncio.wait_for(client.settings, 10)
            assert settings.get(ENABLE_CONNECT_PROTOCOL) == 1
            tunnel, response = await H3Tunnel.open(client, port, "/ws")
            assert response[b":status"] == b"200", response
            assert b"sec-websocket-accept" not in response
            for opcode, payload in MESSAGES:
                tunnel.write(client_frame(opcode, payload))
                assert await tunnel.read_frame() == (opcode, payload)
            await asyncio.to_thread(
                lambda: server.api("PATCH", "/id/other/routes/0/handle/0/body", "changed\n").raise_for_status())
            tunnel.write(client_frame(TEXT, b"after the commit"))
            assert await tunnel.read_frame() == (TEXT, b"after the commit")
            tunnel.write(client_frame(CLOSE, struct.pack("!H", 1000)))
            assert await tunnel.read_frame() == (CLOSE, struct.pack("!H", 1000))
            await tunnel.wait_end()

            # Refusals: another protocol, and a route without a proxy.
            _, response = await H3Tunnel.open(client, port, "/ws", protocol="connect-udp")
            assert response[b":status"] == b"501", response
            _, response = await H3Tunnel.open(client, port, "/elsewhere")
            assert response[b":status"] == b"501", response

    asyncio.run(asyncio.wait_for(session(), 60))
    assert len(upstream.handshakes) == 1
    assert_upgrade_handshake(upstream.handshakes[0], "/ws", "3.0 velocity")
    line = access_line(server, "/ws")
    assert line["proto"] == "HTTP/3" and line["status"] == "200", line
    upstream.close()

"""WebSocket through reverse_proxy over HTTP/1.1 (RFC 6455): the Upgrade handshake is passed to the upstream,
its 101 comes back, and both connections then carry frames both ways untouched (what the upstream sends with
its 101 at once); an open WebSocket survives config commits, and a route without an upstream refuses the
upgrade."""

import base64
import hashlib
import socket
import struct
import threading

import websocket

from velocity import free_port

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class EchoWebSocketServer:
    """A WebSocket upstream on a thread: answers the handshake with 101 and echoes every data frame back
    (unmasked, as servers send), answering close with close. `handshakes` keeps the request heads it got."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.dial = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.handshakes: list[bytes] = []
        # Released each time a connection ends.
        self.finished = threading.Semaphore(0)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = conn.recv(count - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _serve(self, conn):
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            self.handshakes.append(head)
            key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            while True:
                first, second = self._read(conn, 2)
                length = second & 0x7F
                if length == 126:
                    length = struct.unpack("!H", self._read(conn, 2))[0]
                elif length == 127:
                    length = struct.unpack("!Q", self._read(conn, 8))[0]
                mask = self._read(conn, 4)
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read(conn, length)))
                header = bytes([first]) + (bytes([length]) if length < 126 else
                                          bytes([126]) + struct.pack("!H", length) if length < 65536 else
                                          bytes([127]) + struct.pack("!Q", length))
                conn.sendall(header + payload)
                if first & 0x0F == 0x8:  # close
                    return
        except (OSError, ConnectionError):
            pass
        finally:
            conn.close()
            self.finished.release()

    def close(self):
        self.listener.close()


class HoldingUpstream:
    """A WebSocket upstream for back-pressure: accepts the handshake, then sends `send` bytes (counting them in
    `sent`) while it reads nothing until `reading` is set; then it reads to the end, hashing what came."""

    def __init__(self, send: bytes = b""):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.dial = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.send, self.sent = send, 0
        self.reading = threading.Event()
        self.received = hashlib.sha256()
        self.received_bytes = 0
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self.listener.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            for start in range(0, len(self.send), 1 << 16):
                chunk = self.send[start : start + (1 << 16)]
                conn.sendall(chunk)
                self.sent += len(chunk)
            self.reading.wait(30)
            while data := conn.recv(1 << 20):
                self.received.update(data)
                self.received_bytes += len(data)
        self.done.set()

    def close(self):
        self.listener.close()


def test_websocket_frames_pass_both_ways_and_survive_config_commits(make_velocity):
    upstream = EchoWebSocketServer()
    server = make_velocity()
    port = free_port()
    config = {
        "listeners": [{"protocol": "http", "address": f"127.0.0.1:{port}"}],
        "sites": [{"routes": [
            {"match": [{"path": ["/ws"]}], "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": upstream.dial}]}]},
            {"@id": "other", "handle": [{"handler": "static_response", "body": "no socket here\n"}]},
        ]}],
    }
    server.start(config)
    try:
        connection = websocket.create_connection(f"ws://127.0.0.1:{port}/ws", timeout=10)
        connection.send("hello")
        assert connection.recv() == "hello"
        big = "x" * 100_000
        connection.send(big)
        assert connection.recv() == big
        connection.send_binary(bytes(range(256)))
        assert connection.recv() == bytes(range(256))
        # The upstream saw the handshake, with forwarding headers added.
        handshake = upstream.handshakes[0].lower()
        assert b"upgrade: websocket" in handshake and b"x-forwarded-for: 127.0.0.1" in handshake
        # Commits that leave the route alone keep the socket open.
        assert server.api("PATCH", "/id/other/handle/0/body", "changed\n").status_code == 200
        assert server.api("PUT", "/config/timeouts", {"idle_ms": 30000}).status_code == 200
        connection.send("after the changes")
        assert connection.recv() == "after the changes"
        connection.close()
        # A route that does not proxy does not switch protocols.
        refused = websocket.WebSocket()
        try:
            refused.connect(f"ws://127.0.0.1:{port}/elsewhere", timeout=10)
            raise AssertionError("the upgrade was accepted")
        except websocket.WebSocketBadStatusException as error:
            assert error.status_code == 200
    finally:
        upstream.close()


def test_an_upstream_greeting_right_after_its_101_reaches_the_client(make_velocity):
    """Bytes that come with the upstream's 101, before the relay reads anything itself, are passed on at once."""
    upstream = HoldingUpstream(send=bytes([0x81, 7]) + b"welcome")
    server = make_velocity()
    port = free_port()
    route = {"handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": upstream.dial}]}]}
    server.start({"listeners": [{"protocol": "http", "address": f"127.0.0.1:{port}"}], "sites": [{"routes": [route]}]})
    try:
        connection = websocket.create_connection(f"ws://127.0.0.1:{port}/", timeout=10)
        assert connection.recv() == "welcome"
        connection.shutdown()
    finally:
        upstream.close()

"""Every kind of bad admin request is refused with a precise error, and none of them changes anything: the
store, the running config and the data plane stay exactly as they were."""

import random
import select
import socket
import time
from contextlib import contextmanager

import pytest
import requests

from velocity import free_port

BODY = "/config/sites/0/routes/0/handle/0/body"
JSON = {"Content-Type": "application/json"}


@contextmanager
def nothing_changed(server):
    """Asserts that what runs inside leaves the config, its revision, the stored revisions and the data plane's
    answer as they were, and that the server is still running."""
    before = server.state()
    yield
    assert server.process.poll() is None, server.log()
    assert server.state() == before


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()
    assert isinstance(error["error"], str) and error["error"]
    return error


@pytest.mark.parametrize(
    "text, offset",
    [
        (b'{"a": tru}', 6),
        (b'{"a": 1,}', 8),
        (b"[1, 2", 5),
        ('{"é": x}'.encode(), 7),  # a byte offset, not a character offset
        (b'{"a": 1} x', 9),
    ],
)
def test_malformed_json_names_the_byte_offset(server, text, offset):
    with nothing_changed(server):
        error = error_of(server.api("POST", "/load", raw=text, headers=JSON), 400)
    assert error["offset"] == offset
    assert f"byte {offset}" in error["error"]


@pytest.mark.parametrize(
    "method, path, value, pointer, words",
    [
        ("POST", "/config/sites/0/routes/0/handle/0/status", 700, "/sites/0/routes/0/handle/0/status", ["700"]),
        ("POST", "/id/answer/handle/0/status", "200", "/sites/0/routes/0/handle/0/status", ["number", "string"]),
        ("PATCH", "/config/listeners/0/address", "nonsense", "/listeners/0/address", ["nonsense", "host:port"]),
        ("PATCH", "/id/answer/handle/0/handler", "teapot", "/sites/0/routes/0/handle/0/handler", ["teapot"]),
        ("POST", "/config/sites/0/hosts", ["bad host!"], "/sites/0/hosts/0", ["bad host!"]),
        # The error should name the bad value and the accepted ones, in the config's own words.
        ("PATCH", "/config/listeners/0/protocol", "gopher", "/listeners/0/protocol", ["gopher", "http"]),
    ],
)
def test_invalid_config_names_the_pointer(server, method, path, value, pointer, words):
    with nothing_changed(server):
        error = error_of(server.api(method, path, value), 400)
    assert error["pointer"] == pointer
    assert error["error"].startswith(f"{pointer}: ")
    for word in words:
        assert word in error["error"]
    for internal in ("Cannot initialize", "DecodingError", "Optional(", "CodingKeys"):
        assert internal not in error["error"]


@pytest.mark.parametrize(
    "method, path, value, pointer",
    [
        ("POST", "/config/listeners/0/bogus", 1, "/listeners/0/bogus"),
        ("POST", "/config/sites/0/routes/0/handle/0/bodyy", "x", "/sites/0/routes/0/handle/0/bodyy"),
        ("POST", "/load", {"listenerz": []}, "/listenerz"),
    ],
)
def test_unknown_field_is_named(server, method, path, value, pointer):
    with nothing_changed(server):
        error = error_of(server.api(method, path, value), 400)
    assert error["pointer"] == pointer
    field = pointer.rsplit("/", 1)[1]
    assert f'unknown field "{field}"' in error["error"]


def send_chunked(port: int, path: str, chunks) -> bytes:
    """A PATCH with a chunked body and no Content-Length, on a raw socket; returns the raw reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        sock.sendall(head.encode() + b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for chunk in chunks:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        except ConnectionError:
            pass  # refused before the end, as it should be: read the answer
        reply = b""
        try:
            while data := sock.recv(65536):
                reply += data
        except ConnectionError:
            pass
        return reply


def test_body_over_default_limit(server):
    limit = 4 * 1024 * 1024
    with nothing_changed(server):
        error = error_of(server.api("PATCH", BODY, "x" * limit), 413)
        assert error["limit"] == limit
        reply = send_chunked(server.admin_port, BODY, [b'"' + b"x" * 65536] + [b"x" * 65536] * 64)
        assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]


def test_body_over_lowered_limit(server):
    response = server.api("POST", "/config/admin", {"max_body_bytes": 2048})
    assert response.status_code == 200, response.text
    with nothing_changed(server):
        error = error_of(server.api("PATCH", BODY, raw=b'"' + b"x" * 2048, headers=JSON), 413)
        assert error["limit"] == 2048
        reply = send_chunked(server.admin_port, BODY, [b'"' + b"x" * 1000, b"x" * 1000, b"x" * 1000])
        assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
        # Exactly at the limit the body is read (and here refused for being an unterminated string).
        error = error_of(server.api("PATCH", BODY, raw=b'"' + b"x" * 2047, headers=JSON), 400)
        assert error["offset"] == 2048


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example:{port}"])
def test_wrong_host_is_forbidden(server, host):
    with nothing_changed(server):
        headers = {"Host": host.format(port=server.admin_port)}
        error = error_of(server.api("PATCH", BODY, "changed\n", headers=headers), 403)
    assert "host" in error["error"]


def test_disallowed_origin_is_forbidden(server):
    with nothing_changed(server):
        error = error_of(server.api("PATCH", BODY, "changed\n", headers={"Origin": "http://evil.example"}), 403)
        assert "origin" in error["error"]
        error_of(server.api("PATCH", BODY, "changed\n", headers={"Origin": "null"}), 403)
    # The admin API's own origin is fine.
    response = server.api("GET", "/config/", headers={"Origin": f"http://127.0.0.1:{server.admin_port}"})
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/config/sites/0", "/config/listeners/0", "/id/main/routes/0"])
def test_post_to_array_index_is_refused(server, path):
    with nothing_changed(server):
        error = error_of(server.api("POST", path, {}), 400)
    assert "array index" in error["error"]


def test_stale_if_match(server):
    response = server.api("PATCH", BODY, "second\n", headers={"If-Match": '"1"'})
    assert response.status_code == 200, response.text
    with nothing_changed(server):
        for stale in ['"1"', "1", '"3"']:
            error = error_of(server.api("PATCH", BODY, "third\n", headers={"If-Match": stale}), 412)
            assert error["revision"] == 2
        error_of(server.api("PATCH", BODY, "third\n", headers={"If-Match": '"two"'}), 400)


def test_duplicate_id(server):
    with nothing_changed(server):
        error = error_of(server.api("POST", "/config/sites/0/routes", {"@id": "answer"}), 400)
    assert error["pointer"] == "/sites/0/routes/1/@id"
    assert 'duplicate @id "answer"' in error["error"]


def test_websocket_upgrade_is_refused(server):
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    with nothing_changed(server):
        error = error_of(server.api("GET", "/config/", headers=upgrade), 400)
        assert "upgrade" in error["error"]
        error_of(server.api("PATCH", BODY, "changed\n", headers=upgrade), 400)


@pytest.mark.parametrize("address", ["127.0.0.1:{port}", ":{port}", "0.0.0.0:{port}", "[::]:{port}"])
def test_listener_on_the_admin_address(server, address):
    address = address.format(port=server.admin_port)
    with nothing_changed(server):
        error = error_of(server.api("PATCH", "/config/listeners/0/address", address), 400)
    assert error["pointer"] == "/listeners/0/address"
    assert "admin" in error["error"]


def test_listener_on_the_admin_port_by_name(server):
    """`localhost` is not compared by the validator, but binding it fails: still refused, nothing changed."""
    with nothing_changed(server):
        error_of(server.api("PATCH", "/config/listeners/0/address", f"localhost:{server.admin_port}"), 400)


def test_listener_on_a_port_taken_by_another_process(server):
    # New listeners are bound in address order: make the free one come first, so that the change binds it,
    # then fails on the taken one, and must both close the first again and name the second.
    fresh, taken = sorted({free_port(), free_port(), free_port()}, key=str)[:2]
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", taken))
    blocker.listen()
    config, _ = server.config()
    for port in (fresh, taken):
        config["listeners"].append({"protocol": "http", "address": f"127.0.0.1:{port}"})
    try:
        with nothing_changed(server):
            error = error_of(server.api("POST", "/load", config), 400)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{fresh}/", timeout=5)
        assert error["address"] == f"127.0.0.1:{taken}", error
        assert f"127.0.0.1:{taken}" in error["error"]
    finally:
        blocker.close()
    # Nothing was left half-open: once the port is free, the same change applies in full.
    assert server.api("POST", "/load", config).status_code == 200
    for port in (server.http_port, fresh, taken):
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).text == "hello\n"


def test_put_on_existing_key_conflicts(server):
    with nothing_changed(server):
        error = error_of(server.api("PUT", "/config/listeners/0/address", "127.0.0.1:1"), 409)
        assert error["pointer"] == "/listeners/0/address"
        error_of(server.api("PUT", "/config/sites", []), 409)


@pytest.mark.parametrize("path, pointer", [("/config/nothing", "/nothing"), ("/config/sites/0/hosts", "/sites/0/hosts"),
                                           ("/config/sites/7/routes", "/sites/7")])
def test_patch_on_missing_path(server, path, pointer):
    with nothing_changed(server):
        error = error_of(server.api("PATCH", path, ["example.com"]), 404)
    assert error["pointer"] == pointer


@pytest.mark.parametrize(
    "failing, status",
    [
        ({"op": "remove", "path": "/nope"}, 404),
        ({"op": "test", "path": "/listeners/0/protocol", "value": "https"}, 409),
        ({"op": "frobnicate", "path": "/sites"}, 400),
    ],
)
def test_json_patch_is_all_or_nothing(server, failing, status):
    patch = [{"op": "replace", "path": "/sites/0/routes/0/handle/0/body", "value": "patched\n"}, failing]
    with nothing_changed(server):
        response = server.api("PATCH", "/config/", patch, headers={"Content-Type": "application/json-patch+json"})
        error_of(response, status)


GARBAGE = [
    bytes(random.Random(7).getrandbits(8) for _ in range(4096)),
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(160),  # a TLS ClientHello on a plain port
    b"\x00" * 1000 + b"\r\n\r\n",
    b"GET /\xff\xfe\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + b"a" * 200_000 + b"\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nnot a chunk\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
]


def exchange_all(port: int, payloads: list[bytes], wait: float = 2.0) -> list[tuple[bytes, bool]]:
    """Sends each payload on its own connection, all at once, and reads until every connection is closed by
    the server or `wait` seconds have passed: for each payload, (reply, whether the server closed)."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=wait) for _ in payloads]
    replies, closed = [b""] * len(socks), [False] * len(socks)
    try:
        for sock, payload in zip(socks, payloads):
            try:
                sock.sendall(payload)
            except ConnectionError:
                pass  # refused half-way: the answer may still be there to read
            sock.setblocking(False)
        deadline = time.monotonic() + wait
        while not all(closed) and time.monotonic() < deadline:
            readable, _, _ = select.select([s for s, c in zip(socks, closed) if not c], [], [], 0.05)
            for sock in readable:
                index = socks.index(sock)
                try:
                    data = sock.recv(65536)
                except ConnectionError:
                    data = b""
                replies[index] += data
                closed[index] = not data
    finally:
        for sock in socks:
            sock.close()
    return list(zip(replies, closed))


@pytest.mark.parametrize("plane", ["admin", "data"])
def test_garbage_on_raw_sockets(server, plane):
    port = server.admin_port if plane == "admin" else server.http_port
    with nothing_changed(server):
        for payload, (reply, _) in zip(GARBAGE, exchange_all(port, GARBAGE)):
            # 431 is the data plane's answer to an oversized header section, 400 to the rest.
            assert reply == b"" or reply.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 ")), (payload[:40], reply[:200])
        # Connections left half-way through a request do not hold up anyone else, nor a change.
        stalled = []
        for partial in (b"PATCH " + BODY.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{",
                        b"GET / HTTP/1.1\r\nHost: 127.0", b"\x16\x03\x01", b"\r\n" * 5000):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(partial)
            stalled.append(sock)
        try:
            started = time.monotonic()
            assert server.api("GET", "/health", timeout=5).status_code == 200
            assert requests.get(f"http://127.0.0.1:{server.http_port}/", timeout=5).text == "hello\n"
            error_of(server.api("PATCH", "/config/listeners/0/address", "nonsense", timeout=5), 400)
            assert time.monotonic() - started < 5
        finally:
            for sock in stalled:
                sock.close()


@pytest.mark.parametrize("plane", ["admin", "data"])
def test_connection_closed_after_protocol_error(server, plane):
    """A 400 for a request that cannot be parsed says `Connection: close`; the server must then close it, or
    every such connection stays open (on the admin port, which has no idle timeout, for good)."""
    port = server.admin_port if plane == "admin" else server.http_port
    with nothing_changed(server):
        results = exchange_all(port, GARBAGE, wait=3.0)
    left_open = [payload[:30] for payload, (_, closed) in zip(GARBAGE, results) if not closed]
    assert not left_open, f"{len(left_open)} of {len(GARBAGE)} connections left open after a 400: {left_open}"

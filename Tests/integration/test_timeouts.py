"""Client timeouts and header limits: a connection that trickles its request head or sits idle is closed on
time, a slow reader of a long response is not, and oversized header sections get 431."""

import http.client
import socket
import time

import pytest
import requests

from velocity import free_port, site_config


@pytest.fixture
def quick(make_velocity, tmp_path):
    """A server with 500 ms timeouts and a 20 MiB file to download."""
    (tmp_path / "big.bin").write_bytes(b"v" * (20 << 20))
    http_port = free_port()
    config = site_config(http_port, timeouts={"request_head_ms": 500, "idle_ms": 500})
    config["sites"][0]["routes"].insert(
        0, {"match": [{"path": ["/big.bin"]}], "handle": [{"handler": "file_server", "root": str(tmp_path)}]}
    )
    server = make_velocity()
    server.start(config)
    server.port = http_port
    return server


def closed_after(sock: socket.socket, trickle: bytes = b"", every: float = 0.1, limit: float = 5.0) -> float:
    """Sends `trickle` a byte at a time; returns the seconds until the server closed the connection."""
    started = time.monotonic()
    sock.settimeout(every)
    position = 0
    while time.monotonic() - started < limit:
        if position < len(trickle):
            try:
                sock.send(trickle[position : position + 1])
            except OSError:
                return time.monotonic() - started
            position += 1
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - started
    return limit


def test_trickled_request_head_is_cut_off(quick):
    with socket.create_connection(("127.0.0.1", quick.port)) as sock:
        # One byte every 100 ms keeps the connection from ever being idle for 500 ms.
        elapsed = closed_after(sock, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100)
    assert 0.4 < elapsed < 2.0, elapsed


def test_idle_keep_alive_connection_is_closed(quick):
    with socket.create_connection(("127.0.0.1", quick.port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        elapsed = closed_after(sock)
    assert elapsed < 2.0, elapsed


def test_stalled_request_body_is_cut_off(quick):
    with socket.create_connection(("127.0.0.1", quick.port)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part")
        elapsed = closed_after(sock)
    assert elapsed < 2.0, elapsed


def test_slow_reader_of_a_long_response_is_not_cut_off(quick):
    with requests.get(f"http://127.0.0.1:{quick.port}/big.bin", stream=True, timeout=10) as response:
        received = 0
        for chunk in response.iter_content(1 << 20):
            received += len(chunk)
            time.sleep(0.1)  # 20 reads over two seconds, four times the idle timeout
    assert received == 20 << 20


def test_oversized_header_sections_get_431(quick):
    url = f"http://127.0.0.1:{quick.port}/"
    assert requests.get(url, headers={"X-Big": "a" * 20000}, timeout=5).status_code == 431
    many = {f"X-Field-{i}": "1" for i in range(210)}
    assert requests.get(url, headers=many, timeout=5).status_code == 431
    assert requests.get(url, headers={"X-Fine": "a" * 8000}, timeout=5).status_code == 200


@pytest.mark.parametrize("timeouts, pointer", [({"idle_ms": 5}, "/timeouts/idle_ms"), ({"request_head_ms": 0}, "/timeouts/request_head_ms")])
def test_timeouts_out_of_range_are_refused(quick, timeouts, pointer):
    response = quick.api("PATCH", "/config/timeouts", timeouts)
    assert response.status_code == 400, response.text
    assert response.json()["pointer"] == pointer


def test_a_body_the_answer_does_not_need_is_read_and_the_connection_goes_on(quick):
    """A 5 MiB upload to a file (answered 405 after a lookup off the event loop, while the body keeps
    arriving) is read to its end, and the same connection then serves the next request."""
    connection = http.client.HTTPConnection("127.0.0.1", quick.port, timeout=10)
    connection.request("POST", "/big.bin", body=b"u" * (5 << 20))
    response = connection.getresponse()
    assert response.status == 405
    response.read()
    connection.request("GET", "/")
    response = connection.getresponse()
    assert (response.status, response.read()) == (200, b"hello\n")
    connection.close()

"""HTTP/3 against real clients: Chromium forced onto QUIC
loads a page of 20 assets over h3 with X25519MLKEM768; curl-cffi and niquests (qh3) download 50 MiB intact
over post-quantum TLS; aioquic (classical) and ngtcp2's gtlsclient get correct answers, with a dynamic QPACK
table in use both ways; Chromium that starts on TCP moves to h3 after Alt-Svc; a 100 MiB POST reaches an
upstream intact. Also: config changes keep live connections and apply to their next requests, malformed
requests and control-stream violations get the right H3 errors, and stopping lets a transfer in progress end."""

import asyncio
import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from aioquic.asyncio import connect
from aioquic.h3.events import HeadersReceived

from h3_clients import (
    _aioquic_configuration,
    _H3Client,
    aioquic_get,
    aioquic_get_many,
    chromium_alt_svc,
    chromium_h3,
    curl_cffi_get,
    gtlsclient_get,
    niquests_get,
)
from test_chromium import leaf_spki_hash
from test_https import exported_root
from velocity import ROOT, curl, free_port

MIB = 1 << 20
ASSETS = [f"asset-{index:02}.svg" for index in range(20)]
ARTIFACTS = Path(os.environ.get("VELOCITY_ARTIFACTS", ROOT / ".artifacts"))


def page() -> str:
    tiles = "".join(f'<img src="/{name}" width="40" height="40">' for name in ASSETS)
    return f"<!doctype html><title>h3</title><h1>Velocity over HTTP/3</h1><p>{tiles}</p>\n"


def svg(index: int) -> str:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
        f'<rect width="40" height="40" fill="hsl({index * 18},70%,50%)"/></svg>\n'
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("h3-site")
    (root / "index.html").write_text(page())
    for index, name in enumerate(ASSETS):
        (root / name).write_text(svg(index))
    with open(root / "big.bin", "wb") as big:
        for _ in range(50):
            big.write(os.urandom(MIB))
    (root / "medium.bin").write_bytes(os.urandom(8 * MIB))
    return root


def h3_config(port: int, root: Path, upstream_dial: str | None = None, **extra) -> dict:
    """HTTPS and QUIC on one port, with files, and `/up/*` proxied when an upstream is given."""
    routes = []
    if upstream_dial:
        routes.append(
            {
                "match": [{"path": ["/up/*"]}],
                "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": upstream_dial}]}],
            }
        )
    routes.append({"handle": [{"handler": "file_server", "root": str(root)}]})
    config = {
        "listeners": [
            {"protocol": "https", "address": f"127.0.0.1:{port}"},
            {"protocol": "quic", "address": f"127.0.0.1:{port}"},
        ],
        "logging": {"access_log": True, "format": "json"},
        "sites": [{"@id": "main", "routes": routes}],
    }
    config.update(extra)
    return config


@pytest.fixture
def h3(make_velocity, files, upstream, tmp_path):
    origin = upstream("origin")
    server = make_velocity()
    server.port = free_port()
    server.origin = origin
    server.start(h3_config(server.port, files, origin.dial))
    server.root = str(tmp_path / "root.pem")
    (tmp_path / "root.pem").write_text(exported_root(server))
    server.url = f"https://localhost:{server.port}"
    return server


def access_lines(server, count: int) -> list[dict]:
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in server.log().splitlines() if '"velocity.access"' in line]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- Real clients ----------------------------------------------------------------------------------------------


def test_chromium_loads_a_page_of_20_assets_over_h3_with_post_quantum_tls(h3, files):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "chromium-h3.png"
    url = f"https://127.0.0.1:{h3.port}/"
    responses = chromium_h3(url, leaf_spki_hash(h3.port), screenshot_path=screenshot)
    assert set(responses) == {url} | {url + name for name in ASSETS}
    for response in responses.values():
        assert (response.status, response.protocol, response.group) == (200, "h3", "X25519MLKEM768")
    assert responses[url + ASSETS[7]].body == (files / ASSETS[7]).read_bytes()
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    lines = access_lines(h3, 21)
    assert {line["proto"] for line in lines} == {"HTTP/3"}
    assert {line["tls_group"] for line in lines} == {"X25519MLKEM768"}


@pytest.mark.parametrize("client", [curl_cffi_get, niquests_get], ids=["curl-cffi", "niquests"])
def test_50_mib_download_over_post_quantum_h3(h3, files, client):
    response = client(f"{h3.url}/big.bin", h3.root)
    assert (response.status, response.protocol) == (200, "h3")
    assert sha256(response.body) == sha256((files / "big.bin").read_bytes())
    # Neither client reports the group; the server's access log does.
    [line] = [line for line in access_lines(h3, 1) if line["uri"] == "/big.bin"]
    assert (line["proto"], line["tls_group"], line["bytes_out"]) == ("HTTP/3", "X25519MLKEM768", str(50 * MIB))


def test_aioquic_gets_answers_with_a_classical_group(h3, files):
    response = aioquic_get(f"{h3.url}/index.html", h3.root)
    assert (response.status, response.protocol) == (200, "h3")
    assert response.group is not None and "MLKEM" not in response.group
    assert response.body == (files / "index.html").read_bytes()
    assert response.headers["content-type"].startswith("text/html")
    assert "alt-svc" in response.headers


def test_gtlsclient_gets_answers(h3, files):
    [single] = gtlsclient_get(f"{h3.url}/{ASSETS[3]}", port=h3.port)
    assert (single.status, single.body) == (200, (files / ASSETS[3]).read_bytes())
    several = gtlsclient_get(f"{h3.url}/{ASSETS[4]}", port=h3.port, n=5)
    assert [(r.status, r.body) for r in several] == [(200, (files / ASSETS[4]).read_bytes())] * 5


def test_dynamic_qpack_table_both_ways(h3):
    """aioquic's encoder inserts repeated fields once the server's SETTINGS allow a table; Velocity's encoder
    inserts repeated response fields. Every request must still arrive whole at the upstream, and every response
    be decoded by aioquic, so both tables are used correctly."""
    headers = {"x-tenant": "blue-team", "x-request-class": "interactive", "cookie": "session=abc"}
    urls = [f"{h3.url}/up/item/{index}" for index in range(30)]
    responses = aioquic_get_many(urls, h3.root, headers=headers)
    for index, response in enumerate(responses):
        assert response.status == 200
        seen = json.loads(response.body)
        assert seen["target"] == f"/up/item/{index}"
        received = {name.lower(): value for name, value in seen["headers"]}
        assert received["x-tenant"] == "blue-team" and received["cookie"] == "session=abc"
        assert response.headers["x-upstream"] == "origin"


def test_chromium_moves_from_tcp_to_h3_after_alt_svc(h3):
    url = f"https://127.0.0.1:{h3.port}/"
    loads = chromium_alt_svc(url, leaf_spki_hash(h3.port), loads=4)
    assert loads[0].protocol == "h2"
    assert loads[0].headers["alt-svc"] == f'h3=":{h3.port}"; ma=86400'
    assert loads[-1].protocol == "h3" and loads[-1].group == "X25519MLKEM768"


def test_alt_svc_is_a_per_site_switch(h3, files):
    result = curl("-sk", "-D", "-", "-o", "/dev/null", f"https://127.0.0.1:{h3.port}/index.html")
    assert f'alt-svc: h3=":{h3.port}"; ma=86400' in result.stdout.lower()
    assert h3.api("PUT", "/id/main/http3", False).status_code == 200
    result = curl("-sk", "-D", "-", "-o", "/dev/null", f"https://127.0.0.1:{h3.port}/index.html")
    assert "alt-svc" not in result.stdout.lower()


def test_100_mib_post_through_the_proxy(h3):
    chunk = os.urandom(MIB)
    digest = hashlib.sha256()
    for _ in range(100):
        digest.update(chunk)
    response = aioquic_get(
        f"{h3.url}/up/upload", h3.root, method="POST", body=(chunk for _ in range(100)), timeout=300
    )
    assert response.status == 200
    seen = json.loads(response.body)
    assert (seen["body_bytes"], seen["body_sha256"]) == (100 * MIB, digest.hexdigest())


# --- Config changes and shutdown -------------------------------------------------------------------------------


class Session:
    """One aioquic HTTP/3 connection kept open across steps of a test, on its own event loop."""

    def __init__(self, server):
        self.loop = asyncio.new_event_loop()
        self.server = server
        self.context = connect(
            "127.0.0.1", server.port, configuration=_aioquic_configuration("localhost", server.root, None),
            create_protocol=_H3Client,
        )
        self.client = self.loop.run_until_complete(self.context.__aenter__())

    def get(self, path: str, timeout: float = 30):
        request = self.client.request("GET", f"{self.server.url}{path}")
        exchange = self.loop.run_until_complete(asyncio.wait_for(request, timeout))
        return exchange.status, bytes(exchange.body)

    def close(self):
        self.loop.run_until_complete(self.context.__aexit__(None, None, None))
        self.loop.close()


def test_config_changes_keep_the_connection_and_apply_to_its_next_requests(h3, files):
    session = Session(h3)
    try:
        assert session.get("/index.html") == (200, (files / "index.html").read_bytes())
        changed = {"@id": "main", "hosts": ["other.example"], "routes": [{"handle": [{"handler": "static_response"}]}]}
        assert h3.api("PATCH", "/id/main", changed).status_code == 200
        # The site that answered is gone: the same connection now gets no route for localhost.
        status, _ = session.get("/index.html")
        assert status == 404
        changed = {"@id": "main", "hosts": [], "routes": [{"handle": [{"handler": "static_response", "body": "new\n"}]}]}
        assert h3.api("PATCH", "/id/main", changed).status_code == 200
        assert session.get("/anything") == (200, b"new\n")
    finally:
        session.close()
    established = [line for line in h3.log().splitlines() if "QUIC connection established" in line]
    assert len(established) == 1


def test_stopping_lets_a_transfer_in_progress_finish(h3, files):
    """Within the grace period (5 s): GOAWAY, the response completes, then the connection closes."""
    session = Session(h3)
    try:
        assert session.get("/index.html")[0] == 200
        stopper = threading.Timer(0.1, h3.process.send_signal, [signal.SIGTERM])
        stopper.start()
        status, body = session.get("/medium.bin", timeout=30)
        stopper.join()
        assert status == 200 and sha256(body) == sha256((files / "medium.bin").read_bytes())
    finally:
        session.close()
    assert h3.process.wait(15) == 0


# --- Bad input -------------------------------------------------------------------------------------------------


async def raw_exchange(server, headers: list[tuple[bytes, bytes]]) -> tuple[str, int]:
    """Sends one HEADERS frame as given (aioquic does not check outgoing fields) and reports how the server
    ended the stream: ("response", status) or ("reset", error code)."""
    async with connect(
        "127.0.0.1", server.port, configuration=_aioquic_configuration("localhost", server.root, None),
        create_protocol=_H3Client,
    ) as client:
        await client.wait_for_settings()
        stream_id = client._quic.get_next_available_stream_id()
        outcome = asyncio.get_running_loop().create_future()
        handle = client.quic_event_received

        def watch(event):
            if getattr(event, "stream_id", None) == stream_id and hasattr(event, "error_code"):
                if not outcome.done():
                    outcome.set_result(("reset", event.error_code))
            for http_event in client.http.handle_event(event) if not hasattr(event, "error_code") else []:
                if isinstance(http_event, HeadersReceived) and http_event.stream_id == stream_id:
                    if not outcome.done():
                        outcome.set_result(("response", int(dict(http_event.headers)[b":status"])))

        client.quic_event_received = watch
        client.http.send_headers(stream_id, headers, end_stream=True)
        client.transmit()
        try:
            return await asyncio.wait_for(outcome, 10)
        finally:
            client.quic_event_received = handle


GOOD = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"), (b":path", b"/index.html")]


@pytest.mark.parametrize(
    "headers",
    [
        GOOD[:3],  # no :path
        GOOD + [(b"X-Upper", b"1")],  # uppercase name
        GOOD + [(b"connection", b"keep-alive")],  # connection-specific field
        GOOD + [(b"transfer-encoding", b"chunked")],
        GOOD + [(b"te", b"gzip")],
        [GOOD[0], (b"x-early", b"1")] + GOOD[1:],  # pseudo-header after a regular field
        GOOD + [(b":protocol", b"websocket")],  # a pseudo-header that is not offered
        GOOD + [(b"x-value", b" padded ")],
        GOOD + [(b"host", b"elsewhere")],  # host differs from :authority
    ],
    ids=["no-path", "uppercase", "connection", "transfer-encoding", "te", "pseudo-late", "protocol", "whitespace",
         "host-mismatch"],
)
def test_malformed_requests_are_reset_with_h3_message_error(h3, headers):
    assert asyncio.run(raw_exchange(h3, headers)) == ("reset", 0x10E)
    # The connection-level state is intact: a good request still works.
    assert asyncio.run(raw_exchange(h3, GOOD)) == ("response", 200)


def test_oversized_header_section_gets_431(h3):
    headers = GOOD + [(f"x-big-{index}".encode(), os.urandom(1000).hex().encode()) for index in range(40)]
    assert asyncio.run(raw_exchange(h3, headers)) == ("response", 431)


async def control_violation(server) -> int:
    """Sends a DATA frame on the client's control stream; returns the error code the server closes with."""
    async with connect(
        "127.0.0.1", server.port, configuration=_aioquic_configuration("localhost", server.root, None),
        create_protocol=_H3Client,
    ) as client:
        await client.wait_for_settings()
        closed = asyncio.get_running_loop().create_future()
        client.quic_event_received = lambda event: (
            closed.set_result(event.error_code)
            if type(event).__name__ == "ConnectionTerminated" and not closed.done()
            else None
        )
        client._quic.send_stream_data(client.http._local_control_stream_id, b"\x00\x01x")
        client.transmit()
        return await asyncio.wait_for(closed, 10)


def test_a_frame_not_allowed_on_the_control_stream_closes_the_connection(h3):
    assert asyncio.run(control_violation(h3)) == 0x105
    assert aioquic_get(f"{h3.url}/index.html", h3.root).status == 200

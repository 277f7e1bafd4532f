"""Headless Chromium loads a page with a stylesheet and an image from file_server over HTTPS: HTTP/2, TLS 1.3 and X25519MLKEM768,
as Chromium's DevTools protocol and Velocity's access log both report it."""

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest
import requests
import websocket
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from velocity import free_port

PAGE = '<!doctype html>\n<link rel="stylesheet" href="/style.css">\n<img id="pixel" src="/pixel.svg">\n'
CSS = "body { background-color: rgb(0, 128, 0); }\n"
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4" fill="red"/></svg>\n'
PATHS = ["/", "/style.css", "/pixel.svg"]


@pytest.fixture
def site(make_velocity, tmp_path):
    """The page and its assets as files, served by file_server (behind encode) over HTTPS."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text(PAGE)
    (root / "style.css").write_text(CSS)
    (root / "pixel.svg").write_text(SVG)
    server = make_velocity()
    server.https_port = free_port()
    server.start(
        {
            "listeners": [{"protocol": "https", "address": f"127.0.0.1:{server.https_port}"}],
            "logging": {"access_log": True, "format": "json"},
            "sites": [
                {
                    "routes": [
                        {
                            "handle": [
                                {"handler": "encode", "minimum_length": 16},
                                {"handler": "file_server", "root": str(root)},
                            ]
                        }
                    ]
                }
            ],
        },
        wait=False,
    )
    server.wait_ready(timeout=10)
    return server


def leaf_spki_hash(port: int) -> str:
    """base64 SHA-256 of the SubjectPublicKeyInfo of the certificate served to SNI `localhost`."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture
def chromium(site, tmp_path):
    """Headless Chromium trusting the site's leaf by its key; yields the DevTools WebSocket URL of its page."""
    executable = shutil.which("chromium")
    if executable is None:
        message = "chromium is not installed (scripts/setup installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    with open(tmp_path / "chromium.log", "wb") as log:
        process = subprocess.Popen(
            [
                executable, "--headless=new", "--no-sandbox", "--disable-gpu",
                f"--user-data-dir={tmp_path / 'profile'}",
                f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
                f"--ignore-certificate-errors-spki-list={leaf_spki_hash(site.https_port)}",
                "about:blank",
            ],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, (tmp_path / "chromium.log").read_text(errors="replace")
            try:
                targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=1).json()
                pages = [target["webSocketDebuggerUrl"] for target in targets if target["type"] == "page"]
                if pages:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "Chromium's DevTools endpoint did not come up"
            time.sleep(0.1)
        yield pages[0]
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the browser and its zygote, renderer and utility processes
        process.wait()


class DevTools:
    """A DevTools protocol session on one page that keeps every event it reads and ends after `seconds`."""

    def __init__(self, connection: websocket.WebSocket, seconds: float):
        self.connection = connection
        self.deadline = time.monotonic() + seconds
        self.events: list[dict] = []
        self.last_id = 0

    def _next(self) -> dict:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the DevTools session ran out of time; events so far: {self.events}")
        self.connection.settimeout(remaining)
        message = json.loads(self.connection.recv())
        if "method" in message:
            self.events.append(message)
        return message

    def call(self, method: str, **params) -> dict:
        self.last_id += 1
        self.connection.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while (message := self._next()).get("id") != self.last_id:
            pass
        assert "error" not in message, f"{method}: {message['error']}"
        return message["result"]

    def wait_for(self, method: str) -> None:
        while not any(event["method"] == method for event in self.events):
            self._next()

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"]["value"]


def access_lines(server, paths: list[str]) -> dict[str, dict]:
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in server.log().splitlines() if '"velocity.access"' in line]
        by_path = {line["uri"]: line for line in lines}
        if set(paths) <= by_path.keys() or time.monotonic() > deadline:
            return by_path
        time.sleep(0.05)


def test_chromium_loads_a_page_over_h2_with_post_quantum_tls(site, chromium):
    origin = f"https://localhost:{site.https_port}"
    connection = websocket.create_connection(chromium, timeout=5)
    try:
        devtools = DevTools(connection, seconds=20)
        devtools.call("Network.enable")
        devtools.call("Page.enable")
        navigation = devtools.call("Page.navigate", url=f"{origin}/")
        assert "errorText" not in navigation, navigation
        devtools.wait_for("Page.loadEventFired")
        background = devtools.evaluate("getComputedStyle(document.body).backgroundColor")
        image_width = devtools.evaluate("document.getElementById('pixel').naturalWidth")
    finally:
        connection.close()

    responses = {
        event["params"]["response"]["url"]: event["params"]["response"]
        for event in devtools.events
        if event["method"] == "Network.responseReceived"
    }
    for path in PATHS:  # Chromium also asks for /favicon.ico on its own
        response = responses.get(origin + path)
        assert response and response["status"] == 200, (path, responses.keys())
        assert response["protocol"] == "h2", path
        assert response["securityDetails"]["protocol"] == "TLS 1.3", path
        assert response["securityDetails"]["keyExchangeGroup"] == "X25519MLKEM768", path
    assert responses[f"{origin}/style.css"]["mimeType"] == "text/css"
    assert responses[f"{origin}/pixel.svg"]["mimeType"] == "image/svg+xml"
    # encode compressed the stylesheet for the browser, which decoded it to the colour checked below.
    css_headers = {name.lower(): value for name, value in responses[f"{origin}/style.css"]["headers"].items()}
    assert css_headers.get("content-encoding") == "br", css_headers
    assert background == "rgb(0, 128, 0)"
    assert image_width > 0

    logged = access_lines(site, PATHS)
    for path in PATHS:
        assert path in logged, f"no access log line for {path}:\n{site.log()}"
        line = logged[path]
        assert line["status"] == "200" and line["proto"] == "HTTP/2", line
        assert line["tls_group"] == "X25519MLKEM768" and line["tls_post_quantum"] == "true", line

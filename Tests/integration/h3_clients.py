"""Real HTTP/3 clients for the integration tests, each fetching a URL and returning one `H3Response` shape.

What each offers in the TLS handshake, and what it reports (`group` is spelt as Velocity's config spells groups:
X25519MLKEM768, X25519, P-256, ...; `protocol` is "h3" whenever the client says it spoke HTTP/3):
- `aioquic_get`, `aioquic_get_many` (aioquic 1.7, H3Connection): P-256, P-384, X25519, X448 shares, no
  post-quantum group (the classical fallback case). `group` is read from the ServerHello as it arrives;
  `protocol` is the ALPN negotiated.
- `niquests_get` (niquests 3.21 on qh3 2.1): X25519MLKEM768 first, with an X25519 share. `group` is None:
  `response.conn_info` has the cipher, TLS version, certificate chain and `http_version` (HTTP/3.0) but no group,
  and qh3 keeps the group only in a local variable of its ServerHello handler (it gives its TLS context no
  logger either, so not even its "post-quantum" trace line comes out).
- `curl_cffi_get` (curl-cffi 0.17: libcurl, ngtcp2, BoringSSL): X25519MLKEM768 first with `impersonate="chrome"`.
  `group` is None: over QUIC libcurl's own log says "SSL connection using TLSv1.3 / TLS_AES_128_GCM_SHA256 /
  [blank] / UNDEF" (TCP connections name the group there) and curl-cffi exports no BoringSSL call to ask.
- `gtlsclient_get` (Debian `ngtcp2-client`: ngtcp2 0.12, GnuTLS 3.7): X25519, P-256, P-384, P-521. `group` is
  None: it prints the cipher and the ALPN, never the group.
- `chromium_h3`, `chromium_alt_svc` (headless Chromium over DevTools): X25519MLKEM768 first. `group` is
  `securityDetails.keyExchangeGroup` and `protocol` is `response.protocol` ("h3" or "h2"), for every response.
A group the client cannot report can be read on the server's side: Velocity's access log names it.

Learnt against caddy 2.6.2 (h3_peer_check.py; caddy serves h1, h2 and h3 and sends `Alt-Svc: h3=":PORT"`):
- niquests brings urllib3-future, whose wheel takes over the `urllib3` package that `requests` runs on;
  requirements.txt has it built from source with URLLIB3_NO_OVERRIDE=1 (set by scripts/setup) instead, so that
  it lives beside urllib3 as `urllib3_future`.
- aioquic keeps no record of the group, so `aioquic_get` sits in front of the TLS context's `handle_message`
  (again after a Retry or a version change, which make a new context). Its QPACK encoder uses the dynamic
  table only as far as the server's SETTINGS_QPACK_MAX_TABLE_CAPACITY allows: caddy's (quic-go) allows none,
  so `aioquic_get_many` exercises a dynamic table only against a server that offers one.
- gtlsclient checks no certificate (it loads the system store but verifies nothing and has no CA option).
  `-q` silences everything, response headers too, so it runs without it and reads the
  `http: stream 0xN [name: value]` lines from its stderr among ngtcp2's trace (about 20 MB for a 50 MiB body,
  read as it comes). With one request, `--download DIR` writes the body to DIR/<last path segment, or
  index.html>; with `-n N` all N would write that one file, so their bodies come from its hex dump instead,
  which slows it to a few MB/s and more (3 x 50 MiB did not finish in a minute): keep those small.
  `--exit-on-all-streams-close` makes it exit 0 once every response is complete.
- Chromium: `--ignore-certificate-errors` does not cover QUIC; pinning the leaf's key with
  `--ignore-certificate-errors-spki-list` covers forced QUIC and TCP. Moving from TCP to HTTP/3 after Alt-Svc
  on 127.0.0.1 works with one more flag: see `chromium_alt_svc`. Left alone, Chromium also asks Google's servers
  for the time, updates and accounts: `QUIET_CHROMIUM` keeps every name but loopback ones from resolving.
"""
import asyncio
import base64
import hashlib
import importlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aioquic.asyncio
from aioquic.buffer import Buffer
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamReset
from aioquic.tls import pull_server_hello
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from velocity import require_tool

# TLS NamedGroup code points, named as Velocity's config names them.
GROUPS = {
    0x0017: "P-256",
    0x0018: "P-384",
    0x0019: "P-521",
    0x001D: "X25519",
    0x001E: "X448",
    0x11EB: "SecP256r1MLKEM768",
    0x11EC: "X25519MLKEM768",
    0x11ED: "SecP384r1MLKEM1024",
}


@dataclass
class H3Response:
    """One response. `headers` has lowercase names and the last value of a repeated name; `fields` has every
    field in the order received. `group` is the TLS key-exchange group when the client can tell, `protocol`
    the HTTP version the client says it spoke ("h3")."""

    status: int
    headers: dict[str, str]
    body: bytes
    group: str | None
    protocol: str
    fields: list[tuple[str, str]] = field(default_factory=list)

    def values(self, name: str) -> list[str]:
        """Every value of the field `name`, in order."""
        return [value for key, value in self.fields if key == name.lower()]

    def __repr__(self) -> str:
        return f"H3Response({self.status}, {self.protocol}, {self.group}, {self.fields}, {self.body[:100]!r})"


def response(status: int, fields: Iterable[tuple[str, str]], body: bytes, group: str | None, protocol: str):
    """An `H3Response` from (name, value) pairs, pseudo-headers left out."""
    pairs = [(name.lower(), value) for name, value in fields if not name.startswith(":")]
    return H3Response(status, dict(pairs), body, group, protocol, pairs)


def require_module(name: str):
    """Imports a client library the helper needs: missing, it fails the test under CI=true and skips it
    elsewhere, like `velocity.require_tool` (scripts/setup installs them all)."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        import pytest

        message = f"the Python package {name} is missing ({error}): scripts/setup installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def spki_hash(certificate_pem: str) -> str:
    """base64 SHA-256 of a certificate's SubjectPublicKeyInfo: what Chromium's
    --ignore-certificate-errors-spki-list pins."""
    public_key = x509.load_pem_x509_certificate(certificate_pem.encode()).public_key()
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


# --- aioquic ---


class _ServerHelloGroup:
    """Sits in front of a client TLS context's `handle_message` and keeps the key-exchange group of the
    ServerHello, the first handshake message the server sends (aioquic parses it but keeps no record)."""

    def __init__(self, context):
        self.context = context
        self.handle = context.handle_message
        self.pending = b""
        self.group: str | None = None
        context.handle_message = self

    def __call__(self, data: bytes, output):
        if self.group is None and data:
            self.pending += data
            if len(self.pending) >= 4 and len(self.pending) >= 4 + int.from_bytes(self.pending[1:4], "big"):
                hello = pull_server_hello(Buffer(data=self.pending))
                self.group = GROUPS.get(hello.key_share[0], f"0x{hello.key_share[0]:04X}")
        return self.handle(data, output)


@dataclass
class _Exchange:
    """One request's response as it arrives; `done` (aioquic only) completes with it."""

    done: asyncio.Future | None = None
    status: int | None = None
    fields: list[tuple[str, str]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)


class _H3Client(aioquic.asyncio.QuicConnectionProtocol):
    """An aioquic connection speaking HTTP/3: requests on as many streams as asked, each response gathered whole."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.http = H3Connection(self._quic)
        self.exchanges: dict[int, _Exchange] = {}
        self.sent = asyncio.Event()
        self.settings = asyncio.Event()
        self.hello: _ServerHelloGroup | None = None

    @property
    def group(self) -> str | None:
        return self.hello.group if self.hello else None

    def datagram_received(self, data, addr):
        # The TLS context exists once connect() ran; a Retry or a version change replaces it before its ServerHello.
        if self.hello is None or self.hello.context is not self._quic.tls:
            self.hello = _ServerHelloGroup(self._quic.tls)
        super().datagram_received(data, addr)

    def transmit(self):
        super().transmit()
        self.sent.set()

    def quic_event_received(self, event: QuicEvent):
        if isinstance(event, ConnectionTerminated):
            self.fail_all(ConnectionError(f"connection closed: {event.error_code:#x} {event.reason_phrase!r}"))
        elif isinstance(event, StreamReset) and event.stream_id in self.exchanges:
            self.fail(event.stream_id, ConnectionError(f"stream {event.stream_id} reset: {event.error_code:#x}"))
        for http_event in self.http.handle_event(event):
            exchange = self.exchanges.get(getattr(http_event, "stream_id", None))
            if exchange is None or exchange.done.done():
                continue
            if isinstance(http_event, HeadersReceived):
                self.headers_received(exchange, http_event.headers)
            elif isinstance(http_event, DataReceived):
                exchange.body += http_event.data
            if getattr(http_event, "stream_ended", False):
                exchange.done.set_result(None)
        if self.http.received_settings is not None:
            self.settings.set()

    async def wait_for_settings(self, seconds: float = 5.0):
        """The server's SETTINGS tell the QPACK encoder how much dynamic table it may use: none until they come."""
        try:
            await asyncio.wait_for(self.settings.wait(), seconds)
        except TimeoutError:
            raise ConnectionError(f"no SETTINGS from the server within {seconds} s") from None

    @staticmethod
    def headers_received(exchange: _Exchange, headers: list[tuple[bytes, bytes]]):
        """Keeps the final response's fields (a 1xx is skipped) and the trailers after them."""
        fields = [(name.decode(), value.decode("latin-1")) for name, value in headers]
        status = dict(fields).get(":status")
        if status is not None:
            if status.startswith("1"):
                return
            exchange.status = int(status)
        exchange.fields += fields

    def fail(self, stream_id: int, error: Exception):
        if not self.exchanges[stream_id].done.done():
            self.exchanges[stream_id].done.set_exception(error)

    def fail_all(self, error: Exception):
        for stream_id in self.exchanges:
            self.fail(stream_id, error)

    async def request(
        self, method: str, url: str, headers: dict | None = None, body: bytes | Iterable[bytes] | None = None,
        backlog: int = 4 << 20,
    ) -> _Exchange:
        """Sends one request; a body given as an iterable of chunks is sent as it is produced, each chunk once
        no more than `backlog` bytes wait unsent, so a large body need not be in memory all at once."""
        parts = urlsplit(url)
        stream_id = self._quic.get_next_available_stream_id()
        exchange = _Exchange(asyncio.get_running_loop().create_future())
        self.exchanges[stream_id] = exchange
        request_headers = [
            (b":method", method.encode()), (b":scheme", b"https"), (b":authority", parts.netloc.encode()),
            (b":path", (parts.path or "/").encode() + (b"?" + parts.query.encode() if parts.query else b"")),
        ]
        if isinstance(body, bytes):
            request_headers.append((b"content-length", str(len(body)).encode()))
        request_headers += [(name.lower().encode(), str(value).encode()) for name, value in (headers or {}).items()]
        self.http.send_headers(stream_id, request_headers, end_stream=body is None)
        self.transmit()
        if body is not None:
            await self.send_body(stream_id, exchange, [body] if isinstance(body, bytes) else body, backlog)
        await exchange.done
        return exchange

    async def send_body(self, stream_id: int, exchange: _Exchange, chunks: Iterable[bytes], backlog: int):
        # aioquic has no public view of a stream's unsent bytes: its sender's highest offset sent is the nearest.
        sender = self._quic._streams[stream_id].sender
        written = 0
        for chunk in chunks:
            while written - sender.highest_offset > backlog and not exchange.done.done():
                self.sent.clear()
                await self.sent.wait()
            if exchange.done.done():  # the server answered early or the stream failed
                return
            self.http.send_data(stream_id, chunk, end_stream=False)
            written += len(chunk)
            self.transmit()
        self.http.send_data(stream_id, b"", end_stream=True)
        self.transmit()


def _aioquic_configuration(host: str, ca_file: str | None, server_name: str | None) -> QuicConfiguration:
    config = QuicConfiguration(alpn_protocols=H3_ALPN, is_client=True, server_name=server_name or host)
    if ca_file:
        config.load_verify_locations(ca_file)
    else:
        config.verify_mode = ssl.CERT_NONE
    return config


async def _aioquic_session(requests: list[tuple], ca_file: str | None, server_name: str | None) -> list[H3Response]:
    """Runs (method, url, headers, body) requests concurrently on one connection to the first URL's origin."""
    parts = urlsplit(requests[0][1])
    config = _aioquic_configuration(parts.hostname, ca_file, server_name)
    async with aioquic.asyncio.connect(
        parts.hostname, parts.port or 443, configuration=config, create_protocol=_H3Client
    ) as client:
        await client.wait_for_settings()
        exchanges = await asyncio.gather(*(client.request(*request) for request in requests))
        protocol = client._quic.tls.alpn_negotiated
        return [response(e.status, e.fields, bytes(e.body), client.group, protocol) for e in exchanges]


def aioquic_get(
    url: str, ca_file: str | None, method: str = "GET", body: bytes | Iterable[bytes] | None = None,
    headers: dict | None = None, timeout: float = 60.0, server_name: str | None = None,
) -> H3Response:
    """One request over a new aioquic connection (classical groups only: the fallback case). `body` may be an
    iterable of chunks, streamed as produced (give its content-length in `headers` if the server wants one).
    `ca_file=None` checks no certificate; `server_name` (default: the URL's host) is the name checked, and sent
    as SNI unless it is an IP address."""
    session = _aioquic_session([(method, url, headers, body)], ca_file, server_name)
    [result] = asyncio.run(asyncio.wait_for(session, timeout))
    return result


def aioquic_get_many(
    urls: list[str], ca_file: str | None, headers: dict | None = None, timeout: float = 60.0,
    server_name: str | None = None,
) -> list[H3Response]:
    """GETs `urls` (one origin) concurrently on one aioquic connection, a stream each; the responses in the
    order of `urls`. Header blocks with repeated fields let aioquic's QPACK encoder use the dynamic table, as
    far as the server's SETTINGS_QPACK_MAX_TABLE_CAPACITY allows."""
    requests = [("GET", url, headers, None) for url in urls]
    return asyncio.run(asyncio.wait_for(_aioquic_session(requests, ca_file, server_name), timeout))


# --- niquests (qh3) and curl-cffi ---


def niquests_get(url: str, ca_file: str, timeout: float = 60.0) -> H3Response:
    """A GET with niquests over HTTP/3 only (qh3 underneath: X25519MLKEM768 offered first). `group` is always
    None: neither niquests' `conn_info` nor qh3 tells the negotiated group."""
    niquests = require_module("niquests")
    with niquests.Session(disable_http1=True, disable_http2=True) as session:
        reply = session.get(url, verify=ca_file, timeout=timeout)
        protocol = "h3" if reply.http_version == 30 else f"HTTP/{reply.http_version / 10:g}"
        return response(reply.status_code, reply.raw.headers.items(), reply.content, None, protocol)


def curl_cffi_get(url: str, ca_file: str, impersonate: str = "chrome", timeout: float = 60.0) -> H3Response:
    """A GET with curl-cffi over HTTP/3 only. `impersonate="chrome"` offers X25519MLKEM768 first (with no
    impersonation, curl offers classical groups). `group` is always None: over QUIC libcurl leaves the group
    blank and curl-cffi exposes no BoringSSL call to ask."""
    require_module("curl_cffi")
    from curl_cffi import CurlHttpVersion, requests

    reply = requests.get(
        url, http_version=CurlHttpVersion.V3ONLY, impersonate=impersonate, verify=ca_file, timeout=timeout,
        allow_redirects=False,
    )
    protocol = "h3" if reply.http_version == 30 else f"curl version {reply.http_version}"
    return response(reply.status_code, reply.headers.multi_items(), reply.content, None, protocol)


# --- ngtcp2's gtlsclient ---


def gtlsclient_get(
    url: str, host: str = "127.0.0.1", port: int | None = None, n: int = 1, timeout: float = 60.0,
) -> list[H3Response]:
    """Runs ngtcp2's `gtlsclient` (GnuTLS: X25519 and NIST curves) to `host`:`port` (default: the URL's port)
    for `url`, `n` requests on one connection; the responses in stream order. It checks no certificate. With
    n > 1 the bodies come from its hex dump: keep them small."""
    executable = require_tool("gtlsclient")
    parts = urlsplit(url)
    command = [executable, "--exit-on-all-streams-close", "--no-quic-dump", f"--timeout={int(timeout)}s"]
    with tempfile.TemporaryDirectory(prefix="gtlsclient-") as downloads:
        if n == 1:
            command += ["--no-http-dump", f"--download={downloads}"]
        else:
            command += [f"-n{n}"]
        command += [host, str(port or parts.port or 443), url]
        log = _GtlsclientLog()
        with subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        ) as process:
            try:
                deadline = time.monotonic() + timeout
                for line in process.stderr:
                    log.read(line)
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"gtlsclient ran over {timeout} s")
                returncode = process.wait(timeout=max(1, deadline - time.monotonic()))
            finally:
                process.kill()
        answered = sum(stream.status is not None for stream in log.streams.values())
        if returncode != 0 or answered != n:
            raise ConnectionError(f"gtlsclient exited {returncode} with {answered} of {n} responses:\n{log.tail()}")
        if n == 1:
            name = parts.path.rsplit("/", 1)[-1] or "index.html"
            next(iter(log.streams.values())).body += (Path(downloads) / name).read_bytes()
    return [response(s.status, s.fields, bytes(s.body), None, log.alpn) for _, s in sorted(log.streams.items())]


class _GtlsclientLog:
    """Reads gtlsclient's stderr line by line: response fields, bodies from the hex dump, the ALPN, and the
    last lines of everything else (for an error message)."""

    def __init__(self):
        self.streams: dict[int, _Exchange] = {}
        self.alpn = ""
        self.dumping: _Exchange | None = None
        self.recent: list[str] = []

    def read(self, raw: bytes):
        line = raw.decode("latin-1").rstrip("\n")
        if self.dumping is not None and line[:8].isalnum() and line[8:10] == "  " and "|" in line:
            self.dumping.body += bytes.fromhex(line[10:58])
            return
        self.dumping = None
        if line.startswith("http: stream 0x"):
            self.stream_line(line)
        elif line.startswith("Negotiated ALPN is "):
            self.alpn = line.removeprefix("Negotiated ALPN is ")
        elif not line.startswith("I0"):
            self.recent = self.recent[-30:] + [line]

    def stream_line(self, line: str):
        stream_text, _, rest = line.removeprefix("http: stream ").partition(" ")
        stream = self.streams.setdefault(int(stream_text, 16), _Exchange())
        if rest.startswith("[") and rest.endswith("]"):
            name, _, value = rest[1:-1].partition(": ")
            if name == ":status":
                stream.status = int(value)
            stream.fields.append((name, value))
        elif rest.startswith("body "):
            self.dumping = stream

    def tail(self) -> str:
        return "\n".join(self.recent)


# --- Chromium ---


class _DevTools:
    """A DevTools protocol session on one page that keeps every event it reads and ends after `seconds`."""

    def __init__(self, url: str, seconds: float):
        import websocket

        self.connection = websocket.create_connection(url, timeout=seconds)
        self.deadline = time.monotonic() + seconds
        self.events: list[dict] = []
        self.last_id = 0

    def close(self):
        self.connection.close()

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
        if "error" in message:
            raise RuntimeError(f"{method}: {message['error']}")
        return message["result"]

    def wait_for(self, method: str, since: int = 0, **params) -> dict:
        """The first event `method` among those from index `since` on whose params include `params`."""
        index = since
        while True:
            while index < len(self.events):
                event = self.events[index]
                index += 1
                if event["method"] == method and params.items() <= event["params"].items():
                    return event
            self._next()

    def load(self, url: str) -> dict[str, H3Response]:
        """Navigates to `url`, waits for the load event and for every response seen by then to finish loading,
        and returns those responses by URL (the last one per URL), bodies included."""
        since = len(self.events)
        navigation = self.call("Page.navigate", url=url)
        if "errorText" in navigation:
            raise ConnectionError(f"Chromium could not load {url}: {navigation['errorText']}")
        self.wait_for("Page.loadEventFired", since)
        received = [e["params"] for e in self.events[since:] if e["method"] == "Network.responseReceived"]
        responses = {}
        for params in received:
            finished = self.wait_finished(params["requestId"], since)
            body = b""
            if finished == "Network.loadingFinished":
                reply = self.call("Network.getResponseBody", requestId=params["requestId"])
                body = base64.b64decode(reply["body"]) if reply["base64Encoded"] else reply["body"].encode()
            responses[params["response"]["url"]] = _devtools_response(params["response"], body)
        return responses

    def wait_finished(self, request_id: str, since: int) -> str:
        while True:
            for event in self.events[since:]:
                if event["method"] in ("Network.loadingFinished", "Network.loadingFailed"):
                    if event["params"]["requestId"] == request_id:
                        return event["method"]
            self._next()


def _devtools_response(reported: dict, body: bytes) -> H3Response:
    security = reported.get("securityDetails") or {}
    fields = [
        (name.lower(), value) for name, values in reported["headers"].items() for value in values.split("\n")
    ]
    return response(reported["status"], fields, body, security.get("keyExchangeGroup"), reported["protocol"])


# Left alone, Chromium asks Google's servers for the time, component updates, accounts and spelling dictionaries:
# these flags stop most of that, and the resolver rule fails every name but loopback ones before any packet leaves.
QUIET_CHROMIUM = [
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--disable-domain-reliability",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]",
]


class _Chromium:
    """Headless Chromium with DevTools on a port of its choosing, trusting the leaf whose key hashes to `spki`,
    with `flags` added; `open()` gives a DevTools session on its page. Killed whole (browser, zygote, renderers)
    by `close()`."""

    def __init__(self, spki: str, flags: list[str], seconds: float):
        executable = require_tool("chromium")
        self.seconds = seconds
        self.directory = tempfile.mkdtemp(prefix="chromium-h3-")
        self.log = Path(self.directory) / "chromium.log"
        profile = Path(self.directory) / "profile"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [
                    executable, "--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                    "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1", *QUIET_CHROMIUM,
                    f"--ignore-certificate-errors-spki-list={spki}", *flags, "about:blank",
                ],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.port_file = profile / "DevToolsActivePort"

    def open(self) -> _DevTools:
        import requests

        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                log = self.log.read_text(errors="replace")
                raise RuntimeError(f"Chromium exited with {self.process.returncode}:\n{log}")
            try:
                port = int(self.port_file.read_text().split()[0])
                targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=1).json()
                pages = [target["webSocketDebuggerUrl"] for target in targets if target["type"] == "page"]
                if pages:
                    return _DevTools(pages[0], self.seconds)
            except (OSError, ValueError, IndexError, requests.RequestException):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Chromium's DevTools did not come up:\n{self.log.read_text(errors='replace')}")
            time.sleep(0.1)

    def close(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def chromium_h3(
    url: str, spki: str, screenshot_path: str | Path | None = None, timeout: float = 30.0,
) -> dict[str, H3Response]:
    """Loads `url` in headless Chromium forced onto QUIC for its origin (--origin-to-force-quic-on), trusting
    the leaf by `spki` (see `spki_hash`); returns every response by URL, bodies included, each with the
    `protocol` and `securityDetails.keyExchangeGroup` Chromium reports. Saves a PNG screenshot if asked."""
    parts = urlsplit(url)
    origin = f"{parts.hostname}:{parts.port or 443}"
    chromium = _Chromium(spki, ["--enable-quic", f"--origin-to-force-quic-on={origin}"], timeout)
    try:
        devtools = chromium.open()
        try:
            devtools.call("Network.enable")
            devtools.call("Page.enable")
            responses = devtools.load(url)
            if screenshot_path:
                shot = devtools.call("Page.captureScreenshot", format="png")
                Path(screenshot_path).write_bytes(base64.b64decode(shot["data"]))
            return responses
        finally:
            devtools.close()
    finally:
        chromium.close()


def chromium_alt_svc(
    url: str, spki: str, loads: int = 3, pause: float = 0.5, timeout: float = 60.0,
) -> list[H3Response]:
    """Loads `url` `loads` times (`pause` seconds apart, cache disabled) in headless Chromium that is *not*
    forced onto QUIC for its origin, so it starts on TCP and may move to HTTP/3 after reading Alt-Svc; returns
    the document's response of each load. Expect "h2" first and "h3" from the second load on.

    Chromium takes Alt-Svc from 127.0.0.1 or localhost on any port, but its QUIC certificate check
    (ProofVerifierChromium) refuses a root that is not a public one (ERR_QUIC_CERT_ROOT_NOT_KNOWN, seen as a
    "certificate unknown" handshake failure and the alternative service marked broken), whatever
    --ignore-certificate-errors(-spki-list) or a CA added to the profile's NSS store say, unless the host is
    among those of --origin-to-force-quic-on, taken by host alone. So the origin forced onto QUIC here is the
    same host on port 1, which nothing loads: the URL's own origin still starts on TCP. With "localhost",
    Chromium may try QUIC on ::1 first: serve on both or use 127.0.0.1."""
    host = urlsplit(url).hostname
    chromium = _Chromium(spki, ["--enable-quic", f"--origin-to-force-quic-on={host}:1"], timeout)
    try:
        devtools = chromium.open()
        try:
            devtools.call("Network.enable")
            devtools.call("Page.enable")
            devtools.call("Network.setCacheDisabled", cacheDisabled=True)
            documents = []
            for load in range(loads):
                if load:
                    time.sleep(pause)
                documents.append(devtools.load(url)[url])
            return documents
        finally:
            devtools.close()
    finally:
        chromium.close()

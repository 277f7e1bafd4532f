"""Starts real `velocity run` processes on free loopback ports with their own SQLite data directories."""

import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import signal
import socket
import socketserver
import struct
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]


def binary() -> str:
    path = os.environ.get("VELOCITY_BIN") or str(ROOT / ".build" / "debug" / "velocity")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"velocity binary not found at {path}: run `swift build` or set VELOCITY_BIN")
    return path


def cli(*args: str, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
    """Runs one `velocity` command to its end and captures its output as text."""
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout, **kw)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a new listener could take the port (SO_REUSEADDR, so only a listening socket blocks it)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen()
            return True
        except OSError:
            return False


def site_config(http_port: int, body: str = "hello\n", **extra) -> dict:
    """A config with one HTTP listener and one catch-all site answering `body`."""
    config = {
        "listeners": [{"@id": "web", "protocol": "http", "address": f"127.0.0.1:{http_port}"}],
        "sites": [
            {
                "@id": "main",
                "routes": [
                    {
                        "@id": "answer",
                        "handle": [{"handler": "static_response", "body": body}],
                    }
                ],
            }
        ],
    }
    config.update(extra)
    return config


def https_config(port: int, body: str = "hello\n", **extra) -> dict:
    """`site_config`'s catch-all site behind HTTPS listeners on 127.0.0.1 and [::1] at `port`."""
    listeners = [{"protocol": "https", "address": f"{host}:{port}"} for host in ["127.0.0.1", "[::1]"]]
    return site_config(port, body, listeners=listeners, **extra)


def curl(*args: str, timeout: float = 10) -> subprocess.CompletedProcess:
    """Runs Debian's curl (OpenSSL 3.0: X25519, no post-quantum group) quietly, failing on HTTP errors."""
    return subprocess.run(
        ["curl", "-sS", "--fail", "--max-time", str(timeout), *args],
        capture_output=True, text=True, timeout=timeout + 5,
    )


def _general_name(name: str) -> x509.GeneralName:
    """A subjectAltName entry: an IP address for a literal address, else a DNS name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


class LocalCA:
    """A throwaway certificate authority (EC P-256) for tests that configure certificates of their own."""

    def __init__(self, name: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            self._builder(subject, subject, self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, *names: str) -> tuple[str, str]:
        """A leaf for the DNS `names` (IP addresses among them go in as such): (certificate PEM, private key PEM)."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        certificate = (
            self._builder(subject, self.certificate.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName([_general_name(name) for name in names]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()

    @staticmethod
    def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.timezone.utc)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
        )


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix domain socket."""

    def __init__(self, path: str, timeout: float = 10):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def unix_request(path: str, method: str, target: str, body=None) -> tuple[int, bytes]:
    """One request to an HTTP server on a unix socket: (status, body)."""
    connection = UnixHTTPConnection(path)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {} if body is None else {"Content-Type": "application/json"}
        connection.request(method, target, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class Velocity:
    """One server process. `data_dir` survives restarts, so a test can kill and resume it.

    `admin` is the `--admin` address (default 127.0.0.1 on a free port; `unix:/path` works too); `token` is sent
    as a bearer token on every admin request this helper makes. `http_port` is set by whoever configures a
    data-plane listener, for `fetch` and `state`; `https_port` likewise for an HTTPS one."""

    def __init__(
        self,
        data_dir: str | None = None,
        admin_port: int | None = None,
        admin: str | None = None,
        token: str | None = None,
    ):
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="velocity-test-")
        self.admin_port = admin_port or free_port()
        self.admin_address = admin or f"127.0.0.1:{self.admin_port}"
        self.token = token
        self.http_port: int | None = None
        self.https_port: int | None = None
        self.process: subprocess.Popen | None = None
        self.log_path = Path(self.data_dir) / "server.log"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def unix_socket(self) -> str | None:
        return self.admin_address[5:] if self.admin_address.startswith("unix:") else None

    def start(
        self,
        config: dict | None = None,
        *args: str,
        wait: bool = True,
        env: dict | None = None,
        data_dir_flag: bool = True,
        pin_admin: bool = True,
    ) -> "Velocity":
        """Starts `velocity run`; `config` is written to a file and given as `--config`. `env` adds variables;
        `data_dir_flag=False` leaves out `--data-dir`, `pin_admin=False` leaves out `--admin` (so the config's
        admin.listen decides)."""
        command = [binary(), "run"]
        if pin_admin:
            command += ["--admin", self.admin_address]
        if data_dir_flag:
            command += ["--data-dir", self.data_dir]
        if config is not None:
            path = Path(self.data_dir) / "start-config.json"
            path.write_text(json.dumps(config))
            command += ["--config", str(path)]
        command += list(args)
        with open(self.log_path, "ab") as log:
            environment = {**os.environ, **(env or {})}
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=environment
            )
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                self.kill()
                raise
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"velocity exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.unix_socket:
                    status, _ = unix_request(self.unix_socket, "GET", "/health")
                else:
                    status = self.api("GET", "/health", timeout=1).status_code
                if status == 200:
                    return
            except (requests.ConnectionError, requests.Timeout, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"velocity did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def api(self, method: str, path: str, body=None, headers: dict | None = None, raw: bytes | None = None, **kw):
        headers = dict(headers or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        kw.setdefault("timeout", 30)
        return requests.request(method, f"{self.admin}{path}", data=data, headers=headers, **kw)

    def config(self, path: str = "/") -> tuple[object, int]:
        """The running config at `path` and its revision (from the ETag)."""
        response = self.api("GET", f"/config{path}")
        assert response.status_code == 200, response.text
        return response.json(), int(response.headers["ETag"].strip('"'))

    def revisions(self) -> list[dict]:
        response = self.api("GET", "/revisions?limit=1000")
        assert response.status_code == 200, response.text
        return response.json()

    def fetch(self, path: str = "/") -> requests.Response:
        """A GET on the data-plane listener at `http_port`."""
        return requests.get(f"http://127.0.0.1:{self.http_port}{path}", timeout=10)

    def state(self) -> tuple:
        """What a rejected change must leave as it was: (config, revision, number of stored revisions,
        data-plane body)."""
        config, revision = self.config()
        return config, revision, len(self.revisions()), self.fetch().text

    def stop(self, timeout: float = 20) -> int:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode if self.process else 0

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @property
    def database(self) -> Path:
        return Path(self.data_dir) / "velocity.sqlite"


# --- Clients for data-plane tests: one `Reply` shape whatever the client, raw bytes as they came on the wire. ---

CLIENTS = ("curl-h1", "curl-h2", "httpx-h2", "nghttp", "requests")


class Reply:
    """A response: `status`, `headers` as (lowercase name, value) pairs in order, the body exactly as sent
    (never decompressed) and the HTTP `version` ("1.1" or "2")."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes, version: str):
        self.status, self.headers, self.body, self.version = status, headers, body, version

    def header(self, name: str) -> str | None:
        """All values of `name` joined by ", ", or None when absent."""
        values = [value for key, value in self.headers if key == name.lower()]
        return ", ".join(values) if values else None

    def tokens(self, name: str) -> set[str]:
        """The lowercase comma-separated tokens of a list header such as Vary."""
        return {token.strip().lower() for token in (self.header(name) or "").split(",") if token.strip()}

    def __repr__(self) -> str:
        return f"Reply({self.status}, HTTP/{self.version}, {self.headers}, {self.body[:200]!r})"


def _parse_head(block: bytes) -> tuple[int, list[tuple[str, str]], str]:
    lines = block.decode("latin-1").split("\r\n")
    version, status = lines[0].split(" ")[:2]
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
    return int(status), headers, version.removeprefix("HTTP/")


def http_request(
    client: str,
    url: str,
    method: str = "GET",
    headers: dict | None = None,
    cacert: str | None = None,
    timeout: float = 30,
) -> Reply:
    """One request by `client` (see CLIENTS): curl with --http1.1 or --http2 and --path-as-is, httpx with HTTP/2,
    nghttp (HTTPS only, run twice: headers, then body) or requests. No client adds an Accept-Encoding of its own
    and none follows redirects."""
    headers = dict(headers or {})
    if client in ("curl-h1", "curl-h2"):
        with tempfile.NamedTemporaryFile() as body_file:
            command = ["curl", "-sS", "--path-as-is", "--max-time", str(timeout), "-D", "-", "-o", body_file.name]
            command.append("--http1.1" if client == "curl-h1" else "--http2")
            if cacert:
                command += ["--cacert", cacert]
            command += ["--head"] if method == "HEAD" else ["-X", method]
            for name, value in headers.items():
                command += ["-H", f"{name}: {value}"]
            result = subprocess.run(command + [url], capture_output=True, timeout=timeout + 5)
            assert result.returncode == 0, f"curl {url}: {result.stderr.decode(errors='replace')}"
            block = [part for part in result.stdout.split(b"\r\n\r\n") if part.startswith(b"HTTP/")][-1]
            status, pairs, version = _parse_head(block)
            return Reply(status, pairs, b"" if method == "HEAD" else Path(body_file.name).read_bytes(), version)
    if client == "httpx-h2":
        import ssl

        import httpx

        verify = ssl.create_default_context(cafile=cacert) if cacert else True
        with httpx.Client(http2=True, verify=verify, timeout=timeout) as session:
            del session.headers["accept-encoding"]
            with session.stream(method, url, headers=headers) as response:
                body = b"".join(response.iter_raw())
            pairs = [(name.lower(), value) for name, value in response.headers.multi_items()]
            return Reply(response.status_code, pairs, body, response.http_version.removeprefix("HTTP/"))
    if client == "requests":
        with requests.Session() as session:
            session.headers.pop("Accept-Encoding", None)
            response = session.request(
                method, url, headers=headers, stream=True, timeout=timeout, verify=cacert or True,
                allow_redirects=False,
            )
            body = response.raw.read(decode_content=False)
            pairs = [(name.lower(), value) for name, value in response.raw.headers.items()]
            version = {10: "1.0", 11: "1.1", 20: "2"}[response.raw.version]
            return Reply(response.status_code, pairs, body, version)
    if client == "nghttp":
        assert url.startswith("https://"), "nghttp is used over HTTPS only"
        command = ["nghttp", "-t", f"{int(timeout)}s", url]
        for name, value in headers.items():
            command += ["-H", f"{name.lower()}: {value}"]
        if method != "GET":
            command += ["-H", f":method: {method}"]
        verbose = subprocess.run(command + ["-v", "-n"], capture_output=True, timeout=timeout + 5)
        assert verbose.returncode == 0, f"nghttp {url}: {verbose.stderr.decode(errors='replace')}"
        pairs = []
        for line in verbose.stdout.decode("latin-1").splitlines():
            if line.startswith("[") and "] recv (stream_id=" in line:
                name, _, value = line.split(") ", 1)[1].partition(": ")
                pairs.append((name.lower(), value))
        status = int(dict(pairs).pop(":status"))
        pairs = [(name, value) for name, value in pairs if not name.startswith(":")]
        body = b""
        if method != "HEAD":
            plain = subprocess.run(command, capture_output=True, timeout=timeout + 5)
            assert plain.returncode == 0, f"nghttp {url}: {plain.stderr.decode(errors='replace')}"
            body = plain.stdout
        return Reply(status, pairs, body, "2")
    raise ValueError(f"unknown client {client}")


def raw_exchange(port: int, data: bytes, tls: bool = False, timeout: float = 10) -> bytes:
    """Sends `data` as it is (no client normalizes anything) on a new connection, over TLS with ALPN http/1.1
    when `tls` (certificate not checked), and returns every byte received until the server closes or goes
    quiet for `timeout` seconds. Ask for `Connection: close` to get one whole exchange."""
    import ssl

    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if tls:
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            context.set_alpn_protocols(["http/1.1"])
            sock = context.wrap_socket(sock, server_hostname="localhost")
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:  # quiet for `timeout`, reset, or a TLS stream cut without close_notify
            pass
        return received
    finally:
        sock.close()


def raw_get(port: int, target: str, method: str = "GET", headers: dict | None = None, tls: bool = False) -> Reply:
    """`raw_exchange` of one HTTP/1.1 request for `target`, sent byte for byte; the reply's body is what followed
    the header block (chunked bodies are left chunked)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    received = raw_exchange(port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), tls=tls)
    head, separator, body = received.partition(b"\r\n\r\n")
    assert separator, f"no complete response to {method} {target}: {received[:300]!r}"
    status, pairs, version = _parse_head(head)
    return Reply(status, pairs, body, version)


def dechunk(body: bytes) -> bytes:
    """The payload of an HTTP/1.1 chunked body."""
    payload = b""
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return payload
        payload, body = payload + body[:size], body[size + 2:]


def require_tool(name: str) -> str:
    """The path of a command-line client the test needs: missing, the test fails under CI=true and is skipped
    elsewhere (scripts/setup installs it)."""
    import shutil

    import pytest

    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (scripts/setup installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


# How each protocol label of the data-plane tests is spoken: (listener protocol, client).
PROTOCOLS = {
    "h1": ("http", "curl-h1"),  # HTTP/1.1 over plain TCP
    "h1-tls": ("https", "curl-h1"),  # HTTP/1.1 over TLS
    "h2": ("https", "curl-h2"),  # HTTP/2 over TLS (ALPN)
    "httpx-h2": ("https", "httpx-h2"),
    "nghttp": ("https", "nghttp"),
    "requests": ("http", "requests"),
}


class Site:
    """A running `server` with one listener (`scheme` on 127.0.0.1:`port`) and `client` to talk to it; HTTPS
    clients trust the server's internal root (`cacert`)."""

    def __init__(self, server: Velocity, protocol: str):
        self.server, self.protocol = server, protocol
        self.scheme, self.client = PROTOCOLS[protocol]
        self.port = server.https_port if self.scheme == "https" else server.http_port
        self.cacert = None
        if self.scheme == "https":
            root = server.api("GET", "/pki/ca/local").json()["root_certificate"]
            self.cacert = str(Path(server.data_dir) / "root.pem")
            Path(self.cacert).write_text(root)

    def url(self, target: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{target}"

    def request(self, target: str, method: str = "GET", headers: dict | None = None, client: str | None = None,
                timeout: float = 30) -> Reply:
        reply = http_request(client or self.client, self.url(target), method, headers, self.cacert, timeout)
        expected = "2" if (client or self.client) in ("curl-h2", "httpx-h2", "nghttp") else "1.1"
        assert reply.version == expected, f"{client or self.client} spoke HTTP/{reply.version}"
        return reply

    def get(self, target: str, **headers: str) -> Reply:
        """GET with headers given as keywords (underscores become dashes: If_None_Match=...)."""
        return self.request(target, headers={name.replace("_", "-"): value for name, value in headers.items()})

    def head(self, target: str, **headers: str) -> Reply:
        return self.request(target, "HEAD", {name.replace("_", "-"): value for name, value in headers.items()})

    def raw(self, target: str, method: str = "GET", headers: dict | None = None) -> Reply:
        """An HTTP/1.1 request sent byte for byte (no normalization of `target`), over TLS on HTTPS sites."""
        return raw_get(self.port, target, method, headers, tls=self.scheme == "https")


def site_with_routes(server: Velocity, routes: list, protocol: str = "h1", **extra) -> Site:
    """Starts `server` with one listener for `protocol` and one catch-all site running `routes`."""
    scheme = PROTOCOLS[protocol][0]
    port = free_port()
    if scheme == "https":
        server.https_port = port
    else:
        server.http_port = port
    config = {
        "listeners": [{"protocol": scheme, "address": f"127.0.0.1:{port}"}],
        "sites": [{"routes": routes}],
        **extra,
    }
    server.start(config)
    return Site(server, protocol)


# --- Upstream servers for reverse_proxy tests: real origins on threads of the test process. ---------------------

_BLOCK = os.urandom(1 << 20)


def stream_chunk(index: int, size: int = 1 << 20) -> bytes:
    """The `index`-th chunk of a reproducible stream: 1 MiB of random bytes, unique by its leading counter."""
    return (struct.pack(">Q", index) + _BLOCK[8:])[:size]


def stream_bytes(total: int, size: int = 1 << 20):
    """`total` bytes of the reproducible stream, in chunks of `size` (at most 1 MiB), made as they are asked for."""
    index, left = 0, total
    while left > 0:
        chunk = stream_chunk(index, min(size, left))
        index, left = index + 1, left - len(chunk)
        yield chunk


class Seen:
    """One request as an upstream received it: `method`, `target`, header pairs (name lowercased, in order),
    body length and SHA-256, trailer pairs of a chunked body, the number of the connection it came on, and when it
    arrived and was answered."""

    def __init__(self, method: str, target: str, headers: list[tuple[str, str]], connection: int):
        self.method, self.target, self.headers, self.connection = method, target, headers, connection
        self.body_bytes, self.body_sha256 = 0, hashlib.sha256().hexdigest()
        self.trailers: list[tuple[str, str]] = []
        self.started, self.finished = time.monotonic(), None

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key == name.lower()]
        return ", ".join(values) if values else None

    def __repr__(self) -> str:
        return f"Seen({self.method} {self.target} conn={self.connection} {self.headers})"


class _UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    timeout = 120

    def log_message(self, *args) -> None:  # quiet, and unix sockets have no client address to print
        pass

    def setup(self) -> None:
        super().setup()
        if self.connection.family != socket.AF_UNIX:  # headers and body leave as separate writes: no Nagle delay
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream: Upstream = self.server.upstream
        with upstream.lock:
            upstream.connections += 1
            self.number = upstream.connections
            upstream.open[self.connection] = "idle"

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.upstream.lock:
                self.server.upstream.open.pop(self.connection, None)

    def parse_request(self) -> bool:
        with self.server.upstream.lock:
            self.server.upstream.open[self.connection] = "busy"
        return super().parse_request()

    def _read_body(self, seen: Seen) -> None:
        digest, total = hashlib.sha256(), 0
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
                if size == 0:
                    while (line := self.rfile.readline(8192)) not in (b"\r\n", b"\n", b""):
                        name, _, value = line.decode("latin-1").partition(":")
                        seen.trailers.append((name.strip().lower(), value.strip()))
                    break
                left = size
                while left:
                    data = self.rfile.read(min(left, 1 << 20))
                    if not data:
                        raise ConnectionError("the body ended early")
                    digest.update(data)
                    total, left = total + len(data), left - len(data)
                self.rfile.readline(8)
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                data = self.rfile.read(min(left, 1 << 20))
                if not data:
                    raise ConnectionError("the body ended early")
                digest.update(data)
                total, left = total + len(data), left - len(data)
        seen.body_bytes, seen.body_sha256 = total, digest.hexdigest()

    def _answer(self) -> None:
        upstream: Upstream = self.server.upstream
        pairs = [(name.lower(), value) for name, value in self.headers.items()]
        seen = Seen(self.command, self.path, pairs, self.number)
        with upstream.lock:
            upstream.seen.append(seen)
            upstream.in_flight += 1
            upstream.max_in_flight = max(upstream.max_in_flight, upstream.in_flight)
        try:
            if urlsplit(self.path).path.rsplit("/", 1)[-1] == "read-later":
                time.sleep(2)  # reads nothing for a while, so that what Velocity sends backs up
            self._read_body(seen)
            if upstream.reset_after_body and self.command in upstream.reset_after_body:
                # Read the whole body, then reset the connection: no response at all.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            self._respond(seen)
        finally:
            seen.finished = time.monotonic()
            with upstream.lock:
                upstream.in_flight -= 1
                if upstream.stopped:
                    self.close_connection = True
                else:
                    upstream.open[self.connection] = "idle"

    def _head(self, status: int, headers: list[tuple[str, str]]) -> None:
        upstream: Upstream = self.server.upstream
        self.send_response(status)
        self.send_header("X-Upstream", upstream.name)
        for name, value in headers:
            self.send_header(name, value)
        if upstream.stopped:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def _respond(self, seen: Seen) -> None:
        upstream: Upstream = self.server.upstream
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        segments = url.path.split("/")
        leaf = segments[-1]  # what to do is named by the last segment: /hold, /api/hold and /x/y/hold alike
        delay = float(query.get("ms", 0)) / 1000 if leaf == "slow" else upstream.delay
        if delay:
            time.sleep(delay)
        if leaf == "hold":
            upstream.held.release()
            upstream.release_event.wait(30)
        if leaf == "big":
            total = int(query["bytes"])
            self._head(200, [("Content-Type", "application/octet-stream"), ("Content-Length", str(total))])
            digest = hashlib.sha256()
            for chunk in stream_bytes(total):
                digest.update(chunk)
                self.wfile.write(chunk)
            upstream.sent_sha256 = digest.hexdigest()
            return
        if leaf == "sse":
            self._head(200, [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"),
                             ("Transfer-Encoding", "chunked")])
            for index in range(int(query.get("events", 10))):
                if index:
                    time.sleep(int(query.get("ms", 200)) / 1000)
                event = f"id: {index}\ndata: {time.time():.6f}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        if leaf == "hop":
            body = b"hop-by-hop response\n"
            # The framing is chunked (a hop-by-hop header the proxy must re-frame), in two chunks.
            self._head(200, [
                ("Connection", "X-Resp-Hop, Keep-Alive"), ("X-Resp-Hop", "must not pass"),
                ("Keep-Alive", "timeout=5, max=100"), ("Proxy-Connection", "keep-alive"),
                ("Trailer", "X-Never-Sent"), ("Upgrade", "example/1"), ("Transfer-Encoding", "chunked"),
                ("Via", "1.1 backend"), ("X-End-To-End", "kept"), ("X-Powered-By", "python"),
            ])
            self.wfile.write(b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (5, body[:5], len(body) - 5, body[5:]))
            return
        status = upstream.status
        if len(segments) >= 2 and segments[-2] == "status" and leaf.isdigit():
            status = int(leaf)
        body = json.dumps({
            "upstream": upstream.name, "method": seen.method, "target": seen.target, "headers": seen.headers,
            "body_bytes": seen.body_bytes, "body_sha256": seen.body_sha256,
        }).encode()
        if self.command == "HEAD":
            body = b""
        self._head(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            ("X-Powered-By", "python"), *upstream.extra_headers])
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _answer


class _TCPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def server_bind(self) -> None:  # no reverse DNS lookup of 127.0.0.1
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 128


class Upstream:
    """A real HTTP/1.1 origin with keep-alive (http.server on threads) on 127.0.0.1 (`unix` False) or on a unix
    socket in `directory`. `dial` is its address in a reverse_proxy config. It records every request in `seen`
    (see `Seen`), counts the connections it accepted (`connections`) and the requests in flight, and answers:

    What to do is named by the last path segment (/hold, /api/hold); the others:
      /slow?ms=N   after N ms;   /hold   once `release()` is called (`wait_held(n)` waits for n of them)
      /status/N    with status N;   /big?bytes=N   N bytes of `stream_bytes` (Content-Length), digest in `sent_sha256`
      /sse?events=N&ms=M   N Server-Sent Events M ms apart, each flushed, each carrying its time.time() of sending
      /hop         a chunked response carrying hop-by-hop headers (Connection, Keep-Alive, Upgrade, ...)
      anything else: a JSON echo of what it saw (upstream, method, target, header pairs, body length and sha256)

    Every response names it in X-Upstream. `status`, `delay` (seconds), `extra_headers` and `reset_after_body` (a set
    of methods whose body is read, then the connection reset) change how it answers."""

    def __init__(self, name: str, unix: bool = False, directory: str | None = None):
        self.name = name
        self.lock = threading.Lock()
        self.seen: list[Seen] = []
        self.connections = 0
        self.in_flight = self.max_in_flight = 0
        self.open: dict = {}
        self.stopped = False
        self.status, self.delay, self.extra_headers = 200, 0.0, []
        self.reset_after_body: set[str] = set()
        self.sent_sha256 = None
        self.held = threading.Semaphore(0)
        self.release_event = threading.Event()
        if unix:
            self.path = os.path.join(directory or tempfile.mkdtemp(prefix="velocity-upstream-"), f"{name}.sock")
            self.server = _UnixServer(self.path, _UpstreamHandler)
            self.dial = f"unix:{self.path}"
        else:
            self.server = _TCPServer(("127.0.0.1", 0), _UpstreamHandler)
            self.port = self.server.server_address[1]
            self.dial = f"127.0.0.1:{self.port}"
        self.server.upstream = self
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def count(self) -> int:
        """How many requests reached it."""
        with self.lock:
            return len(self.seen)

    def requests(self, method: str | None = None) -> list[Seen]:
        with self.lock:
            return [seen for seen in self.seen if method is None or seen.method == method]

    def wait_held(self, count: int = 1, timeout: float = 10) -> None:
        """Waits until `count` more /hold requests have arrived."""
        for _ in range(count):
            assert self.held.acquire(timeout=timeout), f"{self.name}: no /hold request arrived"

    def release(self) -> None:
        self.release_event.set()

    def restart(self) -> None:
        """Comes back on the same TCP port after `stop`."""
        self.server = _TCPServer(("127.0.0.1", self.port), _UpstreamHandler)
        self.server.upstream = self
        with self.lock:
            self.stopped = False
        self.release_event.clear()
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Goes away like a server shutting down: the listener closes (dials are refused from now on), idle
        keep-alive connections are closed, and a request in flight is answered with `Connection: close`."""
        with self.lock:
            if self.stopped:
                return
            self.stopped = True
        self.release_event.set()
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            idle = [conn for conn, state in self.open.items() if state == "idle"]
        for conn in idle:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.stop()
        with self.lock:
            every = list(self.open)
        for conn in every:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"Upstream({self.name}, {self.dial}, {self.count} requests, {self.connections} connections)"


class RawUpstream:
    """A TCP listener speaking bytes, not HTTP, for failures no real server makes. Per connection it reads one
    request head at a time; `answer(target)` returns the bytes to send and whether to close afterwards (None:
    close at once without a byte). `accepted` counts connections, `targets` the request targets read."""

    def __init__(self, answer):
        self.answer = answer
        self.accepted = 0
        self.targets: list[str] = []
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.dial = f"127.0.0.1:{self.port}"
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                target = head.split(b"\r\n")[0].split(b" ")[1].decode("latin-1")
                with self.lock:
                    self.targets.append(target)
                reply = self.answer(target)
                if reply is None:
                    return
                data, close = reply
                conn.sendall(data)
                if close:
                    return
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()


def vm_rss(pid: int) -> int:
    """The process's resident set size (VmRSS), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/status")

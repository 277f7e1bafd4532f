"""Starts real `velocity run` processes on free loopback ports with their own SQLite data directories."""

import datetime
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

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
        """A leaf for the DNS `names`: (certificate PEM, private key PEM)."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        certificate = (
            self._builder(subject, self.certificate.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
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

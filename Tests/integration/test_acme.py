"""ACME against a real pebble (Let's Encrypt's test CA) on loopback: issuance through HTTP-01 alone and through
TLS-ALPN-01 alone, the chain checked against pebble's root and served on TCP and QUIC; what a client sees for a
name whose certificate is pending; a commit that returns while its CA hangs; 20 issuances through pebble's 5%
refused nonces; and renewal of short-lived certificates while a connection stays open."""

import base64
import datetime
import http.client
import json
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp

from h3_clients import aioquic_get
from pebble import Pebble, require_pebble
from velocity import LocalCA, cli, curl, free_port

EMAIL = "ops@velocity.test"


@pytest.fixture
def ports():
    """The HTTP and HTTPS (and QUIC) ports Velocity listens on, chosen before pebble, whose validator uses them."""
    return free_port(), free_port()


@pytest.fixture
def make_pebble(tmp_path_factory, ports):
    require_pebble()
    made: list[Pebble] = []

    def make(**kwargs) -> Pebble:
        made.append(Pebble(tmp_path_factory.mktemp("pebble"), *ports, **kwargs).start())
        return made[-1]

    yield make
    for instance in made:
        instance.stop()


def policy(ca: str, api_ca: str, http_port: int | None, tls_port: int | None) -> dict:
    """An acme policy for `ca` that may use HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port` (None: off)."""
    challenges = {
        "http_01": {"alternate_port": http_port} if http_port else {"enabled": False},
        "tls_alpn_01": {"alternate_port": tls_port} if tls_port else {"enabled": False},
    }
    return {
        "issuer": "acme", "ca": ca, "email": EMAIL, "accept_terms": True, "trusted_roots_file": api_ca,
        "challenges": challenges,
    }


def acme_config(ports, hosts: list[str], acme_policy: dict, quic: bool = False) -> dict:
    http_port, https_port = ports
    listeners = [
        {"protocol": "http", "address": f"127.0.0.1:{http_port}"},
        {"protocol": "https", "address": f"127.0.0.1:{https_port}"},
    ]
    if quic:
        listeners.append({"protocol": "quic", "address": f"127.0.0.1:{https_port}"})
    sites = [
        {"hosts": [host], "routes": [{"handle": [{"handler": "static_response", "body": f"{host}\n"}]}]}
        for host in hosts
    ]
    sites.append({"routes": [{"handle": [{"handler": "static_response", "body": "fallback\n"}]}]})
    return {"listeners": listeners, "sites": sites, "tls": {"automation": {"policies": [acme_policy]}}}


def managed(server, name: str) -> dict:
    entries = [entry for entry in server.api("GET", "/certificates").json() if entry.get("managed")]
    return next(entry for entry in entries if entry["names"] == [name])


def wait_valid(server, names: list[str], timeout: float = 90, after: str | None = None) -> dict[str, dict]:
    """Waits until every name's state is valid (and, given `after`, its not_after is past that one)."""
    deadline = time.monotonic() + timeout
    while True:
        entries = {name: managed(server, name) for name in names}
        if all(entry["state"] == "valid" and (after is None or entry["not_after"] > after) for entry in entries.values()):
            return entries
        assert time.monotonic() < deadline, f"not issued in {timeout} s: {entries}\n{server.log()[-3000:]}"
        time.sleep(0.2)


def fetch(host: str, port: int, root: str) -> str:
    """GET https://host:port/ over TCP, resolved to 127.0.0.1, verified against `root` alone."""
    result = curl("--resolve", f"{host}:{port}:127.0.0.1", "--cacert", root, f"https://{host}:{port}/")
    assert result.returncode == 0, result.stderr
    return result.stdout


def leaf(host: str, port: int, root: str) -> tuple[bytes, ssl.SSLSocket]:
    """A verified TLS connection's leaf certificate (DER) and the connection, left open."""
    context = ssl.create_default_context(cafile=root)
    sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname=host)
    return sock.getpeercert(binary_form=True), sock


@pytest.mark.parametrize("challenge", ["http-01", "tls-alpn-01"])
def test_issuance_with_one_challenge_verifies_against_pebbles_root_on_tcp_and_quic(
    make_velocity, make_pebble, ports, tmp_path, challenge
):
    pebble = make_pebble()
    http_port, https_port = ports
    host = "shop.velocity.test"
    chosen = policy(
        pebble.directory, pebble.api_ca, http_port if challenge == "http-01" else None,
        https_port if challenge == "tls-alpn-01" else None,
    )
    server = make_velocity().start(acme_config(ports, [host], chosen, quic=True))
    entry = wait_valid(server, [host])[host]
    assert entry["ca"] == pebble.directory
    assert "Pebble Intermediate CA" in entry["issuer"]
    assert entry["last_error"] is None and entry["next_attempt"] <= entry["renewal_at"] < entry["not_after"]

    root = tmp_path / "pebble-root.pem"
    root.write_text(pebble.roots_pem().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
    assert fetch(host, https_port, str(root)) == f"{host}\n"
    reply = aioquic_get(f"https://127.0.0.1:{https_port}/", str(root), server_name=host)
    assert reply.status == 200 and reply.protocol == "h3"
    # Plain HTTP now redirects the name to HTTPS.
    redirect = curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H", f"Host: {host}",
                    f"http://127.0.0.1:{http_port}/")
    assert redirect.stdout == f"308 https://{host}:{https_port}/"
    # The challenge answers are gone once the order is done; keys are only in the store, never in the log.
    with sqlite3.connect(server.database) as database:
        namespaces = dict(database.execute("SELECT namespace, count(*) FROM records GROUP BY namespace").fetchall())
    assert "acme-challenges" not in namespaces and namespaces["certificates"] == 1
    assert "PRIVATE KEY" not in server.log()


class HangingCA:
    """A TCP server that accepts connections and never answers, until `release()` closes them."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)

    def release(self):
        self.listener.close()
        for connection in self.connections:
            connection.close()


def test_a_pending_name_is_refused_on_tls_explained_on_http_and_never_blocks_the_commit(
    make_velocity, make_pebble, ports, tmp_path
):
    pebble = make_pebble()
    http_port, https_port = ports
    hanging = HangingCA()
    stuck = policy(f"https://127.0.0.1:{hanging.port}/dir", pebble.api_ca, http_port, None)
    server = make_velocity().start(acme_config(ports, [], stuck))
    host = "new.velocity.test"

    started = time.monotonic()
    response = server.api(
        "PUT", "/config/sites/0",
        {"hosts": [host], "routes": [{"handle": [{"handler": "static_response", "body": "new\n"}]}]},
    )
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 5
    entry = managed(server, host)
    assert entry["state"] == "pending" and entry["next_attempt"] is None  # an attempt is under way

    # TLS: unrecognized_name, not the internal CA's certificate.
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        with context.wrap_socket(socket.create_connection(("127.0.0.1", https_port), timeout=5), server_hostname=host):
            pass
    # HTTP: 503 that says so, instead of the site in plaintext.
    detailed = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
    detailed.request("GET", "/", headers={"Host": host})
    reply = detailed.getresponse()
    assert (reply.status, reply.getheader("Retry-After")) == (503, "30")
    assert reply.read().decode().startswith(f"certificate pending: Velocity is obtaining a certificate for {host}")

    hanging.release()
    deadline = time.monotonic() + 40
    while (entry := managed(server, host))["state"] != "error":
        assert time.monotonic() < deadline, entry
        time.sleep(0.2)
    assert f"127.0.0.1:{hanging.port}" in entry["last_error"]
    assert entry["next_attempt"] is not None

    # Pointing the policy at a working CA retries at once.
    fixed = server.api("PATCH", "/config/tls/automation/policies/0/ca", pebble.directory)
    assert fixed.status_code == 200, fixed.text
    wait_valid(server, [host], timeout=60)
    root = tmp_path / "pebble-roots.pem"
    root.write_text(pebble.roots_pem())
    assert fetch(host, https_port, str(root)) == "new\n"


def test_twenty_issuances_succeed_through_refused_nonces(make_velocity, make_pebble, ports):
    pebble = make_pebble(nonce_reject=5)
    http_port, https_port = ports
    hosts = [f"site{index}.velocity.test" for index in range(20)]
    server = make_velocity().start(acme_config(ports, hosts, policy(pebble.directory, pebble.api_ca, http_port, https_port)))
    wait_valid(server, hosts, timeout=240)


def test_a_short_lived_certificate_is_renewed_and_swapped_under_an_open_connection(
    make_velocity, make_pebble, ports, tmp_path
):
    pebble = make_pebble(validity=45)
    http_port, https_port = ports
    host = "renew.velocity.test"
    server = make_velocity().start(acme_config(ports, [host], policy(pebble.directory, pebble.api_ca, http_port, None)))
    first = wait_valid(server, [host])[host]
    root = tmp_path / "pebble-roots.pem"
    root.write_text(pebble.roots_pem())
    old_leaf, held = leaf(host, https_port, str(root))
    held.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    assert held.recv(4096).endswith(f"{host}\n".encode())

    renewed = wait_valid(server, [host], timeout=60, after=first["not_after"])[host]
    assert renewed["renewal_at"] > first["renewal_at"]
    new_leaf, fresh = leaf(host, https_port, str(root))
    fresh.close()
    assert new_leaf != old_leaf
    # The connection opened under the old certificate still serves.
    held.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    assert held.recv(4096).endswith(f"{host}\n".encode())
    held.close()


def test_when_the_ca_is_gone_at_renewal_the_old_certificate_keeps_serving_and_the_status_says_why(
    make_velocity, make_pebble, ports, tmp_path
):
    pebble = make_pebble(validity=45)
    http_port, https_port = ports
    host = "steady.velocity.test"
    server = make_velocity().start(acme_config(ports, [host], policy(pebble.directory, pebble.api_ca, http_port, None)))
    first = wait_valid(server, [host])[host]
    root = tmp_path / "pebble-roots.pem"
    root.write_text(pebble.roots_pem())
    served, connection = leaf(host, https_port, str(root))
    connection.close()
    pebble.stop()

    deadline = time.monotonic() + 60
    while (entry := managed(server, host))["last_error"] is None:
        assert time.monotonic() < deadline, entry
        time.sleep(0.5)
    assert entry["state"] == "valid" and entry["not_after"] == first["not_after"]
    assert f"127.0.0.1:{pebble.acme_port}" in entry["last_error"]
    assert entry["next_attempt"] > entry["renewal_at"]  # backing off, not retrying at once
    assert leaf(host, https_port, str(root))[0] == served



def test_a_restart_serves_the_stored_certificate_at_once_without_a_new_order(make_velocity, make_pebble, ports, tmp_path):
    pebble = make_pebble(nonce_reject=0)  # pebble logs each retried POST: orders are counted from its log
    host = "kept.velocity.test"
    server = make_velocity().start(acme_config(ports, [host], policy(pebble.directory, pebble.api_ca, ports[0], None)))
    first = wait_valid(server, [host])[host]
    root = tmp_path / "pebble-roots.pem"
    root.write_text(pebble.roots_pem())
    served, connection = leaf(host, ports[1], str(root))
    connection.close()
    assert server.stop() == 0

    server.start()
    assert leaf(host, ports[1], str(root))[0] == served
    assert managed(server, host)["not_after"] == first["not_after"]
    assert pebble.log().count("POST /finalize-order") == 1

    table = cli("certs", "--admin", server.admin_address)
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith(host))
    assert row.split()[1:3] == ["valid", first["not_after"]]
    expiry = datetime.datetime.fromisoformat(first["not_after"].replace("Z", "+00:00")).timestamp()
    metric = f'velocity_certificate_not_after_seconds{{name="{host}"}} {int(expiry)}'
    assert metric in server.api("GET", "/metrics").text.splitlines()


class RenewalInfoDirectory:
    """Pebble 2.4 offers no ARI (RFC 9773): this HTTPS server hands out pebble's directory with a `renewalInfo`
    URL of its own added, and answers renewal-info requests with `window(certificate_id)`; every other request
    goes to pebble itself, by the URLs the directory lists."""

    def __init__(self, pebble: Pebble, workdir, window):
        self.pebble, self.window, self.asked = pebble, window, []
        ca = LocalCA("renewal info test CA")
        certificate, key = ca.issue("127.0.0.1")
        (workdir / "ari.pem").write_text(certificate + key)
        self.roots = workdir / "ari-roots.pem"
        self.roots.write_text(Path(pebble.api_ca).read_text() + ca.pem)
        directory = requests.get(pebble.directory, verify=pebble.api_ca, timeout=5).json()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/dir":
                    body = {**directory, "renewalInfo": f"https://127.0.0.1:{owner.port}/renewal-info/"}
                    headers = {}
                else:
                    certificate_id = self.path.rsplit("/", 1)[-1]
                    owner.asked.append(certificate_id)
                    start, end = owner.window(certificate_id)
                    body = {"suggestedWindow": {"start": start.isoformat(), "end": end.isoformat()}}
                    headers = {"Retry-After": "60"}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(workdir / "ari.pem")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def renewal_info_id(der: bytes) -> str:
    """RFC 9773 §4.1, computed here independently of Velocity."""
    certificate = x509.load_der_x509_certificate(der)
    key_id = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    serial = certificate.serial_number.to_bytes((certificate.serial_number.bit_length() + 8) // 8, "big")
    encode = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()  # noqa: E731
    return f"{encode(key_id)}.{encode(serial)}"


def test_a_renewal_window_in_the_past_renews_at_once_and_the_next_window_is_followed(
    make_velocity, make_pebble, ports, tmp_path
):
    pebble = make_pebble(nonce_reject=0)  # pebble logs each retried POST: orders are counted from its log
    host = "ari.velocity.test"
    now = datetime.datetime.now(datetime.timezone.utc)
    first_id: list[str] = []

    def window(certificate_id):
        if not first_id or certificate_id == first_id[0]:  # the CA wants the first certificate replaced now
            first_id[:1] = [certificate_id]
            return now - datetime.timedelta(hours=2), now - datetime.timedelta(hours=1)
        return now + datetime.timedelta(days=30), now + datetime.timedelta(days=31)

    ari = RenewalInfoDirectory(pebble, tmp_path, window)
    try:
        server = make_velocity().start(acme_config(ports, [host], policy(ari.directory, str(ari.roots), ports[0], None)))
        root = tmp_path / "pebble-roots.pem"
        deadline = time.monotonic() + 60
        while len(ari.asked) < 2 or managed(server, host)["renewal_window"] is None:
            assert time.monotonic() < deadline, (ari.asked, managed(server, host), server.log()[-2000:])
            time.sleep(0.2)
        root.write_text(pebble.roots_pem())
        served, connection = leaf(host, ports[1], str(root))
        connection.close()
        entry = managed(server, host)
        assert entry["state"] == "valid"
        assert pebble.log().count("POST /finalize-order") == 2  # renewed at once, not after two thirds of 5 years
        assert ari.asked[0] == first_id[0] != renewal_info_id(served) == ari.asked[-1]
        assert entry["renewal_window"]["start"][:10] == (now + datetime.timedelta(days=30)).date().isoformat()
        assert entry["renewal_window"]["start"] <= entry["renewal_at"] <= entry["renewal_window"]["end"]
    finally:
        ari.close()


class OCSPResponder:
    """A loopback OCSP responder (RFC 6960 over HTTP POST) that answers for pebble's intermediate, signing with
    its key: `good` for every certificate, or `revoked` once `revoke_all` is set."""

    def __init__(self):
        self.revoke_all, self.requests = False, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                request = ocsp.load_der_ocsp_request(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests += 1
                body = owner.answer(request)
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self, pebble: Pebble) -> "OCSPResponder":
        certificate, key = pebble.issuer()
        self.issuer = x509.load_pem_x509_certificate(certificate.encode())
        self.key = serialization.load_pem_private_key(key.encode(), None)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def answer(self, request) -> bytes:
        now = datetime.datetime.now(datetime.timezone.utc)
        status = ocsp.OCSPCertStatus.REVOKED if self.revoke_all else ocsp.OCSPCertStatus.GOOD
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash, issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number, algorithm=request.hash_algorithm, cert_status=status,
            this_update=now - datetime.timedelta(minutes=1), next_update=now + datetime.timedelta(hours=1),
            revocation_time=now - datetime.timedelta(minutes=5) if self.revoke_all else None,
            revocation_reason=None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, self.issuer)
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def stapled_status(host: str, port: int) -> str:
    """What `openssl s_client -status` reports of the stapled OCSP response."""
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", host, "-status"],
        input="", capture_output=True, text=True, timeout=20,
    )
    return result.stdout


@pytest.mark.parametrize("revoked", [False, True], ids=["good", "revoked"])
def test_a_good_ocsp_response_is_stapled_and_a_revoked_one_never(make_velocity, make_pebble, ports, revoked):
    responder = OCSPResponder()
    responder.revoke_all = revoked
    pebble = make_pebble(ocsp_url=responder.url)
    responder.start(pebble)
    host = "stapled.velocity.test"
    try:
        server = make_velocity().start(acme_config(ports, [host], policy(pebble.directory, pebble.api_ca, ports[0], None)))
        wait_valid(server, [host])
        deadline = time.monotonic() + 30
        while (entry := managed(server, host))["ocsp"] is None:
            assert time.monotonic() < deadline, (entry, server.log()[-2000:])
            time.sleep(0.2)
        report = stapled_status(host, ports[1])
        if revoked:
            assert entry["ocsp"].startswith("not stapled: revoked") and entry["ocsp_next_update"] is None, entry
            assert "OCSP response: no response sent" in report
        else:
            assert entry["ocsp"] == "good" and entry["ocsp_next_update"] is not None, entry
            assert "OCSP Response Status: successful" in report and "Cert Status: good" in report, report
        assert responder.requests >= 1
    finally:
        responder.close()


def test_key_type_rsa_2048_gets_an_rsa_certificate(make_velocity, make_pebble, ports, tmp_path):
    pebble = make_pebble()
    host = "rsa.velocity.test"
    server = make_velocity().start(
        acme_config(ports, [host], {**policy(pebble.directory, pebble.api_ca, ports[0], None), "key_type": "RSA-2048"})
    )
    wait_valid(server, [host])
    root = tmp_path / "pebble-roots.pem"
    root.write_text(pebble.roots_pem())
    der, connection = leaf(host, ports[1], str(root))
    connection.close()
    key = x509.load_der_x509_certificate(der).public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048

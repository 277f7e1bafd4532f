"""HTTPS on TCP with real clients: post-quantum key exchange (pyOpenSSL over OpenSSL 4), HTTP/1.1 and HTTP/2 by
ALPN (curl, httpx), the internal CA's root, certificates chosen by SNI, bad certificate config, TLS garbage,
and config swaps under an open HTTP/2 connection."""

import os
import select
import socket
import ssl
import threading
import time
from contextlib import contextmanager

import httpx
import pytest
from OpenSSL import SSL
from OpenSSL._util import lib

from velocity import LocalCA, cli, curl, free_port, https_config

BODY = "secure\n"
BODY_POINTER = "/config/sites/0/routes/0/handle/0/body"


@pytest.fixture
def https(make_velocity, tmp_path):
    """A server answering BODY over HTTPS on 127.0.0.1 and [::1] at `https_port`; `tmp_path / "root.pem"` is its
    internal root, as `velocity ca export` prints it."""
    server = make_velocity()
    server.https_port = free_port()
    server.start(https_config(server.https_port, BODY))
    (tmp_path / "root.pem").write_text(exported_root(server))
    return server


def exported_root(server) -> str:
    result = cli("ca", "export", "--data-dir", server.data_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("-----BEGIN CERTIFICATE-----"), result.stdout
    return result.stdout


def site(host: str, body: str) -> dict:
    return {"hosts": [host], "routes": [{"handle": [{"handler": "static_response", "body": body}]}]}


def fetch(url: str, *args: str) -> tuple[str, str]:
    """GET `url` with curl: (body, HTTP version)."""
    result = curl("-w", "\n%{http_version}", *args, url)
    assert result.returncode == 0, f"{url}: {result.stderr}"
    body, version = result.stdout.rsplit("\n", 1)
    return body, version


@contextmanager
def tls_session(
    port: int, ca: str, server_name: bytes = b"localhost", groups: bytes | None = None, on_ocsp=None
):
    """A completed handshake by pyOpenSSL (OpenSSL 4, which offers X25519MLKEM768) that verifies the server's
    chain against `ca` and, given `groups`, offers only those key-exchange groups; given `on_ocsp`, asks for
    the certificate's status and hands the stapled response to it."""
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_verify(SSL.VERIFY_PEER)
    context.load_verify_locations(ca)
    if groups:  # pyOpenSSL 26 has no set_groups; curves_list is OpenSSL's alias of groups_list
        assert lib.SSL_CTX_set1_curves_list(context._context, groups) == 1
    if on_ocsp:
        context.set_ocsp_client_callback(lambda connection, response, data: on_ocsp(response) or True)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setblocking(False)
        connection = SSL.Connection(context, sock)
        connection.set_tlsext_host_name(server_name)
        if on_ocsp:
            connection.request_ocsp()
        connection.set_connect_state()
        deadline = time.monotonic() + 5
        while True:
            try:
                connection.do_handshake()
                break
            except SSL.WantReadError:
                if not select.select([sock], [], [], max(0.0, deadline - time.monotonic()))[0]:
                    raise TimeoutError("the TLS handshake stalled") from None
        yield connection


def issuer_of(connection: SSL.Connection) -> str:
    return connection.get_peer_certificate().to_cryptography().issuer.rfc4514_string()


@pytest.mark.parametrize(
    "groups, negotiated",
    [(None, "X25519MLKEM768"), (b"X25519MLKEM768", "X25519MLKEM768"), (b"X25519", "x25519")],
    ids=["client-defaults", "only-X25519MLKEM768", "only-X25519"],
)
def test_key_exchange_group(https, tmp_path, groups, negotiated):
    with tls_session(https.https_port, str(tmp_path / "root.pem"), groups=groups) as connection:
        assert connection.get_group_name() == negotiated  # OpenSSL spells X25519's name "x25519"
        assert connection.get_protocol_version_name() == "TLSv1.3"


def test_group_the_server_does_not_offer_is_refused(https, tmp_path):
    root = str(tmp_path / "root.pem")
    with pytest.raises(SSL.Error, match="handshake failure"):
        with tls_session(https.https_port, root, groups=b"P-384"):
            pass
    with tls_session(https.https_port, root) as connection:
        assert connection.get_group_name() == "X25519MLKEM768"


def test_curl_http1_and_http2_trust_the_exported_root(https, tmp_path):
    root = str(tmp_path / "root.pem")
    port = https.https_port
    for url in [f"https://localhost:{port}/", f"https://127.0.0.1:{port}/", f"https://[::1]:{port}/"]:
        assert fetch(url, "--cacert", root, "--http2") == (BODY, "2")
        assert fetch(url, "--cacert", root, "--http1.1") == (BODY, "1.1")


def test_root_is_served_by_the_api_and_survives_a_restart(https, tmp_path):
    root = (tmp_path / "root.pem").read_text()
    response = https.api("GET", "/pki/ca/local")
    assert response.status_code == 200, response.text
    assert response.json()["root_certificate"] == root
    https.stop()
    https.start()
    assert exported_root(https) == root
    assert fetch(f"https://localhost:{https.https_port}/", "--cacert", str(tmp_path / "root.pem"))[0] == BODY


def test_configured_certificates_are_chosen_by_sni(make_velocity, tmp_path):
    ca_a, ca_b = LocalCA("Test CA A"), LocalCA("Test CA B")
    certificate_a, key_a = ca_a.issue("a.example")
    certificate_b, key_b = ca_b.issue("*.b.example")
    for name, text in [("a.pem", ca_a.pem), ("b.pem", ca_b.pem), ("b.crt", certificate_b), ("b.key", key_b)]:
        (tmp_path / name).write_text(text)
    server = make_velocity()
    server.https_port = free_port()
    config = https_config(server.https_port, BODY)
    config["sites"] = [site("a.example", "site A\n"), site("*.b.example", "site B\n"), *config["sites"]]
    config["tls"] = {
        "certificates": [
            {"certificate_pem": certificate_a, "key_pem": key_a},
            {"certificate_file": str(tmp_path / "b.crt"), "key_file": str(tmp_path / "b.key")},
        ]
    }
    server.start(config)
    port = server.https_port
    for host, ca, body in [("a.example", "a.pem", "site A\n"), ("x.b.example", "b.pem", "site B\n")]:
        resolve = f"{host}:{port}:127.0.0.1"
        assert fetch(f"https://{host}:{port}/", "--resolve", resolve, "--cacert", str(tmp_path / ca))[0] == body
    (tmp_path / "root.pem").write_text(exported_root(server))
    with tls_session(port, str(tmp_path / "root.pem"), server_name=b"unknown.example") as connection:
        assert "Velocity Local Authority" in issuer_of(connection)
    listed = [certificate["names"] for certificate in server.api("GET", "/certificates").json()]
    assert ["a.example"] in listed and ["*.b.example"] in listed


def bad_certificates(directory) -> dict[str, tuple[dict, str]]:
    """Certificate entries that must be refused, each with the JSON pointer its error must name (as the second
    entry of `tls.certificates`)."""
    certificate, key = LocalCA("Test CA").issue("a.example")
    _, other_key = LocalCA("Other CA").issue("a.example")
    (directory / "a.crt").write_text(certificate)
    return {
        "garbage-pem": ({"certificate_pem": "not a certificate", "key_pem": "not a key"}, "/tls/certificates/1"),
        "mismatched-key": ({"certificate_pem": certificate, "key_pem": other_key}, "/tls/certificates/1"),
        "missing-certificate-file": (
            {"certificate_file": str(directory / "missing.crt"), "key_file": str(directory / "a.crt")},
            "/tls/certificates/1/certificate_file",
        ),
        "directory-as-key-file": (
            {"certificate_file": str(directory / "a.crt"), "key_file": str(directory)},
            "/tls/certificates/1/key_file",
        ),
    }


@pytest.mark.parametrize("case", ["garbage-pem", "mismatched-key", "missing-certificate-file", "directory-as-key-file"])
def test_bad_certificate_is_refused_and_changes_nothing(https, tmp_path, case):
    entry, pointer = bad_certificates(tmp_path)[case]
    good_certificate, good_key = LocalCA("Good CA").issue("good.example")
    before = https.config(), len(https.revisions())
    response = https.api(
        "POST", "/config/tls", {"certificates": [{"certificate_pem": good_certificate, "key_pem": good_key}, entry]}
    )
    assert response.status_code == 400, response.text
    assert response.json()["pointer"] == pointer
    assert (https.config(), len(https.revisions())) == before
    assert fetch(f"https://localhost:{https.https_port}/", "--cacert", str(tmp_path / "root.pem"))[0] == BODY


def test_bad_certificate_is_refused_without_an_https_listener(server):
    before = server.state()
    response = server.api("POST", "/config/tls", {"certificates": [{"certificate_pem": "x", "key_pem": "y"}]})
    assert response.status_code == 400, response.text
    assert response.json()["pointer"] == "/tls/certificates/0"
    assert server.state() == before


def test_tls_garbage_never_stalls_or_crashes_the_listener(https, tmp_path):
    port, root = https.https_port, str(tmp_path / "root.pem")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as stalled:
        stalled.sendall(bytes.fromhex("1603010200010001fc0303") + os.urandom(32))  # a ClientHello cut short
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(os.urandom(4096))
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            try:
                while sock.recv(4096):
                    pass  # a TLS alert at most, then the end of the stream
            except ConnectionResetError:
                pass
            except TimeoutError:
                pytest.fail("a plaintext request to the HTTPS port was left open")
        assert fetch(f"https://localhost:{port}/", "--cacert", root)[0] == BODY
    assert fetch(f"https://localhost:{port}/", "--cacert", root)[0] == BODY
    assert https.process.poll() is None, https.log()


def test_open_http2_connection_survives_50_commits_and_a_new_site_gets_its_certificate(https, tmp_path):
    ca = LocalCA("Test CA New")
    certificate, key = ca.issue("new.example")
    (tmp_path / "new.pem").write_text(ca.pem)
    add_site = [
        {"op": "add", "path": "/sites/-", "value": site("new.example", "new site\n")},
        {"op": "add", "path": "/tls", "value": {"certificates": [{"certificate_pem": certificate, "key_pem": key}]}},
    ]
    revisions, site_revision = range(2, 52), 27
    committed = {BODY} | {f"body {revision}\n" for revision in revisions if revision != site_revision}
    results: list = []  # (HTTP version, status, body, local address) per request, or the error
    stop = threading.Event()

    def client() -> None:
        context = ssl.create_default_context(cafile=str(tmp_path / "root.pem"))
        with httpx.Client(http2=True, verify=context, timeout=10) as h2:
            deadline = time.monotonic() + 30
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    response = h2.get(f"https://localhost:{https.https_port}/")
                    address = response.extensions["network_stream"].get_extra_info("client_addr")
                    results.append((response.http_version, response.status_code, response.text, address))
                except httpx.HTTPError as error:
                    results.append(repr(error))

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        while not results and thread.is_alive():
            time.sleep(0.01)
        for revision in revisions:
            if revision == site_revision:
                patch = {"Content-Type": "application/json-patch+json"}
                response = https.api("PATCH", "/config/", add_site, headers=patch)
            else:
                response = https.api("PATCH", BODY_POINTER, f"body {revision}\n")
            assert response.json() == {"status": "applied", "revision": revision}, response.text
        started = len(results)
        while len(results) < started + 5 and thread.is_alive():
            time.sleep(0.01)  # some requests after the last commit
    finally:
        stop.set()
        thread.join()
    failures = [result for result in results if not isinstance(result, tuple) or result[:2] != ("HTTP/2", 200)]
    assert not failures
    bodies = {body for _, _, body, _ in results}
    assert bodies <= committed
    assert len(bodies) > 10, "the requests did not overlap the commits"
    assert results[-1][2] == "body 51\n"
    assert len({address for *_, address in results}) == 1, "the HTTP/2 connection was re-opened"
    port = https.https_port
    resolve, ca = f"new.example:{port}:127.0.0.1", str(tmp_path / "new.pem")
    assert fetch(f"https://new.example:{port}/", "--resolve", resolve, "--cacert", ca)[0] == "new site\n"


def test_certificates_lists_the_internal_leaf(https):
    response = https.api("GET", "/certificates")
    assert response.status_code == 200, response.text
    internal = [entry for entry in response.json() if "Velocity Local Authority" in entry["issuer"]]
    assert len(internal) == 1, response.json()
    assert {"localhost", "127.0.0.1"} <= set(internal[0]["names"])

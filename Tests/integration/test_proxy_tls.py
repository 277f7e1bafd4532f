"""reverse_proxy to HTTPS upstreams: certificates verified against a configured CA for the configured name,
client certificates presented when the upstream asks, and TLS settings that cannot be loaded refused with the
pointer of their upstream."""

import http.server
import ssl
import threading

import pytest
import requests

from velocity import LocalCA, free_port, site_config


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        peer = self.connection.getpeercert()
        subject = dict(item[0] for item in peer["subject"]) if peer else {}
        body = f"tls upstream, client {subject.get('commonName', 'anonymous')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def tls_upstream(tmp_path):
    """An HTTPS upstream for `app.test`, signed by its own CA, that asks for (but does not require) a client
    certificate signed by the same CA."""
    ca = LocalCA("Upstream CA")
    certificate, key = ca.issue("app.test")
    client_certificate, client_key = ca.issue("velocity-client")
    for name, text in {
        "ca.pem": ca.pem, "up.pem": certificate, "up.key": key, "client.pem": client_certificate,
        "client.key": client_key,
    }.items():
        (tmp_path / name).write_text(text)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "up.pem", tmp_path / "up.key")
    context.load_verify_locations(tmp_path / "ca.pem")
    context.verify_mode = ssl.CERT_OPTIONAL
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], tmp_path
    server.shutdown()


def start(make_velocity, upstream_port: int, tls: dict):
    """A server proxying everything to the upstream with `tls`; returns it and its plain-HTTP URL."""
    http_port = free_port()
    config = site_config(http_port)
    config["sites"][0]["routes"] = [
        {
            "handle": [
                {
                    "handler": "reverse_proxy", "upstreams": [{"dial": f"127.0.0.1:{upstream_port}"}],
                    "transport": {"tls": tls},
                }
            ]
        }
    ]
    server = make_velocity()
    server.start(config)
    return server, f"http://127.0.0.1:{http_port}/"


def test_verified_tls_upstream_with_client_certificate(make_velocity, tls_upstream):
    port, files = tls_upstream
    server, url = start(make_velocity, port, {"ca_file": str(files / "ca.pem"), "server_name": "app.test"})
    assert requests.get(url, timeout=5).text == "tls upstream, client anonymous\n"

    tls = {
        "ca_file": str(files / "ca.pem"), "server_name": "app.test",
        "client_certificate_file": str(files / "client.pem"), "client_key_file": str(files / "client.key"),
    }
    assert server.api("PATCH", "/config/sites/0/routes/0/handle/0/transport/tls", tls).status_code == 200
    assert requests.get(url, timeout=5).text == "tls upstream, client velocity-client\n"


@pytest.mark.parametrize(
    "tls, cause",
    [
        ({"server_name": "app.test"}, "CERTIFICATE_VERIFY_FAILED"),  # the system's roots do not know the CA
        ({"ca_file": "CA", "server_name": "other.test"}, "failedToValidateHostname"),  # another name
    ],
)
def test_certificates_that_do_not_verify_are_502(make_velocity, tls_upstream, tls, cause):
    port, files = tls_upstream
    if tls.get("ca_file") == "CA":
        tls["ca_file"] = str(files / "ca.pem")
    server, url = start(make_velocity, port, tls)
    response = requests.get(url, timeout=5)
    assert response.status_code == 502, response.text
    log = server.log()
    assert "the upstream connection failed" in log and cause in log, log


def test_insecure_skip_verify_accepts_any_certificate(make_velocity, tls_upstream):
    port, _ = tls_upstream
    _, url = start(make_velocity, port, {"insecure_skip_verify": True})
    assert requests.get(url, timeout=5).status_code == 200


def test_tls_settings_that_cannot_load_are_refused_at_their_upstream(make_velocity, tls_upstream, tmp_path):
    port, _ = tls_upstream
    server, _ = start(make_velocity, port, {"insecure_skip_verify": True})
    before = server.revisions()
    response = server.api(
        "PATCH", "/config/sites/0/routes/0/handle/0/transport/tls",
        {"ca_file": str(tmp_path / "missing.pem"), "server_name": "app.test"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["pointer"] == "/sites/0/routes/0/handle/0/upstreams/0"
    assert server.revisions() == before
    response = server.api(
        "PATCH", "/config/sites/0/routes/0/handle/0/transport/tls", {"client_certificate_file": "/x.pem"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["pointer"] == "/sites/0/routes/0/handle/0/transport/tls"
    # An IP address gives no name to check the certificate against.
    response = server.api("PATCH", "/config/sites/0/routes/0/handle/0/transport/tls", {"ca_file": "/x.pem"})
    assert response.status_code == 400, response.text
    assert response.json()["pointer"] == "/sites/0/routes/0/handle/0/upstreams/0/dial"
    assert server.revisions() == before

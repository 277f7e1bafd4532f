"""TLS handshake settings from the config: key-exchange groups, session tickets (resumption across config
changes, keys shared by every TLS context), OCSP stapling from a file, and the acme-tls/1 hook refusing
challenge handshakes it has no certificate for."""

import datetime
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from OpenSSL import SSL

from test_https import exported_root, tls_session
from velocity import LocalCA, free_port, https_config


@pytest.fixture
def https(make_velocity, tmp_path):
    server = make_velocity()
    server.https_port = free_port()
    server.start(https_config(server.https_port, "tls\n"))
    server.root = str(tmp_path / "root.pem")
    (tmp_path / "root.pem").write_text(exported_root(server))
    return server


def fetch(context: ssl.SSLContext, port: int, session=None) -> tuple[ssl.SSLSession, bool]:
    """One HTTPS request with the stdlib client; returns the session (with its ticket) and whether it resumed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            response = b""
            while chunk := tls.recv(4096):
                response += chunk
            assert response.startswith(b"HTTP/1.1 200"), response
            return tls.session, tls.session_reused


def client(root: str, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=root)
    context.minimum_version = context.maximum_version = version
    return context


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_sessions_resume_across_config_changes(https, version):
    context = client(https.root, version)
    session, resumed = fetch(context, https.https_port)
    assert not resumed
    session, resumed = fetch(context, https.https_port, session)
    assert resumed
    # A change that keeps the handshake settings keeps the context; one that changes the groups makes a new
    # context, whose tickets are still encrypted with the same keys.
    assert https.api("PATCH", "/config/sites/0/routes/0/handle/0/body", "changed\n").status_code == 200
    session, resumed = fetch(context, https.https_port, session)
    assert resumed
    assert https.api("PUT", "/config/tls", {"groups": ["X25519", "P-256"]}).status_code == 200
    _, resumed = fetch(context, https.https_port, session)
    assert resumed


def test_tickets_can_be_turned_off(https):
    response = https.api("PUT", "/config/tls", {"session_tickets": {"enabled": False}})
    assert response.status_code == 200, response.text
    context = client(https.root, ssl.TLSVersion.TLSv1_3)
    session, _ = fetch(context, https.https_port)
    _, resumed = fetch(context, https.https_port, session)
    assert not resumed


def test_configured_groups_replace_the_defaults(https):
    with pytest.raises(SSL.Error):
        with tls_session(https.https_port, https.root, groups=b"P-384"):
            pass
    response = https.api("PUT", "/config/tls", {"groups": ["P-384", "X25519MLKEM768"]})
    assert response.status_code == 200, response.text
    with tls_session(https.https_port, https.root, groups=b"P-384") as connection:
        assert connection.get_group_name() == "secp384r1"
    with tls_session(https.https_port, https.root) as connection:
        # Both are allowed; the one the client already sent a key share for wins over an extra round trip.
        assert connection.get_group_name() == "X25519MLKEM768"
    with pytest.raises(SSL.Error):
        with tls_session(https.https_port, https.root, groups=b"X25519"):
            pass


@pytest.mark.parametrize(
    "tls, pointer",
    [
        ({"groups": []}, "/tls/groups"),
        ({"groups": ["X25519", "X25519"]}, "/tls/groups/1"),
        ({"groups": ["X448"]}, "/tls/groups/0"),
        ({"session_tickets": {"rotation_seconds": 5}}, "/tls/session_tickets/rotation_seconds"),
    ],
)
def test_bad_tls_settings_are_refused(https, tls, pointer):
    before = https.revisions()
    response = https.api("PUT", "/config/tls", tls)
    assert response.status_code == 400, response.text
    assert response.json()["pointer"] == pointer, response.text
    assert https.revisions() == before


def handshake_with_ocsp(port: int, root: str, server_name: bytes) -> bytes | None:
    """A handshake that asks for certificate status; returns the stapled response, if any."""
    stapled: list[bytes] = []
    with tls_session(port, root, server_name=server_name, on_ocsp=stapled.append):
        pass
    return stapled[0] if stapled and stapled[0] else None


def test_ocsp_response_from_a_file_is_stapled(make_velocity, tmp_path):
    ca = LocalCA("Staple Test CA")
    certificate_pem, key_pem = ca.issue("stapled.test")
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    now = datetime.datetime.now(datetime.timezone.utc)
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=certificate, issuer=ca.certificate, algorithm=hashes.SHA256(), cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now, next_update=now + datetime.timedelta(days=1), revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, ca.certificate)
        .sign(ca.key, hashes.SHA256())
    )
    der = response.public_bytes(serialization.Encoding.DER)
    (tmp_path / "leaf.pem").write_text(certificate_pem)
    (tmp_path / "leaf.key").write_text(key_pem)
    (tmp_path / "leaf.ocsp").write_bytes(der)
    (tmp_path / "ca.pem").write_text(ca.pem)
    server = make_velocity()
    port = free_port()
    config = https_config(port, "stapled\n")
    config["tls"] = {
        "certificates": [
            {
                "certificate_file": str(tmp_path / "leaf.pem"), "key_file": str(tmp_path / "leaf.key"),
                "ocsp_staple_file": str(tmp_path / "leaf.ocsp"),
            }
        ]
    }
    server.start(config)
    stapled = handshake_with_ocsp(port, str(tmp_path / "ca.pem"), b"stapled.test")
    assert stapled == der
    assert ocsp.load_der_ocsp_response(stapled).certificate_status == ocsp.OCSPCertStatus.GOOD

    # A file that is not an OCSP response is refused where it is configured.
    (tmp_path / "bad.ocsp").write_text("not der")
    response = server.api("PATCH", "/config/tls/certificates/0/ocsp_staple_file", str(tmp_path / "bad.ocsp"))
    assert response.status_code == 400, response.text
    assert response.json()["pointer"] == "/tls/certificates/0/ocsp_staple_file"


def test_acme_tls_alpn_without_a_pending_challenge_is_refused(https):
    """A client offering only acme-tls/1 (an ACME server validating TLS-ALPN-01) never gets the site's normal
    certificate: with no challenge pending the handshake fails, and ordinary clients are unaffected."""
    context = ssl.create_default_context(cafile=https.root)
    context.set_alpn_protocols(["acme-tls/1"])
    with socket.create_connection(("127.0.0.1", https.https_port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(raw, server_hostname="localhost")
    with tls_session(https.https_port, https.root) as connection:
        assert connection.get_peer_certificate() is not None

"""The automatic HTTP→HTTPS redirect, HSTS, and the access log's TLS fields, with curl as the client."""

import json
import time

import pytest

from velocity import cli, curl, free_port


@pytest.fixture
def secure(make_velocity, tmp_path):
    """A server with HTTP and HTTPS listeners, an HSTS site for localhost, a catch-all site, and the access log."""
    instance = make_velocity()
    instance.http_port, instance.https_port = free_port(), free_port()
    instance.start(
        {
            "listeners": [
                {"protocol": "http", "address": f"127.0.0.1:{instance.http_port}"},
                {"protocol": "https", "address": f"127.0.0.1:{instance.https_port}"},
            ],
            "logging": {"access_log": True, "format": "json"},
            "sites": [
                {
                    "hosts": ["localhost"],
                    "hsts": {"max_age": 600, "include_subdomains": True},
                    "routes": [{"handle": [{"handler": "static_response", "body": "secure\n"}]}],
                },
                {"routes": [{"handle": [{"handler": "static_response", "body": "any\n"}]}]},
            ],
        }
    )
    instance.root = tmp_path / "root.pem"
    instance.root.write_text(cli("ca", "export", "--data-dir", instance.data_dir).stdout)
    return instance


def test_http_redirects_to_https_for_names_with_a_certificate(secure):
    answer = curl("-i", f"http://localhost:{secure.http_port}/a/b?c=1")
    assert answer.stdout.startswith("HTTP/1.1 308"), answer.stdout
    assert f"Location: https://localhost:{secure.https_port}/a/b?c=1" in answer.stdout
    followed = curl("-L", "--cacert", str(secure.root), f"http://localhost:{secure.http_port}/")
    assert followed.stdout == "secure\n"


def test_no_redirect_for_acme_challenges_or_names_without_a_certificate(secure):
    challenge = curl("-i", f"http://localhost:{secure.http_port}/.well-known/acme-challenge/token")
    assert challenge.stdout.startswith("HTTP/1.1 200")
    other = curl("-i", "--resolve", f"example.com:{secure.http_port}:127.0.0.1", f"http://example.com:{secure.http_port}/")
    assert other.stdout.startswith("HTTP/1.1 200") and other.stdout.endswith("any\n")


def test_hsts_only_over_https(secure):
    over_https = curl("-i", "--cacert", str(secure.root), f"https://localhost:{secure.https_port}/")
    assert "strict-transport-security: max-age=600; includeSubDomains\n" in over_https.stdout
    over_http = curl("-i", f"http://localhost:{secure.http_port}/.well-known/acme-challenge/x")
    assert "strict-transport-security" not in over_http.stdout.lower()


def access_lines(instance, count: int) -> list[dict]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in instance.log().splitlines() if '"velocity.access"' in line]
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} access log lines:\n{instance.log()}")


def test_access_log_records_protocol_and_tls(secure):
    assert curl("--http2", "--cacert", str(secure.root), f"https://localhost:{secure.https_port}/p?q").stdout
    plain = curl("--resolve", f"example.com:{secure.http_port}:127.0.0.1", f"http://example.com:{secure.http_port}/plain")
    assert plain.stdout == "any\n"
    https_line, http_line = access_lines(secure, 2)[-2:]
    assert https_line["proto"] == "HTTP/2" and https_line["uri"] == "/p?q" and https_line["status"] == "200"
    assert https_line["tls_version"] == "TLSv1.3"
    assert https_line["tls_group"] == "X25519"  # Debian's curl (OpenSSL 3.0) has no ML-KEM
    assert https_line["tls_post_quantum"] == "false" and https_line["tls_server_name"] == "localhost"
    assert https_line["bytes_out"] == "7" and float(https_line["duration_ms"]) >= 0
    assert http_line["proto"] == "HTTP/1.1" and http_line["remote"] == "127.0.0.1"
    assert "tls_version" not in http_line


def test_site_marked_internal_gets_an_internal_certificate(make_velocity, tmp_path):
    instance = make_velocity()
    port = free_port()
    site = {"hosts": ["staging.example"], "tls": {"internal": True}}
    site["routes"] = [{"handle": [{"handler": "static_response", "body": "staging\n"}]}]
    instance.start({"listeners": [{"protocol": "https", "address": f"127.0.0.1:{port}"}], "sites": [site]})
    root = tmp_path / "root.pem"
    root.write_text(cli("ca", "export", "--data-dir", instance.data_dir).stdout)
    answer = curl("--cacert", str(root), "--resolve", f"staging.example:{port}:127.0.0.1", f"https://staging.example:{port}/")
    assert answer.stdout == "staging\n", answer.stderr
    # A name the internal CA cannot certify is refused with its place in the config, and nothing changes.
    refused = instance.api("POST", "/config/sites/0/hosts", "bad_name.example")
    assert refused.status_code == 400 and refused.json()["pointer"] == "/sites/0/hosts/1", refused.text
    assert len(instance.api("GET", "/revisions").json()) == 1

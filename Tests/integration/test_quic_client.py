"""Velocity's own QUIC and HTTP/3 client (`velocity quic get | echo | load`) against Velocity's server, both
over the real binary: responses arrive intact with X25519MLKEM768 or, when asked, a classical group; the
certificate is checked; 10 MiB echo with matching SHA-256 both ways, on one and on several streams; the load
generator completes its requests and handshakes without errors; Retry, and a path that loses packets, are
handled. Each test fails if the client breaks."""

import asyncio
import hashlib
import json
import os

import pytest

from quic_clients import start_relay
from test_https import exported_root
from velocity import binary, cli, free_port

MIB = 1 << 20


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("client-site")
    (root / "index.html").write_text("<!doctype html><title>hello</title>\n")
    (root / "small.txt").write_bytes(b"x" * 1024)
    (root / "big.bin").write_bytes(os.urandom(5 * MIB))
    return root


def client_config(port: int, root, **quic) -> dict:
    config = {
        "listeners": [
            {"protocol": "https", "address": f"127.0.0.1:{port}"},
            {"protocol": "quic", "address": f"127.0.0.1:{port}"},
        ],
        "logging": {"access_log": True, "format": "json"},
        "sites": [{"routes": [{"handle": [{"handler": "file_server", "root": str(root)}]}]}],
    }
    if quic:
        config["quic"] = quic
    return config


def start_server(make_velocity, files, tmp_path, **quic):
    server = make_velocity()
    server.port = free_port()
    server.start(client_config(server.port, files, **quic))
    server.root = str(tmp_path / "root.pem")
    (tmp_path / "root.pem").write_text(exported_root(server))
    server.url = f"https://localhost:{server.port}"
    return server


@pytest.fixture
def server(make_velocity, files, tmp_path):
    return start_server(make_velocity, files, tmp_path)


def run_json(*args: str, timeout: float = 120) -> dict:
    result = cli("quic", *args, "--json", timeout=timeout)
    assert result.returncode == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def log_events(server, message: str) -> list[dict]:
    events = []
    for line in server.log().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("msg") == message:
            events.append(event)
    return events


def pattern(count: int, seed: int) -> bytes:
    """The bytes `velocity quic echo` sends on stream `seed - 1`: xorshift64* words, little-endian."""
    state = ((seed * 0x9E3779B97F4A7C15) & (2**64 - 1)) | 1
    out = bytearray()
    while len(out) < count:
        state ^= state >> 12
        state ^= (state << 25) & (2**64 - 1)
        state ^= state >> 27
        out += ((state * 0x2545F4914F6CDD1D) & (2**64 - 1)).to_bytes(8, "little")
    return bytes(out[:count])


# --- velocity quic get ---------------------------------------------------------------------------------------


def test_get_downloads_the_body_over_post_quantum_h3(server, files, tmp_path):
    output = tmp_path / "big.out"
    result = run_json("get", f"{server.url}/big.bin", "--ca", server.root, "--output", str(output))
    assert result["status"] == 200
    assert output.read_bytes() == (files / "big.bin").read_bytes()
    assert result["body_bytes"] == 5 * MIB
    assert dict(result["headers"])["content-length"] == str(5 * MIB)
    tls = result["tls"]
    assert (tls["version"], tls["group"], tls["alpn"], tls["server_name"]) == (
        "TLSv1.3", "X25519MLKEM768", "h3", "localhost",
    )
    assert result["timing_ms"]["handshake"] > 0 and result["timing_ms"]["total"] > 0
    access = [line for line in server.log().splitlines() if '"velocity.access"' in line]
    assert any('"HTTP/3"' in line and "/big.bin" in line for line in access), access


def test_get_with_a_classical_group_only(server, files, tmp_path):
    result = run_json("get", f"{server.url}/index.html", "--ca", server.root, "--groups", "X25519")
    assert result["status"] == 200 and result["tls"]["group"] == "X25519"
    established = log_events(server, "QUIC connection established")
    assert established and established[-1]["tls_group"] == "X25519"


def test_get_prints_status_headers_and_tls_and_the_body(server, files):
    result = cli("quic", "get", f"{server.url}/index.html", "--ca", server.root, "-v")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (files / "index.html").read_text()
    assert "< HTTP/3 200" in result.stderr
    assert "< content-type: text/html" in result.stderr
    assert "TLSv1.3" in result.stderr and "group X25519MLKEM768" in result.stderr and "ALPN h3" in result.stderr


def test_get_reports_a_404(server):
    result = run_json("get", f"{server.url}/missing", "--ca", server.root)
    assert result["status"] == 404


def test_get_refuses_a_certificate_it_cannot_verify(server, tmp_path):
    missing = cli("quic", "get", f"{server.url}/index.html", "--ca", str(tmp_path / "nothing.pem"))
    assert missing.returncode != 0
    untrusted = cli("quic", "get", f"{server.url}/index.html")  # the system's CAs do not know the local CA
    assert untrusted.returncode == 1
    assert "certificate" in untrusted.stderr, untrusted.stderr
    wrong_name = cli(
        "quic", "get", f"https://127.0.0.1:{server.port}/index.html", "--ca", server.root,
        "--server-name", "elsewhere.example",
    )
    assert wrong_name.returncode == 1 and "certificate" in wrong_name.stderr, wrong_name.stderr
    insecure = cli("quic", "get", f"{server.url}/index.html", "--insecure")
    assert insecure.returncode == 0, insecure.stderr


def test_get_follows_a_retry(make_velocity, files, tmp_path):
    server = start_server(make_velocity, files, tmp_path, retry="always")
    output = tmp_path / "out"
    result = run_json("get", f"{server.url}/big.bin", "--ca", server.root, "--output", str(output))
    assert result["status"] == 200
    assert output.read_bytes() == (files / "big.bin").read_bytes()


# --- velocity quic echo --------------------------------------------------------------------------------------


def test_echo_ten_mebibytes_with_matching_checksums(server):
    result = run_json(
        "echo", f"127.0.0.1:{server.port}", "--server-name", "localhost", "--ca", server.root,
        "--bytes", str(10 * MIB),
    )
    assert result["match"] is True
    assert result["sha256_sent"] == result["sha256_received"]
    # What went up is the documented pattern, so the digests are of real data, not of nothing.
    assert result["sha256_sent"] == [hashlib.sha256(pattern(10 * MIB, 1)).hexdigest()]
    assert result["tls"]["group"] == "X25519MLKEM768"
    established = log_events(server, "QUIC connection established")
    assert any(event["alpn"] == "velocity-echo" for event in established), established


def test_echo_on_several_streams_at_once(server):
    result = run_json(
        "echo", f"127.0.0.1:{server.port}", "--server-name", "localhost", "--ca", server.root,
        "--bytes", str(3_000_001), "--streams", "4", "--groups", "X25519",
    )
    assert result["match"] is True and len(result["sha256_sent"]) == 4
    assert result["sha256_sent"][3] == hashlib.sha256(pattern(750_000, 4)).hexdigest()
    assert result["tls"]["group"] == "X25519"


def test_echo_recovers_from_a_path_that_loses_packets(server):
    """A relay drops 5% of the datagrams both ways, handshake included; the echo still matches."""

    async def session():
        relay, port = await start_relay(server.port, drop=0.05, seed=11)
        process = await asyncio.create_subprocess_exec(
            binary(), "quic", "echo", f"127.0.0.1:{port}", "--server-name", "localhost", "--ca", server.root,
            "--bytes", str(2 * MIB), "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, stderr.decode()
        assert relay.dropped > 0
        return json.loads(stdout)

    result = asyncio.run(session())
    assert result["match"] is True


# --- velocity quic load --------------------------------------------------------------------------------------


def test_load_completes_every_request_without_errors(server):
    result = run_json(
        "load", f"{server.url}/small.txt", "--ca", server.root, "--requests", "3000", "--connections", "2",
        "--streams", "10",
    )
    assert (result["completed"], result["failed"], result["not_2xx"]) == (3000, 0, 0), result
    assert result["body_bytes"] == 3000 * 1024
    assert result["per_second"] > 0 and result["latency_ms"]["p50"] > 0
    assert result["group"] == "X25519MLKEM768"


def test_load_counts_handshakes_post_quantum_and_classical(server):
    for group in ["X25519MLKEM768", "X25519"]:
        result = run_json(
            "load", f"{server.url}/", "--ca", server.root, "--handshakes", "40", "--connections", "4",
            "--groups", group,
        )
        assert (result["unit"], result["completed"], result["failed"]) == ("handshakes", 40, 0), result
        assert result["group"] == group
    established = log_events(server, "QUIC connection established")
    assert len(established) >= 80
    assert {event["tls_group"] for event in established} >= {"X25519MLKEM768", "X25519"}


def test_load_fails_when_the_server_is_not_there():
    port = free_port()
    result = cli("quic", "load", f"https://127.0.0.1:{port}/", "--insecure", "--requests", "5", "--timeout", "1")
    assert result.returncode == 1
    assert "0 requests completed" in result.stdout

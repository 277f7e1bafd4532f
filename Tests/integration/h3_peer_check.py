"""Checks the HTTP/3 clients of h3_clients.py against a real HTTP/3 server, caddy, before Velocity speaks HTTP/3.

Not a pytest module: run it by hand (`.venv/bin/python Tests/integration/h3_peer_check.py`) with caddy installed
(`apt-get install caddy`). It makes a throwaway CA and a leaf for 127.0.0.1 and localhost, a site (an index page
with 20 small assets, a 50 MiB file) and a loopback upstream that answers a POST to /echo with the sha256 of its
body, runs caddy in front of them on a free port (TCP and UDP), fetches with every client and prints a table of
what each got."""

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

import h3_clients
from velocity import LocalCA, free_port

ASSETS = [f"/asset-{index:02}.svg" for index in range(20)]
BIG_SIZE = 50 << 20
POST_SIZE = 100 << 20


def asset(index: int) -> str:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24">'
        f'<rect width="24" height="24" fill="hsl({index * 18}, 80%, 50%)"/></svg>\n'
    )


def make_site(root: Path) -> str:
    """Writes the index page, its assets and /big.bin (seeded random bytes); returns big.bin's sha256."""
    images = "".join(f'<img src="{path}" width="24" height="24">\n' for path in ASSETS)
    (root / "index.html").write_text(f"<!doctype html>\n<title>h3 peer check</title>\n<h1>HTTP/3</h1>\n{images}")
    for index, path in enumerate(ASSETS):
        (root / path.lstrip("/")).write_text(asset(index))
    digest = hashlib.sha256()
    source = random.Random(50)
    with open(root / "big.bin", "wb") as big:
        for _ in range(BIG_SIZE >> 20):
            chunk = source.randbytes(1 << 20)
            digest.update(chunk)
            big.write(chunk)
    return digest.hexdigest()


class DigestHandler(BaseHTTPRequestHandler):
    """Answers a POST with the sha256 (hex) of its body, read with Content-Length or chunked, as it streams in."""

    def do_POST(self):
        digest = hashlib.sha256()
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while size := int(self.rfile.readline().split(b";")[0], 16):
                digest.update(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
        else:
            remaining = int(self.headers.get("Content-Length", 0))
            while remaining:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                digest.update(chunk)
                remaining -= len(chunk)
        answer = digest.hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def caddyfile(port: int, root: Path, upstream_port: int, certificate: Path, key: Path) -> str:
    """Caddy 2.6 serves h1, h2 and h3 on the port (TCP and UDP) and adds Alt-Svc: h3 by itself; every response
    carries X-Repeat twice, to see which clients keep both values."""
    return f"""{{
    admin off
    auto_https disable_redirects
}}

https://127.0.0.1:{port}, https://localhost:{port} {{
    bind 127.0.0.1
    tls {certificate} {key}
    root * {root}
    header +X-Repeat one
    header +X-Repeat two
    reverse_proxy /echo 127.0.0.1:{upstream_port}
    file_server
}}
"""


def wait_for_https(port: int, ca_file: str, caddy: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 15
    while True:
        if caddy.poll() is not None:
            sys.exit(f"caddy exited with {caddy.returncode}:\n{log.read_text(errors='replace')}")
        try:
            requests.get(f"https://127.0.0.1:{port}/", verify=ca_file, timeout=1)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                sys.exit(f"caddy did not come up:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)


@dataclass
class Caddy:
    port: int
    ca_file: str
    leaf_file: str
    big_sha256: str
    work: Path


def start(work: Path) -> tuple[Caddy, subprocess.Popen, ThreadingHTTPServer]:
    """Makes the certificates and the site under `work`, starts the upstream on a thread and caddy."""
    ca = LocalCA("h3 peer check CA")
    leaf, key = ca.issue("localhost", "127.0.0.1")
    (work / "ca.pem").write_text(ca.pem)
    (work / "leaf.pem").write_text(leaf)
    (work / "key.pem").write_text(key)
    root = work / "site"
    root.mkdir()
    big_sha256 = make_site(root)
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), DigestHandler)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    (work / "Caddyfile").write_text(
        caddyfile(port, root, upstream.server_address[1], work / "leaf.pem", work / "key.pem")
    )
    log = work / "caddy.log"
    environment = {**os.environ, "HOME": str(work), "XDG_DATA_HOME": str(work), "XDG_CONFIG_HOME": str(work)}
    with open(log, "wb") as output:
        caddy = subprocess.Popen(
            ["caddy", "run", "--config", str(work / "Caddyfile"), "--adapter", "caddyfile"],
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=environment,
        )
    wait_for_https(port, str(work / "ca.pem"), caddy, log)
    return Caddy(port, str(work / "ca.pem"), str(work / "leaf.pem"), big_sha256, work), caddy, upstream


class SeededBody:
    """`size` seeded random bytes in 1 MiB chunks, each made as it is sent; `digest` hashes what went out."""

    def __init__(self, size: int, seed: int):
        self.size, self.source, self.digest = size, random.Random(seed), hashlib.sha256()

    def __iter__(self):
        for start in range(0, self.size, 1 << 20):
            chunk = self.source.randbytes(min(1 << 20, self.size - start))
            self.digest.update(chunk)
            yield chunk


@dataclass
class Row:
    client: str
    request: str
    status: str = ""
    size: str = ""
    sha256: str = ""
    group: str = ""
    protocol: str = ""
    note: str = ""


def row(client: str, request: str, reply: h3_clients.H3Response, expected_sha256: str, note: str = "") -> Row:
    match = "ok" if hashlib.sha256(reply.body).hexdigest() == expected_sha256 else "MISMATCH"
    size = f"{len(reply.body):,}"
    return Row(client, request, str(reply.status), size, match, reply.group or "-", reply.protocol, note)


def repeated(reply: h3_clients.H3Response) -> str:
    return "x-repeat: " + " | ".join(reply.values("x-repeat"))


class Checks:
    """Every client against one running caddy; each method returns the rows it adds to the table."""

    def __init__(self, caddy: Caddy, screenshot: Path | None):
        self.caddy, self.screenshot = caddy, screenshot
        self.origin = f"https://127.0.0.1:{caddy.port}"
        root = caddy.work / "site"
        self.sha = {"/": hashlib.sha256((root / "index.html").read_bytes()).hexdigest(), "/big.bin": caddy.big_sha256}
        self.sha.update({path: hashlib.sha256(asset(index).encode()).hexdigest() for index, path in enumerate(ASSETS)})

    def gets(self, client: str, get) -> list[Row]:
        index = get(self.origin + "/")
        rows = [row(client, "GET /", index, self.sha["/"], repeated(index))]
        started = time.monotonic()
        big = get(self.origin + "/big.bin")
        took = f"{time.monotonic() - started:.1f} s"
        return rows + [row(client, "GET /big.bin (50 MiB)", big, self.sha["/big.bin"], took)]

    def aioquic(self) -> list[Row]:
        rows = self.gets("aioquic", lambda url: h3_clients.aioquic_get(url, self.caddy.ca_file))
        body = SeededBody(POST_SIZE, seed=100)
        started = time.monotonic()
        echo = h3_clients.aioquic_get(
            self.origin + "/echo", self.caddy.ca_file, method="POST", body=body,
            headers={"content-length": POST_SIZE, "content-type": "application/octet-stream"}, timeout=300,
        )
        answer = "ok" if echo.body.decode() == body.digest.hexdigest() else f"MISMATCH {echo.body[:80]!r}"
        rows.append(Row(
            "aioquic", "POST /echo (100 MiB, streamed)", str(echo.status), f"{POST_SIZE:,} sent", answer,
            echo.group or "-", echo.protocol, f"{time.monotonic() - started:.1f} s",
        ))
        replies = h3_clients.aioquic_get_many([self.origin + path for path in ASSETS], self.caddy.ca_file)
        matches = sum(hashlib.sha256(r.body).hexdigest() == self.sha[path] for r, path in zip(replies, ASSETS))
        rows.append(Row(
            "aioquic", "20 assets, one connection", ",".join(sorted({str(r.status) for r in replies})),
            f"{sum(len(r.body) for r in replies):,}", f"{matches}/20 ok", replies[0].group or "-", replies[0].protocol,
        ))
        return rows

    def niquests(self) -> list[Row]:
        return self.gets("niquests (qh3)", lambda url: h3_clients.niquests_get(url, self.caddy.ca_file))

    def curl_cffi(self) -> list[Row]:
        return self.gets("curl-cffi chrome", lambda url: h3_clients.curl_cffi_get(url, self.caddy.ca_file))

    def gtlsclient(self) -> list[Row]:
        rows = self.gets("gtlsclient", lambda url: h3_clients.gtlsclient_get(url)[0])
        replies = h3_clients.gtlsclient_get(self.origin + ASSETS[0], n=5)
        matches = sum(hashlib.sha256(r.body).hexdigest() == self.sha[ASSETS[0]] for r in replies)
        rows.append(Row(
            "gtlsclient", f"-n 5 {ASSETS[0]}", ",".join(sorted({str(r.status) for r in replies})),
            f"{sum(len(r.body) for r in replies):,}", f"{matches}/5 ok", "-", replies[0].protocol,
        ))
        return rows

    def chromium(self) -> list[Row]:
        spki = h3_clients.spki_hash(Path(self.caddy.leaf_file).read_text())
        replies = h3_clients.chromium_h3(self.origin + "/", spki, screenshot_path=self.screenshot)
        wanted = {self.origin + path: path for path in ["/", *ASSETS] if self.origin + path in replies}
        matches = sum(hashlib.sha256(replies[url].body).hexdigest() == self.sha[path] for url, path in wanted.items())
        got = [replies[url] for url in wanted]
        rows = [Row(
            "chromium (forced QUIC)", "page + 20 assets", ",".join(sorted({str(r.status) for r in got})),
            f"{len(got)} responses", f"{matches}/21 ok", ",".join(sorted({r.group or "-" for r in got})),
            ",".join(sorted({r.protocol for r in got})), f"screenshot: {self.screenshot or '-'}",
        )]
        for load, document in enumerate(h3_clients.chromium_alt_svc(self.origin + "/", spki, loads=3), start=1):
            alt_svc = f"alt-svc: {document.headers.get('alt-svc', '-')}"
            rows.append(row("chromium (Alt-Svc)", f"GET / load {load}", document, self.sha["/"], alt_svc))
        return rows


def run(check) -> list[Row]:
    """One check's rows, or a row that says why it could not run."""
    import pytest

    try:
        return check()
    except (Exception, pytest.skip.Exception, pytest.fail.Exception) as error:
        return [Row(check.__name__, "-", "ERROR", note=f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")]


def table(rows: list[Row]) -> str:
    columns = list(Row.__dataclass_fields__)
    cells = [columns] + [[getattr(r, column) for column in columns] for r in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells]
    return "\n".join([lines[0], "  ".join("-" * width for width in widths), *lines[1:]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="keep certificates, site, Caddyfile, logs and the screenshot here")
    arguments = parser.parse_args()
    if shutil.which("caddy") is None:
        sys.exit("caddy is not installed: apt-get install -y --no-install-recommends caddy")
    work = Path(arguments.work or tempfile.mkdtemp(prefix="h3-peer-check-"))
    work.mkdir(parents=True, exist_ok=True)
    caddy, process, upstream = start(work)
    try:
        checks = Checks(caddy, work / "chromium-h3.png" if arguments.work else None)
        every = [checks.aioquic, checks.niquests, checks.curl_cffi, checks.gtlsclient, checks.chromium]
        rows = [row for check in every for row in run(check)]
        version = subprocess.run(["caddy", "version"], capture_output=True, text=True).stdout.split()[0]
        print(f"caddy {version} on 127.0.0.1:{caddy.port} (TCP and UDP)")
        print(table(rows))
    finally:
        process.terminate()
        process.wait()
        upstream.shutdown()
        if not arguments.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

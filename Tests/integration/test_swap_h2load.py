"""Config swaps under h2load: 20 s of HTTP/2 load over HTTPS on one site while 100 commits change its routes and
add sites with certificates of their own. No request fails, and a slow HTTP/2 download of a 200 MiB file from
another, unchanged site runs through every swap to the last byte."""

import hashlib
import json
import os
import re
import subprocess
import time

import requests

from velocity import LocalCA, curl, free_port, require_tool

LOAD_SECONDS = 20
# h2load's rate per connection: 20 connections of up to 10 streams each, 400 requests/s in all. Unthrottled,
# h2load saturates the server, and the admin API, which shares its event loops, then takes 0.3-1.2 s per commit
# (a debug build on 2 CPUs shared with a compiler), so 100 commits would not fit in the 20 s.
REQUESTS_PER_SECOND = 20
MINIMUM_REQUESTS = 4000  # half the rate asked for: the load really ran
COMMITS = 100
COMMIT_SECONDS = 14  # the commits are spread over the first 14 s of the load (back to back if they fall behind)
NEW_SITES = [20, 40, 60, 80, 99]  # the commits that add a site with a new certificate
BIG_FILE_MIB = 200
DOWNLOAD_RATE = "8M"  # curl's --limit-rate: about 25 s for the file, longer than the load and the commits


def static(body: str, **route) -> dict:
    return {**route, "handle": [{"handler": "static_response", "body": body}]}


def static_files(root) -> dict:
    return {"handle": [{"handler": "file_server", "root": str(root)}]}


def write_big_file(path) -> str:
    """BIG_FILE_MIB of random bytes at `path`; returns their sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as file:
        for _ in range(BIG_FILE_MIB):
            chunk = os.urandom(1 << 20)
            digest.update(chunk)
            file.write(chunk)
    return digest.hexdigest()


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class Changes:
    """The commits, numbered from 1: a new site with a new certificate (NEW_SITES), or a change of site A's
    routes: its catch-all body, or an /api/* route inserted in front of it or removed again. Whatever the
    routes, every path h2load asks for answers 200."""

    def __init__(self, server, tmp_path):
        self.server, self.tmp_path = server, tmp_path
        self.session = requests.Session()  # one keep-alive connection: a new one waits behind the load to be accepted
        self.new_cas: dict[str, str] = {}  # new site's host -> the PEM file of the CA that issued its certificate
        self.api_route = False

    def commit(self, number: int):
        if number in NEW_SITES:
            host = f"new{number}.test"
            ca = LocalCA(f"Test CA {host}")
            certificate, key = ca.issue(host)
            (self.tmp_path / f"{host}.pem").write_text(ca.pem)
            self.new_cas[host] = str(self.tmp_path / f"{host}.pem")
            batch = [
                {"op": "add", "path": "/sites/-", "value": {"hosts": [host], "routes": [static(f"site {host}\n")]}},
                {"op": "add", "path": "/tls/certificates/-", "value": {"certificate_pem": certificate, "key_pem": key}},
            ]
            return self.api("PATCH", "/config/", batch, "application/json-patch+json")
        if number % 3 == 0:
            return self.api("PATCH", "/id/answer/handle/0/body", f"body {number}\n")
        self.api_route = not self.api_route
        if self.api_route:
            route = static(f"api {number}\n", match=[{"path": ["/api/*"]}])
            return self.api("PUT", "/id/a/routes/0", {"@id": "api", **route})
        return self.api("DELETE", "/id/api")

    def api(self, method: str, path: str, body=None, content_type: str = "application/json") -> requests.Response:
        data = None if body is None else json.dumps(body)
        headers = {} if body is None else {"Content-Type": content_type}
        return self.session.request(method, f"{self.server.admin}{path}", data=data, headers=headers, timeout=30)


def h2load_summary(output: str) -> dict[str, int]:
    """The counters of h2load's "requests:" and "status codes:" lines."""
    requests = re.search(
        r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, "
        r"(\d+) timeout$", output, re.MULTILINE,
    )
    codes = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx$", output, re.MULTILINE)
    assert requests and codes, f"no summary in h2load's output:\n{output}"
    names = ["total", "started", "done", "succeeded", "failed", "errored", "timeout"]
    return {**dict(zip(names, map(int, requests.groups()))),
            **dict(zip(["2xx", "3xx", "4xx", "5xx"], map(int, codes.groups())))}


def test_h2load_over_https_with_100_commits_and_an_uninterrupted_download(make_velocity, tmp_path):
    require_tool("h2load")
    require_tool("curl")
    ca = LocalCA("Test CA A")
    certificate_a, key_a = ca.issue("a.test")
    certificate_big, key_big = ca.issue("big.test")
    (tmp_path / "ca.pem").write_text(ca.pem)
    root = tmp_path / "big"
    root.mkdir()
    expected_sha256 = write_big_file(root / "big.bin")

    server = make_velocity()
    port = server.https_port = free_port()
    server.start({
        "listeners": [{"protocol": "https", "address": f"127.0.0.1:{port}"}],
        "tls": {"certificates": [
            {"certificate_pem": certificate_a, "key_pem": key_a},
            {"certificate_pem": certificate_big, "key_pem": key_big},
        ]},
        "sites": [
            {"@id": "a", "hosts": ["a.test"], "routes": [static("body 0\n", **{"@id": "answer"})]},
            {"@id": "b", "hosts": ["big.test"], "routes": [static_files(root)]},
        ],
    })
    cacert, downloaded = str(tmp_path / "ca.pem"), tmp_path / "downloaded.bin"
    download = subprocess.Popen(
        ["curl", "-sS", "--fail", "--http2", "--limit-rate", DOWNLOAD_RATE, "--max-time", "120",
         "--resolve", f"big.test:{port}:127.0.0.1", "--cacert", cacert, "-o", str(downloaded),
         "-w", "%{http_code} %{http_version} %{num_connects} %{size_download}",
         f"https://big.test:{port}/big.bin"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    load = subprocess.Popen(
        ["h2load", "-D", str(LOAD_SECONDS), "-c", "20", "-m", "10", "-t", "2", "--rps", str(REQUESTS_PER_SECOND),
         f"--connect-to=127.0.0.1:{port}", f"https://a.test:{port}/", f"https://a.test:{port}/api/x"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    changes = Changes(server, tmp_path)
    try:
        time.sleep(1)  # the load is on before the first commit
        while not (downloaded.exists() and downloaded.stat().st_size > 1 << 20) and download.poll() is None:
            time.sleep(0.05)  # and so is the download
        assert load.poll() is None, load.communicate()[0]
        assert download.poll() is None, download.communicate()
        start = time.monotonic()
        slowest = 0.0
        for commit in range(1, COMMITS + 1):
            time.sleep(max(0.0, start + commit * COMMIT_SECONDS / COMMITS - time.monotonic()))
            sent = time.monotonic()
            response = changes.commit(commit)
            slowest = max(slowest, time.monotonic() - sent)
            assert response.status_code == 200, f"commit {commit}: {response.text}"
            assert response.json() == {"status": "applied", "revision": commit + 1}, f"commit {commit}"
        timing = f"the commits took {time.monotonic() - start:.1f} s, the slowest {slowest:.2f} s"
        assert load.poll() is None, f"h2load ended before the last commit: {timing}"
        assert download.poll() is None, f"the download ended before the last commit: {timing}"
        output, _ = load.communicate(timeout=LOAD_SECONDS + 30)
        written, errors = download.communicate(timeout=120)
    finally:
        changes.session.close()
        for process in (load, download):
            if process.poll() is None:
                process.kill()
                process.wait()

    assert load.returncode == 0, output
    assert "Application protocol: h2" in output, output
    summary = h2load_summary(output)
    assert summary["failed"] == summary["errored"] == summary["timeout"] == 0, output
    assert summary["done"] == summary["succeeded"] == summary["2xx"] >= MINIMUM_REQUESTS, output
    assert summary["3xx"] == summary["4xx"] == summary["5xx"] == 0, output

    assert download.returncode == 0, f"the download was cut: curl exited {download.returncode}: {errors}"
    assert written.split() == ["200", "2", "1", str(BIG_FILE_MIB << 20)], written
    assert sha256_of(downloaded) == expected_sha256

    # The last commit's routes answer, and every new site presents its own certificate for its name.
    resolve = f"a.test:{port}:127.0.0.1"
    routes, revision = server.config("/sites/0/routes")
    assert revision == COMMITS + 1
    last_body = routes[-1]["handle"][0]["body"]
    result = curl("--http2", "--resolve", resolve, "--cacert", cacert, f"https://a.test:{port}/")
    assert (result.returncode, result.stdout) == (0, last_body), result.stderr
    assert len(changes.new_cas) == len(NEW_SITES)
    for host, host_ca in changes.new_cas.items():
        url, resolve = f"https://{host}:{port}/", f"{host}:{port}:127.0.0.1"
        result = curl("--http2", "--resolve", resolve, "--cacert", host_ca, url)
        assert (result.returncode, result.stdout) == (0, f"site {host}\n"), f"{host}: {result.stderr}"

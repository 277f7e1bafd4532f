"""Let's Encrypt's test CA for the ACME tests: Debian's `pebble` with `pebble-challtestsrv` as its DNS server,
which answers 127.0.0.1 for every name, all on loopback ports of their own (peers.md). Pebble's validator
connects to `http_port` for HTTP-01 and `tls_port` for TLS-ALPN-01: the test points them at Velocity."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from velocity import LocalCA, free_port


def require_pebble() -> None:
    """Skips a test when pebble is not installed, except under CI, where that is a failure."""
    missing = [name for name in ("pebble", "pebble-challtestsrv") if shutil.which(name) is None]
    if missing:
        message = f"{', '.join(missing)} not installed (Debian package pebble; scripts/setup installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


class Pebble:
    """One pebble and its DNS server. `directory` is the ACME directory URL, `api_ca` the PEM file that
    pebble's own HTTPS certificate chains to; `validity` makes certificates that short-lived (seconds);
    `ocsp_url` goes into the certificates as their OCSP responder (pebble has none of its own)."""

    def __init__(self, workdir: Path, http_port: int, tls_port: int, validity: int | None = None,
                 nonce_reject: int | None = None, ocsp_url: str = ""):
        self.workdir = workdir
        self.http_port, self.tls_port = http_port, tls_port
        self.validity, self.nonce_reject, self.ocsp_url = validity, nonce_reject, ocsp_url
        self.acme_port, self.management_port = free_port(), free_port()
        self.dns_port, self.dns_management_port = free_port(), free_port()
        self.processes: list[subprocess.Popen] = []
        self.api_ca = str(workdir / "pebble-api-ca.pem")

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.acme_port}/dir"

    def start(self) -> "Pebble":
        require_pebble()
        ca = LocalCA("pebble API test CA")
        certificate, key = ca.issue("127.0.0.1", "localhost")
        Path(self.api_ca).write_text(ca.pem)
        (self.workdir / "pebble-api.pem").write_text(certificate)
        (self.workdir / "pebble-api.key").write_text(key)
        settings = {
            "listenAddress": f"127.0.0.1:{self.acme_port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(self.workdir / "pebble-api.pem"),
            "privateKey": str(self.workdir / "pebble-api.key"),
            "httpPort": self.http_port,
            "tlsPort": self.tls_port,
            "ocspResponderURL": self.ocsp_url,
            "externalAccountBindingRequired": False,
        }
        if self.validity:
            settings["certificateValidityPeriod"] = self.validity
        (self.workdir / "pebble.json").write_text(json.dumps({"pebble": settings}))
        self._spawn("challtestsrv", [
            "pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
            "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "", "-https01", "", "-tlsalpn01", "",
            "-management", f"127.0.0.1:{self.dns_management_port}",
        ], {})
        environment = {"PEBBLE_VA_NOSLEEP": "1"}
        if self.nonce_reject is not None:
            environment["PEBBLE_WFE_NONCEREJECT"] = str(self.nonce_reject)
        self._spawn("pebble", [
            "pebble", "-config", str(self.workdir / "pebble.json"), "-dnsserver", f"127.0.0.1:{self.dns_port}",
            "-strict=false",
        ], environment)
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(self.directory, verify=self.api_ca, timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or any(process.poll() is not None for process in self.processes):
                raise RuntimeError(f"pebble did not start:\n{self.log()}")
            time.sleep(0.1)

    def roots_pem(self) -> str:
        """Pebble's root and intermediate (made anew at each start), to verify what it issued."""
        base = f"https://127.0.0.1:{self.management_port}"
        return "".join(
            requests.get(f"{base}/{kind}/0", verify=self.api_ca, timeout=5).text for kind in ("roots", "intermediates")
        )

    def issuer(self) -> tuple[str, str]:
        """Pebble's intermediate and its private key (PEM), to sign OCSP responses as the issuer."""
        base = f"https://127.0.0.1:{self.management_port}"
        return tuple(
            requests.get(f"{base}/{kind}/0", verify=self.api_ca, timeout=5).text
            for kind in ("intermediates", "intermediate-keys")
        )

    def log(self) -> str:
        return "".join(path.read_text(errors="replace") for path in sorted(self.workdir.glob("*.log")))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def _spawn(self, name: str, command: list[str], environment: dict) -> None:
        with open(self.workdir / f"{name}.log", "ab") as log:
            self.processes.append(subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **environment},
            ))

"""Starts real `velocity run` processes on free loopback ports with their own SQLite data directories."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def binary() -> str:
    path = os.environ.get("VELOCITY_BIN") or str(ROOT / ".build" / "debug" / "velocity")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"velocity binary not found at {path}: run `swift build` or set VELOCITY_BIN")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


class Velocity:
    """One server process. `data_dir` survives restarts, so a test can kill and resume it."""

    def __init__(self, data_dir: str | None = None, admin_port: int | None = None):
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="velocity-test-")
        self.admin_port = admin_port or free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = Path(self.data_dir) / "server.log"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, config: dict | None = None, *args: str, wait: bool = True) -> "Velocity":
        command = [binary(), "run", "--data-dir", self.data_dir, "--admin", f"127.0.0.1:{self.admin_port}"]
        if config is not None:
            path = Path(self.data_dir) / "start-config.json"
            path.write_text(json.dumps(config))
            command += ["--config", str(path)]
        command += list(args)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"velocity exited with {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(f"{self.admin}/health", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"velocity did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def api(self, method: str, path: str, body=None, headers: dict | None = None, raw: bytes | None = None, **kw):
        headers = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        return requests.request(method, f"{self.admin}{path}", data=data, headers=headers, timeout=30, **kw)

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

"""Active health checks: an upstream whose check fails `fails` times in a row gets no traffic until `passes`
good checks in a row bring it back; checks judge status and body, and time out."""

import http.server
import threading
import time

import requests

from velocity import free_port, site_config


class App(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        state = self.server.state
        if self.path == "/health":
            state["checks"] += 1
            if state["mode"] == "slow":
                time.sleep(1.0)
            code, body = (200, b"all good\n") if state["mode"] == "good" else (200, b"degraded\n")
            if state["mode"] == "error":
                code = 500
        else:
            code, body = 200, f"app {state['name']}\n".encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a check Velocity gave up on leaves a broken pipe behind; that is the point of the test


def app(name: str) -> Server:
    server = Server(("127.0.0.1", 0), App)
    server.state = {"name": name, "mode": "good", "checks": 0}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def served_by(url: str, count: int = 6) -> set[str]:
    return {requests.get(url, timeout=5).text.strip() for _ in range(count)}


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_active_checks_take_upstreams_out_and_bring_them_back(make_velocity):
    a, b = app("a"), app("b")
    http_port = free_port()
    config = site_config(http_port)
    config["sites"][0]["routes"] = [
        {
            "handle": [
                {
                    "handler": "reverse_proxy",
                    "upstreams": [{"dial": f"127.0.0.1:{a.server_address[1]}"}, {"dial": f"127.0.0.1:{b.server_address[1]}"}],
                    "health_checks": {
                        "active": {
                            "path": "/health", "interval_ms": 100, "timeout_ms": 300, "expect_body": "good",
                            "fails": 2, "passes": 2,
                        }
                    },
                }
            ]
        }
    ]
    server = make_velocity()
    server.start(config)
    url = f"http://127.0.0.1:{http_port}/"
    wait_for(lambda: a.state["checks"] >= 2)
    assert served_by(url) == {"app a", "app b"}

    def healthy(name: str) -> bool:
        port = (a if name == "a" else b).server_address[1]
        entry = next(u for u in server.api("GET", "/upstreams").json() if u["address"].endswith(f":{port}"))
        return entry["healthy"]

    # Each way a check can fail: the wrong body, an error status, no answer in time.
    for mode in ["degraded", "error", "slow"]:
        a.state["mode"] = mode
        wait_for(lambda: not healthy("a"))
        assert served_by(url) == {"app b"}
        a.state["mode"] = "good"
        wait_for(lambda: healthy("a"))
        assert served_by(url) == {"app a", "app b"}
    a.shutdown()
    b.shutdown()

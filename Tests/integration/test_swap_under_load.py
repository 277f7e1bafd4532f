"""Config swaps under load: 50 keep-alive connections hammer the data plane while 200 changes are committed.
No request fails, every answer is a committed body, and the connections survive every swap."""

import http.client
import threading
import time

CONNECTIONS = 50
CHANGES = 200
BODY = "/config/sites/0/routes/0/handle/0/body"


class Hammer(threading.Thread):
    """One keep-alive connection sending GET / until told to stop (or its deadline passes)."""

    def __init__(self, port: int, stop: threading.Event, deadline: float):
        super().__init__(daemon=True)
        self.port, self.stop, self.deadline = port, stop, deadline
        self.bodies: list[str] = []
        self.failures: list[str] = []
        self.local_ports: set[int] = set()  # one entry if the connection was never re-opened

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            while not self.stop.is_set() and time.monotonic() < self.deadline:
                try:
                    connection.request("GET", "/")
                    self.local_ports.add(connection.sock.getsockname()[1])
                    response = connection.getresponse()
                    body = response.read().decode()
                except (OSError, http.client.HTTPException) as error:
                    self.failures.append(repr(error))
                    connection.close()
                    continue
                if response.status != 200:
                    self.failures.append(f"status {response.status}")
                self.bodies.append(body)
        finally:
            connection.close()


def test_swaps_under_load(server):
    committed = ["hello\n"] + [f"body {i}\n" for i in range(1, CHANGES + 1)]
    stop = threading.Event()
    deadline = time.monotonic() + 45
    hammers = [Hammer(server.http_port, stop, deadline) for _ in range(CONNECTIONS)]
    for hammer in hammers:
        hammer.start()
    try:
        while sum(len(h.bodies) for h in hammers) < CONNECTIONS * 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # every connection is open and busy before the first change
        for i, body in enumerate(committed[1:], start=2):
            response = server.api("PATCH", BODY, body)
            assert response.status_code == 200, response.text
            assert response.json() == {"status": "applied", "revision": i}
            assert time.monotonic() < deadline, "the changes took too long"
        time.sleep(0.2)  # some requests after the last change
    finally:
        stop.set()
        for hammer in hammers:
            hammer.join(15)

    assert not any(h.is_alive() for h in hammers)
    failures = [failure for h in hammers for failure in h.failures]
    assert not failures, f"{len(failures)} failed requests, e.g. {failures[:5]}"
    order = {body: index for index, body in enumerate(committed)}
    for hammer in hammers:
        assert hammer.bodies, "a connection never got an answer"
        unknown = [body for body in hammer.bodies if body not in order]
        assert not unknown, f"bodies never committed: {unknown[:5]}"
        # One connection sees the changes in commit order: a swap is never undone, not even for a moment.
        seen = [order[body] for body in hammer.bodies]
        assert seen == sorted(seen)
        assert len(hammer.local_ports) == 1, "the keep-alive connection was re-opened"
    total = sum(len(h.bodies) for h in hammers)
    distinct = {body for h in hammers for body in h.bodies}
    assert committed[-1] in distinct
    assert server.fetch().text == committed[-1]
    assert len(distinct) > CHANGES // 4, f"only {len(distinct)} distinct bodies in {total} requests: no load?"

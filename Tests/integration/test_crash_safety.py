"""SIGKILL at random moments while changes stream in: no acknowledged change is ever lost, nothing is stored
twice, and the SQLite file stays sound."""

import random
import sqlite3
import threading
import time

import requests

from velocity import free_port, site_config

BODY = "/config/sites/0/routes/0/handle/0/body"
KILLS = 20


class CounterWriter(threading.Thread):
    """PATCHes `count N` with N = 1, 2, ... after `start_value` until the server goes away."""

    def __init__(self, server, start_value: int):
        super().__init__(daemon=True)
        self.server = server
        self.last_ok = start_value  # the last value answered 200
        self.in_flight = start_value  # the value being sent (== last_ok between requests)
        self.unexpected: list[str] = []

    def run(self) -> None:
        session = requests.Session()
        try:
            while True:
                self.in_flight = self.last_ok + 1
                try:
                    response = session.patch(f"{self.server.admin}{BODY}", json=f"count {self.in_flight}\n", timeout=10)
                except requests.ConnectionError:
                    return
                if response.status_code != 200:
                    self.unexpected.append(f"{response.status_code} {response.text}")
                    return
                self.last_ok = self.in_flight
        finally:
            session.close()


def inspect(database) -> tuple[str, int, int]:
    """(PRAGMA integrity_check, number of revisions, highest revision number), read straight from the file."""
    db = sqlite3.connect(database)
    try:
        check = db.execute("PRAGMA integrity_check").fetchone()[0]
        return (check, *db.execute("SELECT COUNT(*), MAX(number) FROM revisions").fetchone())
    finally:
        db.close()


def test_sigkill_never_loses_an_acknowledged_change(make_velocity):
    server = make_velocity()
    server.http_port = free_port()
    server.start(site_config(server.http_port, body="count 0\n"))
    rng = random.Random(1234)
    value, deadline = 0, time.monotonic() + 50

    for kill in range(KILLS):
        assert time.monotonic() < deadline, f"only {kill} kills in the time allowed"
        writer = CounterWriter(server, value)
        writer.start()
        time.sleep(rng.uniform(0.02, 0.6))
        server.kill()
        writer.join(15)
        assert not writer.is_alive()
        assert not writer.unexpected, writer.unexpected
        check, count, latest = inspect(server.database)
        assert check == "ok"
        assert count == latest, "revisions are numbered without gaps"

        server.start()  # same data dir, no --config: resumes the latest revision
        body, revision = server.config(BODY[7:])
        value = int(body.split()[1])
        assert writer.last_ok <= value <= writer.in_flight, (kill, writer.last_ok, writer.in_flight, value)
        assert server.fetch().text == body
        # Every committed change is one revision: the initial config is revision 1, `count N` is revision N + 1.
        assert revision == latest == value + 1

    assert value >= KILLS, "too few changes were made between kills to mean anything"
    assert server.stop() == 0
    assert inspect(server.database) == ("ok", value + 1, value + 1)

"""Racing writers with If-Match: every change applies exactly once or is refused, never lost or doubled."""

import threading

import requests

from velocity import site_config

BODY = "/config/sites/0/routes/0/handle/0/body"


def test_if_match_races(server):
    start_count = len(server.revisions())
    outcomes: dict[str, list] = {}  # value → [(status, revision or None)]
    failures = []

    def writer(name: str) -> None:
        session = requests.Session()
        try:
            for i in range(100):
                value = f"{name}-{i}\n"
                current = session.get(f"{server.admin}/config/", timeout=30)
                etag = current.headers["ETag"]
                response = session.patch(f"{server.admin}{BODY}", json=value, headers={"If-Match": etag}, timeout=30)
                revision = response.json().get("revision")
                outcomes[value] = [response.status_code, revision, etag]
        except Exception as error:  # reported by the main thread
            failures.append(repr(error))
        finally:
            session.close()

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures
    assert len(outcomes) == 200
    assert {status for status, _, _ in outcomes.values()} <= {200, 412}
    applied = {value: revision for value, (status, revision, _) in outcomes.items() if status == 200}
    assert applied, "no change applied at all"
    # A 200 names the revision right after the one in If-Match; a 412 names one that was already newer.
    for value, (status, revision, etag) in outcomes.items():
        if status == 200:
            assert revision == int(etag.strip('"')) + 1, value
        else:
            assert revision > int(etag.strip('"')), value

    revisions = server.revisions()
    assert len(revisions) - start_count == len(applied)
    assert [r["number"] for r in revisions] == list(range(len(revisions), 0, -1))
    stored = {}
    for entry in revisions[: len(applied)]:
        document = server.api("GET", f"/revisions/{entry['number']}").json()["config"]
        stored[entry["number"]] = document["sites"][0]["routes"][0]["handle"][0]["body"]
    assert sorted(stored.values()) == sorted(applied), "each applied value is stored in exactly one revision"
    assert {value: number for number, value in stored.items()} == applied
    # The last applied value is the one running.
    last = max(applied, key=applied.get)
    assert server.config(BODY[7:])[0] == last
    assert server.fetch().text == last


def test_identical_config_is_unchanged_unless_revalidated(server):
    config, revision = server.config()
    count = len(server.revisions())

    response = server.api("POST", "/load", config)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "unchanged", "revision": revision}
    assert response.headers["ETag"] == f'"{revision}"'
    assert len(server.revisions()) == count
    # Same for a no-op edit at a path.
    response = server.api("PATCH", BODY, "hello\n")
    assert response.json() == {"status": "unchanged", "revision": revision}
    assert len(server.revisions()) == count

    response = server.api("POST", "/load", config, headers={"Cache-Control": "must-revalidate"})
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "applied", "revision": revision + 1}
    revisions = server.revisions()
    assert len(revisions) == count + 1
    assert revisions[0]["sha256"] == revisions[1]["sha256"]
    assert server.api("GET", f"/revisions/{revision + 1}").json()["config"] == config
    assert server.config() == (config, revision + 1)
    assert server.fetch().text == "hello\n"


def test_identical_config_in_another_key_order_is_unchanged(server):
    """"Identical" is about the config, not the bytes a client happened to send."""
    _, revision = server.config()
    reordered = {key: value for key, value in reversed(list(site_config(server.http_port).items()))}
    response = server.api("POST", "/load", reordered)
    assert response.json() == {"status": "unchanged", "revision": revision}

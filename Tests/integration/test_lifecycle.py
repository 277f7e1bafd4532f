"""`velocity run` from start to stop, its data directory and config file, the admin API's transports and
authentication, and the CLI commands that talk to a running server."""

import hashlib
import json
import os
import re
import signal
import sqlite3
import stat
import time
from pathlib import Path

import pytest
import requests

from h3_clients import niquests_get
from velocity import cli, free_port, port_is_free, site_config, unix_request

BODY = "/config/sites/0/routes/0/handle/0/body"


def wait_for(condition, timeout: float = 10, message: str = "condition"):
    """Polls `condition` until it returns something truthy, which it returns."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def stored_revisions(database) -> list[tuple]:
    """(number, source, who, document) of every stored revision, straight from the SQLite file."""
    db = sqlite3.connect(database)
    try:
        return db.execute("SELECT number, source, who, document FROM revisions ORDER BY number").fetchall()
    finally:
        db.close()


def write_json(path: Path, value) -> str:
    """Writes atomically (a watcher never sees half a file) and returns the path as a string."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(value if isinstance(value, str) else json.dumps(value))
    temporary.replace(path)
    return str(path)


@pytest.fixture
def http_server(make_velocity):
    """Like `server`, from the `make_velocity` factory so that a test can also make more."""
    instance = make_velocity()
    instance.http_port = free_port()
    return instance.start(site_config(instance.http_port))


# --- stopping and resuming ------------------------------------------------------------------------------------


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_graceful_stop_on_signal(http_server, signal_number):
    http_server.process.send_signal(signal_number)
    assert http_server.process.wait(10) == 0
    assert "velocity stopping" in http_server.log()
    assert port_is_free(http_server.admin_port)
    assert port_is_free(http_server.http_port)


def test_stop_with_upstreams_schedules_nothing_on_stopped_loops(make_velocity):
    """Upstreams outlive the event loops in the last snapshot; stopping must not leave them work to schedule
    (SWIFTNIO_STRICT turns that mistake into a crash)."""
    server = make_velocity()
    server.http_port = free_port()
    proxy = {"handler": "reverse_proxy", "upstreams": [{"dial": f"127.0.0.1:{free_port()}"}]}
    config = site_config(server.http_port)
    config["sites"][0]["routes"][0]["handle"] = [proxy]
    server.start(config, env={"SWIFTNIO_STRICT": "1"})
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(10) == 0
    assert "Cannot schedule tasks" not in server.log()


def test_graceful_stop_on_post_stop(make_velocity):
    """The request that asks for the stop gets its answer before the server goes (tried a few times, since
    losing it is a race)."""
    for _ in range(10):
        server = make_velocity()
        server.http_port = free_port()
        server.start(site_config(server.http_port))
        response = server.api("POST", "/stop")
        assert response.status_code == 200
        assert response.json() == {"status": "stopping"}
        assert server.process.wait(10) == 0
        assert port_is_free(server.admin_port)
        assert port_is_free(server.http_port)


def test_resumes_latest_revision(http_server):
    assert http_server.api("PATCH", BODY, "changed\n").status_code == 200
    before = http_server.config()
    assert before[1] == 2
    assert http_server.stop() == 0
    http_server.start()  # no --config
    assert http_server.config() == before
    assert http_server.fetch().text == "changed\n"
    assert len(http_server.revisions()) == 2


def test_empty_store_starts_welcome_site(make_velocity, tmp_path):
    for port in (8080, 8443):
        if not port_is_free(port, "0.0.0.0"):
            pytest.skip(f"port {port} is in use by another process, and the embedded welcome site listens on it")
    server = make_velocity().start()
    root = tmp_path / "root.pem"
    root.write_text(cli("ca", "export", "--data-dir", server.data_dir).stdout)
    # HTTP redirects to HTTPS, which the internal CA's certificate makes trusted.
    redirect = requests.get("http://127.0.0.1:8080/", timeout=10, allow_redirects=False)
    assert (redirect.status_code, redirect.headers["Location"]) == (308, "https://127.0.0.1:8443/")
    response = requests.get("http://localhost:8080/", timeout=10, verify=str(root))
    assert response.url == "https://localhost:8443/" and response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Velocity is running" in response.text
    # HTTP/3 on the same port, advertised to browsers and answering a post-quantum client.
    assert response.headers["Alt-Svc"] == 'h3=":8443"; ma=86400'
    over_h3 = niquests_get("https://localhost:8443/", str(root))
    assert (over_h3.status, over_h3.protocol) == (200, "h3") and b"Velocity is running" in over_h3.body
    [revision] = server.revisions()
    assert (revision["number"], revision["source"]) == (1, "default")
    assert server.stop() == 0
    assert port_is_free(8080, "0.0.0.0") and port_is_free(8443, "0.0.0.0")


# --- the data directory ---------------------------------------------------------------------------------------


def test_database_file_is_private(http_server):
    assert http_server.api("PATCH", BODY, "changed\n").status_code == 200
    files = [p for p in Path(http_server.data_dir).iterdir() if p.name.startswith("velocity.sqlite")]
    assert http_server.database in files
    for path in files:  # the database and its -wal and -shm files
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_data_dir_from_environment(make_velocity, tmp_path):
    server = make_velocity()
    server.http_port = free_port()
    data = tmp_path / "from-env" / "velocity"  # does not exist yet
    elsewhere = tmp_path / "xdg"
    env = {"VELOCITY_DATA_DIR": str(data), "XDG_DATA_HOME": str(elsewhere), "HOME": str(tmp_path / "home")}
    server.start(site_config(server.http_port), env=env, data_dir_flag=False)
    assert (data / "velocity.sqlite").exists()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "velocity.sqlite").stat().st_mode) == 0o600
    assert not elsewhere.exists() and not (tmp_path / "home").exists()
    assert not server.database.exists()  # the helper's own directory only holds the log
    assert server.fetch().text == "hello\n"


# --- --config and --watch -------------------------------------------------------------------------------------


def test_config_file_on_non_empty_store_is_a_new_revision(http_server, tmp_path):
    assert http_server.api("PATCH", BODY, "changed\n").status_code == 200
    http_server.stop()
    new = site_config(http_server.http_port, body="from the file\n")
    path = write_json(tmp_path / "new.json", new)

    http_server.start(None, "--config", path)
    assert http_server.config() == (new, 3)
    latest = http_server.revisions()[0]
    assert (latest["number"], latest["source"], latest["who"]) == (3, "file", path)
    assert http_server.fetch().text == "from the file\n"

    # The same file again is no change at all.
    http_server.stop()
    http_server.start(None, "--config", path)
    assert http_server.config() == (new, 3)
    assert len(http_server.revisions()) == 3


@pytest.mark.parametrize(
    "content, expected",
    [
        (lambda port: json.dumps(site_config(port, body="x")).replace(f"127.0.0.1:{port}", "nonsense"),
         "/listeners/0/address"),
        (lambda port: '{"a": tru}', "byte 6"),
        (lambda port: json.dumps({"listeners": [], "sitez": []}), "/sitez"),
    ],
)
@pytest.mark.parametrize("store", ["empty", "non-empty"])
def test_invalid_config_file_exits_non_zero(make_velocity, tmp_path, content, expected, store):
    server = make_velocity()
    server.http_port = free_port()
    if store == "non-empty":
        server.start(site_config(server.http_port))
        assert server.api("PATCH", BODY, "changed\n").status_code == 200
        assert server.stop() == 0
    before = stored_revisions(server.database) if store == "non-empty" else []
    path = write_json(tmp_path / "bad.json", content(server.http_port))

    result = cli("run", "--data-dir", server.data_dir, "--admin", server.admin_address, "--config", path)
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr
    if before or server.database.exists():
        assert stored_revisions(server.database) == before
    assert port_is_free(server.admin_port) and port_is_free(server.http_port)


def test_watch_reimports_the_file(make_velocity, tmp_path):
    server = make_velocity()
    server.http_port = free_port()
    path = tmp_path / "watched.json"
    write_json(path, site_config(server.http_port))
    server.start(None, "--config", str(path), "--watch")
    assert server.fetch().text == "hello\n"

    write_json(path, site_config(server.http_port, body="edited\n"))
    wait_for(lambda: server.config(BODY[7:])[0] == "edited\n", message="the edit to be imported")
    assert server.fetch().text == "edited\n"
    latest = server.revisions()[0]
    assert (latest["source"], latest["who"]) == ("file", str(path))
    good = server.state()

    # A broken edit is logged and skipped; the server keeps the last good revision.
    for broken in ('{"listeners": [', json.dumps(site_config(server.http_port, body="x")).replace('"http"', '"htp"')):
        logged = server.log().count("config file not applied")
        write_json(path, broken)
        wait_for(lambda: server.log().count("config file not applied") > logged, message="the broken edit logged")
        assert server.state() == good
        assert server.process.poll() is None

    # And it keeps watching.
    write_json(path, site_config(server.http_port, body="fixed\n"))
    wait_for(lambda: server.fetch().text == "fixed\n", message="the fixed file to be imported")


# --- admin transports and authentication ----------------------------------------------------------------------


def test_admin_on_unix_socket(make_velocity, tmp_path):
    sock = tmp_path / "admin.sock"
    server = make_velocity(admin=f"unix:{sock}")
    server.http_port = free_port()
    server.start(site_config(server.http_port))
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600

    status, body = unix_request(str(sock), "GET", "/config/")
    assert status == 200 and json.loads(body) == site_config(server.http_port)
    status, body = unix_request(str(sock), "PATCH", BODY, "over a unix socket\n")
    assert status == 200, body
    assert json.loads(body) == {"status": "applied", "revision": 2}
    assert server.fetch().text == "over a unix socket\n"
    status, _ = unix_request(str(sock), "PATCH", "/config/listeners/0/address", "nonsense")
    assert status == 400
    # The CLI speaks to it as well.
    result = cli("revisions", "--admin", f"unix:{sock}")
    assert result.returncode == 0, result.stderr
    assert len(re.findall(r"^\d+ ", result.stdout, re.M)) == 2


def test_non_loopback_admin_requires_bearer_token(make_velocity):
    token = "correct horse battery staple"
    port = free_port()
    admin = {"listen": f"0.0.0.0:{port}", "auth": {"bearer_token_sha256": [hashlib.sha256(token.encode()).hexdigest()]}}
    server = make_velocity(admin=f"0.0.0.0:{port}", admin_port=port, token=token)
    server.http_port = free_port()
    server.start(site_config(server.http_port, admin=admin))

    url = f"{server.admin}/config/"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": f"Basic {token}"}, timeout=10).status_code == 401
    assert requests.patch(f"{server.admin}{BODY}", json="sneaky\n", timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    assert server.api("PATCH", BODY, "authorized\n").status_code == 200
    assert server.fetch().text == "authorized\n"
    # The CLI sends $VELOCITY_ADMIN_TOKEN.
    assert cli("revisions", "--admin", f"127.0.0.1:{port}").returncode != 0
    result = cli("revisions", "--admin", f"127.0.0.1:{port}", env={**os.environ, "VELOCITY_ADMIN_TOKEN": token})
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("address", ["0.0.0.0:{port}", ":{port}"])
def test_non_loopback_admin_without_auth_is_refused(make_velocity, address):
    """`--admin` on every interface with no authentication configured must not serve an open admin API."""
    port = free_port()
    server = make_velocity(admin=address.format(port=port), admin_port=port)
    server.http_port = free_port()
    server.start(site_config(server.http_port), wait=False)

    def settled():
        if server.process.poll() is not None:
            return "exited"
        try:
            return f"answered {requests.get(f'{server.admin}/config/', timeout=1).status_code}"
        except requests.ConnectionError:
            return None

    outcome = wait_for(settled, message="the server to exit or answer")
    if outcome.startswith("answered"):
        assert outcome == "answered 401", f"an unauthenticated admin API on {server.admin_address}: {outcome}"
    else:
        assert server.process.returncode != 0
        assert "auth" in server.log()


# --- CLI commands against a running server --------------------------------------------------------------------


def test_cli_reload(http_server, tmp_path):
    admin = ["--admin", http_server.admin_address]
    new = site_config(http_server.http_port, body="reloaded\n")
    path = write_json(tmp_path / "new.json", new)

    result = cli("reload", path, *admin)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == {"status": "applied", "revision": 2}
    assert http_server.config() == (new, 2)
    assert http_server.fetch().text == "reloaded\n"

    assert json.loads(cli("reload", path, *admin).stdout) == {"status": "unchanged", "revision": 2}
    assert json.loads(cli("reload", path, "--force", *admin).stdout) == {"status": "applied", "revision": 3}

    bad = write_json(tmp_path / "bad.json", {**new, "listeners": [{"protocol": "http", "address": "nonsense"}]})
    result = cli("reload", bad, *admin)
    assert result.returncode == 1
    assert json.loads(result.stdout)["pointer"] == "/listeners/0/address"
    assert http_server.config() == (new, 3)


def test_cli_revisions(http_server):
    assert http_server.api("PATCH", BODY, "changed\n").status_code == 200
    result = cli("revisions", "--admin", http_server.admin_address)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["REVISION", "TIME", "SOURCE", "WHO"]
    assert [row.split()[0] for row in rows] == ["2", "1"]
    assert [row.split()[2] for row in rows] == ["api", "file"]
    # $VELOCITY_ADMIN stands in for --admin; --limit limits.
    result = cli("revisions", "--limit", "1", env={**os.environ, "VELOCITY_ADMIN": http_server.admin_address})
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_cli_rollback(http_server):
    first, _ = http_server.config()
    assert http_server.api("PATCH", BODY, "changed\n").status_code == 200

    result = cli("rollback", "1", "--admin", http_server.admin_address)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == {"status": "applied", "revision": 3}
    assert http_server.config() == (first, 3)
    assert http_server.fetch().text == "hello\n"
    latest = http_server.revisions()[0]
    assert (latest["number"], latest["source"]) == (3, "rollback")
    assert latest["sha256"] == http_server.revisions()[2]["sha256"]

    result = cli("rollback", "99", "--admin", http_server.admin_address)
    assert result.returncode == 1
    assert "no revision 99" in json.loads(result.stdout)["error"]
    assert len(http_server.revisions()) == 3


def test_cli_against_no_server():
    result = cli("revisions", "--admin", f"127.0.0.1:{free_port()}")
    assert result.returncode != 0
    assert "cannot reach" in result.stderr


def test_cli_version():
    result = cli("version")
    assert result.returncode == 0
    assert re.fullmatch(r"velocity \d+\.\d+\.\d+\n", result.stdout)
    assert cli("--version").stdout.strip() == result.stdout.split()[1]


def test_cli_validate(tmp_path):
    port = free_port()
    good = write_json(tmp_path / "good.json", site_config(port))
    result = cli("validate", good)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout

    bad = write_json(tmp_path / "bad.json", site_config(port, body=7))
    result = cli("validate", bad)
    assert result.returncode == 1
    assert "/sites/0/routes/0/handle/0/body" in result.stderr
    result = cli("validate", bad, "--json")
    assert result.returncode == 1
    verdict = json.loads(result.stdout)
    assert (verdict["valid"], verdict["pointer"]) == (False, "/sites/0/routes/0/handle/0/body")

    malformed = write_json(tmp_path / "malformed.json", '{"a": tru}')
    verdict = json.loads(cli("validate", malformed, "--json").stdout)
    assert (verdict["valid"], verdict["offset"]) == (False, 6)

    # Collisions with the admin address: the default one, or the one given.
    on_admin = write_json(tmp_path / "on-admin.json", site_config(2019))
    assert cli("validate", on_admin).returncode == 1
    assert cli("validate", on_admin, "--admin", f"127.0.0.1:{port}").returncode == 0

import requests

from velocity import Velocity, free_port, site_config


def test_serves_and_changes(server):
    assert requests.get(f"http://127.0.0.1:{server.http_port}/").text == "hello\n"
    response = server.api("PATCH", "/id/answer/handle/0/body", "changed\n")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "applied", "revision": 2}
    assert response.headers["ETag"] == '"2"'
    assert requests.get(f"http://127.0.0.1:{server.http_port}/").text == "changed\n"


def test_admin_listen_moves_at_runtime():
    first, second = free_port(), free_port()
    instance = Velocity(admin_port=first)
    http_port = free_port()
    config = site_config(http_port, admin={"listen": f"127.0.0.1:{first}"})
    try:
        instance.start(config, pin_admin=False)  # the config's admin.listen is authoritative
        moved = instance.api("POST", "/config/admin/listen", f"127.0.0.1:{second}")
        assert moved.status_code == 200, moved.text
        instance.admin_port = second
        assert instance.api("GET", "/health").json()["revision"] == 2
        try:
            requests.get(f"http://127.0.0.1:{first}/health", timeout=2)
            raise AssertionError("the old admin address still answers")
        except requests.ConnectionError:
            pass
    finally:
        instance.stop()

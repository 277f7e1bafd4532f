import requests


def test_serves_and_changes(server):
    assert requests.get(f"http://127.0.0.1:{server.http_port}/").text == "hello\n"
    response = server.api("PATCH", "/id/answer/handle/0/body", "changed\n")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "applied", "revision": 2}
    assert response.headers["ETag"] == '"2"'
    assert requests.get(f"http://127.0.0.1:{server.http_port}/").text == "changed\n"

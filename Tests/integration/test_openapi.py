"""api/openapi.yaml against a running server: the spec is valid, every operation in it answers as documented
(status listed, body and headers matching their schemas), and the documented error statuses really occur."""

import hashlib
import http.client
import json
from functools import reduce

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource

from velocity import ROOT, Velocity, site_config

SPEC_FILE = ROOT / "api" / "openapi.yaml"
SPEC = yaml.safe_load(SPEC_FILE.read_text())
CONFIG_SCHEMA = ROOT / "schema" / "velocity.schema.json"
# The spec refers to the config schema by relative path; this registry lets response checks follow it.
REGISTRY = Registry().with_resource(
    CONFIG_SCHEMA.as_uri(), Resource.from_contents(json.loads(CONFIG_SCHEMA.read_text()))
)
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}  # OpenAPI operations
ROUTE = {"handle": [{"handler": "static_response", "body": "more\n"}]}
STOP = ("/stop", "post")


def calls(port: int) -> list:
    """One request per operation, in an order where each makes sense on a server started with site_config(port):
    (spec path, method, request path, JSON body, headers, expected status)."""
    config = site_config(port)
    return [
        ("/config/", "get", "/config/", None, {}, 200),
        ("/config/", "post", "/config/", config, {"If-Match": '"1"'}, 200),
        ("/config/", "put", "/config/", config, {}, 409),
        ("/config/", "patch", "/config/", config, {}, 200),
        ("/config/{path}", "get", "/config/sites", None, {}, 200),
        ("/config/{path}", "post", "/config/sites", {"hosts": ["example.org"]}, {}, 200),
        ("/config/{path}/...", "post", "/config/sites/...", [{"hosts": ["example.net"]}], {}, 200),
        ("/config/{path}", "put", "/config/logging", {"@id": "log", "level": "info"}, {}, 200),
        ("/config/{path}", "patch", "/config/logging/level", "debug", {}, 200),
        ("/id/{id}", "post", "/id/log", {"@id": "log", "level": "warning"}, {}, 200),
        ("/config/{path}", "delete", "/config/logging", None, {}, 200),
        ("/id/{id}", "get", "/id/main", None, {}, 200),
        ("/id/{id}/{path}", "get", "/id/main/routes", None, {}, 200),
        ("/id/{id}/{path}", "post", "/id/main/routes", ROUTE, {}, 200),
        ("/id/{id}/{path}/...", "post", "/id/main/routes/...", [ROUTE], {}, 200),
        ("/id/{id}/{path}", "put", "/id/main/hosts", ["example.com"], {}, 200),
        ("/id/{id}/{path}", "patch", "/id/answer/handle/0/body", "changed\n", {}, 200),
        ("/id/{id}/{path}", "delete", "/id/main/hosts", None, {}, 200),
        ("/id/{id}", "put", "/id/answer", ROUTE, {}, 200),  # inserts a route before "answer"
        ("/id/{id}", "patch", "/id/answer", {"@id": "answer", "handle": []}, {}, 200),
        ("/id/{id}", "delete", "/id/answer", None, {}, 200),
        ("/load", "post", "/load", config, {}, 200),
        ("/adapt", "post", "/adapt", config, {}, 200),
        ("/revisions", "get", "/revisions?limit=5&before=3", None, {}, 200),
        ("/revisions/{n}", "get", "/revisions/1", None, {}, 200),
        ("/revisions/{n}/rollback", "post", "/revisions/1/rollback", None, {}, 200),
        ("/certificates", "get", "/certificates", None, {}, 200),
        ("/upstreams", "get", "/upstreams", None, {}, 200),
        ("/pki/ca/local", "get", "/pki/ca/local", None, {}, 200),
        ("/metrics", "get", "/metrics", None, {}, 200),
        ("/health", "get", "/health", None, {}, 200),
        ("/config/", "delete", "/config/", None, {}, 200),
    ]


def deref(node: dict) -> dict:
    while "$ref" in node:
        node = reduce(lambda parent, key: parent[key], node["$ref"].removeprefix("#/").split("/"), SPEC)
    return node


def conforms(value, schema: dict) -> None:
    # OpenAPI 3.1 schemas are JSON Schema 2020-12; embedding the components lets "#/components/..." resolve.
    root = {"$id": SPEC_FILE.as_uri(), "components": SPEC["components"], **schema}
    Draft202012Validator(root, registry=REGISTRY).validate(value)


def check_answer(path: str, method: str, status: int, headers, body: bytes) -> None:
    """The status is documented for the operation, and the documented headers and body schema hold."""
    responses = SPEC["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path}: {status} is not documented: {body!r}"
    documented = deref(responses[str(status)])
    for name, header in documented.get("headers", {}).items():
        conforms(headers[name], deref(header)["schema"])
    media = headers["Content-Type"].split(";")[0]
    assert media in documented["content"], f"{method.upper()} {path} {status}: undocumented {media}"
    if media == "application/json":
        conforms(json.loads(body), documented["content"][media]["schema"])


def send(server: Velocity, method: str, path: str, body=None, headers=None, raw=None, declared_length=None):
    """(status, headers, body) of one request; `declared_length` announces a body that is never sent."""
    if declared_length is None:
        response = server.api(method, path, body, headers=headers, raw=raw)
        return response.status_code, response.headers, response.content
    connection = http.client.HTTPConnection("127.0.0.1", server.admin_port, timeout=30)
    connection.putrequest(method, path)
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(declared_length))
    connection.endheaders()
    response = connection.getresponse()
    answer = response.status, response.headers, response.read()
    connection.close()
    return answer


def test_spec_is_valid_openapi():
    validate(SPEC, base_uri=SPEC_FILE.as_uri())


def test_spec_lists_exactly_the_tested_operations():
    spec = {(path, method) for path, item in SPEC["paths"].items() for method in item if method in METHODS}
    tested = {(path, method) for path, method, *_ in calls(0)} | {STOP}
    assert spec == tested


def test_every_operation_answers_as_documented(server):
    for path, method, target, body, headers, expected in calls(server.http_port):
        status, answer_headers, answer = send(server, method.upper(), target, body, headers)
        assert status == expected, f"{method.upper()} {target}: {answer!r}"
        check_answer(path, method, status, answer_headers, answer)


def test_stop_answers_as_documented(server):
    status, headers, body = send(server, "POST", "/stop")
    assert status == 200
    check_answer(*STOP, status, headers, body)
    assert server.process.wait(20) == 0


# PATCH /config/{path} shows every status it documents except 500 (200 above, 401 in test_bearer_token).
@pytest.mark.parametrize(
    "path, method, target, request_args, status, details",
    [
        pytest.param(
            "/config/{path}", "patch", "/config/logging", {"body": {"level": "info"}}, 404, {"pointer": "/logging"},
            id="replace-absent",
        ),
        pytest.param(
            "/config/{path}", "patch", "/config/listeners/0/protocol", {"body": "gopher"},
            400, {"pointer": "/listeners/0/protocol"}, id="invalid-config",
        ),
        pytest.param(
            "/config/{path}", "patch", "/config/sites",
            {"body": [{"op": "test", "path": "/0/@id", "value": "x"}],
             "headers": {"Content-Type": "application/json-patch+json"}},
            409, {"pointer": "/sites/0/@id"}, id="json-patch-test-fails",
        ),
        pytest.param(
            "/config/{path}", "patch", "/config/sites/0/hosts", {"body": [], "headers": {"If-Match": '"7"'}},
            412, {"revision": 1}, id="stale-if-match",
        ),
        pytest.param(
            "/config/{path}", "patch", "/config/sites", {"raw": b"[]", "headers": {"Content-Type": "text/yaml"}},
            415, {"content_type": "text/yaml"}, id="not-json",
        ),
        pytest.param(
            "/config/{path}", "patch", "/config/sites", {"declared_length": 4 * 1024 * 1024 + 1},
            413, {"limit": 4 * 1024 * 1024}, id="over-default-limit",
        ),
        pytest.param(
            "/config/{path}", "patch", "/config/sites", {"body": [], "headers": {"Host": "evil.example"}},
            403, {}, id="foreign-host",
        ),
        pytest.param(
            "/config/", "get", "/config/", {"headers": {"Origin": "http://evil.example"}}, 403, {}, id="foreign-origin"
        ),
        pytest.param(
            "/health", "get", "/health", {"headers": {"Upgrade": "websocket", "Connection": "Upgrade"}}, 400, {},
            id="upgrade",
        ),
        pytest.param(
            "/config/{path}", "put", "/config/sites", {"body": []}, 409, {"pointer": "/sites"}, id="put-existing"
        ),
        pytest.param(
            "/config/{path}", "post", "/config/sites/0", {"body": {}}, 400, {"pointer": "/sites/0"},
            id="post-array-index",
        ),
        pytest.param(
            "/id/{id}", "post", "/id/answer", {"body": {}}, 400, {"pointer": "/sites/0/routes/0"},
            id="post-id-array-element",
        ),
        pytest.param(
            "/config/{path}/...", "post", "/config/sites/0/routes/...", {"body": {}}, 400, {}, id="splice-non-array"
        ),
        pytest.param(
            "/load", "post", "/load", {"raw": b'{"sites": [', "headers": {"Content-Type": "application/json"}},
            400, {"offset": 11}, id="malformed-json",
        ),
        pytest.param("/id/{id}", "get", "/id/nope", {}, 404, {}, id="unknown-id"),
        pytest.param("/revisions/{n}", "get", "/revisions/99", {}, 404, {}, id="unknown-revision"),
    ],
)
def test_documented_error_is_produced(server, path, method, target, request_args, status, details):
    answer_status, headers, body = send(server, method.upper(), target, **request_args)
    assert answer_status == status, body
    check_answer(path, method, answer_status, headers, body)
    assert json.loads(body).items() >= details.items()


def test_bearer_token(server):
    token = "s3cret"
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert server.api("POST", "/config/admin", {"auth": {"bearer_token_sha256": [digest]}}).status_code == 200
    for headers in [{}, {"Authorization": "Bearer wrong"}]:
        status, answer_headers, body = send(server, "PATCH", "/config/sites/0/hosts", [], headers)
        assert status == 401
        assert answer_headers["WWW-Authenticate"].startswith("Bearer")
        check_answer("/config/{path}", "patch", status, answer_headers, body)
    assert server.api("GET", "/health", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_unlisted_method_is_405(server):
    response = server.api("GET", "/load")
    assert response.status_code == 405
    conforms(response.json(), SPEC["components"]["schemas"]["Error"])
    assert response.json()["allow"] == response.headers["Allow"] == "POST"
    on_config = server.api("OPTIONS", "/config/")
    assert on_config.status_code == 405
    assert on_config.headers["Allow"] == "GET, POST, PUT, PATCH, DELETE"


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_patch_media_types_are_only_for_patch(server, method):
    response = server.api(
        method, "/config/logging", raw=b'{"level": "debug"}', headers={"Content-Type": "application/merge-patch+json"}
    )
    assert response.status_code == 415
    assert server.api("GET", "/revisions").json()[0]["number"] == 1


@pytest.mark.parametrize("query", ["limit=abc", "limit=0", "before=2x", "before=-1"])
def test_bad_revision_queries_are_refused(server, query):
    assert server.api("GET", f"/revisions?{query}").status_code == 400


def test_absolute_form_targets_are_understood(server):
    import socket

    with socket.create_connection(("127.0.0.1", server.admin_port), timeout=5) as sock:
        sock.sendall(f"GET http://127.0.0.1:{server.admin_port}/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200"), reply


def test_json_patch_errors_point_into_the_config(server):
    response = server.api(
        "PATCH", "/config/sites", raw=b'[{"op": "bogus", "path": "/0"}]',
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 400
    assert response.json()["pointer"] == "/sites"  # the value the patch applies to, not a place in the patch
    assert "patch operation 0" in response.json()["error"]


def test_origins_on_default_ports_match():
    from velocity import Velocity, free_port, site_config

    instance = Velocity()
    try:
        instance.start(site_config(free_port(), admin={"allowed_origins": ["https://console.example"]}))
        allowed = instance.api("GET", "/health", headers={"Origin": "https://console.example:443"})
        assert allowed.status_code == 200
        assert instance.api("GET", "/health", headers={"Origin": "https://console.example:8443"}).status_code == 403
    finally:
        instance.stop()


def test_unchanged_unless_must_revalidate(server):
    unchanged = server.api("PATCH", "/id/answer/handle/0/body", "hello\n")
    assert unchanged.json() == {"status": "unchanged", "revision": 1}
    assert unchanged.headers["ETag"] == '"1"'
    forced = server.api("PATCH", "/id/answer/handle/0/body", "hello\n", headers={"Cache-Control": "must-revalidate"})
    assert forced.json() == {"status": "applied", "revision": 2}
    assert forced.headers["ETag"] == '"2"'

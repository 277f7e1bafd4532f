"""Handlers that pass the request on — rewrite, encode, basic_auth, subroute — chained in front of file_server,
static_response and redirect, over real sockets: curl over HTTP/1.1 (plain TCP) and HTTP/2 (TLS, ALPN h2) for
every case, httpx and raw sockets where they add something. Rewrites are observed through a redirect's Location
(built from the request as the redirect sees it) and through the files and routes they select."""

import base64
import gzip
import json
import os
import re
import ssl
import subprocess
import time

import brotli
import httpx
import pytest

from velocity import cli, dechunk, site_config

PROBE = {"handler": "redirect", "to": "http://probe.test{uri}", "status": 307}


def decode(reply) -> bytes:
    """The body of `reply` with its Content-Encoding undone."""
    encoding = reply.header("content-encoding")
    if encoding == "br":
        return brotli.decompress(reply.body)
    if encoding == "gzip":
        return gzip.decompress(reply.body)
    assert encoding is None, reply
    return reply.body


def static(body: str, **extra) -> dict:
    return {"handler": "static_response", "body": body, **extra}


# --- rewrite -----------------------------------------------------------------------------------------------


def test_strip_prefix_in_front_of_file_server(tmp_path, serve, protocol):
    (tmp_path / "sub").mkdir()
    for name, data in {"app.css": "body {}\n", "index.html": "<p>home</p>\n", "staticfoo": "unchanged path\n",
                       "foo": "WRONG: stripped inside a segment\n", "sub/page.txt": "sub page\n",
                       "hello world.txt": "spaced\n"}.items():
        (tmp_path / name).write_text(data)
    rewrite = {"handler": "rewrite", "strip_prefix": "/static"}
    site = serve([{"handle": [rewrite, {"handler": "file_server", "root": str(tmp_path)}]}], protocol)
    css = site.get("/static/app.css?v=3")
    assert (css.status, css.body) == (200, b"body {}\n"), css  # no redirect: the client never sees /app.css
    assert css.header("content-type") == "text/css; charset=utf-8"
    assert css.header("location") is None
    assert site.get("/static/sub/page.txt").body == b"sub page\n"
    assert site.get("/static/hello%20world.txt").body == b"spaced\n"
    assert site.get("/static").body == b"<p>home</p>\n"  # "/static" becomes "/"
    assert site.get("/static/").body == b"<p>home</p>\n"
    assert site.get("/staticfoo").body == b"unchanged path\n"  # only at a segment boundary
    assert site.get("/app.css").body == b"body {}\n"  # a path without the prefix is left alone


REWRITES = {
    # name: (rewrite handler options, request target, the URI the next handler sees)
    "strip": ({"strip_prefix": "/api"}, "/api/users?id=7", "/users?id=7"),
    "strip-whole": ({"strip_prefix": "/api"}, "/api", "/"),
    "strip-boundary": ({"strip_prefix": "/api"}, "/apifoo/x?y=1", "/apifoo/x?y=1"),
    "strip-deep": ({"strip_prefix": "/api/v1"}, "/api/v1/items/3", "/items/3"),
    "keep-query": ({"uri": "/new{path}"}, "/a/b?x=1&y=2", "/new/a/b?x=1&y=2"),
    "query-template": ({"uri": "/search?q={path}&{query}"}, "/term?page=2", "/search?q=/term&page=2"),
    "replace-query": ({"uri": "/fixed?only=1"}, "/x?a=b", "/fixed?only=1"),
    "strip-then-uri": ({"strip_prefix": "/api", "uri": "/v2{path}"}, "/api/users?id=7", "/v2/users?id=7"),
    "uri-placeholder": ({"uri": "/wrapped?was={uri}"}, "/p/q", "/wrapped?was=/p/q"),
}


def test_rewrite_templates(serve, protocol):
    routes = [
        {"match": [{"header": {"X-Case": [name]}}], "handle": [{"handler": "rewrite", **options}, PROBE]}
        for name, (options, _, _) in REWRITES.items()
    ]
    request_placeholders = {"uri": "/m/{method}/{host}/{scheme}/{remote_ip}"}
    routes.append({"match": [{"header": {"X-Case": ["request"]}}],
                   "handle": [{"handler": "rewrite", **request_placeholders}, PROBE]})
    site = serve(routes, protocol)
    for name, (_, target, seen) in REWRITES.items():
        reply = site.request(target, headers={"X-Case": name})
        assert reply.status == 307, (name, reply)
        assert reply.header("location") == f"http://probe.test{seen}", (name, reply)
    reply = site.request("/x", headers={"X-Case": "request"})
    assert reply.header("location") == f"http://probe.test/m/GET/127.0.0.1/{site.scheme}/127.0.0.1", reply


def test_later_routes_match_the_rewritten_path(serve, protocol):
    site = serve(
        [
            {"match": [{"path": ["/old/*"]}], "handle": [{"handler": "rewrite", "strip_prefix": "/old", "uri": "/new{path}"}]},
            {"match": [{"path": ["/new/*"]}], "handle": [{"handler": "headers", "response": {"set": {"X-Seen": ["new"]}}}, PROBE]},
            {"match": [{"path": ["/old/*"]}], "handle": [static("old route\n")]},
            {"handle": [static("fallback\n")]},
        ],
        protocol,
    )
    reply = site.get("/old/page?x=1")
    assert (reply.status, reply.header("location")) == (307, "http://probe.test/new/page?x=1"), reply
    assert reply.header("x-seen") == "new"
    assert site.get("/elsewhere").body == b"fallback\n"


def test_single_page_app_rewrite(tmp_path, serve, protocol):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<div id=app></div>\n")
    (tmp_path / "assets" / "app.css").write_text("#app {}\n")
    site = serve(
        [
            {"match": [{"not": [{"path": ["/assets/*"]}]}], "handle": [{"handler": "rewrite", "uri": "/index.html"}]},
            {"handle": [{"handler": "file_server", "root": str(tmp_path)}]},
        ],
        protocol,
    )
    for target in ["/", "/users/42/profile", "/settings?tab=2"]:
        reply = site.get(target)
        assert (reply.status, reply.body) == (200, b"<div id=app></div>\n"), (target, reply)
        assert reply.header("content-type") == "text/html; charset=utf-8"
    assert site.get("/assets/app.css").body == b"#app {}\n"


# --- subroute ----------------------------------------------------------------------------------------------


def test_subroute_that_answers_nothing_falls_through(serve, protocol):
    site = serve(
        [
            {
                "handle": [
                    {"handler": "subroute"},  # no routes at all
                    {
                        "handler": "subroute",
                        "routes": [
                            {"match": [{"path": ["/api/*"]}], "handle": [static("api\n")]},
                            {"match": [{"path": ["/v1/*"]}],
                             "handle": [{"handler": "headers", "response": {"set": {"X-Sub": ["seen"]}}}]},
                        ],
                    },
                    static("after the subroute\n"),
                ]
            },
            {"handle": [static("next route\n")]},
        ],
        protocol,
    )
    assert site.get("/api/users").body == b"api\n"
    other = site.get("/other")
    assert (other.status, other.body, other.header("x-sub")) == (200, b"after the subroute\n", None), other
    passed = site.get("/v1/x")
    assert (passed.body, passed.header("x-sub")) == (b"after the subroute\n", "seen"), passed


def test_terminal_route_inside_a_subroute(serve, protocol):
    site = serve(
        [
            {
                "handle": [
                    {
                        "handler": "subroute",
                        "routes": [
                            {"match": [{"path": ["/stop/*"]}], "terminal": True,
                             "handle": [{"handler": "headers", "response": {"set": {"X-Stop": ["1"]}}}]},
                            {"handle": [static("inner\n")]},
                        ],
                    },
                    static("outer\n"),
                ]
            }
        ],
        protocol,
    )
    stopped = site.get("/stop/here")
    assert (stopped.body, stopped.header("x-stop")) == (b"outer\n", "1"), stopped
    assert site.get("/go/on").body == b"inner\n"


def test_subroute_with_file_server_pass_thru(tmp_path, serve, protocol):
    (tmp_path / "a.txt").write_text("file a\n")
    site = serve(
        [
            {
                "handle": [
                    {
                        "handler": "subroute",
                        "routes": [
                            {
                                "match": [{"path": ["/files/*"]}],
                                "handle": [
                                    {"handler": "rewrite", "strip_prefix": "/files"},
                                    {"handler": "file_server", "root": str(tmp_path), "pass_thru": True},
                                ],
                            }
                        ],
                    },
                    static("not a file\n", status=404),
                ]
            }
        ],
        protocol,
    )
    assert site.get("/files/a.txt").body == b"file a\n"
    for target in ["/files/missing.txt", "/a.txt"]:
        reply = site.get(target)
        assert (reply.status, reply.body) == (404, b"not a file\n"), (target, reply)


# --- encode ------------------------------------------------------------------------------------------------

TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog {i * i}\n" for i in range(400)).encode()
PAGE = b"<!doctype html><title>t</title>" + b"<p>paragraph of html text</p>\n" * 200
DATA = json.dumps([{"id": i, "name": f"item {i}", "tags": ["a", "b"]} for i in range(100)]).encode()
MID = json.dumps({"values": list(range(80))}).encode()  # between 100 and 512 bytes
SMALL = b"too small to be worth compressing\n"
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(4096)
APP_JS = b"console.log('precompressed');\n" * 100
SVG = b'<svg xmlns="http://www.w3.org/2000/svg">' + b'<rect width="10" height="10" fill="red"/>' * 40 + b"</svg>"


@pytest.fixture
def encode_root(tmp_path):
    files = {"big.txt": TEXT, "page.html": PAGE, "data.json": DATA, "mid.json": MID, "small.txt": SMALL,
             "pic.png": PNG, "logo.svg": SVG, "app.js": APP_JS, "app.js.gz": gzip.compress(APP_JS, mtime=0)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    assert 100 < len(MID) < 512 < len(TEXT)
    return tmp_path


def encoded_site(serve, root, protocol, encode: dict | None = None, **file_server):
    handlers = [{"handler": "encode", **(encode or {})}, {"handler": "file_server", "root": str(root), **file_server}]
    return serve([{"handle": handlers}], protocol)


def assert_compressed(reply, encoding: str, original: bytes, protocol: str):
    assert reply.status == 200, reply
    assert reply.header("content-encoding") == encoding, reply
    assert "accept-encoding" in reply.tokens("vary"), reply
    length = reply.header("content-length")
    assert length is None or int(length) == len(reply.body), reply  # never the length before compression
    assert decode(reply) == original
    assert len(reply.body) < len(original)


def assert_identity(reply, original: bytes):
    assert reply.header("content-encoding") is None, reply
    assert reply.body == original
    assert reply.header("content-length") == str(len(original)), reply


def test_encode_compresses_for_clients_that_accept_it(encode_root, serve, protocol):
    site = encoded_site(serve, encode_root, protocol)
    identity = site.get("/big.txt")
    assert_identity(identity, TEXT)
    etag = identity.header("etag")
    assert re.fullmatch(r'"[^"]+"', etag or ""), identity
    for accept, encoding in [("br", "br"), ("gzip", "gzip"), ("gzip, br", "br"), ("br, gzip", "br"),
                             ("br;q=0.5, gzip", "gzip"), ("gzip;q=1, br;q=0.9", "gzip"), ("deflate, gzip", "gzip"),
                             ("gzip;q=0.8, br;q=0.8", "br")]:
        reply = site.get("/big.txt", Accept_Encoding=accept)
        assert_compressed(reply, encoding, TEXT, protocol)
        assert reply.header("etag") == f"W/{etag}", (accept, reply)
        assert reply.header("content-type") == "text/plain; charset=utf-8"
    for accept in ["identity", "br;q=0, gzip;q=0", "deflate"]:
        assert_identity(site.get("/big.txt", Accept_Encoding=accept), TEXT)
    assert_compressed(site.get("/page.html", Accept_Encoding="br"), "br", PAGE, protocol)
    assert_compressed(site.get("/data.json", Accept_Encoding="gzip"), "gzip", DATA, protocol)
    assert_compressed(site.get("/logo.svg", Accept_Encoding="br"), "br", SVG, protocol)  # in the default types
    assert site.get("/logo.svg", Accept_Encoding="br").header("content-type") == "image/svg+xml"


def test_encode_frames_compressed_bodies(encode_root, serve, protocol):
    """A body read whole (files up to 64 KiB) is compressed whole and sent with its compressed length; a
    streamed file is compressed chunk by chunk with no length, which HTTP/1.1 frames as chunked."""
    big = b"".join(f"streamed line {i} of a file too large to read at once\n".encode() for i in range(4000))
    assert len(big) > 64 * 1024
    (encode_root / "stream.txt").write_bytes(big)
    site = encoded_site(serve, encode_root, protocol)
    for target, original in [("/big.txt", TEXT), ("/data.json", DATA)]:
        for encoding in ["br", "gzip"]:
            reply = site.get(target, Accept_Encoding=encoding)
            assert (reply.header("content-encoding"), decode(reply)) == (encoding, original), reply
            assert reply.header("content-length") == str(len(reply.body)), (target, encoding, reply.headers)
            assert len(reply.body) < len(original) / 2
    for encoding in ["br", "gzip"]:
        reply = site.get("/stream.txt", Accept_Encoding=encoding)
        assert (reply.header("content-encoding"), decode(reply)) == (encoding, big), reply.headers
        assert reply.header("content-length") is None, (encoding, reply.headers)
        if protocol == "h1":
            assert reply.header("transfer-encoding") == "chunked", (encoding, reply.headers)
    # On the wire, HTTP/1.1: chunked framing around the gzip stream.
    raw = site.raw("/stream.txt", headers={"Accept-Encoding": "gzip"})
    assert raw.header("transfer-encoding") == "chunked" and raw.header("content-length") is None, raw.headers
    assert gzip.decompress(dechunk(raw.body)) == big


def test_encode_leaves_small_bodies_images_ranges_and_304s_alone(encode_root, serve, protocol):
    site = encoded_site(serve, encode_root, protocol)
    for target, original in [("/small.txt", SMALL), ("/mid.json", MID), ("/pic.png", PNG)]:
        assert_identity(site.get(target, Accept_Encoding="br, gzip"), original)
    ranged = site.get("/big.txt", Accept_Encoding="br, gzip", Range="bytes=100-299")
    assert (ranged.status, ranged.header("content-encoding")) == (206, None), ranged
    assert ranged.body == TEXT[100:300]
    assert ranged.header("content-range") == f"bytes 100-299/{len(TEXT)}"
    etag = site.get("/big.txt").header("etag")
    for validator in [etag, f"W/{etag}"]:
        reply = site.get("/big.txt", Accept_Encoding="gzip", If_None_Match=validator)
        assert (reply.status, reply.body) == (304, b""), (validator, reply)
    # On the wire: a 304 carries no body at all (not even an empty gzip stream).
    raw = site.raw("/big.txt", headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert (raw.status, raw.body) == (304, b""), raw


def test_encode_head_says_what_get_would_do(encode_root, serve, protocol):
    site = encoded_site(serve, encode_root, protocol)
    head = site.head("/big.txt", Accept_Encoding="br")
    assert (head.status, head.body, head.header("content-encoding")) == (200, b"", "br"), head
    assert "accept-encoding" in head.tokens("vary")
    assert head.header("content-length") is None, head
    raw = site.raw("/big.txt", "HEAD", {"Accept-Encoding": "gzip"})
    assert raw.status == 200 and raw.header("content-encoding") == "gzip", raw
    assert raw.body == b"", raw  # not a byte of compressed output follows the header block
    plain = site.head("/small.txt", Accept_Encoding="br")
    assert (plain.header("content-encoding"), plain.header("content-length")) == (None, str(len(SMALL))), plain


def test_encode_options(encode_root, serve, protocol):
    options = {"encodings": ["gzip"], "minimum_length": 100, "types": ["application/json"]}
    site = encoded_site(serve, encode_root, protocol, options)
    assert_compressed(site.get("/data.json", Accept_Encoding="br, gzip"), "gzip", DATA, protocol)
    assert_compressed(site.get("/mid.json", Accept_Encoding="gzip"), "gzip", MID, protocol)  # above 100 bytes
    assert_identity(site.get("/data.json", Accept_Encoding="br"), DATA)  # br is not configured
    assert_identity(site.get("/big.txt", Accept_Encoding="gzip"), TEXT)  # text/plain is not in types
    preference = encoded_site(serve, encode_root, protocol, {"encodings": ["gzip", "br"]})
    assert preference.get("/big.txt", Accept_Encoding="br, gzip").header("content-encoding") == "gzip"
    assert preference.get("/big.txt", Accept_Encoding="br;q=1, gzip;q=0.5").header("content-encoding") == "br"


def test_encode_does_not_recompress_a_precompressed_file(encode_root, serve, protocol):
    site = encoded_site(serve, encode_root, protocol, precompressed=["gzip"])
    for accept in ["gzip", "br, gzip"]:
        reply = site.get("/app.js", Accept_Encoding=accept)
        assert reply.header("content-encoding") == "gzip", (accept, reply)
        assert reply.body == (encode_root / "app.js.gz").read_bytes(), accept
        assert gzip.decompress(reply.body) == APP_JS
    assert_compressed(site.get("/app.js", Accept_Encoding="br"), "br", APP_JS, protocol)


def test_encode_compresses_a_static_response(serve, protocol):
    text = "static response body, compressible. " * 100
    site = serve(
        [
            {"match": [{"path": ["/short"]}],
             "handle": [{"handler": "encode"}, static("short\n", headers={"Content-Type": ["text/plain"]})]},
            {"handle": [{"handler": "encode"}, static(text, headers={"Content-Type": ["text/plain; charset=utf-8"]})]},
        ],
        protocol,
    )
    assert_compressed(site.get("/", Accept_Encoding="br"), "br", text.encode(), protocol)
    assert_compressed(site.get("/", Accept_Encoding="gzip"), "gzip", text.encode(), protocol)
    assert_identity(site.get("/", Accept_Encoding="identity"), text.encode())
    assert_identity(site.get("/short", Accept_Encoding="br"), b"short\n")


def test_encode_streams_a_large_file(tmp_path, serve, protocol):
    words = [os.urandom(4).hex() for _ in range(2000)]
    data = " ".join(words[(i * 7919) % 2000] for i in range(900_000)).encode()  # about 8 MiB
    (tmp_path / "large.txt").write_bytes(data)
    site = encoded_site(serve, tmp_path, protocol)
    for encoding in ["br", "gzip"]:
        reply = site.request("/large.txt", headers={"Accept-Encoding": encoding}, timeout=120)
        assert_compressed(reply, encoding, data, protocol)


def test_httpx_decodes_what_encode_sends(encode_root, serve):
    """httpx with its own Accept-Encoding (gzip, deflate, br with brotli installed), decoding as browsers do."""
    site = encoded_site(serve, encode_root, "h2")
    context = ssl.create_default_context(cafile=site.cacert)
    with httpx.Client(http2=True, verify=context, timeout=30) as client:
        assert "br" in client.headers["accept-encoding"]
        for target, original in [("/big.txt", TEXT), ("/page.html", PAGE), ("/pic.png", PNG)]:
            response = client.get(site.url(target))
            assert response.http_version == "HTTP/2"
            assert response.content == original, target
        assert client.get(site.url("/big.txt")).headers["content-encoding"] == "br"


# --- basic_auth --------------------------------------------------------------------------------------------

ANN_PASSWORD = "correct: horse battery"  # a colon inside the password: only the first one splits
BOB_PASSWORD = "p\u00e4ssw\u00f6rd \u00fcn\u00efcode"
PLAIN_PASSWORD = "Tr0ub4dor&3-plaintext"


CY_PASSWORD = "given on the command line"


def hash_password(password: str, *args: str) -> str:
    """`velocity hash-password` reading `password` from stdin (no newline after it)."""
    result = cli("hash-password", *args, input=password, encoding="utf-8")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def hashes() -> dict[str, str]:
    """Hashes for three accounts: ann and bob through stdin, cy through --password (stdin empty)."""
    flag = cli("hash-password", "--cost", "10", "--password", CY_PASSWORD, stdin=subprocess.DEVNULL)
    assert flag.returncode == 0, flag.stderr
    return {
        "ann": hash_password(ANN_PASSWORD, "--cost", "10"),
        "bob": hash_password(BOB_PASSWORD, "--cost", "10"),
        "cy": flag.stdout.strip(),
    }


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def auth_handler(hashes: dict, **extra) -> dict:
    accounts = [{"username": name, "password": value} for name, value in hashes.items()]
    return {"handler": "basic_auth", "accounts": accounts, **extra}


SCRYPT = re.compile(r"\$scrypt\$ln=(\d+),r=8,p=1\$[A-Za-z0-9+/]{11,}\$[A-Za-z0-9+/]{22,}")


def test_hash_password_cli(hashes):
    assert SCRYPT.fullmatch(hashes["ann"]) and SCRYPT.fullmatch(hashes["ann"]).group(1) == "10", hashes
    assert ANN_PASSWORD not in hashes["ann"]
    again = hash_password(ANN_PASSWORD, "--cost", "10")
    assert SCRYPT.fullmatch(again) and again != hashes["ann"]  # a new salt every time
    default = hash_password("another password")
    assert SCRYPT.fullmatch(default).group(1) == "15", default
    assert SCRYPT.fullmatch(hashes["cy"]).group(1) == "10", hashes
    for cost in ["0", "25"]:
        refused = cli("hash-password", "--cost", cost, input="x")
        assert refused.returncode != 0 and not refused.stdout.startswith("$scrypt$"), (cost, refused)


def test_basic_auth_challenges_and_lets_the_right_password_through(hashes, serve, protocol):
    site = serve([{"handle": [auth_handler(hashes, realm="staff"), static("welcome\n")]}], protocol)
    refused = [
        {},
        {"Authorization": basic("ann", "wrong password")},
        {"Authorization": basic("ann", "correct")},  # the part before the colon inside the password
        {"Authorization": basic("ann", BOB_PASSWORD)},
        {"Authorization": basic("carol", ANN_PASSWORD)},
        {"Authorization": basic("Ann", ANN_PASSWORD)},
        {"Authorization": basic("ann", "")},
        {"Authorization": basic("ann", ANN_PASSWORD + " ")},
        {"Authorization": "Basic " + base64.b64encode(b"ann").decode()},  # no colon at all
        {"Authorization": "Basic !!!not-base64!!!"},
        {"Authorization": "Bearer " + base64.b64encode(f"ann:{ANN_PASSWORD}".encode()).decode()},
        {"Authorization": "Basic"},
    ]
    for headers in refused:
        reply = site.request("/", headers=headers)
        assert reply.status == 401, (headers, reply)
        assert reply.header("www-authenticate") == 'Basic realm="staff", charset="UTF-8"', reply
        assert b"welcome" not in reply.body
    for headers in [{"Authorization": basic("ann", ANN_PASSWORD)}, {"Authorization": basic("bob", BOB_PASSWORD)},
                    {"Authorization": basic("cy", CY_PASSWORD)},
                    {"Authorization": basic("ann", ANN_PASSWORD).replace("Basic", "basic")}]:
        reply = site.request("/", headers=headers)
        assert (reply.status, reply.body) == (200, b"welcome\n"), (headers, reply)
        assert reply.header("www-authenticate") is None


def test_basic_auth_in_front_of_file_server_with_the_default_realm(tmp_path, hashes, serve, protocol):
    (tmp_path / "report.txt").write_text("quarterly report\n")
    site = serve([{"handle": [auth_handler(hashes), {"handler": "file_server", "root": str(tmp_path)}]}], protocol)
    denied = site.get("/report.txt")
    assert denied.status == 401 and b"quarterly" not in denied.body, denied
    assert denied.header("www-authenticate") == 'Basic realm="restricted", charset="UTF-8"'
    missing = site.get("/nothing.txt")
    assert missing.status == 401, missing  # no hint about which files exist
    allowed = site.get("/report.txt", Authorization=basic("bob", BOB_PASSWORD))
    assert (allowed.status, allowed.body) == (200, b"quarterly report\n"), allowed
    assert site.get("/nothing.txt", Authorization=basic("bob", BOB_PASSWORD)).status == 404


def test_basic_auth_guards_only_its_route_and_works_in_a_subroute(hashes, serve, protocol):
    site = serve(
        [
            {"match": [{"path": ["/private/*"]}], "handle": [auth_handler(hashes), static("private\n")]},
            {
                "handle": [
                    {"handler": "subroute",
                     "routes": [{"match": [{"path": ["/admin/*"]}], "handle": [auth_handler(hashes, realm="admin")]}]},
                    static("content\n"),
                ]
            },
        ],
        protocol,
    )
    assert site.get("/public").body == b"content\n"
    assert site.get("/private/x").status == 401
    assert site.get("/private/x", Authorization=basic("ann", ANN_PASSWORD)).body == b"private\n"
    admin = site.get("/admin/panel")
    assert (admin.status, admin.header("www-authenticate")) == (401, 'Basic realm="admin", charset="UTF-8"'), admin
    assert site.get("/admin/panel", Authorization=basic("ann", ANN_PASSWORD)).body == b"content\n"


def test_plain_text_password_is_refused_without_being_repeated(server, hashes, tmp_path):
    before = server.state()
    for password in [PLAIN_PASSWORD, "$scrypt$ln=10,r=8,p=1$" + PLAIN_PASSWORD]:
        config = site_config(server.http_port)
        accounts = [{"username": "ann", "password": hashes["ann"]}, {"username": "bob", "password": password}]
        config["sites"][0]["routes"][0]["handle"].insert(0, {"handler": "basic_auth", "accounts": accounts})
        response = server.api("POST", "/load", config)
        assert response.status_code == 400, response.text
        error = response.json()
        pointer = "/sites/0/routes/0/handle/0/accounts/1/password"
        assert error["pointer"] == pointer, error
        assert error["error"].startswith(f"{pointer}: "), error
        assert PLAIN_PASSWORD not in response.text
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        validated = cli("validate", str(path), "--json")
        assert validated.returncode != 0, validated
        assert json.loads(validated.stdout)["pointer"] == pointer, validated.stdout
        assert PLAIN_PASSWORD not in validated.stdout + validated.stderr
    assert server.state() == before
    assert PLAIN_PASSWORD not in server.log()


def access_lines(instance, count: int) -> list[str]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [line for line in instance.log().splitlines() if "velocity.access" in line]
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} access log lines:\n{instance.log()}")


def test_passwords_never_appear_in_the_log(hashes, serve, protocol):
    logging = {"access_log": True, "format": "json", "level": "debug"}
    site = serve([{"handle": [auth_handler(hashes), static("welcome\n")]}], protocol, logging=logging)
    wrong = "wrong-guess-Zx81"
    assert site.get("/a", Authorization=basic("ann", ANN_PASSWORD)).status == 200
    assert site.get("/b?x=1", Authorization=basic("bob", BOB_PASSWORD)).status == 200
    assert site.get("/c", Authorization=basic("ann", wrong)).status == 401
    assert site.get("/d").status == 401
    refused = site.server.api("PATCH", "/config/sites/0/routes/0/handle/0/accounts/0/password", PLAIN_PASSWORD)
    assert refused.status_code == 400, refused.text
    lines = access_lines(site.server, 4)
    assert any("/b?x=1" in line for line in lines), lines
    log = site.server.log()
    secrets = [ANN_PASSWORD, BOB_PASSWORD, wrong, PLAIN_PASSWORD, json.dumps(BOB_PASSWORD)[1:-1]]
    secrets += [basic(user, password).split()[1] for user, password in
                [("ann", ANN_PASSWORD), ("bob", BOB_PASSWORD), ("ann", wrong)]]
    for secret in secrets:
        assert secret not in log, secret

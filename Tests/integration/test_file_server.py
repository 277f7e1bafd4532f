"""The file_server handler against a real directory tree, over real sockets, with real clients: curl over HTTP/1.1
(plain TCP) and HTTP/2 (TLS, ALPN h2) for every case, and httpx, nghttp, requests and raw sockets where they
add something. Types and validators, conditional and range requests, HEAD, directories and listings, dotfiles and
hidden names, symlinks, traversal attempts sent byte for byte, precompressed siblings and a 50 MiB file."""

import gzip
import hashlib
import html
import os
import re
import time
from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import brotli
import pytest

from velocity import PROTOCOLS, require_tool

MTIME = 1_700_000_000
HTTP_DATE = "Tue, 14 Nov 2023 22:13:20 GMT"  # MTIME as an IMF-fixdate
HIDE = ["*.bak", "secret*", "private.txt", "vault"]
OUTSIDE_MARKER = b"OUTSIDE-ROOT-MARKER"
NOTES = b"plain notes\n"
APP_JS = b"".join(b"export function f%d(x) { return x * %d + 'velocity'; }\n" % (i, i) for i in range(80))

FILES = {
    "index.html": b"<h1>home</h1>\n",
    "notes.txt": NOTES,
    "hello world.txt": b"spaced\n",
    "caf\u00e9.txt": b"accented\n",
    "data.bin": os.urandom(1000),
    "old.bak": b"backup\n",
    "secret-plans.txt": b"secret plans\n",
    "private.txt": b"private\n",
    "vault/key.txt": b"vault key\n",
    ".env": b"TOKEN=dotenv-secret\n",
    ".git/config": b"[core]\n\tbare = false\n",
    ".well-known/security.txt": b"Contact: mailto:security@example.com\n",
    "docs/plain.txt": b"doc\n",
    "docs/a&b<c>.txt": b"odd name\n",
    'docs/q"onclick="x.txt': b"quoted name\n",
    "docs/na\u00efve.txt": b"naive\n",
    "docs/nested/deep.txt": b"deep\n",
    "docs/.hidden": b"hidden\n",
    "docs/old.bak": b"docs backup\n",
    "docs/secret-notes.txt": b"docs secret\n",
    "docs/vault/key.txt": b"docs vault key\n",
    "htm/index.htm": b"htm index\n",
    "both/index.html": b"both index.html\n",
    "both/start.html": b"both start.html\n",
    "app.js": APP_JS,
    "app.js.br": brotli.compress(APP_JS),
    "app.js.gz": gzip.compress(APP_JS, mtime=0),
    "only-gz.js": APP_JS[:1500],
    "only-gz.js.gz": gzip.compress(APP_JS[:1500], mtime=0),
    "style.css": b"body { color: black; }\n" * 40,
}


@pytest.fixture
def tree(tmp_path) -> Path:
    """`tmp_path/root` holding FILES (all with mtime MTIME), an empty directory, and symlinks inside and out;
    `tmp_path/outside/secret.txt` holds OUTSIDE_MARKER and must never be served."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    for name, data in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "empty").mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_bytes(OUTSIDE_MARKER + b"\n")
    (root / "link-inside.txt").symlink_to("notes.txt")
    (root / "link-absolute.txt").symlink_to(root / "docs" / "plain.txt")
    (root / "link-outside.txt").symlink_to("../outside/secret.txt")
    (root / "link-absolute-outside.txt").symlink_to(outside / "secret.txt")
    (root / "dir-outside").symlink_to("../outside")
    (root / "docs" / "link-up.txt").symlink_to("../../outside/secret.txt")
    for path in root.rglob("*"):
        if not path.is_symlink():
            os.utime(path, (MTIME, MTIME))
    return root


def file_site(serve, root: Path, protocol: str, after: list | None = None, **options):
    """A site whose only route runs file_server on `root` (hiding HIDE unless `hide` is given), then `after`."""
    handler = {"handler": "file_server", "root": str(root), "hide": HIDE, **options}
    return serve([{"handle": [handler, *(after or [])]}], protocol)


def assert_missing(reply, *forbidden: bytes):
    assert reply.status == 404, reply
    for data in forbidden:
        assert data not in reply.body, reply


# --- Files, types and validators ---------------------------------------------------------------------------


def test_file_has_type_length_strong_etag_last_modified_and_accept_ranges(tree, serve, protocol):
    site = file_site(serve, tree, protocol)
    reply = site.get("/notes.txt")
    assert reply.status == 200, reply
    assert reply.body == NOTES
    assert reply.header("content-type") == "text/plain; charset=utf-8"
    assert reply.header("content-length") == str(len(NOTES))
    assert re.fullmatch(r'"[^"]+"', reply.header("etag") or ""), reply
    assert reply.header("last-modified") == HTTP_DATE
    assert reply.header("accept-ranges") == "bytes"
    # The query is not part of the file name; the validator is stable.
    again = site.get("/notes.txt?v=2")
    assert (again.status, again.body, again.header("etag")) == (200, NOTES, reply.header("etag"))
    # A change on disk is seen at once, with a new validator.
    (tree / "notes.txt").write_bytes(b"changed notes, longer than before\n")
    os.utime(tree / "notes.txt", (MTIME + 60, MTIME + 60))
    changed = site.get("/notes.txt")
    assert changed.body == b"changed notes, longer than before\n"
    assert changed.header("etag") != reply.header("etag")
    assert changed.header("last-modified") == formatdate(MTIME + 60, usegmt=True)


def test_percent_encoded_names(tree, serve, protocol):
    site = file_site(serve, tree, protocol)
    assert site.get("/hello%20world.txt").body == b"spaced\n"
    assert site.get("/caf%C3%A9.txt").body == b"accented\n"
    assert site.get("/docs/a%26b%3Cc%3E.txt").body == b"odd name\n"
    assert site.get("/%6eotes.txt").body == NOTES  # any byte may be percent-encoded


CONTENT_TYPES = [
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("json", "application/json"),
    ("txt", "text/plain; charset=utf-8"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("ico", "image/x-icon"),
    ("wasm", "application/wasm"),
    ("woff2", "font/woff2"),
    ("pdf", "application/pdf"),
    ("xml", "application/xml"),
    ("xyz", "application/octet-stream"),
]


def test_content_type_from_the_extension(tmp_path, serve, protocol):
    for extension, _ in CONTENT_TYPES:
        (tmp_path / f"file.{extension}").write_bytes(b"content of " + extension.encode())
    (tmp_path / "NOEXTENSION").write_bytes(b"bare")
    site = file_site(serve, tmp_path, protocol)
    for extension, content_type in CONTENT_TYPES:
        reply = site.get(f"/file.{extension}")
        assert (reply.status, reply.body) == (200, b"content of " + extension.encode()), reply
        assert reply.header("content-type") == content_type, extension
    assert site.get("/NOEXTENSION").header("content-type") == "application/octet-stream"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_methods_other_than_get_and_head_are_405(tree, serve, protocol, method):
    site = file_site(serve, tree, protocol)
    for target in ["/notes.txt", "/"]:
        reply = site.request(target, method)
        assert reply.status == 405, reply
        assert reply.header("allow") == "GET, HEAD"
        assert NOTES not in reply.body


def test_head_has_the_headers_of_get_and_no_body(tree, serve, protocol):
    site = file_site(serve, tree, protocol)
    compared = ["content-type", "content-length", "etag", "last-modified", "accept-ranges", "location"]
    for target, status in [("/notes.txt", 200), ("/data.bin", 200), ("/missing.txt", 404), ("/docs", 308)]:
        get, head = site.get(target), site.head(target)
        assert (get.status, head.status) == (status, status), (get, head)
        assert head.body == b""
        for name in compared:
            assert head.header(name) == get.header(name), (name, get, head)
    # On the wire (HTTP/1.1, the connection closed after the answer): not one byte after the header block.
    raw = site.raw("/notes.txt", "HEAD")
    assert raw.status == 200 and raw.header("content-length") == str(len(NOTES)), raw
    assert raw.body == b"", raw


# --- Conditional requests ----------------------------------------------------------------------------------


def test_conditional_requests(tree, serve, protocol):
    site = file_site(serve, tree, protocol)
    etag = site.get("/notes.txt").header("etag")
    earlier, later = formatdate(MTIME - 1, usegmt=True), formatdate(MTIME + 3600, usegmt=True)
    not_modified = [
        {"If-None-Match": etag},
        {"If-None-Match": f"W/{etag}"},  # weak comparison
        {"If-None-Match": "*"},
        {"If-None-Match": f'"other", {etag}'},
        {"If-Modified-Since": HTTP_DATE},
        {"If-Modified-Since": later},
    ]
    for headers in not_modified:
        reply = site.request("/notes.txt", headers=headers)
        assert reply.status == 304, (headers, reply)
        assert reply.header("etag") == etag
        assert reply.body == b""
    full = [
        {"If-None-Match": '"other"'},
        {"If-Modified-Since": earlier},
        {"If-None-Match": '"other"', "If-Modified-Since": HTTP_DATE},  # If-Modified-Since is then ignored
        {"If-Match": etag},
        {"If-Match": "*"},
        {"If-Unmodified-Since": HTTP_DATE},
        {"If-Unmodified-Since": later},
    ]
    for headers in full:
        reply = site.request("/notes.txt", headers=headers)
        assert (reply.status, reply.body) == (200, NOTES), (headers, reply)
    for headers in [{"If-Match": '"other"'}, {"If-Unmodified-Since": earlier}]:
        reply = site.request("/notes.txt", headers=headers)
        assert reply.status == 412, (headers, reply)
        assert NOTES not in reply.body
    raw = site.raw("/notes.txt", headers={"If-None-Match": etag})
    assert raw.status == 304 and raw.body == b"", raw


# --- Ranges ------------------------------------------------------------------------------------------------


def test_single_ranges(tree, serve, protocol):
    site = file_site(serve, tree, protocol)
    data = FILES["data.bin"]
    cases = [
        ("bytes=0-9", 0, 9),
        ("bytes=990-", 990, 999),
        ("bytes=-5", 995, 999),
        ("bytes=500-5000", 500, 999),  # the end is clamped to the size
        ("bytes=999-999", 999, 999),
        ("bytes=0-", 0, 999),
    ]
    for value, first, last in cases:
        reply = site.get("/data.bin", Range=value)
        assert reply.status == 206, (value, reply)
        assert reply.header("content-range") == f"bytes {first}-{last}/1000", value
        assert reply.body == data[first : last + 1], value
        assert reply.header("content-length") == str(last + 1 - first), value
        assert reply.header("content-type") == "application/octet-stream"
    for value in ["bytes=1000-", "bytes=5000-6000"]:
        reply = site.get("/data.bin", Range=value)
        assert reply.status == 416, (value, reply)
        assert reply.header("content-range") == "bytes */1000", value
        assert data not in reply.body
    # Several ranges, or a Range that is not a valid single byte range: the whole file.
    for value in ["bytes=0-1,5-6", "bytes=abc", "bytes=5-2", "items=0-9", "bytes=--3"]:
        reply = site.get("/data.bin", Range=value)
        assert (reply.status, reply.body) == (200, data), (value, reply)
        assert reply.header("content-range") is None
    # Ranges apply to GET only.
    head = site.head("/data.bin", Range="bytes=0-9")
    assert (head.status, head.header("content-length")) == (200, "1000"), head


def test_if_range(tree, serve, protocol):
    site = file_site(serve, tree, protocol)
    data = FILES["data.bin"]
    etag = site.get("/data.bin").header("etag")
    for validator in [etag, HTTP_DATE]:
        reply = site.get("/data.bin", Range="bytes=10-19", If_Range=validator)
        assert (reply.status, reply.body) == (206, data[10:20]), (validator, reply)
    for validator in ['"stale"', f"W/{etag}", formatdate(MTIME - 3600, usegmt=True)]:
        reply = site.get("/data.bin", Range="bytes=10-19", If_Range=validator)
        assert (reply.status, reply.body) == (200, data), (validator, reply)


# --- Directories -------------------------------------------------------------------------------------------


def test_directory_redirect_and_index_files(tree, serve, protocol):
    site = file_site(serve, tree, protocol)
    for target, path, query in [("/docs?x=1&y=2", "/docs/", "x=1&y=2"), ("/htm", "/htm/", ""), ("/docs/nested", "/docs/nested/", "")]:
        reply = site.get(target)
        assert reply.status == 308, (target, reply)
        location = urlsplit(reply.header("location"))
        assert (location.path, location.query) == (path, query), reply
        assert location.netloc in ("", f"127.0.0.1:{site.port}"), reply
    assert site.get("/").body == FILES["index.html"]
    assert site.get("/").header("content-type") == "text/html; charset=utf-8"
    assert site.get("/htm/").body == b"htm index\n"  # the second default index name
    assert site.get("/both/").body == b"both index.html\n"  # the first one wins
    assert_missing(site.get("/docs/"))  # no index, no browse
    assert_missing(site.get("/empty/"))
    # The index is the file: validators and conditional requests work on it.
    etag = site.get("/").header("etag")
    assert site.get("/", If_None_Match=etag).status == 304
    assert site.get("/index.html").header("etag") == etag


def test_index_names_in_order(tree, serve, protocol):
    site = file_site(serve, tree, protocol, index_names=["start.html", "index.html"])
    assert site.get("/both/").body == b"both start.html\n"
    assert site.get("/").body == FILES["index.html"]
    assert_missing(site.get("/htm/"))  # index.htm is not among the names any more


def test_browse_lists_escaped_linked_names_without_hidden_ones(tree, serve, protocol):
    site = file_site(serve, tree, protocol, browse=True)
    reply = site.get("/docs/")
    assert reply.status == 200, reply
    assert reply.header("content-type").startswith("text/html"), reply
    page = reply.body.decode()
    assert "a&amp;b&lt;c&gt;.txt" in page and "a&b<c>" not in page
    assert '"onclick="' not in page  # a quote in a name cannot end an attribute
    text = html.unescape(re.sub(r"<[^>]*>", " ", page))
    assert "nested/" in text  # directories end with "/"
    hrefs = [html.unescape(href) for href in re.findall(r'href="([^"]*)"', page)]
    linked = {unquote(urljoin("/docs/", href)): urljoin("/docs/", href) for href in hrefs}
    names = {"/docs/plain.txt", "/docs/a&b<c>.txt", '/docs/q"onclick="x.txt', "/docs/na\u00efve.txt", "/docs/nested/"}
    assert names <= set(linked), hrefs
    for hidden in [".hidden", "old.bak", "secret-notes", "vault"]:
        assert hidden not in page, hidden
    # The links work.
    assert site.get(linked["/docs/plain.txt"]).body == b"doc\n"
    assert site.get(linked["/docs/a&b<c>.txt"]).body == b"odd name\n"
    assert site.get(linked['/docs/q"onclick="x.txt']).body == b"quoted name\n"
    assert site.get(linked["/docs/na\u00efve.txt"]).body == b"naive\n"
    nested = site.get(linked["/docs/nested/"])
    assert nested.status == 200 and "deep.txt" in nested.body.decode(), nested
    # A directory with an index still serves it; the root has one.
    assert site.get("/both/").body == b"both index.html\n"
    assert site.get("/").body == FILES["index.html"]
    # Hidden directories are not listed either; .well-known is.
    for target in ["/vault/", "/docs/vault/", "/.git/"]:
        assert_missing(site.get(target), b"key.txt", b"config")
    well_known = site.get("/.well-known/")
    assert well_known.status == 200 and "security.txt" in well_known.body.decode(), well_known


def test_file_path_used_as_a_directory_is_404(tree, serve, protocol):
    site = file_site(serve, tree, protocol)
    assert_missing(site.get("/notes.txt/more"), NOTES)
    assert_missing(site.get("/notes.txt/"), NOTES)
    assert_missing(site.get("/link-inside.txt/more"), NOTES)


# --- Missing files, dotfiles, hidden names -----------------------------------------------------------------


def test_missing_file_is_404_or_passes_through(tree, serve, protocol):
    fallback = {"handler": "static_response", "body": "fallback\n"}
    strict = file_site(serve, tree, protocol, after=[fallback])
    assert_missing(strict.get("/nope.txt"), b"fallback")
    assert_missing(strict.get("/docs/nope/deeper.txt"), b"fallback")
    lenient = file_site(serve, tree, protocol, after=[fallback], pass_thru=True)
    assert lenient.get("/nope.txt").body == b"fallback\n"
    assert lenient.get("/docs/nope/deeper.txt").body == b"fallback\n"
    assert lenient.get("/notes.txt").body == NOTES  # present files are still served


def test_root_that_does_not_exist_answers_404(tmp_path, serve, protocol):
    site = file_site(serve, tmp_path / "not-yet-deployed", protocol)
    for target in ["/", "/index.html", "/a/b"]:
        assert site.get(target).status == 404, target
    (tmp_path / "not-yet-deployed").mkdir()
    (tmp_path / "not-yet-deployed" / "index.html").write_text("deployed\n")
    assert site.get("/").body == b"deployed\n"
    assert site.server.process.poll() is None


def test_dotfiles_are_hidden_except_well_known(tree, serve, protocol):
    site = file_site(serve, tree, protocol)
    for target in ["/.env", "/.git/config", "/.git/", "/docs/.hidden", "/.env?x=1", "/%2eenv"]:
        assert_missing(site.get(target), b"dotenv-secret", b"bare = false", b"hidden\n")
    reply = site.get("/.well-known/security.txt")
    assert (reply.status, reply.body) == (200, FILES[".well-known/security.txt"]), reply


def test_dotfiles_serve(tree, serve, protocol):
    site = file_site(serve, tree, protocol, dotfiles="serve")
    assert site.get("/.env").body == FILES[".env"]
    assert site.get("/.git/config").body == FILES[".git/config"]
    assert site.get("/docs/.hidden").body == b"hidden\n"
    assert site.get("/.well-known/security.txt").body == FILES[".well-known/security.txt"]


def test_hide_patterns_match_any_segment(tree, serve, protocol):
    site = file_site(serve, tree, protocol)
    for target in ["/old.bak", "/docs/old.bak", "/secret-plans.txt", "/docs/secret-notes.txt", "/private.txt",
                   "/vault/key.txt", "/docs/vault/key.txt", "/vault/"]:
        reply = site.get(target)
        assert_missing(reply, b"backup", b"secret", b"private", b"vault key")
    assert site.get("/notes.txt").body == NOTES
    assert site.get("/docs/plain.txt").body == b"doc\n"


# --- Symlinks and traversal --------------------------------------------------------------------------------


def test_symlinks_inside_root_are_served_and_outside_are_not(tree, serve, protocol):
    site = file_site(serve, tree, protocol)
    assert site.get("/link-inside.txt").body == NOTES
    for target in ["/link-outside.txt", "/link-absolute-outside.txt", "/dir-outside/secret.txt", "/docs/link-up.txt"]:
        assert_missing(site.get(target), OUTSIDE_MARKER)


def test_absolute_symlink_is_refused_even_inside_root(tree, serve, protocol):
    """The kernel confines lookups beneath the root (openat2 RESOLVE_BENEATH), which refuses absolute symlink
    targets outright: documented in docs/config.md."""
    assert (tree / "link-absolute.txt").readlink().is_absolute()
    site = file_site(serve, tree, protocol)
    reply = site.get("/link-absolute.txt")
    assert reply.status == 404, reply


def test_root_is_resolved_on_every_request(tmp_path, serve, protocol):
    """FileServerConfig: "Read on every request, so a deploy that repoints a symlink takes effect at once."""
    for release in ["v1", "v2"]:
        (tmp_path / release).mkdir()
        (tmp_path / release / "index.html").write_text(f"release {release}\n")
    (tmp_path / "current").symlink_to("v1")
    site = file_site(serve, tmp_path / "current", protocol)
    assert site.get("/").body == b"release v1\n"
    (tmp_path / "next").symlink_to("v2")
    os.replace(tmp_path / "next", tmp_path / "current")
    assert site.get("/").body == b"release v2\n"


TRAVERSALS = [
    "/../outside/secret.txt",
    "/../../../../../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/%2e%2e/outside/secret.txt",
    "/%2E%2E/outside/secret.txt",
    "/.%2e/outside/secret.txt",
    "/docs/../../outside/secret.txt",
    "/docs/%2e%2e/%2e%2e/outside/secret.txt",
    "/a%2f..%2f..%2fetc%2fpasswd",
    "/a%2f..%2f..%2foutside%2fsecret.txt",
    "/..%2foutside%2fsecret.txt",
    "/..%5coutside%5csecret.txt",
    "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/%2fetc/passwd",
    "//etc/passwd",
    "/dir-outside/../dir-outside/secret.txt",
]
RAW_ONLY_TRAVERSALS = ["/..\\outside\\secret.txt", "/docs/..\\..\\outside\\secret.txt"]


def test_traversal_never_leaves_the_root(tree, serve, protocol):
    site = file_site(serve, tree, protocol)
    passwd = Path("/etc/passwd").read_bytes()[:64]
    for target in TRAVERSALS + RAW_ONLY_TRAVERSALS:
        replies = [site.raw(target)] + ([site.get(target)] if target not in RAW_ONLY_TRAVERSALS else [])
        for reply in replies:
            assert reply.status in (400, 404), (target, reply)
            assert OUTSIDE_MARKER not in reply.body and passwd not in reply.body, (target, reply)


def test_dot_segments_are_resolved_within_the_root(tree, serve, protocol):
    site = file_site(serve, tree, protocol)
    for target in ["/docs/../notes.txt", "/./notes.txt", "/../notes.txt", "/docs/nested/../../notes.txt",
                   "/../../docs/./../notes.txt"]:
        for reply in [site.raw(target), site.get(target)]:
            assert (reply.status, reply.body) == (200, NOTES), (target, reply)


def test_segments_decoding_to_a_separator_or_nul_are_400(tree, serve, protocol):
    site = file_site(serve, tree, protocol)
    # /docs%2fplain.txt would name an existing file if %2f were taken as a separator.
    for target in ["/docs%2fplain.txt", "/docs%2Fplain.txt", "/docs%5cplain.txt", "/notes.txt%00",
                   "/notes.txt%00.png", "/a%00b"]:
        for reply in [site.raw(target), site.get(target)]:
            assert reply.status == 400, (target, reply)
            assert b"doc\n" != reply.body and NOTES not in reply.body


# --- Precompressed siblings --------------------------------------------------------------------------------


def test_precompressed_siblings(tree, serve, protocol):
    site = file_site(serve, tree, protocol, precompressed=["br", "gzip"])
    plain = site.get("/app.js")
    assert (plain.status, plain.body, plain.header("content-encoding")) == (200, APP_JS, None), plain
    assert "accept-encoding" in plain.tokens("vary")
    brotli_reply = None
    for accept, encoding in [("br, gzip", "br"), ("gzip, br", "br"), ("br", "br"), ("gzip", "gzip"),
                             ("br;q=0, gzip", "gzip"), ("gzip;q=0.5, br;q=0", "gzip"), ("deflate, gzip", "gzip")]:
        reply = site.get("/app.js", Accept_Encoding=accept)
        assert reply.status == 200, (accept, reply)
        assert reply.header("content-encoding") == encoding, (accept, reply)
        sibling = FILES["app.js.br" if encoding == "br" else "app.js.gz"]
        assert reply.body == sibling, accept
        assert reply.header("content-length") == str(len(sibling))
        assert reply.header("content-type") == "text/javascript; charset=utf-8"
        assert "accept-encoding" in reply.tokens("vary")
        assert reply.header("etag") not in (None, plain.header("etag")), reply
        decoded = brotli.decompress(reply.body) if encoding == "br" else gzip.decompress(reply.body)
        assert decoded == APP_JS
        if encoding == "br":
            brotli_reply = reply
    gzip_etag = site.get("/app.js", Accept_Encoding="gzip").header("etag")
    assert brotli_reply.header("etag") != gzip_etag
    for accept in ["identity", "br;q=0, gzip;q=0", "deflate", "zstd"]:
        reply = site.get("/app.js", Accept_Encoding=accept)
        assert (reply.body, reply.header("content-encoding")) == (APP_JS, None), (accept, reply)
        assert "accept-encoding" in reply.tokens("vary"), (accept, reply)
    # Only a .gz beside it; and no sibling at all.
    assert site.get("/only-gz.js", Accept_Encoding="br, gzip").body == FILES["only-gz.js.gz"]
    only_br = site.get("/only-gz.js", Accept_Encoding="br")
    assert (only_br.body, only_br.header("content-encoding")) == (FILES["only-gz.js"], None)
    css = site.get("/style.css", Accept_Encoding="br, gzip")
    assert (css.body, css.header("content-encoding")) == (FILES["style.css"], None)
    assert "accept-encoding" in css.tokens("vary")
    head = site.head("/app.js", Accept_Encoding="br")
    assert head.header("content-encoding") == "br" and head.header("content-length") == str(len(FILES["app.js.br"]))


def test_precompressed_representation_is_conditional_on_its_own_etag(tree, serve, protocol):
    site = file_site(serve, tree, protocol, precompressed=["br", "gzip"])
    etag = site.get("/app.js", Accept_Encoding="br").header("etag")
    reply = site.get("/app.js", Accept_Encoding="br", If_None_Match=etag)
    assert (reply.status, reply.body, reply.header("etag")) == (304, b"", etag), reply


def test_precompressed_preference_follows_the_config(tree, serve, protocol):
    site = file_site(serve, tree, protocol, precompressed=["gzip", "br"])
    assert site.get("/app.js", Accept_Encoding="br, gzip").header("content-encoding") == "gzip"
    assert site.get("/app.js", Accept_Encoding="br").body == FILES["app.js.br"]


def test_siblings_are_not_used_without_precompressed(tree, serve, protocol):
    site = file_site(serve, tree, protocol)
    reply = site.get("/app.js", Accept_Encoding="br, gzip")
    assert (reply.body, reply.header("content-encoding")) == (APP_JS, None), reply


# --- Every client --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("client", list(PROTOCOLS))
def test_every_client_gets_the_same_answers(tree, serve, client):
    if client == "nghttp":
        require_tool("nghttp")
    site = file_site(serve, tree, client, precompressed=["br", "gzip"])
    reply = site.get("/notes.txt")
    assert (reply.status, reply.body, reply.header("content-type")) == (200, NOTES, "text/plain; charset=utf-8")
    etag = reply.header("etag")
    assert site.get("/notes.txt", If_None_Match=etag).status == 304
    ranged = site.get("/data.bin", Range="bytes=100-199")
    assert (ranged.status, ranged.body) == (206, FILES["data.bin"][100:200]), ranged
    compressed = site.get("/app.js", Accept_Encoding="br")
    assert (compressed.header("content-encoding"), compressed.body) == ("br", FILES["app.js.br"])
    assert site.get("/.env").status == 404
    assert site.get("/docs").status == 308
    assert site.request("/notes.txt", "HEAD").header("content-length") == str(len(NOTES))


# --- A large file ------------------------------------------------------------------------------------------

BIG_SIZE = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def big_root(tmp_path_factory) -> tuple[Path, str]:
    """A root holding big.bin (50 MiB of random bytes) and small.txt; and big.bin's SHA-256."""
    root = tmp_path_factory.mktemp("big")
    data = os.urandom(BIG_SIZE)
    (root / "big.bin").write_bytes(data)
    (root / "small.txt").write_bytes(b"small\n")
    return root, hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("client", ["h1", "requests", "h1-tls", "h2", "httpx-h2", "nghttp"])
def test_50_mib_file_arrives_intact(big_root, serve, client):
    if client == "nghttp":
        require_tool("nghttp")
    root, digest = big_root
    site = file_site(serve, root, client)
    reply = site.request("/big.bin", timeout=180)
    assert reply.status == 200, reply.headers
    assert reply.header("content-length") == str(BIG_SIZE)
    assert len(reply.body) == BIG_SIZE
    assert hashlib.sha256(reply.body).hexdigest() == digest
    tail = site.get("/big.bin", Range=f"bytes={BIG_SIZE - 4096}-")
    assert tail.status == 206 and tail.body == (root / "big.bin").read_bytes()[-4096:]


def anonymous_memory(pid: int) -> int:
    """The process's resident anonymous memory (heap, not the page cache of files it reads), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/status")


@pytest.mark.parametrize("protocol_name", ["h1", "httpx-h2"])
def test_large_file_streams_to_a_stalled_client(big_root, serve, protocol_name):
    """A client that stops reading after 1 MiB leaves the server holding a small buffer, not the file."""
    root, digest = big_root
    site = file_site(serve, root, protocol_name)
    pid = site.server.process.pid
    assert site.get("/small.txt").body == b"small\n"
    baseline = anonymous_memory(pid)
    hasher, received, stalled_memory = hashlib.sha256(), 0, None

    def consume(chunk: bytes) -> None:
        nonlocal received, stalled_memory
        hasher.update(chunk)
        received += len(chunk)
        if stalled_memory is None and received >= 1 << 20:
            time.sleep(3)  # the server keeps writing only as far as the socket and flow control let it
            stalled_memory = anonymous_memory(pid)

    if protocol_name == "h1":
        import socket

        with socket.create_connection(("127.0.0.1", site.port), timeout=30) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.sendall(f"GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\nConnection: close\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                byte = sock.recv(1)
                assert byte, f"the connection closed after {head!r}"
                head += byte
            assert head.startswith(b"HTTP/1.1 200"), head
            while received < BIG_SIZE and (chunk := sock.recv(65536)):
                consume(chunk)
    else:
        import ssl

        import httpx

        context = ssl.create_default_context(cafile=site.cacert)
        with httpx.Client(http2=True, verify=context, timeout=60) as client:
            with client.stream("GET", site.url("/big.bin")) as response:
                assert (response.status_code, response.http_version) == (200, "HTTP/2")
                for chunk in response.iter_raw(65536):
                    consume(chunk)
    assert received == BIG_SIZE and hasher.hexdigest() == digest
    growth = stalled_memory - baseline
    assert growth < 24 * 1024 * 1024, f"the server's heap grew by {growth >> 20} MiB while the client stalled"

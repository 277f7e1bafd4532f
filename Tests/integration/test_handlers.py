"""The redirect and headers handlers over real HTTP, with curl."""

from velocity import curl, free_port


def test_redirect_and_headers(make_velocity):
    instance = make_velocity()
    port = free_port()
    instance.start(
        {
            "listeners": [{"protocol": "http", "address": f"127.0.0.1:{port}"}],
            "sites": [
                {
                    "routes": [
                        {"handle": [{"handler": "headers", "response": {"set": {"X-Frame-Options": ["DENY"]}}}]},
                        {
                            "match": [{"path": ["/old/*"]}],
                            "handle": [{"handler": "redirect", "to": "http://{host}:%d/new{path}?{query}" % port}],
                        },
                        {
                            "match": [{"header": {"X-Tier": ["gold"]}}],
                            "handle": [{"handler": "static_response", "body": "gold\n"}],
                        },
                        {
                            "handle": [
                                {"handler": "headers", "request": {"set": {"X-Tier": ["gold"]}}},
                                {"handler": "static_response", "body": "plain\n"},
                            ]
                        },
                    ]
                }
            ],
        }
    )
    moved = curl("-i", f"http://127.0.0.1:{port}/old/page?x=1").stdout
    assert moved.startswith("HTTP/1.1 308")
    assert f"Location: http://127.0.0.1:{port}/new/old/page?x=1\n" in moved
    assert "X-Frame-Options: DENY\n" in moved
    assert curl("-H", "X-Tier: gold", f"http://127.0.0.1:{port}/").stdout == "gold\n"
    # A request header set by a later route's handler does not send the request back to earlier routes.
    plain = curl("-i", f"http://127.0.0.1:{port}/").stdout
    assert plain.endswith("plain\n") and "X-Frame-Options: DENY\n" in plain

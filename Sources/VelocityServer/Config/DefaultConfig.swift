import VelocityConfig

/// The config an empty store starts with: a welcome page on every host, over HTTP, and over HTTPS and HTTP/3
/// with a certificate from the internal CA (`velocity ca export` prints its root).
enum DefaultConfig {
    static let document: JSONValue = {
        let page = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Velocity</title>
            <style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}
            code{background:#f3f3f3;padding:.1em .3em;border-radius:3px}</style></head>
            <body><h1>Velocity is running</h1>
            <p>This is the welcome site of a new Velocity server. Its configuration lives in SQLite and is driven by
            the admin API on <code>127.0.0.1:2019</code>.</p>
            <p>HTTPS and HTTP/3 on port 8443 use a certificate from Velocity's own CA: <code>velocity ca export</code> prints
            the root to trust. See the current config with <code>curl localhost:2019/config/</code>, and replace it with
            <code>velocity reload your-config.json</code>.</p></body></html>

            """
        return [
            "listeners": [
                ["@id": "http", "protocol": "http", "address": ":8080"],
                ["@id": "https", "protocol": "https", "address": ":8443"],
                ["@id": "quic", "protocol": "quic", "address": ":8443"],
            ],
            "sites": [
                [
                    "@id": "welcome",
                    "routes": [
                        [
                            "handle": [
                                [
                                    "handler": "static_response",
                                    "headers": ["Content-Type": ["text/html; charset=utf-8"]],
                                    "body": .string(page),
                                ]
                            ]
                        ]
                    ],
                ]
            ],
        ]
    }()
}

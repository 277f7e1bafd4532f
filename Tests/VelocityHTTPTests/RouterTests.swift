import HTTPTypes
import NIOCore
import Testing
import VelocityConfig
import VelocityHTTP

@Suite struct RouterTests {
    private func router(_ text: String) throws -> Router {
        let validated = try ConfigValidator.validate(
            try JSONValue(parsing: text), context: ValidationContext(adminAddress: nil))
        return Router(config: validated.config)
    }

    /// The body the router answers with, for a request built from the arguments.
    private func answer(
        _ router: Router,
        host: String = "example.com",
        _ path: String = "/",
        method: HTTPRequest.Method = .get,
        headers: HTTPFields = [:],
        from remote: String? = nil
    ) -> String {
        let request = HTTPRequest(method: method, scheme: "http", authority: host, path: path, headerFields: headers)
        switch router.route(RoutingRequest(request: request, remoteAddress: remote.flatMap(IPAddress.init))) {
        case .respond(let response): return String(buffer: response.body)
        default: return "(work off the event loop)"
        }
    }

    private static func site(_ hosts: String, _ body: String) -> String {
        #"{"hosts": \#(hosts), "routes": [{"handle": [{"handler": "static_response", "body": "\#(body)"}]}]}"#
    }

    @Test func findsSitesByExactNameThenWildcardThenFallback() throws {
        let router = try router(
            #"{"sites": [\#(Self.site(#"["a.test"]"#, "exact")), \#(Self.site(#"["*.a.test"]"#, "wild")), \#(Self.site("[]", "rest"))]}"#
        )
        #expect(answer(router, host: "a.test") == "exact")
        #expect(answer(router, host: "A.TEST:8080") == "exact")
        #expect(answer(router, host: "a.test.") == "exact")
        #expect(answer(router, host: "www.a.test") == "wild")
        #expect(answer(router, host: "x.www.a.test") == "rest")
        #expect(answer(router, host: "[::1]:80") == "rest")
    }

    @Test func findsSitesForIPv6Addresses() throws {
        let router = try router(
            #"{"sites": [\#(Self.site(#"["::1"]"#, "one")), \#(Self.site(#"["::2"]"#, "two")), \#(Self.site("[]", "rest"))]}"#
        )
        #expect(answer(router, host: "[::1]:8080") == "one")
        #expect(answer(router, host: "[::2]") == "two")
        #expect(answer(router, host: "[::3]") == "rest")
    }

    @Test func emptyMatcherListsMatchNothing() throws {
        let router = try router(
            """
            {"sites": [{"routes": [
              {"match": [{"host": []}], "handle": [{"handler": "static_response", "body": "host"}]},
              {"match": [{"path": []}], "handle": [{"handler": "static_response", "body": "path"}]},
              {"handle": [{"handler": "static_response", "body": "last"}]}
            ]}]}
            """)
        #expect(answer(router, "/") == "last")
    }

    @Test func answers404WithoutAMatchingSiteOrRoute() throws {
        let router = try router(#"{"sites": [\#(Self.site(#"["a.test"]"#, "a"))]}"#)
        #expect(answer(router, host: "b.test").hasPrefix("404"))
    }

    @Test func triesRoutesInOrderWithMatchers() throws {
        let router = try router(
            """
            {"sites": [{"routes": [
              {"match": [{"path": ["/api/*"], "method": ["POST"]}], "handle": [{"handler": "static_response", "body": "api-post"}]},
              {"match": [{"path": ["*.css"]}, {"query": {"style": []}}], "handle": [{"handler": "static_response", "body": "css"}]},
              {"match": [{"header": {"X-Debug": ["1"]}, "not": [{"remote_ip": ["10.0.0.0/8"]}]}],
               "handle": [{"handler": "static_response", "body": "debug"}]},
              {"match": [{"path": ["/stop"]}], "terminal": true},
              {"match": [{"path": ["/exact"]}, {"query": {"v": ["2"]}}], "handle": [{"handler": "static_response", "body": "exact"}]},
              {"handle": [{"handler": "static_response", "body": "last"}]}
            ]}]}
            """)
        #expect(answer(router, "/api/x", method: .post) == "api-post")
        #expect(answer(router, "/api/x") == "last")
        #expect(answer(router, "/a/site.css") == "css")
        #expect(answer(router, "/page?a=1&style") == "css")
        #expect(answer(router, "/", headers: [HTTPField.Name("X-Debug")!: "1"], from: "192.168.1.1") == "debug")
        #expect(answer(router, "/", headers: [HTTPField.Name("X-Debug")!: "1"], from: "10.1.1.1") == "last")
        #expect(answer(router, "/exact") == "exact")
        #expect(answer(router, "/other?v=2") == "exact")
        #expect(answer(router, "/exact/more") == "last")
        #expect(answer(router, "/stop").hasPrefix("404"))
    }

    @Test func addsHSTSToHTTPSResponsesOnly() throws {
        let router = try router(
            #"{"sites": [{"hsts": {"max_age": 60, "include_subdomains": true, "preload": true}, "routes": [{"handle": [{"handler": "static_response"}]}]}]}"#
        )
        func hsts(_ scheme: String) -> String? {
            let request = HTTPRequest(method: .get, scheme: scheme, authority: "h", path: "/")
            guard case .respond(let response) = router.route(RoutingRequest(request: request, remoteAddress: nil))
            else { return nil }
            return response.headerFields[.strictTransportSecurity]
        }
        #expect(hsts("https") == "max-age=60; includeSubDomains; preload")
        #expect(hsts("http") == nil)
    }

    @Test func advertisesHTTP3OnHTTPSWhenAQUICListenerExists() throws {
        let router = try router(
            """
            {"listeners": [{"protocol": "https", "address": ":8443"}, {"protocol": "quic", "address": ":8443"}],
             "sites": [
               {"hosts": ["on"], "hsts": {"max_age": 5}, "routes": [{"handle": [{"handler": "static_response"}]}]},
               {"hosts": ["off"], "http3": false, "routes": [{"handle": [{"handler": "static_response"}]}]},
               {"hosts": ["redirect"], "routes": [{"handle": [{"handler": "redirect", "to": "/x"}]}]}
             ]}
            """)
        func answer(_ scheme: String, _ host: String) -> StaticResponse? {
            let request = HTTPRequest(method: .get, scheme: scheme, authority: host, path: "/")
            guard case .respond(let response) = router.route(RoutingRequest(request: request, remoteAddress: nil))
            else { return nil }
            return response
        }
        let altSvc = HTTPField.Name("Alt-Svc")!
        #expect(answer("https", "on")?.headerFields[altSvc] == #"h3=":8443"; ma=86400"#)
        #expect(answer("https", "on")?.headerFields[.strictTransportSecurity] == "max-age=5")
        #expect(answer("https", "redirect")?.headerFields[altSvc] == #"h3=":8443"; ma=86400"#)
        #expect(answer("http", "on")?.headerFields[altSvc] == nil)
        #expect(answer("https", "off")?.headerFields[altSvc] == nil)
        let withoutQUIC = try self.router(#"{"sites": [{"routes": [{"handle": [{"handler": "static_response"}]}]}]}"#)
        let request = HTTPRequest(method: .get, scheme: "https", authority: "h", path: "/")
        guard case .respond(let plain) = withoutQUIC.route(RoutingRequest(request: request, remoteAddress: nil)) else {
            Issue.record("no response")
            return
        }
        #expect(plain.headerFields[altSvc] == nil)
    }

    @Test func redirectsWithPlaceholders() throws {
        let router = try router(
            """
            {"sites": [{"hsts": {"max_age": 5}, "routes": [
              {"match": [{"path": ["/old/*"]}],
               "handle": [{"handler": "redirect", "to": "https://{host}/new{path}?{query}&m={method}&ip={remote_ip}", "status": 301}]},
              {"handle": [{"handler": "redirect", "to": "{scheme}://{host}{uri}"}]}
            ]}]}
            """)
        func answer(_ scheme: String, _ path: String) -> StaticResponse? {
            let request = HTTPRequest(method: .get, scheme: scheme, authority: "A.example:8080", path: path)
            let routing = RoutingRequest(request: request, remoteAddress: IPAddress("::1"))
            guard case .respond(let response) = router.route(routing) else { return nil }
            return response
        }
        let moved = try #require(answer("http", "/old/x?y=1"))
        #expect(moved.status.code == 301)
        #expect(moved.headerFields[.location] == "https://a.example/new/old/x?y=1&m=GET&ip=::1")
        #expect(moved.headerFields[.strictTransportSecurity] == nil)
        let secure = try #require(answer("https", "/p?q"))
        #expect(secure.status.code == 308)
        #expect(secure.headerFields[.location] == "https://a.example/p?q")
        #expect(secure.headerFields[.strictTransportSecurity] == "max-age=5")
    }

    @Test func headersHandlersEditRequestsAndResponses() throws {
        let router = try router(
            """
            {"sites": [{"routes": [
              {"handle": [{"handler": "headers",
                           "request": {"set": {"X-Team": ["blue"]}, "delete": ["X-Drop"]},
                           "response": {"set": {"X-Frame-Options": ["DENY"]}, "add": {"X-Extra": ["1", "2"]},
                                        "delete": ["X-Remove"]}}]},
              {"match": [{"header": {"X-Team": ["blue"]}, "not": [{"header": {"X-Drop": []}}]}],
               "handle": [{"handler": "static_response", "body": "blue", "headers": {"X-Remove": ["gone"]}}]}
            ]}]}
            """)
        let request = HTTPRequest(
            method: .get, scheme: "http", authority: "h", path: "/",
            headerFields: [HTTPField.Name("X-Drop")!: "1", HTTPField.Name("X-Team")!: "red"])
        guard case .respond(let response) = router.route(RoutingRequest(request: request, remoteAddress: nil)) else {
            Issue.record("no response")
            return
        }
        #expect(String(buffer: response.body) == "blue")
        #expect(response.headerFields[HTTPField.Name("X-Frame-Options")!] == "DENY")
        #expect(response.headerFields[values: HTTPField.Name("X-Extra")!] == ["1", "2"])
        #expect(response.headerFields[HTTPField.Name("X-Remove")!] == nil)
    }

    @Test func compilesStaticResponses() throws {
        let router = try router(
            #"{"sites": [{"routes": [{"handle": [{"handler": "static_response", "status": 418, "headers": {"X-A": ["1", "2"]}, "close": true}]}]}]}"#
        )
        let request = HTTPRequest(method: .get, scheme: "http", authority: "h", path: "/")
        guard case .respond(let response) = router.route(RoutingRequest(request: request, remoteAddress: nil)) else {
            Issue.record("no response")
            return
        }
        #expect(response.status.code == 418)
        #expect(response.headerFields[values: HTTPField.Name("X-A")!] == ["1", "2"])
        #expect(response.close)
        #expect(response.body.readableBytes == 0)
    }
}

extension Router {
    /// The first step routing takes for a request.
    func route(_ request: RoutingRequest) -> Step {
        var cursor = start(request)
        return next(&cursor)
    }
}

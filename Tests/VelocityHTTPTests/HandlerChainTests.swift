import HTTPTypes
import NIOCore
import Testing
import VelocityConfig

@testable import VelocityHTTP

@Suite struct HandlerChainTests {
    private func router(_ text: String) throws -> Router {
        let validated = try ConfigValidator.validate(
            try JSONValue(parsing: text), context: ValidationContext(adminAddress: nil))
        return Router(config: validated.config)
    }

    private func cursor(_ router: Router, _ path: String, headers: HTTPFields = [:]) -> RouteCursor {
        router.start(
            RoutingRequest(
                request: HTTPRequest(method: .get, scheme: "http", authority: "h", path: path, headerFields: headers),
                remoteAddress: nil))
    }

    private func body(_ step: Router.Step) -> String? {
        guard case .respond(let response) = step else { return nil }
        return String(buffer: response.body)
    }

    @Test func rewritesChangeWhatLaterRoutesSee() throws {
        let router = try router(
            """
            {"sites": [{"routes": [
              {"match": [{"path": ["/api/*"]}], "handle": [{"handler": "rewrite", "strip_prefix": "/api/"}]},
              {"match": [{"path": ["/old"]}], "handle": [{"handler": "rewrite", "uri": "/new?from={path}"}]},
              {"match": [{"path": ["/users"]}], "handle": [{"handler": "static_response", "body": "users"}]},
              {"handle": [{"handler": "redirect", "to": "{uri}"}]}
            ]}]}
            """)
        var api = cursor(router, "/api/users")
        #expect(body(router.next(&api)) == "users")
        #expect(api.request.originalTarget == "/api/users")
        var old = cursor(router, "/old?x=1")
        guard case .respond(let moved) = router.next(&old) else {
            Issue.record("no answer")
            return
        }
        #expect(moved.headerFields[.location] == "/new?from=/old")
        var kept = cursor(router, "/apiary?q=1")
        guard case .respond(let untouched) = router.next(&kept) else {
            Issue.record("no answer")
            return
        }
        #expect(untouched.headerFields[.location] == "/apiary?q=1")
    }

    @Test func subroutesFallThroughToTheNextHandler() throws {
        let router = try router(
            """
            {"sites": [{"routes": [
              {"handle": [
                {"handler": "subroute", "routes": [
                  {"match": [{"path": ["/a"]}], "handle": [{"handler": "static_response", "body": "a"}]},
                  {"match": [{"path": ["/b*"]}], "handle": [{"handler": "headers", "response": {"set": {"X-B": ["1"]}}}],
                   "terminal": true},
                  {"handle": [{"handler": "static_response", "body": "never after terminal"}]}
                ]},
                {"handler": "static_response", "body": "after"}
              ]}
            ]}]}
            """)
        var a = cursor(router, "/a")
        #expect(body(router.next(&a)) == "a")
        var b = cursor(router, "/bee")
        guard case .respond(let response) = router.next(&b) else {
            Issue.record("no answer")
            return
        }
        #expect(String(buffer: response.body) == "after")
        #expect(response.headerFields[HTTPField.Name("X-B")!] == "1")
        var c = cursor(router, "/c")
        #expect(body(router.next(&c)) == "never after terminal")
    }

    @Test func fileServersAndPasswordChecksAreLeftToTheCaller() throws {
        let hash = try ScryptHash.derive(password: Array("pw".utf8), logRounds: 4).encoded
        let router = try router(
            """
            {"sites": [{"routes": [
              {"handle": [
                {"handler": "encode"},
                {"handler": "basic_auth", "realm": "staff", "accounts": [{"username": "ann", "password": "\(hash)"}]},
                {"handler": "file_server", "root": "/nonexistent", "pass_thru": true},
                {"handler": "static_response", "body": "fallback"}
              ]}
            ]}]}
            """)
        var anonymous = cursor(router, "/")
        guard case .respond(let challenge) = router.next(&anonymous) else {
            Issue.record("no challenge")
            return
        }
        #expect(challenge.status == .unauthorized)
        #expect(challenge.headerFields[.wwwAuthenticate] == #"Basic realm="staff", charset="UTF-8""#)

        func credentials(_ text: String) -> HTTPFields {
            [.authorization: "Basic " + Base64.encode(Array(text.utf8))]
        }
        var wrong = cursor(router, "/", headers: credentials("ann:nope"))
        guard case .verify(let failing) = router.next(&wrong) else {
            Issue.record("no check")
            return
        }
        #expect(!failing.run())
        var stranger = cursor(router, "/", headers: credentials("bob:pw"))
        guard case .verify(let decoy) = router.next(&stranger) else {
            Issue.record("no check")
            return
        }
        #expect(!decoy.run())

        var right = cursor(router, "/", headers: credentials("ann:pw"))
        guard case .verify(let passing) = router.next(&right) else {
            Issue.record("no check")
            return
        }
        #expect(passing.run())
        #expect(right.decorations.encoding != nil)
        guard case .serveFile(let server) = router.next(&right) else {
            Issue.record("no file server")
            return
        }
        guard case .passThru = server.answer(right.request) else {
            Issue.record("missing root answered")
            return
        }
        #expect(body(router.next(&right)) == "fallback")
        // Once granted, the same credentials pass without another derivation.
        var again = cursor(router, "/", headers: credentials("ann:pw"))
        guard case .serveFile = router.next(&again) else {
            Issue.record("not remembered")
            return
        }
    }
}

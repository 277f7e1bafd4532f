import Testing
import VelocityConfig

@Suite struct ConfigValidatorTests {
    /// The pointer of the error `text` is rejected with, or nil if it is accepted, beside the admin address the
    /// document asks for (as `velocity run` without `--admin` does).
    private func rejection(_ text: String) throws -> String? {
        let document = try JSONValue(parsing: text)
        let context = ValidationContext(adminAddress: ConfigValidator.adminAddress(of: document, override: nil))
        do {
            _ = try ConfigValidator.validate(document, context: context)
            return nil
        } catch let error as ConfigError {
            return error.pointer.description
        }
    }

    @Test func acceptsAnEmptyConfigAndAFullOne() throws {
        #expect(try rejection("{}") == nil)
        let full = """
            {"@id": "root", "admin": {"listen": "127.0.0.1:2020", "allowed_origins": ["http://localhost:3000"],
              "max_body_bytes": 65536},
             "listeners": [{"@id": "web", "protocol": "http", "address": ":8080"}],
             "sites": [{"hosts": ["example.com", "*.example.com"], "routes": [
               {"match": [{"path": ["/api/*", "*.css", "/exact"], "method": ["GET"], "header": {"X-A": []},
                           "query": {"q": ["1"]}, "remote_ip": ["10.0.0.0/8", "::1"], "not": [{"path": ["/x"]}]}],
                "handle": [{"handler": "static_response", "status": 201, "headers": {"X-B": ["c"]}, "body": "ok",
                            "close": true}],
                "terminal": true}]},
               {"routes": []}],
             "tls": {"certificates": [{"certificate_pem": "-", "key_pem": "-"}],
                     "automation": {"policies": [{"issuer": "internal", "subjects": ["localhost"]}]}},
             "logging": {"level": "debug", "format": "json"}}
            """
        #expect(try rejection(full) == nil)
    }

    @Test(arguments: [
        (
            #"{"sites": [{"routes": [{"handle": [{"handler": "static_response", "bdy": "x"}]}]}]}"#,
            "/sites/0/routes/0/handle/0/bdy"
        ),
        (#"{"sites": [{"routes": [{"handle": [{"handler": "nope"}]}]}]}"#, "/sites/0/routes/0/handle/0/handler"),
        (#"{"sites": [{"routes": [{"handle": [{"body": "x"}]}]}]}"#, "/sites/0/routes/0/handle/0"),
        (#"{"listeners": [{"protocol": "http"}]}"#, "/listeners/0"),
        (#"{"listeners": [{"protocol": "ftp", "address": ":1"}]}"#, "/listeners/0/protocol"),
        (#"{"listeners": [{"protocol": "http", "address": 80}]}"#, "/listeners/0/address"),
        (#"{"sites": {}}"#, "/sites"),
        (#"{"logging": {"level": "loud"}}"#, "/logging/level"),
        (#"{"admin": {"extra": 1}}"#, "/admin/extra"),
        (
            #"{"sites": [{"routes": [{"handle": [{"handler": "static_response", "status": 2.5}]}]}]}"#,
            "/sites/0/routes/0/handle/0/status"
        ),
    ])
    func rejectsBadShapesWithTheirPointer(text: String, pointer: String) throws {
        #expect(try rejection(text) == pointer)
    }

    @Test(arguments: [
        (#"[]"#, ""),
        (#"{"sites": [{"@id": "a"}, {"hosts": ["x.test"], "@id": "a"}]}"#, "/sites/1/@id"),
        (#"{"sites": [{"@id": 5}]}"#, "/sites/0/@id"),
        (#"{"sites": [{"hosts": ["a.test"]}, {"hosts": ["A.test"]}]}"#, "/sites/1/hosts/0"),
        (#"{"sites": [{}, {}]}"#, "/sites/1"),
        (#"{"sites": [{"hosts": ["a.*.test"]}]}"#, "/sites/0/hosts/0"),
        (
            #"{"listeners": [{"protocol": "http", "address": ":80"}, {"protocol": "http", "address": "127.0.0.1:80"}]}"#,
            "/listeners/1/address"
        ),
        (#"{"listeners": [{"protocol": "http", "address": ":2019"}]}"#, "/listeners/0/address"),
        (#"{"listeners": [{"protocol": "http", "address": "nonsense"}]}"#, "/listeners/0/address"),
        (#"{"sites": [{"routes": [{"match": [{"path": ["/a*b"]}]}]}]}"#, "/sites/0/routes/0/match/0/path/0"),
        (
            #"{"sites": [{"routes": [{"match": [{"remote_ip": ["10.0.0.0/33"]}]}]}]}"#,
            "/sites/0/routes/0/match/0/remote_ip/0"
        ),
        (
            #"{"sites": [{"routes": [{"match": [{"not": [{"method": ["get"]}]}]}]}]}"#,
            "/sites/0/routes/0/match/0/not/0/method/0"
        ),
        (
            #"{"sites": [{"routes": [{"handle": [{"handler": "static_response", "status": 700}]}]}]}"#,
            "/sites/0/routes/0/handle/0/status"
        ),
        (
            #"{"sites": [{"routes": [{"handle": [{"handler": "static_response", "headers": {"X": ["a\nb"]}}]}]}]}"#,
            "/sites/0/routes/0/handle/0/headers/X/0"
        ),
        (
            #"{"sites": [{"routes": [{"handle": [{"handler": "static_response", "headers": {"X": ["a\r\nB: c"]}}]}]}]}"#,
            "/sites/0/routes/0/handle/0/headers/X/0"
        ),
        (#"{"admin": {"listen": "0.0.0.0:2019"}}"#, "/admin/listen"),
        (#"{"admin": {"allowed_origins": ["http:///evil"]}}"#, "/admin/allowed_origins/0"),
        (#"{"admin": {"allowed_origins": ["https://"]}}"#, "/admin/allowed_origins/0"),
        (#"{"admin": null}"#, "/admin"),
        (#"{"sites": [{"hsts": {"max_age": -5}}]}"#, "/sites/0/hsts/max_age"),
        (#"{"sites": [{"hsts": {}}]}"#, "/sites/0/hsts"),
        (
            #"{"sites": [{"routes": [{"handle": [{"handler": "redirect", "to": "/{nope}"}]}]}]}"#,
            "/sites/0/routes/0/handle/0/to"
        ),
        (
            #"{"sites": [{"routes": [{"handle": [{"handler": "redirect", "to": "/{host"}]}]}]}"#,
            "/sites/0/routes/0/handle/0/to"
        ),
        (
            #"{"sites": [{"routes": [{"handle": [{"handler": "redirect", "to": "/", "status": 200}]}]}]}"#,
            "/sites/0/routes/0/handle/0/status"
        ),
        (
            #"{"sites": [{"routes": [{"handle": [{"handler": "headers", "response": {"delete": ["a b"]}}]}]}]}"#,
            "/sites/0/routes/0/handle/0/response/delete/0"
        ),
        (
            #"{"sites": [{"routes": [{"handle": [{"handler": "headers", "request": {"set": {"X": ["a\r\nb"]}}}]}]}]}"#,
            "/sites/0/routes/0/handle/0/request/set/X/0"
        ),
        (#"{"sites": [{"hosts": null}]}"#, "/sites/0/hosts"),
        (
            #"{"admin": {"auth": {"bearer_token_sha256": ["\#(String(repeating: "ａ", count: 64))"]}}}"#,
            "/admin/auth/bearer_token_sha256/0"
        ),
        (#"{"admin": {"auth": {"bearer_token_sha256": ["secret"]}}}"#, "/admin/auth/bearer_token_sha256/0"),
        (#"{"tls": {"certificates": [{"certificate_file": "/a"}]}}"#, "/tls/certificates/0"),
    ])
    func rejectsBadMeaningWithItsPointer(text: String, pointer: String) throws {
        #expect(try rejection(text) == pointer)
    }

    @Test func refusesAnOpenAdminAPIOnANonLoopbackOverride() throws {
        let exposed = ValidationContext(adminAddress: ListenAddress("0.0.0.0:2019"))
        #expect(throws: ConfigError(at: JSONPointer(tokens: ["admin"]), "")) {
            do {
                _ = try ConfigValidator.validate(.object([:]), context: exposed)
            } catch let error as ConfigError {
                throw ConfigError(at: error.pointer, "")
            }
        }
    }

    @Test func namesTheAllowedWordsOfAnEnumeration() throws {
        do {
            _ = try ConfigValidator.validate(
                try JSONValue(parsing: #"{"logging": {"format": "xml"}}"#),
                context: ValidationContext(adminAddress: nil))
            Issue.record("accepted")
        } catch let error as ConfigError {
            #expect(error.message == #""xml" is not one of "json", "console""#)
        }
    }

    @Test func allowsANonLoopbackAdminWithAuth() throws {
        let digest = String(repeating: "a", count: 64)
        #expect(
            try rejection(#"{"admin": {"listen": "0.0.0.0:2020", "auth": {"bearer_token_sha256": ["\#(digest)"]}}}"#)
                == nil)
    }
}

@Suite struct AddressTests {
    @Test func parsesListenAddresses() {
        #expect(ListenAddress(":80") == .inet(host: "", port: 80))
        #expect(ListenAddress("[::1]:443") == .inet(host: "::1", port: 443))
        #expect(ListenAddress("unix:/run/v.sock") == .unix(path: "/run/v.sock"))
        #expect(ListenAddress("::1:443") == nil)
        #expect(ListenAddress("host:0") == nil)
        #expect(ListenAddress("unix:relative") == nil)
    }

    @Test func detectsOverlaps() throws {
        let any = try #require(ListenAddress(":80"))
        #expect(any.overlaps(try #require(ListenAddress("127.0.0.1:80"))))
        #expect(!any.overlaps(try #require(ListenAddress("127.0.0.1:81"))))
        #expect(try #require(ListenAddress("localhost:80")).overlaps(try #require(ListenAddress("127.0.0.1:80"))))
        #expect(!(try #require(ListenAddress("127.0.0.1:80"))).overlaps(try #require(ListenAddress("127.0.0.2:80"))))
    }

    @Test func matchesCIDRRanges() throws {
        let range = try #require(IPRange("10.1.0.0/16"))
        #expect(range.contains(try #require(IPAddress("10.1.200.3"))))
        #expect(!range.contains(try #require(IPAddress("10.2.0.1"))))
        #expect(range.contains(try #require(IPAddress("::ffff:10.1.0.9"))))
        #expect(try #require(IPRange("2001:db8::/33")).contains(try #require(IPAddress("2001:db8:7fff::1"))))
        #expect(!(try #require(IPRange("2001:db8::/33"))).contains(try #require(IPAddress("2001:db8:8000::1"))))
    }
}

@Suite struct AutomationPolicyValidationTests {
    private func rejection(_ policy: String) throws -> String? {
        let document = try JSONValue(parsing: #"{"tls": {"automation": {"policies": [\#(policy)]}}}"#)
        do {
            _ = try ConfigValidator.validate(document, context: ValidationContext(adminAddress: nil))
            return nil
        } catch let error as ConfigError {
            return error.pointer.description
        }
    }

    @Test func acceptsAFullACMEPolicy() throws {
        let policy = """
            {"subjects": ["example.com", "*.example.com"], "issuer": "acme", "ca": "https://ca.test/dir",
             "email": "ops@example.com", "accept_terms": true, "key_type": "P-384",
             "external_account": {"key_id": "kid", "mac_key": "c2VjcmV0LWtleQ"},
             "challenges": {"http_01": {"alternate_port": 8080}, "tls_alpn_01": {"enabled": false}},
             "trusted_roots_file": "/etc/ssl/ca.pem"}
            """
        #expect(try rejection(policy) == nil)
    }

    @Test(arguments: [
        (#"{"issuer": "acme"}"#, "/tls/automation/policies/0"),
        (#"{"issuer": "acme", "accept_terms": false}"#, "/tls/automation/policies/0"),
        (#"{"issuer": "acme", "accept_terms": true, "ca": "http://ca.test/dir"}"#, "/tls/automation/policies/0/ca"),
        (#"{"issuer": "acme", "accept_terms": true, "email": "ops"}"#, "/tls/automation/policies/0/email"),
        (
            #"{"issuer": "acme", "accept_terms": true, "external_account": {"key_id": "k", "mac_key": "a+b/"}}"#,
            "/tls/automation/policies/0/external_account/mac_key"
        ),
        (
            #"{"issuer": "acme", "accept_terms": true, "challenges": {"http_01": {"alternate_port": 0}}}"#,
            "/tls/automation/policies/0/challenges/http_01/alternate_port"
        ),
        (
            #"{"issuer": "acme", "accept_terms": true, "challenges": {"http_01": {"enabled": false}, "tls_alpn_01": {"enabled": false}}}"#,
            "/tls/automation/policies/0/challenges"
        ),
        (#"{"issuer": "acme", "accept_terms": true, "key_type": "RSA"}"#, "/tls/automation/policies/0/key_type"),
        (#"{"issuer": "internal", "email": "ops@example.com"}"#, "/tls/automation/policies/0/email"),
        (#"{"issuer": "internal", "subjects": ["a b"]}"#, "/tls/automation/policies/0/subjects/0"),
    ])
    func rejectsWithThePointer(policy: String, pointer: String) throws {
        #expect(try rejection(policy) == pointer)
    }

    @Test func theMACKeyIsNeverRepeated() throws {
        let document = try JSONValue(
            parsing:
                #"{"tls": {"automation": {"policies": [{"issuer": "acme", "accept_terms": true, "external_account": {"key_id": "k", "mac_key": "s3cr3t+/"}}]}}}"#
        )
        let error = #expect(throws: ConfigError.self) {
            try ConfigValidator.validate(document, context: ValidationContext(adminAddress: nil))
        }
        #expect(error?.description.contains("s3cr3t") == false)
    }
}

import NIOHTTP1
import Testing

@testable import VelocityHTTP3

/// Extended CONNECT (RFC 9220, with RFC 8441 §4's rules): `:protocol` is accepted on a CONNECT only when the server
/// advertised it, and such a CONNECT names its target with `:scheme`, `:path` and `:authority`.
@Suite struct ExtendedConnectTests {
    static let websocket = [
        (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/chat?room=1"),
        (":authority", "example.com"), ("sec-websocket-version", "13"),
    ]

    static func head(_ pairs: [(String, String)], advertised: Bool = true) throws(HTTP3Error) -> (
        HTTPRequestHead, contentLength: UInt64?, connectProtocol: String?
    ) {
        try HTTP3Message.requestHead(pairs.map { QPACKField(name: $0.0, value: $0.1) }, extendedConnect: advertised)
    }

    @Test func theProtocolTravelsBesideAHeadForItsPath() throws {
        let (head, length, requested) = try Self.head(Self.websocket)
        #expect(head.method == .CONNECT && head.uri == "/chat?room=1" && head.version.major == 3)
        #expect(head.headers["host"] == ["example.com"] && head.headers["sec-websocket-version"] == ["13"])
        #expect(requested == "websocket" && length == nil)
    }

    @Test func aPlainConnectStillNamesOnlyAnAuthority() throws {
        let (head, _, requested) = try Self.head([(":method", "CONNECT"), (":authority", "example.com:443")])
        #expect(head.method == .CONNECT && head.uri == "example.com:443" && requested == nil)
    }

    static let malformed: [(String, [(String, String)], Bool)] = [
        ("not advertised", websocket, false),
        ("not a CONNECT", websocket.map { $0.0 == ":method" ? ($0.0, "GET") : $0 }, true),
        ("no :path", websocket.filter { $0.0 != ":path" }, true),
        ("no :scheme", websocket.filter { $0.0 != ":scheme" }, true),
        ("no :authority", websocket.filter { $0.0 != ":authority" }, true),
        ("a second :protocol", [websocket[0], websocket[1]] + websocket.dropFirst(1), true),
    ]

    @Test(arguments: malformed.indices)
    func malformedRequestsAreMessageErrors(_ index: Int) {
        let (reason, pairs, advertised) = Self.malformed[index]
        let error = #expect(throws: HTTP3Error.self, "\(reason)") { try Self.head(pairs, advertised: advertised) }
        #expect(error?.code == .messageError, "\(reason)")
    }
}

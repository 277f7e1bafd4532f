import HTTPTypes
import Testing
import VelocityConfig

@testable import VelocityHTTP

/// An upstream whose health and load a test sets.
private final class FakeUpstream: ProxyUpstream, @unchecked Sendable {
    let key: String
    var isAvailable = true
    var inFlight = 0

    init(_ key: String) {
        self.key = key
    }
}

@Suite struct LoadBalancingTests {
    private let fakes = (1...3).map { FakeUpstream("10.0.0.\($0):80") }

    private func proxy(_ balancing: String, weights: [Int] = [1, 1, 1]) throws -> ReverseProxy {
        let upstreams = zip(fakes, weights).map { #"{"dial": "\#($0.key)", "weight": \#($1)}"# }
        let config = try StrictDecoder.decode(
            ReverseProxyConfig.self,
            from: try JSONValue(
                parsing: #"{"upstreams": [\#(upstreams.joined(separator: ","))], "load_balancing": \#(balancing)}"#))
        let byKey = Dictionary(uniqueKeysWithValues: fakes.map { ($0.key, $0) })
        return ReverseProxy(config) { byKey[$0.dial]! }
    }

    private func request(
        _ path: String = "/", from address: String = "192.0.2.1", headers: HTTPFields = [:]
    ) -> RoutingRequest {
        RoutingRequest(
            request: HTTPRequest(method: .get, scheme: "http", authority: "h", path: path, headerFields: headers),
            remoteAddress: IPAddress(address))
    }

    private func picks(_ proxy: ReverseProxy, _ count: Int, _ make: (Int) -> RoutingRequest) -> [Int] {
        (0..<count).map { proxy.select(make($0))! }
    }

    @Test func roundRobinCyclesAndSkipsTheUnavailable() throws {
        let proxy = try proxy(#"{"policy": "round_robin"}"#)
        #expect(Set(picks(proxy, 3) { _ in request() }) == [0, 1, 2])
        fakes[1].isAvailable = false
        #expect(!picks(proxy, 6) { _ in request() }.contains(1))
        #expect(proxy.select(request(), excluding: [0, 2]) == nil)
    }

    @Test func weightsShareRequestsInProportion() throws {
        let proxy = try proxy(#"{"policy": "weighted_round_robin"}"#, weights: [1, 2, 5])
        let counts = picks(proxy, 800) { _ in request() }.reduce(into: [0, 0, 0]) { $0[$1] += 1 }
        #expect(counts == [100, 200, 500])
    }

    @Test func firstAndLeastConn() throws {
        let first = try proxy(#"{"policy": "first"}"#)
        #expect(first.select(request()) == 0)
        fakes[0].isAvailable = false
        #expect(first.select(request()) == 1)
        fakes[0].isAvailable = true
        let least = try proxy(#"{"policy": "least_conn"}"#)
        fakes[0].inFlight = 5
        fakes[1].inFlight = 1
        fakes[2].inFlight = 3
        #expect(least.select(request()) == 1)
        #expect(least.select(request(), excluding: [1]) == 2)
    }

    @Test func randomChooseComparesTwoDifferentUpstreams() throws {
        let proxy = try proxy(#"{"policy": "random_choose"}"#)
        fakes[0].inFlight = 1
        // Two distinct picks always include an idle upstream, which wins over the busy one.
        #expect(!picks(proxy, 200) { _ in request() }.contains(0))
        #expect(proxy.select(request(), excluding: [1, 2]) == 0)
    }

    @Test func hashesAreStableAndMoveOnlyTheKeysOfALostUpstream() throws {
        for (policy, make) in [
            (#"{"policy": "ip_hash"}"#, { (i: Int) in self.request(from: "192.0.2.\(i % 50)") }),
            (#"{"policy": "uri_hash"}"#, { (i: Int) in self.request("/item/\(i % 50)") }),
            (
                #"{"policy": "header", "header": "X-User"}"#,
                { (i: Int) in self.request(headers: [HTTPField.Name("X-User")!: "user\(i % 50)"]) }
            ),
        ] {
            let proxy = try proxy(policy)
            let before = picks(proxy, 50, make)
            #expect(picks(proxy, 50, make) == before)
            #expect(Set(before).count == 3)
            fakes[2].isAvailable = false
            let after = picks(proxy, 50, make)
            for (old, new) in zip(before, after) where old != 2 { #expect(old == new) }
            fakes[2].isAvailable = true
        }
    }

    @Test func cookiesPinClientsAndForgeriesAreIgnored() throws {
        let proxy = try proxy(#"{"policy": "cookie", "cookie": "pin"}"#)
        let chosen = proxy.select(request())!
        let setCookie = try #require(proxy.stickyCookie(for: chosen, request: request()))
        #expect(setCookie.hasPrefix("pin=") && setCookie.contains("HttpOnly"))
        let cookie = String(setCookie.split(separator: ";")[0])
        let pinned = request(headers: [.cookie: "other=1; " + cookie])
        #expect(picks(proxy, 10) { _ in pinned } == Array(repeating: chosen, count: 10))
        #expect(proxy.stickyCookie(for: chosen, request: pinned) == nil)
        let forged = request(headers: [.cookie: "pin=00112233445566778899aabbccddeeff"])
        #expect(Set(picks(proxy, 6) { _ in forged }).count == 3)
        fakes[chosen].isAvailable = false
        #expect(proxy.select(pinned) != chosen)
    }

    @Test func forwardedHeadersAreTrustedOnlyFromConfiguredProxies() throws {
        let config = try StrictDecoder.decode(
            ReverseProxyConfig.self,
            from: try JSONValue(parsing: #"{"upstreams": [{"dial": "a:1"}], "trusted_proxies": ["10.0.0.0/8"]}"#))
        let proxy = ReverseProxy(config, upstreams: DetachedUpstream.init(spec:))
        #expect(proxy.trusts(IPAddress("10.1.2.3")))
        #expect(!proxy.trusts(IPAddress("192.0.2.1")))
        #expect(!proxy.trusts(nil))
    }
}

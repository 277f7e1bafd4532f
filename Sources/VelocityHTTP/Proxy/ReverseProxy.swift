import Crypto
import HTTPTypes
import NIOCore
import Synchronization
import VelocityConfig

/// A compiled `reverse_proxy` handler: its upstreams, how one is chosen, and what is changed on the way
/// through. Transport-neutral; the data plane does the sending.
public final class ReverseProxy: Sendable {
    public let upstreams: [any ProxyUpstream]
    private let weights: [Int]
    private let policy: LoadBalancingPolicy
    private let header: HTTPField.Name?
    public let cookieName: String
    /// Other upstreams tried after a failure that is safe to retry.
    public let retries: Int
    public let requestEdits: HeaderEdits?
    public let responseEdits: HeaderEdits?
    private let trustedProxies: [IPRange]
    public let hostHeader: HostHeader
    public let dialTimeoutMs: Int
    public let responseHeaderTimeoutMs: Int
    /// Nil when the config asks for no passive checks: failures are then not remembered.
    public let passiveHealth: PassiveHealth?
    private let counter = Atomic<Int>(0)

    public enum HostHeader: Sendable {
        case passThrough
        case fixed(String)
        /// The upstream's own `host:port`.
        case upstream
    }

    /// The passive health check's settings, applied by the data plane when a request fails.
    public struct PassiveHealth: Sendable {
        public let failDuration: TimeAmount
        public let maxFails: Int
        public let unhealthyStatus: Set<Int>
        public let unhealthyLatency: TimeAmount?
    }

    init(_ config: ReverseProxyConfig, upstreams provide: (UpstreamSpec) -> any ProxyUpstream) {
        upstreams = config.upstreams.map {
            provide(UpstreamSpec(dial: $0.dial, tls: config.transport?.tls, activeCheck: config.healthChecks?.active))
        }
        weights = config.upstreams.map { $0.weight ?? 1 }
        let balancing = config.loadBalancing
        policy = balancing?.policy ?? .roundRobin
        header = balancing?.header.flatMap { HTTPField.Name($0) }
        cookieName = balancing?.cookie ?? "velocity_upstream"
        retries = balancing?.retries ?? 2
        requestEdits = config.headers?.request.map(HeaderEdits.init)
        responseEdits = config.headers?.response.map(HeaderEdits.init)
        trustedProxies = (config.trustedProxies ?? []).compactMap(IPRange.init)
        hostHeader =
            switch config.hostHeader {
            case nil: .passThrough
            case "{upstream}": .upstream
            case let host?: .fixed(host)
            }
        dialTimeoutMs = config.timeouts?.dialMs ?? 3000
        responseHeaderTimeoutMs = config.timeouts?.responseHeaderMs ?? 30000
        passiveHealth = config.healthChecks?.passive.map { passive in
            PassiveHealth(
                failDuration: .seconds(Int64(passive.failDurationSeconds ?? 30)), maxFails: passive.maxFails ?? 1,
                unhealthyStatus: Set(passive.unhealthyStatus ?? []),
                unhealthyLatency: passive.unhealthyLatencyMs.map { .milliseconds(Int64($0)) })
        }
    }

    /// Whether the client's own forwarding headers may be believed.
    public func trusts(_ address: IPAddress?) -> Bool {
        guard let address else { return false }
        return trustedProxies.contains { $0.contains(address) }
    }

    /// The upstream for a request, skipping unavailable ones and those already tried; nil when none is left.
    public func select(_ request: RoutingRequest, excluding tried: [Int] = []) -> Int? {
        let candidates = upstreams.indices.filter { !tried.contains($0) && upstreams[$0].isAvailable }
        guard !candidates.isEmpty else { return nil }
        switch policy {
        case .first:
            return candidates[0]
        case .roundRobin:
            return roundRobin(candidates)
        case .weightedRoundRobin:
            let total = candidates.reduce(0) { $0 + weights[$1] }
            var slot = next() % total
            for index in candidates {
                if slot < weights[index] { return index }
                slot -= weights[index]
            }
            return candidates[0]
        case .leastConn:
            return candidates.min { upstreams[$0].inFlight < upstreams[$1].inFlight }
        case .random:
            return candidates.randomElement()
        case .randomChoose:
            // Two different candidates ("power of two choices"), the less busy one wins.
            guard candidates.count > 1 else { return candidates[0] }
            let first = Int.random(in: 0..<candidates.count)
            let second = (first + Int.random(in: 1..<candidates.count)) % candidates.count
            let (one, other) = (candidates[first], candidates[second])
            return upstreams[other].inFlight < upstreams[one].inFlight ? other : one
        case .ipHash:
            return hashed(request.remoteAddress?.description ?? "", candidates)
        case .uriHash:
            return hashed(String(request.path), candidates)
        case .header:
            guard let header, let value = request.request.headerFields[header] else { return roundRobin(candidates) }
            return hashed(value, candidates)
        case .cookie:
            if let pinned = pinnedUpstream(request), candidates.contains(pinned) { return pinned }
            return roundRobin(candidates)
        }
    }

    /// The `Set-Cookie` value that pins a client to `index`, when the cookie policy is on and the request did
    /// not already carry it.
    public func stickyCookie(for index: Int, request: RoutingRequest) -> String? {
        guard policy == .cookie, pinnedUpstream(request) != index else { return nil }
        return "\(cookieName)=\(Self.cookieValue(upstreams[index].key)); Path=/; HttpOnly; SameSite=Lax"
    }

    private func next() -> Int {
        counter.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max
    }

    private func roundRobin(_ candidates: [Int]) -> Int {
        candidates[next() % candidates.count]
    }

    /// Rendezvous hashing: each key keeps its upstream while that upstream is available, and only the keys of
    /// an upstream that goes away move.
    private func hashed(_ key: String, _ candidates: [Int]) -> Int {
        candidates.max { score(key, $0) < score(key, $1) }!
    }

    private func score(_ key: String, _ index: Int) -> UInt64 {
        var hasher = SHA256()
        hasher.update(data: Array(upstreams[index].key.utf8))
        hasher.update(data: [0])
        hasher.update(data: Array(key.utf8))
        return hasher.finalize().withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }

    /// The upstream a valid cookie names; tampered or stale cookies name none.
    private func pinnedUpstream(_ request: RoutingRequest) -> Int? {
        for header in request.request.headerFields[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingCharacters(where: { $0 == " " }) == cookieName else {
                    continue
                }
                let value = String(parts[1].trimmingCharacters(where: { $0 == " " }))
                return upstreams.indices.first { Self.cookieValue(upstreams[$0].key) == value }
            }
        }
        return nil
    }

    /// An upstream's identity, signed with a key of this process so that clients cannot pick one by forging.
    private static let cookieKey = SymmetricKey(size: .bits256)

    private static func cookieValue(_ key: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Array(key.utf8), using: cookieKey)
        return code.prefix(16).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

extension HTTPRequest.Method {
    /// Methods whose effect is the same when sent twice (RFC 9110 §9.2.2), so a retry cannot do harm.
    public var isIdempotent: Bool {
        switch self {
        case .get, .head, .options, .trace, .put, .delete: true
        default: false
        }
    }
}

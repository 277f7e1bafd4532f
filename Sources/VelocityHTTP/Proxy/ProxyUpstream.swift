import VelocityConfig

/// What identifies an upstream: where it is and how it is reached. Handlers naming the same spec share one
/// upstream object.
public struct UpstreamSpec: Sendable, Hashable {
    public let dial: String
    public let tls: UpstreamTLSConfig?
    public let activeCheck: ActiveHealthConfig?

    public init(dial: String, tls: UpstreamTLSConfig?, activeCheck: ActiveHealthConfig?) {
        self.dial = dial
        self.tls = tls
        self.activeCheck = activeCheck
    }
}

/// What load balancing knows of an upstream: kept by the data plane, which owns connections and health, and
/// shared by every config that names the same address.
public protocol ProxyUpstream: AnyObject, Sendable {
    /// The configured `dial` address, which identifies the upstream.
    var key: String { get }
    /// Not marked unhealthy.
    var isAvailable: Bool { get }
    /// Requests being served now.
    var inFlight: Int { get }
}

/// An upstream with no data plane behind it: always available and idle. For routing on its own (tests,
/// benchmarks), where nothing is ever sent.
public final class DetachedUpstream: ProxyUpstream {
    public let key: String
    public var isAvailable: Bool { true }
    public var inFlight: Int { 0 }

    public init(spec: UpstreamSpec) {
        key = spec.dial
    }
}

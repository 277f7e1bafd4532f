/// Forwards requests to upstream servers and streams their responses back.
public struct ReverseProxyConfig: Decodable, Sendable, Equatable {
    public var upstreams: [UpstreamConfig]
    public var loadBalancing: LoadBalancingConfig?
    public var healthChecks: HealthChecksConfig?
    /// Edits of the request sent upstream and of the response sent back.
    public var headers: HeadersConfig?
    /// Clients (CIDRs or addresses) whose own `X-Forwarded-*` headers are believed and extended; from anyone
    /// else they are replaced.
    public var trustedProxies: [String]?
    /// The Host sent upstream: absent keeps the client's; a fixed value (`app.internal`) or `{upstream}`, the
    /// upstream's own `host:port`.
    public var hostHeader: String?
    public var timeouts: ProxyTimeoutsConfig?
    /// How upstreams are reached: TLS settings for upstreams that speak HTTPS.
    public var transport: ProxyTransportConfig?

    enum CodingKeys: String, CodingKey {
        case transport
        case upstreams
        case loadBalancing = "load_balancing"
        case healthChecks = "health_checks"
        case headers
        case trustedProxies = "trusted_proxies"
        case hostHeader = "host_header"
        case timeouts
    }
}

public struct UpstreamConfig: Decodable, Sendable, Equatable {
    /// `host:port` (TCP) or `unix:/path/to/socket`.
    public var dial: String
    /// For `weighted_round_robin`; default 1.
    public var weight: Int?
}

public struct LoadBalancingConfig: Decodable, Sendable, Equatable {
    /// Default `round_robin`.
    public var policy: LoadBalancingPolicy?
    /// The request header whose value picks the upstream, for `header`.
    public var header: String?
    /// The cookie that pins a client to its upstream, for `cookie`; default `velocity_upstream`.
    public var cookie: String?
    /// How many other upstreams to try after a failure that is safe to retry. Default 2.
    public var retries: Int?

    enum CodingKeys: String, CodingKey {
        case policy, header, cookie, retries
    }
}

public enum LoadBalancingPolicy: String, ConfigKeyword, Sendable {
    case roundRobin = "round_robin"
    case weightedRoundRobin = "weighted_round_robin"
    case leastConn = "least_conn"
    case random
    case randomChoose = "random_choose"
    case first
    case ipHash = "ip_hash"
    case uriHash = "uri_hash"
    case header
    case cookie
}

public struct HealthChecksConfig: Decodable, Sendable, Equatable {
    public var passive: PassiveHealthConfig?
    public var active: ActiveHealthConfig?
}

/// Health learned by asking: every `interval_ms` each upstream gets a `GET` of `path` on a fresh connection;
/// `fails` failed checks in a row take it out, `passes` good ones in a row bring it back.
public struct ActiveHealthConfig: Decodable, Sendable, Hashable {
    /// Default `/`.
    public var path: String?
    /// Default 10000.
    public var intervalMs: Int?
    /// Default 2000.
    public var timeoutMs: Int?
    /// Statuses that pass; default any 2xx.
    public var expectStatus: [Int]?
    /// Text the body must contain to pass (the first 64 KiB are read).
    public var expectBody: String?
    /// Default 1.
    public var passes: Int?
    /// Default 1.
    public var fails: Int?
    /// The Host of the check; default the upstream's `dial`.
    public var host: String?

    enum CodingKeys: String, CodingKey {
        case path
        case intervalMs = "interval_ms"
        case timeoutMs = "timeout_ms"
        case expectStatus = "expect_status"
        case expectBody = "expect_body"
        case passes, fails, host
    }
}

/// Health learned from real traffic: an upstream that fails `max_fails` times within `fail_duration_seconds`
/// is skipped until that window has passed.
public struct PassiveHealthConfig: Decodable, Sendable, Equatable {
    /// Default 30.
    public var failDurationSeconds: Int?
    /// Default 1.
    public var maxFails: Int?
    /// Response statuses that count as failures (default: none; connection errors always count).
    public var unhealthyStatus: [Int]?
    /// A response slower than this many milliseconds (to its headers) counts as a failure.
    public var unhealthyLatencyMs: Int?

    enum CodingKeys: String, CodingKey {
        case failDurationSeconds = "fail_duration_seconds"
        case maxFails = "max_fails"
        case unhealthyStatus = "unhealthy_status"
        case unhealthyLatencyMs = "unhealthy_latency_ms"
    }
}

public struct ProxyTimeoutsConfig: Decodable, Sendable, Equatable {
    /// Connecting to an upstream. Default 3000.
    public var dialMs: Int?
    /// From the request's end to the response's headers. Default 30000.
    public var responseHeaderMs: Int?

    enum CodingKeys: String, CodingKey {
        case dialMs = "dial_ms"
        case responseHeaderMs = "response_header_ms"
    }
}

public struct ProxyTransportConfig: Decodable, Sendable, Equatable {
    /// Connect to the upstreams with TLS (HTTPS); absent means plain HTTP.
    public var tls: UpstreamTLSConfig?
}

/// TLS towards upstreams. Certificates are verified against the system's trust store or `ca_file`, for the
/// upstream's host name or `server_name`.
public struct UpstreamTLSConfig: Decodable, Sendable, Hashable {
    /// A PEM file of the certificate authorities upstream certificates must chain to, instead of the system's.
    public var caFile: String?
    /// The name sent in SNI and checked against the certificate; default: the host of `dial`.
    public var serverName: String?
    /// A client certificate chain and key (PEM files) for upstreams that ask for one.
    public var clientCertificateFile: String?
    public var clientKeyFile: String?
    /// Accept any certificate. Only for testing: it makes TLS to the upstream worthless against an attacker.
    public var insecureSkipVerify: Bool?

    enum CodingKeys: String, CodingKey {
        case caFile = "ca_file"
        case serverName = "server_name"
        case clientCertificateFile = "client_certificate_file"
        case clientKeyFile = "client_key_file"
        case insecureSkipVerify = "insecure_skip_verify"
    }
}

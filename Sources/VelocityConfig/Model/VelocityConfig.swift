/// The whole configuration of a Velocity server, as the admin API, the store and `velocity validate` see it.
///
/// Every member is optional so that `{}` is a valid (empty) config; defaults are applied when a snapshot is
/// compiled, not written back into the document.
public struct VelocityConfig: Decodable, Sendable, Equatable {
    public var admin: AdminConfig?
    public var listeners: [ListenerConfig]?
    public var sites: [SiteConfig]?
    public var tls: TLSConfig?
    public var logging: LoggingConfig?
    /// How long the data plane waits for clients.
    public var timeouts: TimeoutsConfig?
    /// Settings of `quic` listeners.
    public var quic: QUICConfig?

    public init(
        admin: AdminConfig? = nil,
        listeners: [ListenerConfig]? = nil,
        sites: [SiteConfig]? = nil,
        tls: TLSConfig? = nil,
        logging: LoggingConfig? = nil
    ) {
        self.admin = admin
        self.listeners = listeners
        self.sites = sites
        self.tls = tls
        self.logging = logging
    }
}

/// Client timeouts of every data-plane listener, applied to connections accepted after a change.
public struct TimeoutsConfig: Decodable, Sendable, Equatable {
    /// Time an HTTP/1 connection has, from its start or the end of the previous response, to send a complete
    /// request head: the keep-alive idle time, and the bound on clients that trickle headers. Default 60000.
    public var requestHeadMs: Int?
    /// Silence (nothing received) that closes a connection, except while a response is being written.
    /// Default 60000.
    public var idleMs: Int?

    public static let defaultMs = 60_000

    enum CodingKeys: String, CodingKey {
        case requestHeadMs = "request_head_ms"
        case idleMs = "idle_ms"
    }
}

/// Settings of every `quic` listener, applied to connections that start after a change.
public struct QUICConfig: Decodable, Sendable, Equatable {
    /// When a new client must first prove its address with a Retry round trip (RFC 9000 §8.1.2).
    public enum RetryPolicy: String, ConfigKeyword, Sendable {
        /// Only while many handshakes are in progress, as under a flood of spoofed Initials.
        case auto
        case always
        case never
    }

    public enum CongestionControl: String, ConfigKeyword, Sendable {
        case cubic
        case newReno = "new_reno"
    }

    /// Default `auto`.
    public var retry: RetryPolicy?
    /// Default `cubic`.
    public var congestionControl: CongestionControl?
    /// A directory for a qlog file per connection (diagnostics); none by default.
    public var qlogDir: String?
    /// Unreliable datagrams (RFC 9221) for applications that use them. Default false.
    public var datagrams: Bool?

    enum CodingKeys: String, CodingKey {
        case retry
        case congestionControl = "congestion_control"
        case qlogDir = "qlog_dir"
        case datagrams
    }
}

/// The admin API's own settings.
public struct AdminConfig: Decodable, Sendable, Equatable {
    /// `host:port`, `[v6]:port` or `unix:/path`. Default `127.0.0.1:2019`.
    public var listen: String?
    /// Extra names accepted in the `Host` header besides the listen address and loopback names.
    public var allowedHosts: [String]?
    /// Origins (`scheme://host[:port]`) allowed to send requests carrying an `Origin` header.
    public var allowedOrigins: [String]?
    public var auth: AdminAuthConfig?
    /// The largest request body accepted, in bytes. Default 4 MiB.
    public var maxBodyBytes: Int?

    enum CodingKeys: String, CodingKey {
        case listen
        case allowedHosts = "allowed_hosts"
        case allowedOrigins = "allowed_origins"
        case auth
        case maxBodyBytes = "max_body_bytes"
    }
}

/// Bearer-token authentication for the admin API. Only SHA-256 digests are stored, so the config (which
/// `GET /config` returns and the store keeps) never holds a usable secret.
public struct AdminAuthConfig: Decodable, Sendable, Equatable {
    /// Lowercase hex SHA-256 digests of the accepted tokens.
    public var bearerTokenSHA256: [String]

    enum CodingKeys: String, CodingKey {
        case bearerTokenSHA256 = "bearer_token_sha256"
    }
}

/// A socket the data plane listens on.
public struct ListenerConfig: Decodable, Sendable, Equatable {
    public enum TransportProtocol: String, ConfigKeyword, Sendable {
        case http
        case https
        case quic
    }

    /// `host:port`, `[v6]:port` or `:port` (every interface).
    public var address: String
    public var `protocol`: TransportProtocol
}

/// Logging settings.
public struct LoggingConfig: Decodable, Sendable, Equatable {
    public enum Level: String, ConfigKeyword, Sendable {
        case trace, debug, info, notice, warning, error, critical
    }

    public enum Format: String, ConfigKeyword, Sendable {
        case json
        case console
    }

    /// Default `info`.
    public var level: Level?
    /// Default `console` on a terminal, else `json`.
    public var format: Format?
    /// Log every data-plane request (protocol, status, bytes, duration, TLS version and key-exchange group).
    /// Default false.
    public var accessLog: Bool?

    enum CodingKeys: String, CodingKey {
        case level
        case format
        case accessLog = "access_log"
    }
}

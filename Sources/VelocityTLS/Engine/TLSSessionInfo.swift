/// What a handshake negotiated, for routing, logs and metrics.
public struct TLSSessionInfo: Sendable, Equatable {
    /// `TLSv1.3` or `TLSv1.2`.
    public var version: String
    public var cipher: String
    /// The key-exchange group, e.g. `X25519MLKEM768` (post-quantum hybrid) or `X25519`.
    public var group: String
    public var alpn: String?
    public var serverName: String?
    public var resumed: Bool

    /// Whether the key exchange resists a quantum computer (an ML-KEM hybrid or pure ML-KEM group).
    public var isPostQuantum: Bool { group.contains("MLKEM") }
}

import CNIOBoringSSL

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

extension TLSSessionInfo {
    /// What the handshake on `ssl` has negotiated so far, on either side.
    init(ssl: OpaquePointer) {
        var alpn: UnsafePointer<UInt8>?
        var alpnLength: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &alpn, &alpnLength)
        let group = SSL_get_group_id(ssl)
        self.init(
            version: String(cString: SSL_get_version(ssl)),
            cipher: SSL_get_current_cipher(ssl).map { String(cString: SSL_CIPHER_get_name($0)) } ?? "",
            group: SSL_get_group_name(group).map { String(cString: $0) } ?? String(group),
            alpn: alpn.map { String(decoding: UnsafeBufferPointer(start: $0, count: Int(alpnLength)), as: UTF8.self) },
            serverName: Self.serverName(of: ssl),
            resumed: SSL_session_reused(ssl) == 1)
    }

    /// The SNI name, lowercased and without a trailing dot: the one a client sent, or on a client, the one it
    /// sends.
    static func serverName(of ssl: OpaquePointer) -> String? {
        guard let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else { return nil }
        var text = String(cString: name).lowercased()
        if text.hasSuffix(".") { text.removeLast() }
        return text.isEmpty ? nil : text
    }
}

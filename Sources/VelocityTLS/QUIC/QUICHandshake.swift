import CNIOBoringSSL

/// The TLS encryption levels QUIC carries handshake data and packets at (RFC 9001 §4.1.4).
public enum QUICEncryptionLevel: Int, Sendable, CaseIterable {
    case initial = 0
    case earlyData = 1
    case handshake = 2
    case application = 3
}

/// The TLS 1.3 handshake of one QUIC connection (RFC 9001), run by BoringSSL's QUIC API: CRYPTO-frame bytes go
/// in, and handshake bytes to send, packet keys and alerts come out for the transport to collect after each
/// call. On the server, certificate selection and ALPN are the TCP engine's, so both stacks present the same
/// certificates; on the client, a ``TLSClientContext`` says what to offer and how to check the server.
/// Not thread-safe: it lives on its connection's event loop.
public final class QUICHandshake {
    public enum Progress: Equatable {
        case needInput
        case complete
        /// The handshake failed; `alert` holds the TLS alert to close the connection with.
        case failed(String)
    }

    private let ssl: OpaquePointer
    /// The server engine's connection, which owns `ssl`; nil on the client, where this handshake owns it.
    private let serverConnection: TLSConnection?
    /// Handshake bytes to send, by level, in order; the transport takes them with ``takeOutgoing(at:)``.
    private var outgoing: [[UInt8]] = [[], [], [], []]
    /// Keys installed since the transport last looked, in the order BoringSSL released them.
    private var newKeys: [(level: QUICEncryptionLevel, isWrite: Bool, key: QUICPacketKey)] = []
    /// The fatal alert BoringSSL asked to send, if any.
    public private(set) var alert: UInt8?
    public private(set) var isComplete = false

    private static let ownerIndex = SSL_get_ex_new_index(0, nil, nil, nil, nil)

    /// `transportParameters` is this server's encoded quic_transport_parameters extension; the ALPN protocols
    /// accepted are the context's.
    public init?(
        context: TLSServerContext, certificates: CertificateTable, localName: String?, transportParameters: [UInt8]
    ) {
        guard let connection = TLSConnection(context: context, certificates: certificates, localName: localName)
        else { return nil }
        serverConnection = connection
        ssl = connection.ssl
        guard configure(transportParameters: transportParameters) else { return nil }
    }

    /// A client handshake with `serverName` (a DNS name or an IP address); `transportParameters` is this
    /// client's encoded quic_transport_parameters extension. The ClientHello is made by the first ``advance()``.
    public init?(client context: TLSClientContext, serverName: String, transportParameters: [UInt8]) {
        guard let ssl = context.makeSSL(serverName: serverName) else { return nil }
        self.ssl = ssl
        serverConnection = nil
        guard configure(transportParameters: transportParameters) else { return nil }
    }

    deinit {
        if serverConnection == nil { SSL_free(ssl) }
    }

    private func configure(transportParameters: [UInt8]) -> Bool {
        guard SSL_set_min_proto_version(ssl, UInt16(TLS1_3_VERSION)) == 1,
            SSL_set_quic_method(ssl, Self.method) == 1,
            SSL_set_quic_transport_params(ssl, transportParameters, transportParameters.count) == 1
        else { return false }
        SSL_set_ex_data(ssl, Self.ownerIndex, Unmanaged.passUnretained(self).toOpaque())
        return true
    }

    /// Hands BoringSSL CRYPTO-stream bytes received at `level`, in stream order.
    public func provide(_ bytes: UnsafeRawBufferPointer, at level: QUICEncryptionLevel) -> Bool {
        let status = SSL_provide_quic_data(
            ssl, ssl_encryption_level_t(UInt32(level.rawValue)),
            bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
        if status != 1 { ERR_clear_error() }
        return status == 1
    }

    /// Runs the handshake as far as the data provided allows; after completion, processes post-handshake
    /// messages instead.
    public func advance() -> Progress {
        ERR_clear_error()
        if isComplete {
            return SSL_process_quic_post_handshake(ssl) == 1 ? .complete : .failed(TLSConnection.lastError())
        }
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            isComplete = true
            return .complete
        }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .needInput
        default: return .failed(TLSConnection.lastError())
        }
    }

    /// Takes the handshake bytes waiting to be sent at `level`.
    public func takeOutgoing(at level: QUICEncryptionLevel) -> [UInt8] {
        defer { outgoing[level.rawValue] = [] }
        return outgoing[level.rawValue]
    }

    /// Takes the keys released since the last call.
    public func takeNewKeys() -> [(level: QUICEncryptionLevel, isWrite: Bool, key: QUICPacketKey)] {
        defer { newKeys = [] }
        return newKeys
    }

    /// The peer's encoded quic_transport_parameters, once its ClientHello (or the server's
    /// EncryptedExtensions) has been read.
    public var peerTransportParameters: [UInt8] {
        var bytes: UnsafePointer<UInt8>?
        var length = 0
        SSL_get_peer_quic_transport_params(ssl, &bytes, &length)
        guard let bytes else { return [] }
        return Array(UnsafeBufferPointer(start: bytes, count: length))
    }

    public var sessionInfo: TLSSessionInfo { TLSSessionInfo(ssl: ssl) }

    /// Why the server's certificate was refused, when a client handshake failed on it.
    public var certificateError: String? {
        let result = SSL_get_verify_result(ssl)
        guard serverConnection == nil, result != X509_V_OK else { return nil }
        return String(cString: X509_verify_cert_error_string(result))
    }

    private static func owner(of ssl: OpaquePointer?) -> QUICHandshake? {
        guard let ssl, let pointer = SSL_get_ex_data(ssl, ownerIndex) else { return nil }
        return Unmanaged<QUICHandshake>.fromOpaque(pointer).takeUnretainedValue()
    }

    private func install(
        level: ssl_encryption_level_t, cipher: OpaquePointer?, secret: UnsafePointer<UInt8>?, length: Int,
        isWrite: Bool
    ) -> Int32 {
        guard let cipher, let secret, let level = QUICEncryptionLevel(rawValue: Int(level.rawValue)),
            let suite = QUICCipherSuite(rawValue: SSL_CIPHER_get_protocol_id(cipher))
        else { return 0 }
        let key = QUICPacketKey(suite: suite, secret: Array(UnsafeBufferPointer(start: secret, count: length)))
        newKeys.append((level, isWrite, key))
        return 1
    }

    // Allocated once and never freed: BoringSSL keeps the pointer for the life of every connection.
    private nonisolated(unsafe) static let method: UnsafeMutablePointer<SSL_QUIC_METHOD> = {
        let method = UnsafeMutablePointer<SSL_QUIC_METHOD>.allocate(capacity: 1)
        method.initialize(
            to: SSL_QUIC_METHOD(
                set_read_secret: { ssl, level, cipher, secret, length in
                    owner(of: ssl)?.install(
                        level: level, cipher: cipher, secret: secret, length: length, isWrite: false) ?? 0
                },
                set_write_secret: { ssl, level, cipher, secret, length in
                    owner(of: ssl)?.install(
                        level: level, cipher: cipher, secret: secret, length: length, isWrite: true) ?? 0
                },
                add_handshake_data: { ssl, level, data, length in
                    guard let handshake = owner(of: ssl), let data else { return 0 }
                    handshake.outgoing[Int(level.rawValue)].append(
                        contentsOf: UnsafeBufferPointer(start: data, count: length))
                    return 1
                },
                flush_flight: { _ in 1 },
                send_alert: { ssl, _, alert in
                    guard let handshake = owner(of: ssl) else { return 0 }
                    handshake.alert = alert
                    return 1
                }))
        return method
    }()
}

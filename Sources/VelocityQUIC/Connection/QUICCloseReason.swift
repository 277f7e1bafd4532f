/// Why a connection ended: what a client reports when a connection attempt or a transfer fails.
public enum QUICCloseReason: Error, Sendable, Equatable {
    /// What a CONNECTION_CLOSE frame carried.
    public struct Error: Sendable, Equatable {
        /// An application's code (type 0x1d), else a transport code (type 0x1c; TLS alerts are 0x100 + alert).
        public var isApplication: Bool
        public var code: UInt64
        public var reason: String

        public init(isApplication: Bool, code: UInt64, reason: String) {
            self.isApplication = isApplication
            self.code = code
            self.reason = reason
        }

        init(_ frame: ConnectionCloseFrame) {
            isApplication = frame.isApplication
            code = frame.errorCode
            reason = String(buffer: frame.reason)
        }
    }

    /// This side closed it, with this frame.
    case local(Error)
    /// The peer closed it, with this frame.
    case peer(Error)
    /// Nothing arrived for the idle timeout.
    case idleTimeout
    /// The peer answered with a stateless reset: it had lost the connection.
    case statelessReset
    /// The server speaks none of our versions; these are the ones it listed.
    case versionNegotiation([UInt32])
}

extension QUICCloseReason: CustomStringConvertible {
    public var description: String {
        switch self {
        case .local(let error): "closed here: \(error)"
        case .peer(let error): "closed by the peer: \(error)"
        case .idleTimeout: "idle timeout"
        case .statelessReset: "stateless reset from the peer"
        case .versionNegotiation(let versions):
            "no common QUIC version (the server offers \(versions.map { "0x" + String($0, radix: 16) }))"
        }
    }

}

extension QUICCloseReason.Error: CustomStringConvertible {
    public var description: String {
        let name = isApplication ? "application error 0x" + String(code, radix: 16) : TransportError.name(of: code)
        return reason.isEmpty ? name : "\(name): \(reason)"
    }
}

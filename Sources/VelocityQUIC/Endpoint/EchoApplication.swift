import NIOCore

/// The `velocity-echo` protocol: every byte a client sends on a bidirectional stream comes back on it, and its
/// FIN ends the echo. It carries application data over the transport before HTTP/3 exists, and stays a simple
/// way to test a QUIC path.
public final class EchoApplication: QUICApplication {
    public static let alpn = "velocity-echo"

    public init() {}

    public func received(_ data: ByteBuffer, onStream id: UInt64, fin: Bool, connection: QUICConnection) {
        guard QUICStream.isBidirectional(id) else { return }
        connection.write(data, toStream: id, fin: fin)
    }

    public func received(datagram: ByteBuffer, connection: QUICConnection) {
        connection.sendDatagram(datagram)
    }

    public func streamReset(_ id: UInt64, errorCode: UInt64, connection: QUICConnection) {
        connection.resetStream(id, errorCode: errorCode)
    }

    public func connectionClosed(_ connection: QUICConnection) {}
}

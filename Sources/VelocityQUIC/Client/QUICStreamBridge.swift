import NIOCore

/// The application behind ``QUICClientConnection``: it keeps what arrives on each stream until a reader takes
/// it, and parks a writer while its stream's send buffer is full. Lives on the connection's event loop.
final class QUICStreamBridge: QUICApplication {
    private struct Inbound {
        var chunks = CircularBuffer<ByteBuffer>()
        var bytes = 0
        var fin = false
        var resetCode: UInt64?
        var reader: CheckedContinuation<ByteBuffer?, any Error>?
    }

    /// Beyond this much unread data on a stream, delivery holds, and with it the server's credit.
    static let readHighWater = 1 << 20

    private var inbound: [UInt64: Inbound] = [:]
    private var writers: [UInt64: CheckedContinuation<Void, any Error>] = [:]
    private(set) var closeReason: QUICCloseReason?
    private var closeWaiters: [CheckedContinuation<QUICCloseReason, Never>] = []
    /// Runs once the connection has closed, to close a socket that was opened for it alone.
    var onClose: (() -> Void)?

    // MARK: From the connection

    func received(_ data: ByteBuffer, onStream id: UInt64, fin: Bool, connection: QUICConnection) {
        var stream = inbound.removeValue(forKey: id) ?? Inbound()
        if data.readableBytes > 0 {
            stream.chunks.append(data)
            stream.bytes += data.readableBytes
        }
        stream.fin = stream.fin || fin
        if stream.bytes > Self.readHighWater { connection.setReceiving(false, onStream: id) }
        inbound[id] = stream
        if stream.reader != nil { read(id, connection: connection, continuation: nil) }
    }

    func received(datagram: ByteBuffer, connection: QUICConnection) {}

    func streamReset(_ id: UInt64, errorCode: UInt64, connection: QUICConnection) {
        inbound[id, default: Inbound()].resetCode = errorCode
        if inbound[id]?.reader != nil { read(id, connection: connection, continuation: nil) }
    }

    func streamWritable(_ id: UInt64, connection: QUICConnection) {
        writers.removeValue(forKey: id)?.resume()
    }

    func connectionClosed(_ connection: QUICConnection) {
        let reason = connection.closeReason ?? .idleTimeout
        closeReason = reason
        for (id, stream) in inbound where stream.reader != nil { read(id, connection: connection, continuation: nil) }
        let waitingWriters = writers
        writers = [:]
        for writer in waitingWriters.values { writer.resume(throwing: reason) }
        let waiters = closeWaiters
        closeWaiters = []
        for waiter in waiters { waiter.resume(returning: reason) }
        onClose?()
        onClose = nil
    }

    // MARK: From the async interface

    /// Hands the reader everything the stream has buffered (one buffer), nil at its end, or an error; parks it
    /// until there is something to say. Called again with a nil continuation to wake a parked reader.
    func read(_ id: UInt64, connection: QUICConnection, continuation: CheckedContinuation<ByteBuffer?, any Error>?) {
        var stream = inbound.removeValue(forKey: id) ?? Inbound()
        guard let reader = continuation ?? stream.reader else { return }
        stream.reader = nil
        if stream.bytes > 0 {
            var data = stream.chunks.removeFirst()
            if !stream.chunks.isEmpty {
                var joined = ByteBufferAllocator().buffer(capacity: stream.bytes)
                joined.writeBuffer(&data)
                while var chunk = stream.chunks.popFirst() { joined.writeBuffer(&chunk) }
                data = joined
            }
            let wasHeld = stream.bytes > Self.readHighWater
            stream.bytes = 0
            inbound[id] = stream
            if wasHeld { connection.setReceiving(true, onStream: id) }
            return reader.resume(returning: data)
        }
        if let code = stream.resetCode { return reader.resume(throwing: QUICStreamError.reset(errorCode: code)) }
        if stream.fin { return reader.resume(returning: nil) }
        if let closeReason { return reader.resume(throwing: closeReason) }
        stream.reader = reader
        inbound[id] = stream
    }

    /// Queues data; the writer waits while the stream's buffer is over its high-water mark.
    func write(
        _ data: ByteBuffer, fin: Bool, onStream id: UInt64, connection: QUICConnection,
        continuation: CheckedContinuation<Void, any Error>
    ) {
        if let closeReason { return continuation.resume(throwing: closeReason) }
        let result = connection.write(data, toStream: id, fin: fin)
        connection.sendSoon()
        switch result {
        case .accepted: continuation.resume()
        case .full: writers[id] = continuation
        case .closed: continuation.resume(throwing: QUICStreamError.notWritable)
        }
    }

    /// Waits until the connection has closed, and tells why.
    func waitUntilClosed(_ continuation: CheckedContinuation<QUICCloseReason, Never>) {
        if let closeReason { return continuation.resume(returning: closeReason) }
        closeWaiters.append(continuation)
    }

    /// Forgets a stream the reader is done with.
    func forget(_ id: UInt64) {
        inbound[id] = nil
    }
}

/// A stream operation that cannot go on.
public enum QUICStreamError: Error, Sendable, Equatable {
    /// The peer abandoned its side of the stream (RESET_STREAM) with this code.
    case reset(errorCode: UInt64)
    /// The stream no longer sends: it was finished, reset, or stopped by the peer.
    case notWritable
    /// The peer allows no more streams of this kind for now.
    case noStreamAvailable
}

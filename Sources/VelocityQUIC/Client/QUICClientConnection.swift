import NIOCore
import VelocityTLS

/// A client connection with streams through async/await; every call hops to the connection's event loop.
public final class QUICClientConnection: Sendable {
    private final class State {
        let connection: QUICConnection
        let streams: QUICStreamBridge

        init(connection: QUICConnection, streams: QUICStreamBridge) {
            self.connection = connection
            self.streams = streams
        }
    }

    /// What the handshake negotiated: version, cipher, key-exchange group, ALPN, server name.
    public let tls: TLSSessionInfo
    public let eventLoop: any EventLoop
    private let state: NIOLoopBound<State>

    /// Made on `eventLoop`, once the handshake has completed.
    init(connection: QUICConnection, streams: QUICStreamBridge, eventLoop: any EventLoop) {
        tls = connection.sessionInfo
        self.eventLoop = eventLoop
        state = NIOLoopBound(State(connection: connection, streams: streams), eventLoop: eventLoop)
    }

    /// Closes `client`'s socket once this connection has closed.
    func closeSocketWhenClosed(_ client: QUICClient) {
        eventLoop.execute { [state] in
            let streams = state.value.streams
            guard streams.closeReason == nil else {
                client.channel.close(promise: nil)
                return
            }
            streams.onClose = { client.channel.close(promise: nil) }
        }
    }

    /// Opens a stream; unidirectional ones only send. Throws ``QUICStreamError/noStreamAvailable`` when the
    /// server allows no more for now.
    public func openStream(bidirectional: Bool = true) async throws -> QUICClientStream {
        let id = try await eventLoop.submit { [state] in
            let connection = state.value.connection
            if let reason = state.value.streams.closeReason { throw reason }
            let id = bidirectional ? connection.openBidirectionalStream() : connection.openUnidirectionalStream()
            guard let id else { throw QUICStreamError.noStreamAvailable }
            return id
        }.get()
        return QUICClientStream(id: id, connection: self)
    }

    /// Starts a key update (RFC 9001 §6); false while one is still in progress.
    public func updateKeys() async -> Bool {
        (try? await eventLoop.submit { [state] in state.value.connection.initiateKeyUpdate() }.get()) ?? false
    }

    /// Closes the connection with an application error code and waits until it has closed.
    @discardableResult
    public func close(errorCode: UInt64 = 0, reason: String = "") async -> QUICCloseReason {
        eventLoop.execute { [state] in state.value.connection.close(errorCode: errorCode, reason: reason) }
        return await closed()
    }

    /// Waits until the connection has closed, and tells why.
    public func closed() async -> QUICCloseReason {
        await withCheckedContinuation { continuation in
            eventLoop.execute { [state] in state.value.streams.waitUntilClosed(continuation) }
        }
    }

    // MARK: For the streams

    func read(_ id: UInt64) async throws -> ByteBuffer? {
        try await withCheckedThrowingContinuation { continuation in
            eventLoop.execute { [state] in
                state.value.streams.read(id, connection: state.value.connection, continuation: continuation)
            }
        }
    }

    func write(_ data: ByteBuffer, fin: Bool, onStream id: UInt64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            eventLoop.execute { [state] in
                state.value.streams.write(
                    data, fin: fin, onStream: id, connection: state.value.connection, continuation: continuation)
            }
        }
    }

    func reset(_ id: UInt64, errorCode: UInt64) {
        eventLoop.execute { [state] in
            state.value.connection.resetStream(id, errorCode: errorCode)
            state.value.connection.sendSoon()
        }
    }

    func stopReading(_ id: UInt64, errorCode: UInt64) {
        eventLoop.execute { [state] in
            state.value.streams.forget(id)
            state.value.connection.stopReading(id, errorCode: errorCode)
            state.value.connection.sendSoon()
        }
    }
}

/// One stream of a ``QUICClientConnection``.
public struct QUICClientStream: Sendable {
    public let id: UInt64
    let connection: QUICClientConnection

    /// Queues `data`, and with `fin` ends our side; waits while the stream's send buffer is full.
    public func write(_ data: ByteBuffer, fin: Bool = false) async throws {
        try await connection.write(data, fin: fin, onStream: id)
    }

    /// Ends our side of the stream.
    public func finish() async throws {
        try await connection.write(ByteBuffer(), fin: true, onStream: id)
    }

    /// Everything that has arrived since the last read (waiting for something), or nil at the stream's end.
    /// Throws ``QUICStreamError/reset(errorCode:)`` when the server reset it.
    public func read() async throws -> ByteBuffer? {
        try await connection.read(id)
    }

    /// Reads to the end of the stream.
    public func readAll() async throws -> ByteBuffer {
        var all = ByteBuffer()
        while var chunk = try await read() { all.writeBuffer(&chunk) }
        return all
    }

    /// Abandons our side (RESET_STREAM).
    public func reset(errorCode: UInt64) {
        connection.reset(id, errorCode: errorCode)
    }

    /// Stops reading (STOP_SENDING); what arrives later is dropped.
    public func stopReading(errorCode: UInt64) {
        connection.stopReading(id, errorCode: errorCode)
    }
}

import NIOCore
import VelocityTLS

/// What a client connection is set up with.
public struct QUICClientConfiguration: Sendable {
    /// The groups to offer, the ALPN protocols and how the server's certificate is checked.
    public var tls: TLSClientContext
    /// The limits this client offers the server; the idle timeout also bounds the handshake.
    public var settings: ConnectionSettings

    public init(tls: TLSClientContext, settings: ConnectionSettings = .init()) {
        self.tls = tls
        self.settings = settings
    }
}

/// The client side of a UDP socket: the QUIC connections this process opens from it, each found by the ID it
/// chose. It feeds them datagrams and timeouts and sends what they build, as ``QUICEndpoint`` does for the
/// server; the connections themselves are the server's code in the client role. Lives on the channel's event
/// loop.
public final class QUICClientEndpoint: ChannelDuplexHandler {
    public typealias InboundIn = AddressedEnvelope<ByteBuffer>
    public typealias OutboundIn = AddressedEnvelope<ByteBuffer>
    public typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    /// The length of the IDs this client chooses; the server's short headers carry no length.
    static let localIDLength = 8

    private let writer: DatagramWriter
    private var connections: [ConnectionID: QUICConnection] = [:]
    /// Connections whose handshake has not completed, and who waits for it.
    private var handshakes: [ConnectionID: EventLoopPromise<QUICConnection>] = [:]
    private var timers = ConnectionTimers()
    /// Connections that received something during this read batch, serviced once at its end.
    private var touched: [ConnectionID: QUICConnection] = [:]
    /// The servers' stateless reset tokens, for datagrams no ID routes.
    private var resetTokens: [StatelessResetToken: QUICConnection] = [:]
    /// NEW_TOKEN tokens by server IP address: the next connection to that server skips a Retry.
    private var addressTokens: [String: ByteBuffer] = [:]
    private var context: ChannelHandlerContext?
    /// The channel's loop, kept after the channel closes to fail later calls on.
    private var eventLoop: (any EventLoop)?

    /// `segmentationOffload`: the socket may be given several datagrams in one buffer (Linux UDP_SEGMENT).
    public init(segmentationOffload: Bool) {
        writer = DatagramWriter(segmentationOffload: segmentationOffload)
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        eventLoop = context.eventLoop
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timers.cancelAll()
        let open = connections
        connections = [:]
        resetTokens = [:]
        for connection in open.values { connection.finish() }
        let waiting = handshakes
        handshakes = [:]
        for promise in waiting.values { promise.fail(ChannelError.ioOnClosedChannel) }
        self.context = nil
    }

    /// Starts a connection to `address`; `serverName` is what its certificate must name (and SNI, for a DNS
    /// name). The future succeeds once the handshake has completed and `makeApplication`'s application (for
    /// the ALPN the server chose) has started, and fails with a ``QUICCloseReason`` if the connection ends
    /// first. Call on the channel's event loop.
    public func connect(
        to address: SocketAddress, serverName: String, configuration: QUICClientConfiguration,
        makeApplication: @escaping (String?) -> QUICApplication?
    ) -> EventLoopFuture<QUICConnection> {
        guard let eventLoop else { preconditionFailure("the endpoint is in no channel") }
        guard let context else { return eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        var localID = ConnectionID.random(count: Self.localIDLength)
        while connections[localID] != nil { localID = ConnectionID.random(count: Self.localIDLength) }
        let now = NIODeadline.now()
        guard
            let connection = QUICConnection.client(
                to: address, serverName: serverName, localID: localID, tls: configuration.tls,
                settings: configuration.settings, token: address.ipAddress.flatMap { addressTokens[$0] }, now: now,
                allocator: context.channel.allocator)
        else {
            return eventLoop.makeFailedFuture(QUICClientError(description: "TLS refused the client settings"))
        }
        connection.makeApplication = makeApplication
        connection.learnPeerResetToken = { [unowned self, unowned connection] token in
            self.resetTokens[token] = connection
        }
        connection.wakeUp = { [weak self, weak connection] in
            self?.context?.eventLoop.assumeIsolated().execute {
                guard let self, let connection, connection.wakePending, let context = self.context else { return }
                self.service(connection, now: .now(), context: context)
                context.flush()
            }
        }
        let promise = eventLoop.makePromise(of: QUICConnection.self)
        connections[localID] = connection
        handshakes[localID] = promise
        service(connection, now: now, context: context)
        context.flush()
        return promise.futureResult
    }

    /// Closing the socket closes every connection first, so servers learn at once rather than by timeout.
    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all {
            let now = NIODeadline.now()
            for connection in connections.values {
                connection.close(.noError, now: now)
                writer.write(connection.flush(now: now), context: context)
            }
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let now = NIODeadline.now()
        let ecn = envelope.metadata?.ecnState ?? .transportNotCapable
        DatagramWriter.split(envelope) { datagram in
            guard let id = PacketHeader.destination(of: datagram, shortHeaderIDLength: Self.localIDLength),
                let connection = connections[id]
            else {
                return recogniseStatelessReset(datagram, from: envelope.remoteAddress, now: now)
            }
            connection.receive(datagram, from: envelope.remoteAddress, ecn: ecn, now: now)
            touched[id] = connection
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        let batch = touched
        touched = [:]
        for connection in batch.values { service(connection, now: now, context: context) }
        context.flush()
    }

    /// A datagram for no ID of ours that ends in a server's reset token, from that server, ends its
    /// connection (RFC 9000 §10.3.1).
    private func recogniseStatelessReset(_ datagram: ByteBuffer, from address: SocketAddress, now: NIODeadline) {
        guard datagram.readableBytes >= 21, !resetTokens.isEmpty,
            let high = datagram.getInteger(at: datagram.writerIndex - 16, as: UInt64.self),
            let low = datagram.getInteger(at: datagram.writerIndex - 8, as: UInt64.self),
            let connection = resetTokens[StatelessResetToken(high: high, low: low)],
            connection.remoteAddress == address
        else { return }
        connection.statelessResetReceived(now: now)
        touched[connection.localID] = connection
    }

    /// Sends what the connection has ready, settles its handshake's future, then sets its timer, or forgets
    /// it once closed.
    private func service(_ connection: QUICConnection, now: NIODeadline, context: ChannelHandlerContext) {
        let established = connection.takeEstablishedEvent()
        // Our Finished goes out before whoever waits for the handshake can act, by closing for instance.
        writer.write(connection.flush(now: now), context: context)
        if established {
            handshakes.removeValue(forKey: connection.localID)?.assumeIsolated().succeed(connection)
        }
        if let reason = connection.closeReason {
            handshakes.removeValue(forKey: connection.localID)?.fail(reason)
        }
        guard !connection.isClosed, let deadline = connection.nextDeadline else {
            forget(connection)
            return
        }
        timers.set(connection.localID, deadline: deadline, on: context.eventLoop) { [weak self, weak connection] in
            guard let self, let connection, let context = self.context else { return }
            self.timers.fired(connection.localID)
            let now = NIODeadline.now()
            connection.handleTimeout(now: now)
            self.service(connection, now: now, context: context)
            context.flush()
        }
    }

    private func forget(_ connection: QUICConnection) {
        timers.cancel(connection.localID)
        connections[connection.localID] = nil
        for token in connection.peerResetTokens where resetTokens[token] === connection {
            resetTokens[token] = nil
        }
        if let token = connection.addressToken, let ip = connection.remoteAddress.ipAddress {
            addressTokens[ip] = token
        }
        handshakes.removeValue(forKey: connection.localID)?.fail(connection.closeReason ?? .idleTimeout)
        connection.finish()
    }
}

/// A client connection could not start.
public struct QUICClientError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

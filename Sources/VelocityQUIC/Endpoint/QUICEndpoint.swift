import Logging
import NIOCore
import VelocityTLS

/// A UDP socket's QUIC server (RFC 9000 §5.2): finds each datagram's connection by its destination ID, starts
/// connections for new Initials, answers unknown versions with Version Negotiation, and runs each connection's
/// timer. A datagram nothing can use is dropped; one connection's error never touches the others.
public final class QUICEndpoint: ChannelDuplexHandler {
    public typealias InboundIn = AddressedEnvelope<ByteBuffer>
    public typealias OutboundIn = AddressedEnvelope<ByteBuffer>
    public typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    /// How long a closing socket waits for its connections to finish their work before it drops them.
    public static let shutdownGracePeriod = TimeAmount.seconds(5)

    /// The length of the IDs this server issues; short headers carry no length, so it is fixed.
    static let localIDLength = 8
    /// Clients must pick at least 8 bytes for their first destination ID (RFC 9000 §7.2).
    private static let minimumOriginalIDLength = 8

    /// What a new connection is set up with: read when its first Initial arrives, so config changes apply to
    /// new connections while existing ones keep what they started with.
    public struct Configuration {
        public var tls: TLSServerContext
        public var certificates: CertificateTable
        public var settings: ConnectionSettings
        public var retry: RetryPolicy
        /// The application for a negotiated ALPN protocol.
        public var makeApplication: (String?) -> QUICApplication?

        public init(
            tls: TLSServerContext, certificates: CertificateTable, settings: ConnectionSettings = .init(),
            retry: RetryPolicy = .auto, makeApplication: @escaping (String?) -> QUICApplication?
        ) {
            self.tls = tls
            self.certificates = certificates
            self.settings = settings
            self.retry = retry
            self.makeApplication = makeApplication
        }
    }

    /// When a new client must prove its address with a Retry round trip before the server spends a handshake
    /// on it (RFC 9000 §8.1.2).
    public enum RetryPolicy: Sendable {
        /// Only while more than ``QUICEndpoint/retryThreshold`` handshakes are in progress.
        case auto
        case always
        case never
    }

    /// Handshakes in progress beyond which `auto` asks new clients to Retry: a flood of spoofed Initials then
    /// costs the server one small packet each instead of a key exchange.
    public static let retryThreshold = 256
    /// Connections the endpoint holds at most, and at most per client IP address: bounds on the memory a flood
    /// of (address-validated) handshakes can take. Initials beyond them are dropped.
    public static let maxConnections = 100_000
    public static let maxConnectionsPerAddress = 1_024

    private let configuration: () -> Configuration
    private let writer: DatagramWriter
    private let logger: Logger
    /// Every ID a connection answers to: the one the client first chose and ours.
    private var connections: [ConnectionID: QUICConnection] = [:]
    private var timers = ConnectionTimers()
    /// Connections that received or queued something during this read batch, flushed once at its end.
    private var touched: [ConnectionID: QUICConnection] = [:]
    private var context: ChannelHandlerContext?
    /// Connections whose handshake has not completed, by local ID, for the Retry policy.
    private var handshaking: Set<ConnectionID> = []
    /// Open connections by their first local ID, and how many each client IP address has.
    private var live: [ConnectionID: QUICConnection] = [:]
    private var livePerAddress: [String: Int] = [:]
    /// The clients' stateless reset tokens, for datagrams no ID routes.
    private var peerResetTokens: [StatelessResetToken: QUICConnection] = [:]
    private let tokenKey = QUICTokenKey()
    private let resetKey = QUICResetTokenKey()
    /// Stateless resets sent in the current second, and when it started: a bound on what forged packets to
    /// unknown IDs can make the server send.
    private var resetsSent = 0
    private var resetWindowStart = NIODeadline.uptimeNanoseconds(0)
    private static let resetsPerSecond = 100
    /// The socket is closing: no new connection starts.
    private var shuttingDown = false

    /// `segmentationOffload`: the socket may be given several datagrams in one buffer (Linux UDP_SEGMENT).
    public init(logger: Logger, segmentationOffload: Bool, configuration: @escaping () -> Configuration) {
        self.logger = logger
        self.writer = DatagramWriter(segmentationOffload: segmentationOffload)
        self.configuration = configuration
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// Closing the socket first asks every connection to close gracefully (HTTP/3: GOAWAY, then
    /// CONNECTION_CLOSE once its requests are answered), so clients learn at once rather than by timeout.
    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all, !live.isEmpty else { return context.close(mode: mode, promise: promise) }
        let now = NIODeadline.now()
        shuttingDown = true
        for connection in live.values {
            connection.shutdown(now: now)
            service(connection, now: now, context: context)
        }
        context.flush()
        awaitConnections(until: now + Self.shutdownGracePeriod, context: context, promise: promise)
    }

    /// Closes the socket once every connection has gone, or at `deadline`, when those still open are closed
    /// outright so their clients hear of it.
    private func awaitConnections(
        until deadline: NIODeadline, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?
    ) {
        guard !live.isEmpty else { return context.close(promise: promise) }
        let now = NIODeadline.now()
        guard now < deadline else {
            for connection in live.values {
                connection.close(.noError, now: now)
                writer.write(connection.flush(now: now), context: context)
            }
            context.flush()
            return context.close(promise: promise)
        }
        context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(50)) { [self] in
            awaitConnections(until: deadline, context: context, promise: promise)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timers.cancelAll()
        for connection in live.values { connection.finish() }
        live = [:]
        livePerAddress = [:]
        connections = [:]
        self.context = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let now = NIODeadline.now()
        let ecn = envelope.metadata?.ecnState ?? .transportNotCapable
        DatagramWriter.split(envelope) { datagram in
            receive(datagram, from: envelope.remoteAddress, ecn: ecn, now: now, context: context)
        }
    }

    private func receive(
        _ datagram: ByteBuffer, from address: SocketAddress, ecn: NIOExplicitCongestionNotificationState,
        now: NIODeadline, context: ChannelHandlerContext
    ) {
        guard let destination = PacketHeader.destination(of: datagram, shortHeaderIDLength: Self.localIDLength) else {
            return
        }
        if let connection = connections[destination] {
            connection.receive(datagram, from: address, ecn: ecn, now: now)
            touched[connection.localID] = connection
            return
        }
        do {
            let header = try PacketHeader.parse(datagram, at: 0, shortHeaderIDLength: Self.localIDLength)
            if header.type == .oneRTT {
                if recognisesStatelessReset(datagram, from: address, now: now) { return }
                sendStatelessReset(
                    for: header.destination, received: datagram.readableBytes, to: address, now: now,
                    context: context)
                return
            }
            // Only a full-size Initial may start a connection: smaller ones could amplify a spoofed attack.
            guard !shuttingDown, header.type == .initial, datagram.readableBytes >= 1200,
                header.destination.count >= Self.minimumOriginalIDLength
            else { return }
            let configuration = configuration()
            let token = header.token.flatMap {
                AddressToken.open($0, with: tokenKey, for: address, now: now)
            }
            var retriedFrom: ConnectionID?
            var validated = false
            switch token {
            case .retry(let original, let retryID) where retryID == header.destination:
                retriedFrom = original
                validated = true
            case .returning:
                validated = true
            default:
                break
            }
            if !validated, needsRetry(configuration.retry) {
                sendRetry(for: header, to: address, now: now, context: context)
                return
            }
            guard
                let connection = accept(
                    header, retriedFrom: retriedFrom, validated: validated, configuration: configuration,
                    from: address, context: context, now: now)
            else { return }
            connection.receive(datagram, from: address, ecn: ecn, now: now)
            // A datagram that only looks like an Initial leaves nothing behind.
            guard connection.hasAuthenticatedPacket else {
                connection.qlog?.discard()
                forget(connection)
                return
            }
            touched[connection.localID] = connection
        } catch .unsupportedVersion(_, let destination, let source) {
            guard datagram.readableBytes >= 1200 else { return }
            sendVersionNegotiation(
                to: address, destination: source, source: destination, context: context)
        } catch {
            return
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        let batch = touched
        touched = [:]
        for connection in batch.values { service(connection, now: now, context: context) }
        context.flush()
    }

    /// Starts a connection for a client's Initial. After a Retry, the ID the Retry gave the client is ours. A
    /// client with a valid token has proven its address.
    private func accept(
        _ header: PacketHeader, retriedFrom original: ConnectionID?, validated: Bool, configuration: Configuration,
        from address: SocketAddress, context: ChannelHandlerContext, now: NIODeadline
    ) -> QUICConnection? {
        let source = address.ipAddress ?? ""
        guard live.count < Self.maxConnections, livePerAddress[source, default: 0] < Self.maxConnectionsPerAddress
        else { return nil }
        var localID = header.destination
        if original == nil {
            localID = ConnectionID.random(count: Self.localIDLength)
            while connections[localID] != nil { localID = ConnectionID.random(count: Self.localIDLength) }
        }
        var parameters = ByteBuffer()
        QUICConnection.localParameters(
            settings: configuration.settings, initialDestination: header.destination, localID: localID,
            resetToken: resetToken(for: localID), retry: original.map { ($0, header.destination) }
        ).encode(into: &parameters)
        guard
            let handshake = QUICHandshake(
                context: configuration.tls, certificates: configuration.certificates,
                localName: context.channel.localAddress?.ipAddress,
                transportParameters: Array(parameters.readableBytesView))
        else { return nil }
        let connection = QUICConnection(
            settings: configuration.settings, initialDestination: header.destination, localID: localID,
            peerID: header.source, remoteAddress: address, handshake: handshake, now: now,
            allocator: context.channel.allocator)
        connection.makeApplication = configuration.makeApplication
        connection.qlog = configuration.settings.qlogDirectory.map {
            QLog(directory: $0, connectionID: header.destination, now: now)
        }
        connection.issueConnectionID = { [unowned self, unowned connection] in
            var id = ConnectionID.random(count: Self.localIDLength)
            while self.connections[id] != nil { id = ConnectionID.random(count: Self.localIDLength) }
            self.connections[id] = connection
            return (id, self.resetToken(for: id))
        }
        connection.retireLocalID = { [unowned self] id in self.connections[id] = nil }
        connection.learnPeerResetToken = { [unowned self, unowned connection] token in
            self.peerResetTokens[token] = connection
        }
        connection.addressValidated = validated
        connection.makeAddressToken = { [unowned self, unowned connection] in
            AddressToken.returning.seal(with: self.tokenKey, for: connection.remoteAddress, now: .now())
        }
        handshaking.insert(localID)
        // Deferred to the end of the current event-loop turn, so the writes of one turn share their packets;
        // a read that services the connection first makes it a no-op.
        connection.wakeUp = { [weak self, weak connection] in
            self?.context?.eventLoop.assumeIsolated().execute {
                guard let self, let connection, connection.wakePending, let context = self.context else { return }
                self.service(connection, now: .now(), context: context)
                context.flush()
            }
        }
        connections[localID] = connection
        connections[header.destination] = connection
        live[localID] = connection
        livePerAddress[source, default: 0] += 1
        return connection
    }

    /// Sends what the connection has ready, then sets its timer, or forgets it once closed.
    private func service(_ connection: QUICConnection, now: NIODeadline, context: ChannelHandlerContext) {
        if connection.takeEstablishedEvent() {
            handshaking.remove(connection.localID)
            let tls = connection.sessionInfo
            logger.info(
                "QUIC connection established",
                metadata: [
                    "remote": "\(connection.remoteAddress.ipAddress ?? "")", "alpn": "\(tls.alpn ?? "")",
                    "tls_version": "\(tls.version)", "tls_cipher": "\(tls.cipher)", "tls_group": "\(tls.group)",
                    "tls_resumed": "\(tls.resumed)", "tls_server_name": "\(tls.serverName ?? "")",
                ])
        }
        writer.write(connection.flush(now: now), context: context)
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
        handshaking.remove(connection.localID)
        timers.cancel(connection.localID)
        for id in connection.routingIDs where connections[id] === connection {
            connections[id] = nil
        }
        for token in connection.peerResetTokens where peerResetTokens[token] === connection {
            peerResetTokens[token] = nil
        }
        if live.removeValue(forKey: connection.localID) != nil {
            let source = connection.acceptedFrom.ipAddress ?? ""
            livePerAddress[source, default: 1] -= 1
            if livePerAddress[source] == 0 { livePerAddress[source] = nil }
        }
        connection.finish()
    }

    /// Whether a datagram for no known ID is a client's stateless reset: it ends in a token the client gave
    /// with one of its IDs, and comes from that client's address (RFC 9000 §10.3.1). The connection drains.
    private func recognisesStatelessReset(_ datagram: ByteBuffer, from address: SocketAddress, now: NIODeadline)
        -> Bool
    {
        guard datagram.readableBytes >= 21, !peerResetTokens.isEmpty,
            let high = datagram.getInteger(at: datagram.writerIndex - 16, as: UInt64.self),
            let low = datagram.getInteger(at: datagram.writerIndex - 8, as: UInt64.self),
            let connection = peerResetTokens[StatelessResetToken(high: high, low: low)],
            connection.remoteAddress == address
        else { return false }
        connection.statelessResetReceived(now: now)
        touched[connection.localID] = connection
        return true
    }

    private func resetToken(for id: ConnectionID) -> StatelessResetToken {
        StatelessResetToken(resetKey.token(for: id.bytes))!
    }

    /// Tells the sender of a short-header packet for an ID this server does not know that the connection is
    /// gone (RFC 9000 §10.3), if the ID could be one we issued. The reset is shorter than what provoked it, so
    /// two servers cannot keep resetting each other, and they are rate-limited.
    private func sendStatelessReset(
        for destination: ConnectionID, received size: Int, to address: SocketAddress, now: NIODeadline,
        context: ChannelHandlerContext
    ) {
        let length = min(size - 1, 43)
        guard destination.count == Self.localIDLength, length >= 21 else { return }
        if now - resetWindowStart >= .seconds(1) {
            resetWindowStart = now
            resetsSent = 0
        }
        guard resetsSent < Self.resetsPerSecond else { return }
        resetsSent += 1
        var packet = context.channel.allocator.buffer(capacity: length)
        packet.writeInteger(UInt8(0x40 | UInt8.random(in: 0...0x3F)))
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<(length - 1 - StatelessResetToken.size) {
            packet.writeInteger(UInt8.random(in: 0...255, using: &generator))
        }
        packet.writeStatelessResetToken(resetToken(for: destination))
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: address, data: packet)), promise: nil)
    }

    private func needsRetry(_ policy: RetryPolicy) -> Bool {
        switch policy {
        case .always: true
        case .never: false
        case .auto: handshaking.count >= Self.retryThreshold
        }
    }

    /// Asks the client to send its Initial again with a token proving it receives packets at its address
    /// (RFC 9000 §8.1.2, §17.2.5).
    private func sendRetry(
        for header: PacketHeader, to address: SocketAddress, now: NIODeadline, context: ChannelHandlerContext
    ) {
        let retryID = ConnectionID.random(count: Self.localIDLength)
        let token = AddressToken.retry(original: header.destination, retryID: retryID)
            .seal(with: tokenKey, for: address, now: now)
        var packet: [UInt8] = [0xF0 | UInt8.random(in: 0...0x0F)]
        withUnsafeBytes(of: PacketHeader.version1.bigEndian) { packet += $0 }
        packet.append(UInt8(header.source.count))
        packet += header.source.bytes
        packet.append(UInt8(retryID.count))
        packet += retryID.bytes
        packet += token
        let pseudoPacket = [UInt8(header.destination.count)] + header.destination.bytes + packet
        packet += QUICRetryIntegrity.tag(pseudoPacket: pseudoPacket)
        var buffer = context.channel.allocator.buffer(capacity: packet.count)
        buffer.writeBytes(packet)
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: address, data: buffer)), promise: nil)
    }

    /// Lists the versions this server speaks (RFC 9000 §6, §17.2.1).
    private func sendVersionNegotiation(
        to address: SocketAddress, destination: ConnectionID, source: ConnectionID, context: ChannelHandlerContext
    ) {
        var packet = context.channel.allocator.buffer(capacity: 64)
        packet.writeInteger(UInt8(0x80 | UInt8.random(in: 0...0x7F)))
        packet.writeInteger(UInt32(0))
        packet.writeInteger(UInt8(destination.count))
        packet.writeConnectionID(destination)
        packet.writeInteger(UInt8(source.count))
        packet.writeConnectionID(source)
        packet.writeInteger(PacketHeader.version1)
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: address, data: packet)), promise: nil)
    }
}

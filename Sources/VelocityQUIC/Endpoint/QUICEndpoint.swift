import Logging
import NIOCore
import VelocityTLS

/// A UDP socket's QUIC server (RFC 9000 §5.2): finds each datagram's connection by its destination ID, starts
/// connections for new Initials, answers unknown versions with Version Negotiation, and runs each connection's
/// timer. A datagram nothing can use is dropped; one connection's error never touches the others.
public final class QUICEndpoint: ChannelInboundHandler {
    public typealias InboundIn = AddressedEnvelope<ByteBuffer>
    public typealias OutboundOut = AddressedEnvelope<ByteBuffer>

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
        /// The application for a negotiated ALPN protocol.
        public var makeApplication: (String?) -> QUICApplication?

        public init(
            tls: TLSServerContext, certificates: CertificateTable, settings: ConnectionSettings = .init(),
            makeApplication: @escaping (String?) -> QUICApplication?
        ) {
            self.tls = tls
            self.certificates = certificates
            self.settings = settings
            self.makeApplication = makeApplication
        }
    }

    private let configuration: () -> Configuration
    private let logger: Logger
    /// Every ID a connection answers to: the one the client first chose and ours.
    private var connections: [ConnectionID: QUICConnection] = [:]
    private var timers: [ConnectionID: (deadline: NIODeadline, task: Scheduled<Void>)] = [:]
    /// Connections that received or queued something during this read batch, flushed once at its end.
    private var touched: [ConnectionID: QUICConnection] = [:]
    private var context: ChannelHandlerContext?

    public init(logger: Logger, configuration: @escaping () -> Configuration) {
        self.logger = logger
        self.configuration = configuration
    }

    public var connectionCount: Int { Set(connections.values.map(ObjectIdentifier.init)).count }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        for (_, timer) in timers { timer.task.cancel() }
        timers = [:]
        for connection in Set(connections.values.map(ObjectIdentifier.init)).compactMap({ id in
            connections.values.first { ObjectIdentifier($0) == id }
        }) {
            connection.finish()
        }
        connections = [:]
        self.context = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let datagram = envelope.data
        let now = NIODeadline.now()
        guard let destination = PacketHeader.destination(of: datagram, shortHeaderIDLength: Self.localIDLength) else {
            return
        }
        if let connection = connections[destination] {
            connection.receive(datagram, from: envelope.remoteAddress, now: now)
            touched[connection.localID] = connection
            return
        }
        do {
            let header = try PacketHeader.parse(datagram, at: 0, shortHeaderIDLength: Self.localIDLength)
            // Only a full-size Initial may start a connection: smaller ones could amplify a spoofed attack.
            guard header.type == .initial, datagram.readableBytes >= 1200,
                header.destination.count >= Self.minimumOriginalIDLength
            else { return }
            guard let connection = accept(header, from: envelope.remoteAddress, context: context, now: now) else {
                return
            }
            connection.receive(datagram, from: envelope.remoteAddress, now: now)
            touched[connection.localID] = connection
        } catch .unsupportedVersion(_, let destination, let source) {
            guard datagram.readableBytes >= 1200 else { return }
            sendVersionNegotiation(
                to: envelope.remoteAddress, destination: source, source: destination, context: context)
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

    private func accept(
        _ header: PacketHeader, from address: SocketAddress, context: ChannelHandlerContext, now: NIODeadline
    ) -> QUICConnection? {
        let configuration = configuration()
        var localID = ConnectionID.random(count: Self.localIDLength)
        while connections[localID] != nil { localID = ConnectionID.random(count: Self.localIDLength) }
        var parameters = ByteBuffer()
        QUICConnection.localParameters(
            settings: configuration.settings, originalDestination: header.destination, localID: localID
        ).encode(into: &parameters)
        guard
            let handshake = QUICHandshake(
                context: configuration.tls, certificates: configuration.certificates,
                localName: context.channel.localAddress?.ipAddress,
                transportParameters: Array(parameters.readableBytesView))
        else { return nil }
        let connection = QUICConnection(
            settings: configuration.settings, originalDestination: header.destination, localID: localID,
            peerID: header.source, remoteAddress: address, handshake: handshake, now: now,
            allocator: context.channel.allocator)
        connection.makeApplication = configuration.makeApplication
        connection.wakeUp = { [weak self, weak connection] in
            guard let self, let connection, let context = self.context else { return }
            self.service(connection, now: .now(), context: context)
            context.flush()
        }
        connections[localID] = connection
        connections[header.destination] = connection
        return connection
    }

    /// Sends what the connection has ready, then sets its timer, or forgets it once closed.
    private func service(_ connection: QUICConnection, now: NIODeadline, context: ChannelHandlerContext) {
        if connection.takeEstablishedEvent() {
            let tls = connection.sessionInfo
            logger.info(
                "QUIC connection established",
                metadata: [
                    "remote": "\(connection.remoteAddress.ipAddress ?? "")", "alpn": "\(tls.alpn ?? "")",
                    "tls_version": "\(tls.version)", "tls_cipher": "\(tls.cipher)", "tls_group": "\(tls.group)",
                    "tls_resumed": "\(tls.resumed)", "tls_server_name": "\(tls.serverName ?? "")",
                ])
        }
        for datagram in connection.flush(now: now) {
            context.write(
                wrapOutboundOut(AddressedEnvelope(remoteAddress: connection.remoteAddress, data: datagram)),
                promise: nil)
        }
        guard !connection.isClosed, let deadline = connection.nextDeadline else {
            forget(connection)
            return
        }
        if let timer = timers[connection.localID] {
            if timer.deadline == deadline { return }
            timer.task.cancel()
        }
        let task = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self, weak connection] in
            guard let self, let connection, let context = self.context else { return }
            self.timers[connection.localID] = nil
            let now = NIODeadline.now()
            connection.handleTimeout(now: now)
            self.service(connection, now: now, context: context)
            context.flush()
        }
        timers[connection.localID] = (deadline, task)
    }

    private func forget(_ connection: QUICConnection) {
        timers.removeValue(forKey: connection.localID)?.task.cancel()
        connections[connection.localID] = nil
        if connections[connection.originalDestination] === connection {
            connections[connection.originalDestination] = nil
        }
        connection.finish()
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

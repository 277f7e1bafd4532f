import NIOCore
import NIOPosix

/// A UDP socket for Velocity's own QUIC client, with its ``QUICClientEndpoint``. Connections start with
/// ``connect(to:serverName:configuration:)`` (streams through async/await) or, on the event loop, through
/// ``endpoint`` with an application of one's own.
public final class QUICClient: Sendable {
    public let channel: any Channel
    private let loopBoundEndpoint: NIOLoopBound<QUICClientEndpoint>

    public var eventLoop: any EventLoop { channel.eventLoop }

    /// The endpoint, for code running on ``eventLoop``.
    public var endpoint: QUICClientEndpoint { loopBoundEndpoint.value }

    private init(channel: any Channel, endpoint: NIOLoopBound<QUICClientEndpoint>) {
        self.channel = channel
        self.loopBoundEndpoint = endpoint
    }

    /// Datagrams read per system call, and the largest one.
    private static let batch = 16
    private static let largestDatagram = 65_536

    /// Binds a socket on an ephemeral port of the wildcard address of `remote`'s family, on one loop of `group`.
    public static func bind(group: any EventLoopGroup, for remote: SocketAddress) async throws -> QUICClient {
        let offload = System.supportsUDPSegmentationOffload && System.supportsUDPReceiveOffload
        var bootstrap = DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
            .channelOption(.explicitCongestionNotification, value: true)
            .channelOption(.datagramVectorReadMessageCount, value: batch)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: batch * largestDatagram))
        if offload {
            bootstrap = bootstrap.channelOption(.datagramReceiveOffload, value: true)
                .channelOption(.datagramReceiveSegmentSize, value: true)
        }
        let channel = try await bootstrap.channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(QUICClientEndpoint(segmentationOffload: offload))
            }
        }.bind(host: remote.protocol == .inet6 ? "::" : "0.0.0.0", port: 0).get()
        let endpoint = try await channel.eventLoop.submit {
            NIOLoopBound(
                try channel.pipeline.syncOperations.handler(type: QUICClientEndpoint.self), eventLoop: channel.eventLoop
            )
        }.get()
        return QUICClient(channel: channel, endpoint: endpoint)
    }

    /// Connects to `host`:`port` from a socket of its own, which closes with the connection: the simple way
    /// to one connection with streams.
    public static func connect(
        host: String, port: Int, serverName: String? = nil, configuration: QUICClientConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> QUICClientConnection {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let client = try await bind(group: group, for: address)
        do {
            let connection = try await client.connect(
                to: address, serverName: serverName ?? host, configuration: configuration)
            connection.closeSocketWhenClosed(client)
            return connection
        } catch {
            try? await client.close()
            throw error
        }
    }

    /// Connects to `address` with the stream interface of ``QUICClientConnection``; `serverName` is the name
    /// the certificate must carry.
    public func connect(
        to address: SocketAddress, serverName: String, configuration: QUICClientConfiguration
    ) async throws -> QUICClientConnection {
        let endpoint = loopBoundEndpoint
        let eventLoop = eventLoop
        return try await eventLoop.flatSubmit {
            let streams = QUICStreamBridge()
            return endpoint.value.connect(
                to: address, serverName: serverName, configuration: configuration, makeApplication: { _ in streams }
            ).assumeIsolated().map { connection in
                QUICClientConnection(connection: connection, streams: streams, eventLoop: eventLoop)
            }.nonisolated()
        }.get()
    }

    /// Closes the socket, and with it every connection still open (each tells its server).
    public func close() async throws {
        try await channel.close()
    }
}

import Logging
import NIOCore
import NIOPosix
import VelocityConfig
import VelocityHTTP3
import VelocityQUIC

/// A `quic` listener: a UDP socket with a QUIC endpoint. The socket and its connections live until the
/// listener leaves the config; each new connection takes its certificates and TLS settings from the snapshot
/// current when its first Initial arrives.
enum QUICListener {
    /// Datagrams read per system call; the receive buffer holds that many of the largest size, since NIO splits
    /// one buffer across a batch of vector reads.
    private static let batch = 16
    private static let largestDatagram = 65_536

    static func bind(_ address: ListenAddress, group: any EventLoopGroup, snapshots: SnapshotBox) async throws
        -> any Channel
    {
        let logger = Logger(label: "velocity.quic")
        let offload = System.supportsUDPSegmentationOffload && System.supportsUDPReceiveOffload
        var bootstrap = DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(.explicitCongestionNotification, value: true)
            .channelOption(.datagramVectorReadMessageCount, value: batch)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: batch * largestDatagram))
        if offload {
            // Receive offload hands over up to 64 KiB per read, which the allocator above already allows for.
            bootstrap = bootstrap.channelOption(.datagramReceiveOffload, value: true)
                .channelOption(.datagramReceiveSegmentSize, value: true)
        }
        bootstrap =
            bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let endpoint = QUICEndpoint(logger: logger, segmentationOffload: offload) {
                        let snapshot = snapshots.load()
                        return QUICEndpoint.Configuration(
                            tls: snapshot.quicTLS, certificates: snapshot.certificates,
                            settings: snapshot.quicSettings, retry: snapshot.quicRetry,
                            makeApplication: { alpn in
                                application(for: alpn, snapshot: snapshot, snapshots: snapshots, socket: channel)
                            })
                    }
                    try channel.pipeline.syncOperations.addHandler(endpoint)
                }
            }
        guard case .inet(let host, let port) = address else {
            throw IOError(errnoCode: EINVAL, reason: "QUIC listens on IP addresses only")
        }
        let configured = bootstrap
        return try await ListenerSet.bind(host: host, port: port) {
            try await configured.bind(host: $0, port: $1).get()
        }
    }

    /// HTTP/3 serves the same requests as HTTPS, each stream through the handlers an HTTP/2 stream gets (with
    /// WebSockets by extended CONNECT); `velocity-echo` tests the transport.
    private static func application(
        for alpn: String?, snapshot: Snapshot, snapshots: SnapshotBox, socket: any Channel
    ) -> (any QUICApplication)? {
        switch alpn {
        case HTTP3ServerConnection.alpn:
            let configuration = HTTP3ServerConnection.Configuration(
                datagrams: snapshot.quicSettings.maxDatagramFrameSize > 0, extendedConnect: true
            ) { stream in
                stream.eventLoop.makeCompletedFuture {
                    let pipeline = stream.pipeline.syncOperations
                    if let requested = stream.connectProtocol {
                        try pipeline.addHandler(ExtendedConnectHandler(protocol: requested))
                    }
                    try pipeline.addHandler(HTTP1Handler(snapshots: snapshots, scheme: "https", tls: stream.tls))
                }
            }
            return HTTP3ServerConnection(configuration: configuration, parent: socket)
        case EchoApplication.alpn:
            return EchoApplication()
        default:
            return nil
        }
    }
}

import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOTLS
import VelocityTLS

/// TLS, then HTTP/2 or HTTP/1.1 as ALPN decides, with the same request handler on both.
enum HTTPSPipeline {
    /// HTTP/2 flow control: a client may send 1 MiB on a stream and 4 MiB on the connection before it must
    /// wait for a window update. (The protocol's 64 KiB default holds uploads to a crawl on any real
    /// latency.) The connection window bounds what one connection can make the server buffer. Extended
    /// CONNECT (RFC 8441) lets clients open WebSockets on streams.
    private static let connection: NIOHTTP2Handler.ConnectionConfiguration = {
        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
        configuration.initialSettings.append(HTTP2Setting(parameter: .initialWindowSize, value: 1 << 20))
        configuration.initialSettings.append(HTTP2Setting(parameter: .enableConnectProtocol, value: 1))
        configuration.targetWindowSize = 4 << 20
        return configuration
    }()

    private static let stream: NIOHTTP2Handler.StreamConfiguration = {
        var configuration = NIOHTTP2Handler.StreamConfiguration()
        configuration.targetWindowSize = 1 << 20
        return configuration
    }()

    static func configure(
        _ pipeline: ChannelPipeline.SynchronousOperations,
        snapshot: Snapshot,
        snapshots: SnapshotBox
    ) throws {
        // The settings and certificates of the snapshot current at accept time serve this connection's handshake.
        let headTimeout = snapshot.requestHeadTimeout
        try pipeline.addHandler(TLSServerHandler(context: snapshot.tls, certificates: snapshot.certificates))
        try pipeline.addHandler(
            ApplicationProtocolNegotiationHandler { result, channel in
                channel.eventLoop.makeCompletedFuture {
                    if case .negotiated("h2") = result {
                        _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                            mode: .server, connectionConfiguration: Self.connection, streamConfiguration: Self.stream
                        ) { stream in
                            stream.eventLoop.makeCompletedFuture {
                                let pipeline = stream.pipeline.syncOperations
                                try pipeline.addHandler(HTTP2ExtendedConnectDetector())
                                try pipeline.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                                try pipeline.addHandler(HTTP1Handler(snapshots: snapshots, scheme: "https"))
                            }
                        }
                    } else {
                        try HTTP1Pipeline.configure(
                            channel.pipeline.syncOperations,
                            handler: HTTP1Handler(
                                snapshots: snapshots, scheme: "https", headTimeout: headTimeout))
                    }
                }
            })
    }
}

import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOTLS
import VelocityTLS

/// TLS, then HTTP/2 or HTTP/1.1 as ALPN decides, with the same request handler on both.
enum HTTPSPipeline {
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
                            mode: .server, connectionConfiguration: .init(), streamConfiguration: .init()
                        ) { stream in
                            stream.eventLoop.makeCompletedFuture {
                                try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                                try stream.pipeline.syncOperations.addHandler(
                                    HTTP1Handler(snapshots: snapshots, scheme: "https"))
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

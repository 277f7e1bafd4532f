import NIOCore
import NIOHTTP1

/// After a protocol switch (a WebSocket), copies the bytes a connection reads to the other side as they come,
/// with back-pressure: a peer that cannot take more stops reads on this side. Reads the upstream's connection,
/// and an HTTP/1.1 client's; a client on an HTTP/2 or HTTP/3 stream is read by a ``StreamRelayHandler``. Both
/// sides live on one event loop.
final class RelayHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    /// Where the bytes go.
    enum Peer {
        /// A TCP connection, the upstream's or an HTTP/1.1 client's: bytes as they are, and a close for a close.
        case connection(any Channel)
        /// The request stream of an extended CONNECT, whose response body is the tunnel. As with TCP under
        /// RFC 8441 §5, an orderly close ends the stream (END_STREAM, FIN) and a failure resets it.
        case stream(any Channel)
    }

    private let peer: Peer
    /// The connection failed rather than closed.
    private var failed = false

    init(peer: Peer) {
        self.peer = peer
    }

    private var peerChannel: any Channel {
        switch peer {
        case .connection(let channel), .stream(let channel): channel
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch peer {
        case .connection(let channel): channel.write(unwrapInboundIn(data), promise: nil)
        case .stream(let channel):
            channel.write(HTTPServerResponsePart.body(.byteBuffer(unwrapInboundIn(data))), promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        peerChannel.flush()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        peerChannel.setReading(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .stream(let channel) = peer, !failed {
            channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
        } else {
            peerChannel.close(promise: nil)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failed = true
        context.close(promise: nil)
    }

    /// Turns two HTTP/1.1 connections whose exchange ended in `101 Switching Protocols` into a relay: their
    /// HTTP handlers leave and a relay joins each.
    static func join(client: ChannelHandlerContext, upstream: any Channel) throws {
        let clientPipeline = client.pipeline.syncOperations
        try clientPipeline.addHandler(RelayHandler(peer: .connection(upstream)))
        try upstream.pipeline.syncOperations.addHandler(RelayHandler(peer: .connection(client.channel)))
        try clientPipeline.removeHandler(clientPipeline.handler(type: IdleStateHandler.self), promise: nil)
        try clientPipeline.removeHandler(clientPipeline.handler(type: HTTPErrorResponder.self), promise: nil)
        try clientPipeline.removeHandler(clientPipeline.handler(type: HTTPServerPipelineHandler.self), promise: nil)
        try clientPipeline.removeHandler(clientPipeline.handler(type: HTTPResponseEncoder.self), promise: nil)
        try clientPipeline.removeHandler(
            clientPipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self), promise: nil)
        clientPipeline.removeHandler(context: client, promise: nil)
        try leaveHTTP(upstream, relayingTo: client.channel)
    }

    /// Turns an extended CONNECT's request stream, whose upstream answered 101, and the upstream's connection
    /// into a relay. The stream keeps its HTTP/2 or HTTP/3 framing and carries the tunnel as body parts.
    static func join(stream client: ChannelHandlerContext, upstream: any Channel) throws {
        let clientPipeline = client.pipeline.syncOperations
        try clientPipeline.addHandler(StreamRelayHandler(upstream: upstream))
        try upstream.pipeline.syncOperations.addHandler(RelayHandler(peer: .stream(client.channel)))
        let handler = try clientPipeline.handler(type: ExtendedConnectHandler.self)
        clientPipeline.removeHandler(context: client, promise: nil)
        // Until the upstream speaks only bytes, what the client sends waits in the ExtendedConnectHandler, which
        // hands it on as it leaves.
        let channel = client.channel
        try leaveHTTP(upstream, relayingTo: channel).assumeIsolated().whenSuccess {
            channel.pipeline.syncOperations.removeHandler(handler, promise: nil)
        }
    }

    /// The upstream's HTTP handlers leave. Its response decoder goes last, on a later turn of the loop (as NIO's
    /// decoders always do), handing on what the upstream sent after its 101 without the read-complete event
    /// that would flush it to the client; so that is flushed here. The future completes when the connection
    /// speaks only bytes.
    @discardableResult
    private static func leaveHTTP(_ upstream: any Channel, relayingTo client: any Channel) throws
        -> EventLoopFuture<Void>
    {
        let pipeline = upstream.pipeline.syncOperations
        try pipeline.removeHandler(pipeline.handler(type: UpstreamConnection.self), promise: nil)
        try pipeline.removeHandler(pipeline.handler(type: HTTPRequestEncoder.self), promise: nil)
        let decoderLeft = upstream.eventLoop.makePromise(of: Void.self)
        try pipeline.removeHandler(
            pipeline.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self), promise: decoderLeft)
        return decoderLeft.futureResult.map { client.flush() }
    }
}

import NIOCore
import NIOHTTP1

/// After a protocol switch (a WebSocket), copies bytes between the client's connection and the upstream's as
/// they come, with back-pressure: a peer that cannot take more stops reads on this side. Both channels live
/// on one event loop.
final class RelayHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let peer: any Channel

    init(peer: any Channel) {
        self.peer = peer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        peer.write(unwrapInboundIn(data), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        peer.flush()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        peer.setOption(.autoRead, value: context.channel.isWritable).whenFailure { _ in }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        peer.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Turns two HTTP/1.1 connections whose exchange ended in `101 Switching Protocols` into a relay: their
    /// HTTP handlers leave and a relay joins each.
    static func join(client: ChannelHandlerContext, upstream: any Channel) throws {
        let clientPipeline = client.pipeline.syncOperations
        try clientPipeline.addHandler(RelayHandler(peer: upstream))
        try upstream.pipeline.syncOperations.addHandler(RelayHandler(peer: client.channel))
        try clientPipeline.removeHandler(clientPipeline.handler(type: IdleStateHandler.self), promise: nil)
        try clientPipeline.removeHandler(clientPipeline.handler(type: HTTPErrorResponder.self), promise: nil)
        try clientPipeline.removeHandler(clientPipeline.handler(type: HTTPServerPipelineHandler.self), promise: nil)
        try clientPipeline.removeHandler(clientPipeline.handler(type: HTTPResponseEncoder.self), promise: nil)
        try clientPipeline.removeHandler(
            clientPipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self), promise: nil)
        clientPipeline.removeHandler(context: client, promise: nil)
        try leaveHTTP(upstream, relayingTo: client.channel)
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

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
    /// HTTP handlers leave (bytes the upstream sent after its 101 are passed on) and a relay joins each.
    static func join(client: ChannelHandlerContext, upstream: any Channel) throws {
        let clientPipeline = client.pipeline.syncOperations
        try clientPipeline.addHandler(RelayHandler(peer: upstream))
        let upstreamPipeline = upstream.pipeline.syncOperations
        try upstreamPipeline.addHandler(RelayHandler(peer: client.channel))
        try clientPipeline.removeHandler(clientPipeline.handler(type: IdleStateHandler.self), promise: nil)
        try clientPipeline.removeHandler(clientPipeline.handler(type: HTTPErrorResponder.self), promise: nil)
        try clientPipeline.removeHandler(clientPipeline.handler(type: HTTPServerPipelineHandler.self), promise: nil)
        try clientPipeline.removeHandler(clientPipeline.handler(type: HTTPResponseEncoder.self), promise: nil)
        try clientPipeline.removeHandler(
            clientPipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self), promise: nil)
        clientPipeline.removeHandler(context: client, promise: nil)
        try upstreamPipeline.removeHandler(upstreamPipeline.handler(type: UpstreamConnection.self), promise: nil)
        try upstreamPipeline.removeHandler(upstreamPipeline.handler(type: HTTPRequestEncoder.self), promise: nil)
        try upstreamPipeline.removeHandler(
            upstreamPipeline.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self), promise: nil)
    }
}

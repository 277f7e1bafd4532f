import NIOCore
import NIOHTTP2

/// On an HTTP/2 stream, in front of NIO's HTTP/2-to-HTTP/1 codec, which drops the `:protocol` pseudo-header: an
/// extended CONNECT (RFC 8441) gets an ``ExtendedConnectHandler`` behind the codec. (NIO's connection handler
/// has already refused `:protocol` on anything but a CONNECT.) Leaves once the stream's request head has passed.
final class HTTP2ExtendedConnectDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .headers(let headers) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        let pipeline = context.pipeline.syncOperations
        if let requested = headers.headers.first(name: ":protocol") {
            do {
                let codec = try pipeline.handler(type: HTTP2FramePayloadToHTTP1ServerCodec.self)
                try pipeline.addHandler(ExtendedConnectHandler(protocol: requested), position: .after(codec))
            } catch {
                return context.fireErrorCaught(error)
            }
        }
        context.fireChannelRead(data)
        pipeline.removeHandler(context: context, promise: nil)
    }
}

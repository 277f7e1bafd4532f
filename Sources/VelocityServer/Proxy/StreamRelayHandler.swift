import NIOCore
import NIOHTTP1

/// The client's side of a relay whose client is an HTTP/2 or HTTP/3 request stream (a WebSocket opened with
/// extended CONNECT): the request's body parts are the tunnel's bytes for the upstream, and the end of the
/// request half-closes the upstream connection, as the END_STREAM it stands for would a TCP FIN (RFC 8441 §5).
/// A reset stream closes the connection. The upstream's side is a ``RelayHandler``.
final class StreamRelayHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart

    private let upstream: any Channel

    init(upstream: any Channel) {
        self.upstream = upstream
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .body(let bytes):
            upstream.write(bytes, promise: nil)
        case .end:
            // Trailers mean nothing to a tunnel. The upstream still gets everything written before its FIN.
            let upstream = upstream
            upstream.flush()
            upstream.close(mode: .output).whenFailure { _ in upstream.close(promise: nil) }
        case .head:
            // A stream carries one request head, and it went to the request handler.
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        upstream.flush()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        upstream.setReading(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstream.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

import NIOCore
import NIOHTTP1

/// HTTP/1.1 on a connection (plain or after TLS): NIO's codec and pipelining with Velocity's header limits,
/// the protocol error answers, and the request handler.
enum HTTP1Pipeline {
    /// One header line may be 16 KiB and all of them 64 KiB, in at most 200 fields: far above what browsers
    /// and API clients send, far below what would let a client make the server hold much per connection.
    static let limits: NIOHTTPDecoderLimitConfiguration = {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = 16 * 1024
        limits.maxHeaderListSize = 64 * 1024
        limits.maxHeaderFieldCount = 200
        return limits
    }()

    /// Outbound header validation is off: response headers come from validated config (no CR, LF or NUL) or
    /// from request parts the parser has already refused such bytes in, and checking every response again
    /// costs a pass over all its headers.
    static func configure(_ pipeline: ChannelPipeline.SynchronousOperations, handler: HTTP1Handler) throws {
        try pipeline.configureHTTPServerPipeline(
            withErrorHandling: false, withOutboundHeaderValidation: false, withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: limits)
        try pipeline.addHandler(HTTPErrorResponder())
        try pipeline.addHandler(handler)
    }
}

/// Answers a request NIO's parser refused before the connection closes: 431 when its header section is over
/// the limits, 400 for anything else malformed. (NIO's own handler answers 400 to both.)
final class HTTPErrorResponder: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// A response has started and not ended: another head cannot be written now.
    private var responding = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let error = error as? HTTPParserError else { return context.fireErrorCaught(error) }
        if !responding {
            let status: HTTPResponseStatus = error == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest
            let body = context.channel.allocator.buffer(string: "\(status.code) \(status.reasonPhrase)\n")
            let headers = HTTPHeaders([
                ("Connection", "close"), ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", String(body.readableBytes)),
            ])
            let head = HTTPResponseHead(version: .http1_1, status: status, headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        // The parser cannot continue; the decoder closes the connection after this.
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200: responding = true
        case .end: responding = false
        default: break
        }
        context.write(data, promise: promise)
    }
}

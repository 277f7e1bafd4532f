import NIOCore
import NIOHTTP1

/// Carries a WebSocket that a client opens on an HTTP/2 or HTTP/3 request stream with extended CONNECT (RFC 8441,
/// RFC 9220) to an upstream that speaks WebSocket over HTTP/1.1 (RFC 6455). The CONNECT goes on to
/// ``HTTP1Handler`` as the Upgrade handshake the proxy already forwards, and the upstream's 101 comes back as the
/// 200 that opens the tunnel; then ``RelayHandler/join(stream:upstream:)`` puts a relay in place of both
/// handlers. Sits on the stream in front of ``HTTP1Handler``, only for a request with `:protocol`.
final class ExtendedConnectHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case waitingForHead
        /// The handshake went on; no final answer yet.
        case handshaking
        /// The upstream's 101 went out as a 200; the end of the 101 is not the end of the stream.
        case switched
        /// The stream is the tunnel.
        case tunnel
        /// A final answer other than a switch is going out; the stream is done with once it has.
        case refused
    }

    /// The client's `:protocol`.
    private let requested: String
    private var state = State.waitingForHead
    /// What the client sent after its CONNECT before the tunnel opened: the tunnel's first bytes, or its end.
    /// Reading stops while they wait; they go on when the relay takes over.
    private var early: [HTTPServerRequestPart] = []

    init(protocol requested: String) {
        self.requested = requested
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (state, part) {
        case (.waitingForHead, .head(let head)):
            // WebSocket is the protocol whose HTTP/1.1 Upgrade handshake the proxy can make of a CONNECT.
            guard requested.lowercased() == "websocket" else { return refuse(context: context, version: head.version) }
            state = .handshaking
            // An HTTP/1.1 handshake has no body: what follows belongs to the tunnel.
            context.fireChannelRead(wrapInboundOut(.head(Self.handshake(head))))
            context.fireChannelRead(wrapInboundOut(.end(nil)))
        case (.refused, _):
            break
        default:
            early.append(part)
            context.channel.setReading(false)
        }
    }

    /// The request head the proxy forwards: an HTTP/1.1-style WebSocket handshake, with a key of Velocity's
    /// own (extended CONNECT has none) and the client's version, subprotocols and extensions. The version
    /// stays the stream's, so the access log and the proxy know the client's protocol.
    private static func handshake(_ connect: HTTPRequestHead) -> HTTPRequestHead {
        var headers = connect.headers
        headers.remove(name: "sec-websocket-key")
        headers.add(name: "upgrade", value: "websocket")
        headers.add(name: "connection", value: "Upgrade")
        headers.add(name: "sec-websocket-key", value: WebSocketHandshake.makeKey())
        return HTTPRequestHead(version: connect.version, method: .GET, uri: connect.uri, headers: headers)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch (state, unwrapOutboundIn(data)) {
        case (.handshaking, .head(let head)) where head.status == .switchingProtocols:
            state = .switched
            var headers = head.headers
            for name in ["upgrade", "connection", "sec-websocket-accept"] { headers.remove(name: name) }
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))),
                promise: promise)
        case (.switched, .end):
            state = .tunnel
            promise?.succeed()
        case (.handshaking, .head(let head)) where head.status.code >= 200:
            state = .refused
            context.write(data, promise: promise)
        case (.refused, .end):
            endThenClose(context: context, data: data, promise: promise)
        default:
            context.write(data, promise: promise)
        }
    }

    /// Answers a `:protocol` Velocity cannot carry with 501 Not Implemented.
    private func refuse(context: ChannelHandlerContext, version: HTTPVersion) {
        state = .refused
        let body = context.channel.allocator.buffer(string: "501 Not Implemented\n")
        let headers = HTTPHeaders([
            ("content-type", "text/plain; charset=utf-8"), ("content-length", String(body.readableBytes)),
        ])
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .notImplemented, headers: headers))),
            promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        endThenClose(context: context, data: wrapOutboundOut(.end(nil)), promise: nil)
        context.flush()
    }

    /// A CONNECT that opened no tunnel is over once its answer is: the stream closes rather than wait for a
    /// client that has no reason to end its side.
    private func endThenClose(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let written = promise ?? context.eventLoop.makePromise()
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        context.write(data, promise: written)
    }

    /// Removed when the relay takes over: what the client sent early goes on to it, and reading resumes.
    func handlerRemoved(context: ChannelHandlerContext) {
        guard case .tunnel = state, !early.isEmpty, context.channel.isActive else { return }
        let parts = early
        early = []
        for part in parts { context.fireChannelRead(wrapInboundOut(part)) }
        context.fireChannelReadComplete()
        context.channel.setReading(true)
    }
}

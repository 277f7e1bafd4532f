import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import VelocityConfig

/// Idle keep-alive connections to one upstream from one event loop. Touched only on that loop.
final class ConnectionPool: @unchecked Sendable {
    let eventLoop: any EventLoop
    private var idle: [UpstreamConnection] = []
    /// Enough that a burst of concurrent requests does not end in a churn of new connections once it passes.
    static let maximumIdle = 256

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// An idle connection still open, if there is one.
    func take() -> UpstreamConnection? {
        eventLoop.preconditionInEventLoop()
        while let connection = idle.popLast() {
            if connection.channel.isActive { return connection }
        }
        return nil
    }

    /// Keeps a connection whose last exchange ended cleanly, or closes it when enough are kept.
    func put(_ connection: UpstreamConnection) {
        eventLoop.preconditionInEventLoop()
        guard idle.count < Self.maximumIdle, connection.channel.isActive else {
            connection.channel.close(promise: nil)
            return
        }
        connection.pool = self
        idle.append(connection)
    }

    /// A kept connection the upstream closed.
    func remove(_ connection: UpstreamConnection) {
        idle.removeAll { $0 === connection }
    }

    func closeAll() {
        eventLoop.execute {
            for connection in self.idle { connection.channel.close(promise: nil) }
            self.idle = []
        }
    }

    /// Connects to `address` (with TLS when `tls` is given) with HTTP/1.1 client handlers and a fresh
    /// ``UpstreamConnection`` on this loop.
    func dial(
        _ address: ListenAddress, tls: (context: NIOSSLContext, serverName: String?)?, timeout: TimeAmount
    ) -> EventLoopFuture<UpstreamConnection> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverName))
                    }
                    // Bytes after a 101 belong to the new protocol and go on to the relay. No outbound header
                    // validation: the request's headers passed the client-side parser or config validation, and
                    // a relay must find only these two HTTP handlers to remove.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        leftOverBytesStrategy: .forwardBytes, enableOutboundHeaderValidation: false)
                    try channel.pipeline.syncOperations.addHandler(UpstreamConnection(channel: channel))
                }
            }
        let connected: EventLoopFuture<any Channel> =
            switch address {
            case .inet(let host, let port): bootstrap.connect(host: host, port: port)
            case .unix(let path): bootstrap.connect(unixDomainSocketPath: path)
            }
        return connected.flatMapThrowing { channel in
            try channel.pipeline.syncOperations.handler(type: UpstreamConnection.self)
        }
    }
}

/// What uses an upstream connection for one exchange: a proxied request or a health check.
protocol UpstreamExchange: AnyObject {
    func upstreamRead(_ part: HTTPClientResponsePart)
    /// The connection failed (`closed` false: an error, such as a malformed response) or closed; `cause` says
    /// how, for the log.
    func upstreamFailed(_ cause: String, closed: Bool)
    func upstreamWritabilityChanged(_ writable: Bool)
    /// A burst of reads ended: time to flush what it produced.
    func upstreamReadComplete()
}

/// The end of an upstream connection: hands response parts to the exchange using it, and leaves the pool
/// when the upstream closes it while idle.
final class UpstreamConnection: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    // Touched only on the channel's event loop.
    let channel: any Channel
    weak var exchange: (any UpstreamExchange)?
    weak var pool: ConnectionPool?

    init(channel: any Channel) {
        self.channel = channel
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        exchange?.upstreamRead(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        pool?.remove(self)
        exchange?.upstreamFailed("the upstream closed the connection", closed: true)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        exchange?.upstreamFailed("\(error)", closed: false)
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        exchange?.upstreamWritabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func write(_ part: HTTPClientRequestPart, flush: Bool = false) {
        if flush {
            channel.writeAndFlush(part, promise: nil)
        } else {
            channel.write(part, promise: nil)
        }
    }
}

import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOPosix
import VelocityConfig
import VelocityHTTP
import VelocityTLS

/// Serves requests from the current snapshot: HTTP/1.1 on a connection, or one HTTP/2 stream (behind NIO's
/// HTTP/2-to-HTTP/1 codec). Each request loads the snapshot once, when its head arrives, and is answered from
/// that snapshot even if a newer one is published meanwhile. Work that may block (file lookups, password
/// checks) runs on the shared thread pool; the request keeps its place in routing meanwhile.
final class HTTP1Handler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// A request between its head and the end of its response. A class: it is updated in place as routing
    /// advances, and a pool job's result is matched to its request by identity.
    private final class Exchange {
        let head: HTTPRequestHead
        let snapshot: Snapshot
        /// Nil for a request that could not be routed at all (its method is not a token).
        var cursor: RouteCursor?
        let started: NIODeadline
        var requestEnded = false
        /// The request's trailer fields, for a proxy that starts after the request ended.
        var trailers: HTTPHeaders?
        /// Body parts that arrived while routing was still deciding (a password check, a file lookup); a
        /// proxied request sends them on, anything else drops them.
        var body: [ByteBuffer] = []
        /// Reading stopped while `body` waits for routing to decide.
        var paused = false
        var reply: Reply?
        var writing = false
        /// Set when the request is forwarded: body parts go to it, and it writes the response.
        var proxy: ProxyExchange?

        init(head: HTTPRequestHead, snapshot: Snapshot, cursor: RouteCursor?) {
            self.head = head
            self.snapshot = snapshot
            self.cursor = cursor
            started = .now()
        }
    }

    private let snapshots: SnapshotBox
    private let scheme: String
    /// Plain HTTP/1.1 on a socket: file bodies can go from the page cache to the socket without a copy.
    private let zeroCopy: Bool
    private var remoteAddress: IPAddress?
    private var tls: TLSSessionInfo?
    private var exchange: Exchange?
    /// On an HTTP/1 connection, the time a client has from connecting, or from the end of the previous
    /// response, to send a complete request head: it bounds idle keep-alive connections and clients that
    /// trickle their headers a byte at a time. (HTTP/2 has its own connection-level limits.)
    private let headTimeout: TimeAmount?
    /// When the connection began waiting for the current request head; nil while a request is in progress.
    private var waitingSince: NIODeadline?
    /// One timer per connection, re-armed when it fires early, rather than one per request.
    private var headTimer: Scheduled<Void>?

    /// `tls` is for a request stream of a QUIC connection, whose handshake no channel handler ran.
    init(
        snapshots: SnapshotBox, scheme: String, zeroCopy: Bool = false, headTimeout: TimeAmount? = nil,
        tls: TLSSessionInfo? = nil
    ) {
        self.snapshots = snapshots
        self.scheme = scheme
        self.zeroCopy = zeroCopy
        self.headTimeout = headTimeout
        self.tls = tls
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // The channel's stored address: an HTTP/2 stream channel has one but cannot look it up.
        remoteAddress = context.channel.remoteAddress.flatMap(IPAddress.init(socketAddress:))
        // TLS ran on the connection: this channel, or the parent of an HTTP/2 stream, which shares its event
        // loop. (An accepted socket's parent is the listening socket, possibly on another loop.)
        tls =
            tls ?? Self.sessionInfo(of: context.channel)
            ?? context.channel.parent.flatMap { $0.eventLoop.inEventLoop ? Self.sessionInfo(of: $0) : nil }
        if let headTimeout {
            waitingSince = .now()
            armHeadTimer(context: context, at: .now() + headTimeout)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        headTimer?.cancel()
    }

    private func armHeadTimer(context: ChannelHandlerContext, at deadline: NIODeadline) {
        headTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            guard let headTimeout else { return }
            guard let waitingSince else {
                // A request is being served; its successor gets a full period from when it ends.
                return armHeadTimer(context: context, at: .now() + headTimeout)
            }
            if waitingSince + headTimeout <= .now() {
                context.close(promise: nil)
            } else {
                armHeadTimer(context: context, at: waitingSince + headTimeout)
            }
        }
    }

    private static func sessionInfo(of channel: any Channel) -> TLSSessionInfo? {
        try? channel.pipeline.syncOperations.handler(type: TLSServerHandler.self).sessionInfo
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            waitingSince = nil
            let snapshot = snapshots.load()
            guard let request = HTTPRequest(head, scheme: scheme) else {
                exchange = Exchange(head: head, snapshot: snapshot, cursor: nil)
                ready(.buffered(StaticResponse(status: .badRequest, body: "400 Bad Request\n")), context: context)
                return
            }
            let routing = RoutingRequest(request: request, remoteAddress: remoteAddress)
            exchange = Exchange(head: head, snapshot: snapshot, cursor: snapshot.router.start(routing))
            if let redirect = snapshot.httpsRedirect.response(for: routing) {
                ready(.buffered(redirect), context: context)
            } else {
                proceed(context: context)
            }
        case .body(let part):
            guard let exchange else { return }
            if let proxy = exchange.proxy {
                proxy.clientBody(part)
            } else if exchange.reply == nil {
                exchange.body.append(part)
                // Routing has not decided yet: stop reading rather than hold an unbounded body.
                if exchange.body.count == 16 { pause(exchange, true, context: context) }
            }
        case .end(let trailers):
            exchange?.requestEnded = true
            exchange?.trailers = trailers
            if let proxy = exchange?.proxy {
                proxy.clientEnd(trailers: trailers)
            } else if exchange?.reply != nil {
                send(context: context)
            }
        }
    }

    /// Routes on from where the request stands until there is a reply or work for the pool.
    private func proceed(context: ChannelHandlerContext) {
        guard let exchange, exchange.cursor != nil else { return }
        let step = exchange.snapshot.router.next(&exchange.cursor!)
        switch step {
        case .respond(let response):
            ready(.buffered(response), context: context)
        case .serveFile(let server):
            let request = exchange.cursor!.request
            offload(context: context, for: exchange) {
                server.answer(request)
            } then: { answer in
                switch answer {
                case .respond(let response):
                    self.ready(.buffered(self.decorated(response)), context: context)
                case .file(let head, let body, let length):
                    self.ready(.file(self.decorated(head), body, length: length), context: context)
                case .passThru:
                    self.proceed(context: context)
                }
            }
        case .proxy(let proxy):
            forward(to: proxy, exchange, context: context)
        case .verify(let check):
            offload(context: context, for: exchange) {
                check.run()
            } then: { granted in
                if granted {
                    self.proceed(context: context)
                } else {
                    self.ready(.buffered(self.decorated(check.challenge)), context: context)
                }
            }
        }
    }

    private func forward(to proxy: ReverseProxy, _ exchange: Exchange, context: ChannelHandlerContext) {
        exchange.writing = true
        let forwarding = ProxyExchange(
            context: context, proxy: proxy, request: exchange.cursor!.request, head: exchange.head,
            decorations: exchange.cursor!.decorations
        ) { [self] status, bytesOut in
            finish(exchange, status: status, bytesOut: bytesOut, context: context)
        }
        exchange.proxy = forwarding
        if ProxyHeaders.expectsContinue(exchange.head), !exchange.requestEnded {
            let interim = HTTPResponseHead(version: exchange.head.version, status: .continue)
            context.writeAndFlush(wrapOutboundOut(.head(interim)), promise: nil)
        }
        for part in exchange.body { forwarding.clientBody(part) }
        exchange.body = []
        if exchange.requestEnded { forwarding.clientEnd(trailers: exchange.trailers) }
        pause(exchange, false, context: context)
        forwarding.start()
    }

    /// Stops or resumes reading the connection (or HTTP/2 stream) for a request whose body is held back.
    private func pause(_ exchange: Exchange, _ paused: Bool, context: ChannelHandlerContext) {
        guard exchange.paused != paused else { return }
        exchange.paused = paused
        context.channel.setReading(!paused)
    }

    /// Runs `work` on the thread pool, then `then` on the event loop if the same request is still waiting.
    private func offload<Result: Sendable>(
        context: ChannelHandlerContext, for waiting: Exchange, _ work: @escaping @Sendable () -> Result,
        then: @escaping (Result) -> Void
    ) {
        NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop, work).assumeIsolated().whenComplete {
            [self] result in
            guard exchange === waiting else { return }
            switch result {
            case .success(let value):
                then(value)
            case .failure:
                ready(
                    .buffered(StaticResponse(status: .serviceUnavailable, body: "503 Service Unavailable\n")),
                    context: context)
            }
        }
    }

    private func decorated(_ response: StaticResponse) -> StaticResponse {
        guard let decorations = exchange?.cursor?.decorations else { return response }
        var response = response
        decorations.decorate(&response.headerFields)
        return response
    }

    private func ready(_ reply: Reply, context: ChannelHandlerContext) {
        guard let exchange else { return }
        var reply = reply
        if exchange.head.version.major >= 2, reply.status.kind == .successful,
            ProxyHeaders.upgradeProtocol(exchange.head) != nil
        {
            // An extended CONNECT takes any 2xx for an open tunnel, and only a proxied upstream's switch opens one.
            reply = .buffered(StaticResponse(status: .notImplemented, body: "501 Not Implemented\n"))
        }
        // The answer does not need the rest of the body: read on, so it is consumed and the connection moves on.
        exchange.body = []
        pause(exchange, false, context: context)
        exchange.reply = reply
        if exchange.requestEnded { send(context: context) }
    }

    private func send(context: ChannelHandlerContext) {
        guard let current = exchange, let reply = current.reply, !current.writing else { return }
        current.writing = true
        let writer = ResponseWriter(
            head: current.head, encoding: current.cursor?.decorations.encoding,
            requestFields: current.cursor?.request.request.headerFields ?? [:], zeroCopy: zeroCopy)
        // Writing the end may deliver the next pipelined request before this closure runs.
        writer.write(reply, context: context) { [self] status, bytesOut in
            finish(current, status: status, bytesOut: bytesOut, context: context)
        }
    }

    /// The response of `finished` is written: the connection waits for its next request head.
    private func finish(_ finished: Exchange, status: Int, bytesOut: Int, context: ChannelHandlerContext) {
        if exchange === finished {
            exchange = nil
            if headTimeout != nil { waitingSince = .now() }
        }
        if finished.snapshot.accessLog {
            AccessLog.record(
                head: finished.head, status: status, bytesOut: bytesOut, started: finished.started,
                remote: context.channel.remoteAddress, tls: tls,
                upstream: finished.proxy?.lastUpstream.map { ("\($0.address)", finished.proxy?.upstreamLatency) })
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.proxy?.clientReadComplete()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        exchange?.proxy?.clientWritabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        exchange?.proxy?.cancel()
        context.fireChannelInactive()
    }

    /// A request NIO could not parse was already answered with 400 by the protocol error handler; the
    /// connection cannot be trusted to be in step any more.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// An idle connection closes, unless it is idle only because a response is still being written to it.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            if exchange?.writing != true { context.close(promise: nil) }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

extension HTTPRequest {
    /// The transport-neutral form of an HTTP/1.1 request head; nil when the method is not a valid token.
    init?(_ head: HTTPRequestHead, scheme: String) {
        guard let method = HTTPRequest.Method(head.method.rawValue) else { return nil }
        var fields = HTTPFields()
        fields.reserveCapacity(head.headers.count)
        for (name, value) in head.headers {
            guard let fieldName = HTTPField.Name(name) else { return nil }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        self.init(
            method: method, scheme: scheme, authority: head.headers.first(name: "host"), path: head.uri,
            headerFields: fields)
    }
}

extension IPAddress {
    init?(socketAddress: SocketAddress) {
        switch socketAddress {
        case .v4(let address):
            self.init(bytes: withUnsafeBytes(of: address.address.sin_addr) { Array($0) })
        case .v6(let address):
            self.init(bytes: withUnsafeBytes(of: address.address.sin6_addr) { Array($0) })
        case .unixDomainSocket:
            return nil
        }
    }
}

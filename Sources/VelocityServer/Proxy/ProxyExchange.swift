import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import VelocityConfig
import VelocityHTTP

/// One request forwarded to an upstream: picks the upstream, takes a pooled connection or dials one, streams
/// the request body up and the response down with back-pressure both ways, and retries another upstream when
/// that is safe. Lives on the client channel's event loop; upstream connections are made on the same loop.
final class ProxyExchange: UpstreamExchange {
    private let context: ChannelHandlerContext
    private let proxy: ReverseProxy
    private let request: RoutingRequest
    private let head: HTTPRequestHead
    /// What earlier handlers asked of the response (header edits, HSTS); `encode` does not apply to proxied
    /// bodies.
    private let decorations: ResponseDecorations
    /// The protocol the client asks to switch to (a WebSocket handshake).
    private let upgrade: String?
    /// The client is an HTTP/2 or HTTP/3 request stream, whose switch is an extended CONNECT.
    private let overStream: Bool
    /// The upstream agreed to switch: when its 101 is complete, both connections become a relay.
    private var switching = false
    /// Called once, with the status and body bytes the client got.
    private let finished: (Int, Int) -> Void

    private var tried: [Int] = []
    private var current: Attempt?
    /// For the access log: the upstream last tried, and how long it took to answer (nil if it did not).
    private(set) var lastUpstream: Upstream?
    private(set) var upstreamLatency: TimeAmount?

    /// Body parts that arrived before a connection was ready, and their size.
    private var pending: [ByteBuffer] = []
    private var pendingBytes = 0
    private var requestEnded = false
    /// Trailer fields to pass on: the client's to the upstream, the upstream's to the client.
    private var requestTrailers: HTTPHeaders?
    private var responseTrailers: HTTPHeaders?
    /// Some of the body went upstream: the request can no longer be replayed.
    private var bodySent = false
    private var responseStarted = false
    /// The upstream's response allows another request on its connection.
    private var upstreamKeepAlive = false
    private var attemptStarted = NIODeadline.now()
    private var headerTimer: Scheduled<Void>?
    /// Reading from the client stopped, for back-pressure.
    private var clientPaused = false
    private var status = 0
    private var bytesOut = 0
    /// Compresses the response body when an `encode` handler asked for it and the response qualifies.
    private var compressor: Compressor?
    private var done = false

    /// The upstream and connection serving the request now.
    private struct Attempt {
        let upstream: Upstream
        let connection: UpstreamConnection
        /// The connection came from the pool (and may have been closed by the upstream meanwhile).
        let reused: Bool
        var requestSent = false
    }

    init(
        context: ChannelHandlerContext, proxy: ReverseProxy, request: RoutingRequest, head: HTTPRequestHead,
        decorations: ResponseDecorations, finished: @escaping (Int, Int) -> Void
    ) {
        self.context = context
        self.decorations = decorations
        self.proxy = proxy
        self.request = request
        self.head = head
        upgrade = ProxyHeaders.upgradeProtocol(head)
        overStream = head.version.major >= 2
        self.finished = finished
    }

    func start() {
        guard !done else { return }
        guard let index = proxy.select(request, excluding: tried) else {
            return fail(tried.isEmpty ? .serviceUnavailable : .badGateway)
        }
        tried.append(index)
        // The data plane made every upstream of its routers.
        let upstream = proxy.upstreams[index] as! Upstream
        lastUpstream = upstream
        let pool = upstream.pool(for: context.eventLoop)
        if let connection = pool.take() {
            use(connection, of: upstream, reused: true)
            return
        }
        attemptStarted = .now()
        pool.dial(upstream.address, tls: upstream.tls, timeout: .milliseconds(Int64(proxy.dialTimeoutMs)))
            .assumeIsolated().whenComplete {
                [self] result in
                guard !done else {
                    if case .success(let connection) = result { connection.channel.close(promise: nil) }
                    return
                }
                switch result {
                case .success(let connection):
                    use(connection, of: upstream, reused: false)
                case .failure(let error):
                    // Nothing was sent: moving on to another upstream is always safe.
                    upstream.failed(proxy.passiveHealth)
                    log("cannot connect to the upstream", upstream, "\(error)")
                    retryOrFail(.badGateway)
                }
            }
    }

    private func use(_ connection: UpstreamConnection, of upstream: Upstream, reused: Bool) {
        current = Attempt(upstream: upstream, connection: connection, reused: reused)
        connection.exchange = self
        connection.pool = nil
        upstream.started()
        attemptStarted = .now()
        current?.requestSent = true
        connection.write(
            .head(
                ProxyHeaders.upstreamHead(
                    request, version: head.version, upgrade: upgrade, proxy: proxy, upstream: upstream)))
        for part in pending {
            connection.write(.body(.byteBuffer(part)))
            bodySent = true
        }
        pending = []
        pendingBytes = 0
        if requestEnded { sendEnd(connection) }
        connection.channel.flush()
        if !connection.channel.isWritable { setClientReading(false) }
    }

    // MARK: From the client

    func clientBody(_ part: ByteBuffer) {
        guard let connection = current?.connection else {
            pending.append(part)
            pendingBytes += part.readableBytes
            if pendingBytes > 1 << 20 { setClientReading(false) }
            return
        }
        bodySent = true
        connection.write(.body(.byteBuffer(part)))
        if !connection.channel.isWritable { setClientReading(false) }
    }

    /// The client's read burst is over: what it brought goes upstream in one flush.
    func clientReadComplete() {
        current?.connection.channel.flush()
    }

    /// The upstream's read burst is over: what it brought goes to the client in one flush.
    func upstreamReadComplete() {
        if responseStarted, !done { context.flush() }
    }

    func clientEnd(trailers: HTTPHeaders?) {
        requestEnded = true
        requestTrailers = ProxyHeaders.trailers(trailers)
        if let connection = current?.connection {
            sendEnd(connection)
            connection.channel.flush()
        }
    }

    func clientWritabilityChanged(_ writable: Bool) {
        current?.connection.channel.setOption(.autoRead, value: writable).whenFailure { _ in }
    }

    /// The client went away: the upstream connection is in an unknown state and is closed, and a dial still
    /// under way is dropped when it completes.
    func cancel() {
        guard !done else { return }
        done = true
        headerTimer?.cancel()
        guard let current else { return }
        self.current = nil
        current.connection.exchange = nil
        current.connection.channel.close(promise: nil)
        current.upstream.finished()
    }

    private func sendEnd(_ connection: UpstreamConnection) {
        connection.write(.end(requestTrailers))
        headerTimer = context.eventLoop.assumeIsolated().scheduleTask(
            in: .milliseconds(Int64(proxy.responseHeaderTimeoutMs))
        ) { [self] in
            guard !responseStarted, let current else { return }
            current.upstream.failed(proxy.passiveHealth)
            log("no response in time", current.upstream, "\(proxy.responseHeaderTimeoutMs) ms")
            release(close: true)
            fail(.gatewayTimeout)
        }
    }

    // MARK: From the upstream

    func upstreamRead(_ part: HTTPClientResponsePart) {
        guard !done, let current else { return }
        switch part {
        case .head(let response):
            headerTimer?.cancel()
            if upgrade != nil, overStream, !ProxyHeaders.answersExtendedConnect(response, to: head) {
                log("the upstream did not accept the WebSocket handshake", current.upstream, "\(response.status.code)")
                release(close: true)
                return fail(.badGateway)
            }
            responseStarted = true
            upstreamKeepAlive = response.isKeepAlive
            let latency = NIODeadline.now() - attemptStarted
            if let health = proxy.passiveHealth,
                health.unhealthyStatus.contains(Int(response.status.code))
                    || health.unhealthyLatency.map({ latency > $0 }) == true
            {
                current.upstream.failed(health)
            }
            current.upstream.answered(latency: latency)
            upstreamLatency = latency
            var fields = ProxyHeaders.clientFields(response, version: head.version, proxy: proxy)
            if let index = tried.last, let cookie = proxy.stickyCookie(for: index, request: request) {
                fields.append(HTTPField(name: .setCookie, value: cookie))
            }
            decorations.decorate(&fields)
            status = Int(response.status.code)
            // HTTP/1.0 clients are left alone: without a length their body could only end with the connection.
            if let rule = decorations.encoding, head.method != .HEAD, head.version != .http1_0,
                let coding = rule.encoding(
                    request: request.request.headerFields, status: HTTPResponse.Status(code: status),
                    response: fields, length: fields[.contentLength].flatMap { Int($0) })
            {
                compressor = Compressor(coding)
                fields[.contentLength] = nil
                EncodeRule.markEncoded(&fields, coding)
            }
            if response.status == .switchingProtocols {
                // Only a client that asked may be switched; anything else is a broken upstream.
                guard upgrade != nil else {
                    release(close: true)
                    return fail(.badGateway)
                }
                switching = true
            }
            var headers = HTTPHeaders(fields, reservingExtra: 1)
            if !head.isKeepAlive, head.version.major == 1 { headers.replaceOrAdd(name: "Connection", value: "close") }
            context.write(
                NIOAny(
                    HTTPServerResponsePart.head(
                        HTTPResponseHead(version: head.version, status: response.status, headers: headers))),
                promise: nil)
        case .body(var buffer):
            if let compressor {
                // Flushed per part, so a stream of events reaches the client as it comes.
                var compressed = ByteBuffer()
                compressor.compress(buffer, into: &compressed, flush: true)
                buffer = compressed
            }
            bytesOut += buffer.readableBytes
            context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(buffer))), promise: nil)
            if !context.channel.isWritable {
                current.connection.channel.setOption(.autoRead, value: false).whenFailure { _ in }
            }
        case .end where switching:
            switchProtocols(current)
        case .end(let trailers):
            responseTrailers = ProxyHeaders.trailers(trailers)
            if let compressor {
                var rest = ByteBuffer()
                compressor.compress(ByteBuffer(), into: &rest, finish: true)
                bytesOut += rest.readableBytes
                context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(rest))), promise: nil)
            }
            let reusable = requestEnded && upstreamKeepAlive && current.connection.channel.isActive
            release(close: !reusable)
            complete()
        }
    }

    /// The 101 is complete: the exchange ends, and the two connections carry the new protocol's bytes.
    private func switchProtocols(_ current: Attempt) {
        done = true
        self.current = nil
        current.connection.exchange = nil
        current.upstream.finished()
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
        // A stream's client saw its 101 as a 200.
        finished(overStream ? 200 : status, bytesOut)
        do {
            if overStream {
                try RelayHandler.join(stream: context, upstream: current.connection.channel)
            } else {
                try RelayHandler.join(client: context, upstream: current.connection.channel)
            }
        } catch {
            current.connection.channel.close(promise: nil)
            context.close(promise: nil)
        }
    }

    /// The connection failed or closed before the exchange finished.
    func upstreamFailed(_ cause: String, closed: Bool) {
        guard !done, let current else { return }
        // A kept connection that the upstream closed before answering had most likely timed out while idle: routine,
        // not the upstream's failure, and worth another connection to the same upstream.
        let stale = current.reused && closed && !responseStarted
        if !stale { log("the upstream connection failed", current.upstream, cause) }
        headerTimer?.cancel()
        if responseStarted {
            // Part of the answer went out; the client cannot be told anything but that it is cut short.
            release(close: true)
            done = true
            context.close(promise: nil)
            finished(status, bytesOut)
            return
        }
        release(close: true)
        if !stale { current.upstream.failed(proxy.passiveHealth) }
        // Once the request went out, only a request that may safely run twice is sent again (RFC 9110 §9.2.2).
        if bodySent || (current.requestSent && !request.method.isIdempotent) { return fail(.badGateway) }
        if stale { tried.removeLast() }
        retryOrFail(.badGateway)
    }

    func upstreamWritabilityChanged(_ writable: Bool) {
        setClientReading(writable)
    }

    // MARK: Endings

    private func retryOrFail(_ status: HTTPResponse.Status) {
        if tried.count <= proxy.retries, proxy.select(request, excluding: tried) != nil {
            start()
        } else {
            fail(status)
        }
    }

    /// Returns the connection to its pool after a clean exchange, or closes it.
    private func release(close: Bool) {
        guard let current else { return }
        self.current = nil
        current.connection.exchange = nil
        setClientReading(true)
        current.connection.channel.setOption(.autoRead, value: true).whenFailure { _ in }
        if close {
            current.connection.channel.close(promise: nil)
        } else {
            current.upstream.pool(for: context.eventLoop).put(current.connection)
        }
        current.upstream.finished()
    }

    private func complete() {
        guard !done else { return }
        done = true
        let keepAlive = head.isKeepAlive
        let channel = context.channel
        // Done once the client's socket has taken the whole response, so the connection's timers never cut
        // off a slow reader's last bytes.
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(responseTrailers))).assumeIsolated().whenComplete {
            [self] _ in
            finished(status, bytesOut)
            if !keepAlive { channel.close(promise: nil) }
        }
    }

    private func fail(_ status: HTTPResponse.Status) {
        guard !done else { return }
        done = true
        let response = StaticResponse(status: status, body: "\(status.code) \(status.reasonPhrase)\n")
        ResponseWriter(head: head, encoding: nil, requestFields: [:], zeroCopy: false).write(
            .buffered(response), context: context, done: finished)
    }

    private static let logger = Logger(label: "velocity.proxy")

    private func log(_ message: Logger.Message, _ upstream: Upstream, _ cause: String) {
        Self.logger.warning(
            message,
            metadata: [
                "upstream": "\(upstream.key)", "cause": "\(cause)", "method": "\(head.method.rawValue)",
                "path": "\(request.path)",
            ])
    }

    private func setClientReading(_ reading: Bool) {
        guard clientPaused == reading else { return }
        clientPaused = !reading
        context.channel.setReading(reading)
    }
}

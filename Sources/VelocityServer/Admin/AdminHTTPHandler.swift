import NIOCore
import NIOHTTP1

/// Reads one admin request at a time, enforces the access policy and the body limit before any body is
/// buffered, and hands complete requests to the ``AdminAPI``.
final class AdminHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case reading(HTTPRequestHead, ByteBuffer, limit: Int)
        /// A response was already sent for this request; its remaining parts are dropped.
        case discarding
        case waiting
    }

    private let api: AdminAPI
    private let snapshots: SnapshotBox
    private var state = State.idle

    init(api: AdminAPI, snapshots: SnapshotBox) {
        self.api = api
        self.snapshots = snapshots
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .idle):
            let policy = snapshots.load().admin
            if let refusal = policy.refusal(
                host: head.headers.first(name: "host"),
                origin: head.headers.first(name: "origin"),
                authorization: head.headers.first(name: "authorization"),
                upgrade: head.headers.contains(name: "upgrade"))
            {
                reject(context: context, refusal, version: head.version)
                return
            }
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > policy.maxBodyBytes {
                reject(context: context, Self.tooLarge(policy.maxBodyBytes), version: head.version)
                return
            }
            if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                context.writeAndFlush(
                    wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
            state = .reading(head, context.channel.allocator.buffer(capacity: 0), limit: policy.maxBodyBytes)
        case (.body(var chunk), .reading(let head, var body, let limit)):
            guard body.readableBytes + chunk.readableBytes <= limit else {
                reject(context: context, Self.tooLarge(limit), version: head.version)
                return
            }
            state = .waiting  // let `body` be uniquely referenced while it grows
            body.writeBuffer(&chunk)
            state = .reading(head, body, limit: limit)
        case (.end, .reading(let head, let body, _)):
            state = .waiting
            dispatch(context: context, head: head, body: body)
        case (.end, .discarding):
            state = .idle
        default:
            break
        }
    }

    /// A request NIO could not parse was already answered with 400; close rather than guess where the next
    /// one starts.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// An idle or half-sent request does not hold a connection forever; one being answered is left alone.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is IdleStateHandler.IdleStateEvent else {
            return context.fireUserInboundEventTriggered(event)
        }
        if case .waiting = state { return }
        context.close(promise: nil)
    }

    private static func tooLarge(_ limit: Int) -> AdminError {
        AdminError(
            .payloadTooLarge, "request body exceeds the limit of \(limit) bytes",
            details: ["limit": .integer(Int64(limit))])
    }

    private func dispatch(context: ChannelHandlerContext, head: HTTPRequestHead, body: ByteBuffer) {
        let client =
            context.remoteAddress.flatMap { address in
                address.ipAddress.map { ip in
                    ip.contains(":") ? "[\(ip)]:\(address.port ?? 0)" : "\(ip):\(address.port ?? 0)"
                }
            } ?? "unix socket"
        let request = AdminRequest(
            method: head.method, uri: head.uri, headers: head.headers, body: body, client: client)
        let api = api
        let promise = context.eventLoop.makePromise(of: AdminResponse.self)
        promise.completeWithTask { await api.handle(request) }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        promise.futureResult.whenSuccess { response in
            let (handler, context) = bound.value
            handler.state = .idle
            handler.write(context: context, response, version: head.version, keepAlive: head.isKeepAlive)
        }
    }

    /// Answers at once and closes: the rest of the request is never read.
    private func reject(context: ChannelHandlerContext, _ error: AdminError, version: HTTPVersion) {
        state = .discarding
        write(context: context, error.response, version: version, keepAlive: false)
    }

    private func write(context: ChannelHandlerContext, _ response: AdminResponse, version: HTTPVersion, keepAlive: Bool)
    {
        var headers = response.headers
        headers.replaceOrAdd(name: "Content-Length", value: String(response.body.readableBytes))
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))),
            promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        let channel = context.channel
        let afterWrite = response.afterWrite
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
            afterWrite?()
        }
    }
}

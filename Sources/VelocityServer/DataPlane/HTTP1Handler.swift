import HTTPTypes
import NIOCore
import NIOHTTP1
import VelocityConfig
import VelocityHTTP

/// Serves HTTP/1.1 requests from the current snapshot. Each request loads the snapshot once, when its head
/// arrives, and is answered from that snapshot even if a newer one is published meanwhile.
final class HTTP1Handler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let snapshots: SnapshotBox
    private let scheme: String
    private var remoteAddress: IPAddress?
    private var pending: (response: StaticResponse, keepAlive: Bool, head: Bool, version: HTTPVersion)?

    init(snapshots: SnapshotBox, scheme: String) {
        self.snapshots = snapshots
        self.scheme = scheme
    }

    func channelActive(context: ChannelHandlerContext) {
        // The channel's stored address: an HTTP/2 stream channel has one but cannot look it up.
        remoteAddress = context.channel.remoteAddress.flatMap(IPAddress.init(socketAddress:))
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let outcome: Router.Outcome
            if let request = HTTPRequest(head, scheme: scheme) {
                outcome = snapshots.load().router.route(RoutingRequest(request: request, remoteAddress: remoteAddress))
            } else {
                outcome = .respond(StaticResponse(status: .badRequest, body: "400 Bad Request\n"))
            }
            switch outcome {
            case .respond(let response):
                pending = (response, head.isKeepAlive, head.method == .HEAD, head.version)
            }
        case .body:
            break
        case .end:
            guard let pending else { return }
            self.pending = nil
            respond(
                context: context, pending.response, keepAlive: pending.keepAlive, head: pending.head,
                version: pending.version)
        }
    }

    private func respond(
        context: ChannelHandlerContext,
        _ response: StaticResponse,
        keepAlive: Bool,
        head isHead: Bool,
        version: HTTPVersion
    ) {
        var headers = HTTPHeaders()
        headers.reserveCapacity(response.headerFields.count + 2)
        for field in response.headerFields { headers.add(name: field.name.rawName, value: field.value) }
        headers.add(name: "Content-Length", value: String(response.body.readableBytes))
        let close = !keepAlive || response.close
        // HTTP/2 has no Connection header; closing a stream channel ends only that stream.
        if close, version.major == 1 { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(
            version: version, status: HTTPResponseStatus(statusCode: response.status.code), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !isHead, response.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        if close {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    /// A request NIO could not parse was already answered with 400 by the protocol error handler; the
    /// connection cannot be trusted to be in step any more.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
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

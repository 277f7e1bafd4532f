import HTTPTypes
import NIOCore
import NIOHTTP1
import VelocityConfig
import VelocityHTTP
import VelocityTLS

/// Serves requests from the current snapshot: HTTP/1.1 on a connection, or one HTTP/2 stream (behind NIO's
/// HTTP/2-to-HTTP/1 codec). Each request loads the snapshot once, when its head arrives, and is answered from
/// that snapshot even if a newer one is published meanwhile.
final class HTTP1Handler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// A request between its head and its end.
    private struct Exchange {
        var head: HTTPRequestHead
        var response: StaticResponse
        var accessLog: Bool
        var started: NIODeadline
    }

    private let snapshots: SnapshotBox
    private let scheme: String
    private var remoteAddress: IPAddress?
    private var tls: TLSSessionInfo?
    private var exchange: Exchange?

    init(snapshots: SnapshotBox, scheme: String) {
        self.snapshots = snapshots
        self.scheme = scheme
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // The channel's stored address: an HTTP/2 stream channel has one but cannot look it up.
        remoteAddress = context.channel.remoteAddress.flatMap(IPAddress.init(socketAddress:))
        // TLS ran on the connection: this channel, or the parent of an HTTP/2 stream, which shares its event
        // loop. (An accepted socket's parent is the listening socket, possibly on another loop.)
        tls =
            Self.sessionInfo(of: context.channel)
            ?? context.channel.parent.flatMap { $0.eventLoop.inEventLoop ? Self.sessionInfo(of: $0) : nil }
    }

    private static func sessionInfo(of channel: any Channel) -> TLSSessionInfo? {
        try? channel.pipeline.syncOperations.handler(type: TLSServerHandler.self).sessionInfo
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let snapshot = snapshots.load()
            let response: StaticResponse
            if let request = HTTPRequest(head, scheme: scheme) {
                let routing = RoutingRequest(request: request, remoteAddress: remoteAddress)
                if let redirect = snapshot.httpsRedirect.response(for: routing) {
                    response = redirect
                } else {
                    switch snapshot.router.route(routing) {
                    case .respond(let answer): response = answer
                    }
                }
            } else {
                response = StaticResponse(status: .badRequest, body: "400 Bad Request\n")
            }
            exchange = Exchange(head: head, response: response, accessLog: snapshot.accessLog, started: .now())
        case .body:
            break
        case .end:
            guard let exchange else { return }
            self.exchange = nil
            respond(context: context, exchange)
        }
    }

    private func respond(context: ChannelHandlerContext, _ exchange: Exchange) {
        let response = exchange.response
        let version = exchange.head.version
        let sendsBody = exchange.head.method != .HEAD
        var headers = HTTPHeaders()
        headers.reserveCapacity(response.headerFields.count + 2)
        for field in response.headerFields { headers.add(name: field.name.rawName, value: field.value) }
        headers.add(name: "Content-Length", value: String(response.body.readableBytes))
        let close = !exchange.head.isKeepAlive || response.close
        // HTTP/2 has no Connection header; closing a stream channel ends only that stream.
        if close, version.major == 1 { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(
            version: version, status: HTTPResponseStatus(statusCode: response.status.code), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if sendsBody, response.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        if close {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        if exchange.accessLog {
            AccessLog.record(
                head: exchange.head, status: response.status.code,
                bytesOut: sendsBody ? response.body.readableBytes : 0, started: exchange.started,
                remote: context.channel.remoteAddress, tls: tls)
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

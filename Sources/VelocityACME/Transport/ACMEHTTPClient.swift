import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One answer from the CA.
struct ACMEHTTPResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]

    /// RFC 8555 §8.2 and RFC 9110 §10.2.3: seconds, or an HTTP date.
    var retryAfter: TimeInterval? {
        guard let value = headers.first(name: "retry-after")?.trimmingCharacters(in: .whitespaces) else { return nil }
        if let seconds = Int(value) { return TimeInterval(max(0, seconds)) }
        let format = DateFormatter()
        format.locale = Locale(identifier: "en_US_POSIX")
        format.timeZone = TimeZone(identifier: "GMT")
        format.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return format.date(from: value).map { max(0, $0.timeIntervalSinceNow) }
    }
}

/// The CA's HTTPS: one connection per request, HTTP/1.1, certificate checked against the system's roots and
/// any the issuer adds. ACME exchanges are few and far between, so nothing is pooled. OCSP responders, whose
/// answers are signed, are asked over plain HTTP as RFC 6960 has it.
struct ACMEHTTPClient: Sendable {
    private let group: any EventLoopGroup
    private let tls: NIOSSLContext
    /// The whole exchange, connect to last byte.
    private let timeout: TimeAmount

    /// Bodies larger than this (a certificate chain is a few KiB) are refused.
    static let maximumBodyBytes = 1 << 20

    init(group: any EventLoopGroup, trustedRootsPEM: String?, timeout: TimeAmount = .seconds(30)) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let trustedRootsPEM {
            let roots = try NIOSSLCertificate.fromPEMBytes(Array(trustedRootsPEM.utf8))
            configuration.additionalTrustRoots = [.certificates(roots)]
        }
        self.group = group
        tls = try NIOSSLContext(configuration: configuration)
        self.timeout = timeout
    }

    /// `plainHTTPAllowed`: an `http://` URL is fetched without TLS (OCSP only).
    func send(
        _ method: HTTPMethod, _ url: String, body: [UInt8]? = nil, contentType: String? = nil,
        accept: String? = nil, plainHTTPAllowed: Bool = false
    ) async throws(ACMEError) -> ACMEHTTPResponse {
        guard let parsed = URL(string: url), let host = parsed.host,
            parsed.scheme == "https" || (plainHTTPAllowed && parsed.scheme == "http")
        else {
            throw .malformed(plainHTTPAllowed ? "not an http or https URL" : "not an https URL", url: url)
        }
        let secure = parsed.scheme == "https"
        let port = parsed.port ?? (secure ? 443 : 80)
        var target = parsed.path.isEmpty ? "/" : parsed.path
        if let query = parsed.query { target += "?\(query)" }
        var headers = HTTPHeaders()
        headers.add(name: "host", value: parsed.port.map { "\(host):\($0)" } ?? host)
        headers.add(name: "user-agent", value: "velocity-acme")
        headers.add(name: "connection", value: "close")
        if let accept { headers.add(name: "accept", value: accept) }
        if let contentType { headers.add(name: "content-type", value: contentType) }
        if let body { headers.add(name: "content-length", value: String(body.count)) }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: target, headers: headers)
        // SNI takes names only; an IP address is checked against the certificate's IP SANs instead.
        let serverName = Self.isIPAddress(host) ? nil : host
        do {
            return try await exchange(
                host: host, port: port, tls: secure ? tls : nil, serverName: serverName, head: head, body: body)
        } catch let error as ACMEError {
            throw error
        } catch {
            throw .transport("\(error)", url: url)
        }
    }

    private func exchange(
        host: String, port: Int, tls: NIOSSLContext?, serverName: String?, head: HTTPRequestHead, body: [UInt8]?
    ) async throws -> ACMEHTTPResponse {
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: ACMEHTTPResponse.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(
                                NIOSSLClientHandler(context: tls, serverHostname: serverName))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            promise.fail(error)  // a promise must be completed, even when no channel took it
            throw error
        }
        let deadline = eventLoop.scheduleTask(in: timeout) {
            promise.fail(ChannelError.connectTimeout(self.timeout))
            channel.close(promise: nil)
        }
        promise.futureResult.whenComplete { _ in deadline.cancel() }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { promise.fail($0) }
        return try await promise.futureResult.get()
    }

    private static func isIPAddress(_ host: String) -> Bool {
        host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
    }
}

/// Gathers one response and completes the promise with it; a connection that ends first fails it.
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<ACMEHTTPResponse>
    private var response: ACMEHTTPResponse?

    init(promise: EventLoopPromise<ACMEHTTPResponse>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            response = ACMEHTTPResponse(status: Int(head.status.code), headers: head.headers, body: [])
        case .body(let buffer):
            guard response != nil else { return }
            guard response!.body.count + buffer.readableBytes <= ACMEHTTPClient.maximumBodyBytes else {
                promise.fail(ACMEHTTPClientError.bodyTooLarge)
                context.close(promise: nil)
                return
            }
            response!.body += buffer.readableBytesView
        case .end:
            if let response { promise.succeed(response) }
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ACMEHTTPClientError.closedEarly)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}

enum ACMEHTTPClientError: Error, CustomStringConvertible {
    case bodyTooLarge
    case closedEarly

    var description: String {
        switch self {
        case .bodyTooLarge: "the response body is larger than \(ACMEHTTPClient.maximumBodyBytes) bytes"
        case .closedEarly: "the connection closed before the response was complete"
        }
    }
}

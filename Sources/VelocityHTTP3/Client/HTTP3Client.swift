import NIOCore
import NIOHTTP1
import NIOPosix
import VelocityQUIC
import VelocityTLS

/// One HTTP/3 connection with async/await requests, on a UDP socket of its own. Response bodies stream to a
/// callback as they arrive; everything else hops to the connection's event loop.
public final class HTTP3Client: Sendable {
    /// A response once it has ended.
    public struct Response: Sendable {
        public var head: HTTPResponseHead
        public var trailers: HTTPHeaders?
        /// Body bytes received.
        public var bodyLength: Int
    }

    /// What the handshake negotiated: version, cipher, key-exchange group, ALPN, server name.
    public let tls: TLSSessionInfo
    private let socket: QUICClient
    private let application: NIOLoopBound<HTTP3ClientConnection>

    private init(socket: QUICClient, application: NIOLoopBound<HTTP3ClientConnection>, tls: TLSSessionInfo) {
        self.socket = socket
        self.application = application
        self.tls = tls
    }

    /// Connects to `host`:`port`; `tls` must offer `h3`. `serverName` is the name the certificate must carry
    /// (the host by default).
    public static func connect(
        host: String, port: Int, serverName: String? = nil, tls: TLSClientContext,
        settings: ConnectionSettings = .init(), group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> HTTP3Client {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let socket = try await QUICClient.bind(group: group, for: address)
        let eventLoop = socket.eventLoop
        let configuration = QUICClientConfiguration(tls: tls, settings: settings)
        do {
            return try await eventLoop.flatSubmit {
                HTTP3ClientConnection.connect(
                    using: socket.endpoint, to: address, serverName: serverName ?? host, configuration: configuration
                ).assumeIsolated().flatMapThrowing { application in
                    guard let connection = application.connection else { throw ChannelError.ioOnClosedChannel }
                    return HTTP3Client(
                        socket: socket, application: NIOLoopBound(application, eventLoop: eventLoop),
                        tls: connection.sessionInfo)
                }.nonisolated()
            }.get()
        } catch {
            try? await socket.close()
            throw error
        }
    }

    /// Sends a request and waits for its response to end; `onHead` and `onBody` see the response as it
    /// streams in, on the event loop. Throws ``HTTP3StreamReset``, ``HTTP3ClientError`` or
    /// ``QUICCloseReason`` when the request fails.
    public func request(
        _ head: HTTPRequestHead, body: ByteBuffer? = nil, trailers: HTTPHeaders? = nil,
        onHead: @escaping @Sendable (HTTPResponseHead) -> Void = { _ in },
        onBody: @escaping @Sendable (ByteBuffer) -> Void = { _ in }
    ) async throws -> Response {
        try await withCheckedThrowingContinuation { continuation in
            socket.eventLoop.execute { [application] in
                let handler = CollectingHandler(continuation: continuation, onHead: onHead, onBody: onBody)
                let connection = application.value
                let hasBody = body != nil || trailers != nil
                guard let id = connection.sendRequest(head, endStream: !hasBody, handler: handler) else {
                    return continuation.resume(throwing: QUICStreamError.noStreamAvailable)
                }
                guard hasBody else { return }
                if let body { connection.writeBody(body, streamID: id) }
                connection.endRequest(streamID: id, trailers: trailers)
            }
        }
    }

    /// Closes the connection (H3_NO_ERROR) and its socket.
    public func close() async throws {
        try await socket.eventLoop.submit { [application] in application.value.close() }.get()
        try await socket.close()
    }
}

/// Hands one response to an async caller.
private final class CollectingHandler: HTTP3ResponseHandler {
    private var continuation: CheckedContinuation<HTTP3Client.Response, any Error>?
    private let onHead: (HTTPResponseHead) -> Void
    private let onBody: (ByteBuffer) -> Void
    private var head: HTTPResponseHead?
    private var bodyLength = 0

    init(
        continuation: CheckedContinuation<HTTP3Client.Response, any Error>,
        onHead: @escaping (HTTPResponseHead) -> Void, onBody: @escaping (ByteBuffer) -> Void
    ) {
        self.continuation = continuation
        self.onHead = onHead
        self.onBody = onBody
    }

    func responseHead(_ head: HTTPResponseHead, streamID: UInt64) {
        self.head = head
        onHead(head)
    }

    func responseBody(_ bytes: ByteBuffer, streamID: UInt64) {
        bodyLength += bytes.readableBytes
        onBody(bytes)
    }

    func responseEnd(trailers: HTTPHeaders?, streamID: UInt64) {
        guard let head else { return }
        continuation?.resume(returning: HTTP3Client.Response(head: head, trailers: trailers, bodyLength: bodyLength))
        continuation = nil
    }

    func requestFailed(_ error: any Error, streamID: UInt64) {
        continuation?.resume(throwing: error)
        continuation = nil
    }
}

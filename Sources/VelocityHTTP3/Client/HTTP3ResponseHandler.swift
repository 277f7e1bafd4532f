import NIOCore
import NIOHTTP1

/// What one request's response delivers, on the connection's event loop, in this order: the head, body
/// pieces as they arrive, then the end; or a failure at any point.
public protocol HTTP3ResponseHandler: AnyObject {
    /// The final response head; interim (1xx) responses are not passed on.
    func responseHead(_ head: HTTPResponseHead, streamID: UInt64)
    /// The next piece of the body.
    func responseBody(_ bytes: ByteBuffer, streamID: UInt64)
    /// The response is complete, with its trailers if it had any.
    func responseEnd(trailers: HTTPHeaders?, streamID: UInt64)
    /// The request failed: the server reset the stream (``HTTP3StreamReset``), the response was malformed
    /// (``HTTP3ClientError``), or the connection closed (``QUICCloseReason``).
    func requestFailed(_ error: any Error, streamID: UInt64)
    /// The request stream takes more body again, after a write answered ``StreamWriteResult/full``.
    func requestWritable(streamID: UInt64)
}

extension HTTP3ResponseHandler {
    public func requestWritable(streamID: UInt64) {}
}

/// An HTTP/3 failure of the client: the connection or a response broke the protocol, or the server's
/// GOAWAY turned the request away before it was processed (it may be retried on a new connection).
public struct HTTP3ClientError: Error, Sendable, CustomStringConvertible {
    /// The HTTP/3 error code (RFC 9114 §8.1).
    public var code: UInt64
    public var reason: String

    init(_ error: HTTP3Error) {
        code = error.code.rawValue
        reason = error.reason
    }

    public var description: String { HTTP3Error(code: HTTP3ErrorCode(rawValue: code), reason: reason).description }

    /// Whether the server is known not to have processed the request (H3_REQUEST_REJECTED).
    public var isRetryable: Bool { code == HTTP3ErrorCode.requestRejected.rawValue }
}

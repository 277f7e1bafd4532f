import NIOCore

/// A frame as ``HTTP3FrameReader`` delivers it.
enum HTTP3Frame: Equatable, Sendable {
    /// The next part of a DATA frame's payload, never empty: one frame may arrive as many of these.
    case data(ByteBuffer)
    /// A whole HEADERS frame's payload: an encoded field section (RFC 9204 §4.5).
    case headers(ByteBuffer)
    case settings(HTTP3Settings)
    /// The stream ID (from a server) or push ID (from a client) beyond which the sender stops.
    case goaway(UInt64)
    case maxPushID(UInt64)
    case cancelPush(UInt64)
    /// A PUSH_PROMISE, reported as soon as its header is read; its payload is skipped, since this endpoint
    /// never accepts a push: a server must not receive one, and a client that sends no MAX_PUSH_ID allows
    /// none.
    case pushPromise
}

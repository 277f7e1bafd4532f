import NIOCore

/// What a sent packet carried that must be sent again if it is lost.
enum SentFrame {
    case crypto(offset: UInt64, data: ByteBuffer)
    case stream(id: UInt64, offset: UInt64, data: ByteBuffer, fin: Bool)
    case handshakeDone
    case maxData
    case maxStreamData(id: UInt64)
    case maxStreams(bidirectional: Bool)
    case resetStream(id: UInt64, errorCode: UInt64, finalSize: UInt64)
    case stopSending(id: UInt64, errorCode: UInt64)
    case newConnectionID(NewConnectionIDFrame)
    case newToken(ByteBuffer)
    case pathChallenge
    /// An ACK frame: once the peer acknowledges it, older ranges need not be sent again.
    case ack(largest: UInt64)
}

/// A packet in flight, kept until it is acknowledged or declared lost (RFC 9002 §A.1.1).
struct SentPacket {
    var number: UInt64
    var sentAt: NIODeadline
    var size: Int
    var isAckEliciting: Bool
    /// Counted against the congestion window: ack-eliciting or padded.
    var inFlight: Bool
    /// Sent with the ECT(0) codepoint.
    var ecnMarked: Bool
    var frames: [SentFrame]
}

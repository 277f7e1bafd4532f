import NIOCore

/// One QUIC frame (RFC 9000 §19, plus RFC 9221's DATAGRAM). Parsed frames hold slices of the packet they came
/// from, so a frame's data stays valid as long as it is kept, without a copy.
enum Frame: Equatable, Sendable {
    /// A run of PADDING bytes, kept as one value so that a padded Initial is not 1,000 frames.
    case padding(count: Int)
    case ping
    case ack(ACKFrame)
    case resetStream(id: UInt64, errorCode: UInt64, finalSize: UInt64)
    case stopSending(id: UInt64, errorCode: UInt64)
    case crypto(offset: UInt64, data: ByteBuffer)
    case newToken(ByteBuffer)
    case stream(StreamFrame)
    case maxData(UInt64)
    case maxStreamData(id: UInt64, maximum: UInt64)
    case maxStreams(bidirectional: Bool, maximum: UInt64)
    case dataBlocked(UInt64)
    case streamDataBlocked(id: UInt64, limit: UInt64)
    case streamsBlocked(bidirectional: Bool, limit: UInt64)
    case newConnectionID(NewConnectionIDFrame)
    case retireConnectionID(sequence: UInt64)
    /// The eight bytes of challenge data, read big-endian; only echoed, never interpreted.
    case pathChallenge(UInt64)
    case pathResponse(UInt64)
    case connectionClose(ConnectionCloseFrame)
    case handshakeDone
    case datagram(ByteBuffer)

    /// The most streams of one direction a peer can be allowed, since stream IDs are 62-bit and their low two
    /// bits give initiator and direction (RFC 9000 §4.6).
    static let maxStreamCount: UInt64 = 1 << 60
}

struct StreamFrame: Equatable, Sendable {
    static let offsetBit: UInt8 = 0x04
    static let lengthBit: UInt8 = 0x02
    static let finBit: UInt8 = 0x01

    var id: UInt64
    var offset: UInt64
    var data: ByteBuffer
    var fin: Bool
}

struct NewConnectionIDFrame: Equatable, Sendable {
    var sequence: UInt64
    var retirePriorTo: UInt64
    var connectionID: ConnectionID
    var resetToken: StatelessResetToken
}

struct ConnectionCloseFrame: Equatable, Sendable {
    /// Type 0x1d, closing for the application (its error code is the application's); otherwise 0x1c.
    var isApplication: Bool
    var errorCode: UInt64
    /// The frame that caused a transport error, 0 when none did; always 0 for application closes.
    var frameType: UInt64
    var reason: ByteBuffer

    /// A transport close without error: the server is going away.
    static let noError = ConnectionCloseFrame(isApplication: false, errorCode: TransportError.noError)

    init(isApplication: Bool, errorCode: UInt64, frameType: UInt64 = 0, reason: ByteBuffer = ByteBuffer()) {
        self.isApplication = isApplication
        self.errorCode = errorCode
        self.frameType = isApplication ? 0 : frameType
        self.reason = reason
    }

    /// The close for a transport error of ours.
    init(_ error: TransportError) {
        self.init(
            isApplication: false, errorCode: error.code, frameType: error.frameType ?? 0,
            reason: ByteBuffer(string: error.reason))
    }
}

extension Frame {
    /// The frame type this frame has on the wire (for STREAM and DATAGRAM, as ``encode(into:)`` writes it).
    var type: UInt64 {
        switch self {
        case .padding: FrameType.padding
        case .ping: FrameType.ping
        case .ack(let ack): ack.ecn == nil ? FrameType.ack : FrameType.ackECN
        case .resetStream: FrameType.resetStream
        case .stopSending: FrameType.stopSending
        case .crypto: FrameType.crypto
        case .newToken: FrameType.newToken
        case .stream(let frame): UInt64(StreamFrame.type(offset: frame.offset, fin: frame.fin))
        case .maxData: FrameType.maxData
        case .maxStreamData: FrameType.maxStreamData
        case .maxStreams(let bidirectional, _):
            bidirectional ? FrameType.maxStreamsBidirectional : FrameType.maxStreamsUnidirectional
        case .dataBlocked: FrameType.dataBlocked
        case .streamDataBlocked: FrameType.streamDataBlocked
        case .streamsBlocked(let bidirectional, _):
            bidirectional ? FrameType.streamsBlockedBidirectional : FrameType.streamsBlockedUnidirectional
        case .newConnectionID: FrameType.newConnectionID
        case .retireConnectionID: FrameType.retireConnectionID
        case .pathChallenge: FrameType.pathChallenge
        case .pathResponse: FrameType.pathResponse
        case .connectionClose(let close):
            close.isApplication ? FrameType.connectionCloseApplication : FrameType.connectionClose
        case .handshakeDone: FrameType.handshakeDone
        case .datagram: FrameType.datagramWithLength
        }
    }

    /// Whether a packet holding this frame must be acknowledged (RFC 9000 §13.2.1). PADDING is not
    /// ack-eliciting yet still counts toward bytes in flight; see ``countsInFlight``.
    /// Frames that probe a path (RFC 9000 §9.1): a packet of only these does not move the connection there.
    var isProbing: Bool {
        switch self {
        case .padding, .pathChallenge, .pathResponse, .newConnectionID: true
        default: false
        }
    }

    var isAckEliciting: Bool {
        switch self {
        case .padding, .ack, .connectionClose: false
        default: true
        }
    }

    /// Whether a packet holding this frame is in flight for congestion control: ack-eliciting or PADDING
    /// (RFC 9002 §2).
    var countsInFlight: Bool {
        switch self {
        case .ack, .connectionClose: false
        default: true
        }
    }

    /// Whether the frame may appear in a packet of `level` (RFC 9000 §12.4, Table 3). For 0-RTT this takes the
    /// stricter list of §12.5, which also leaves out RETIRE_CONNECTION_ID; a frame outside its level is a
    /// PROTOCOL_VIOLATION. Which side may send a frame (NEW_TOKEN and HANDSHAKE_DONE only from servers) is
    /// the connection's check.
    func isAllowed(in level: EncryptionLevel) -> Bool {
        switch level {
        case .oneRTT:
            return true
        case .initial, .handshake:
            switch self {
            case .padding, .ping, .ack, .crypto: return true
            case .connectionClose(let close): return !close.isApplication
            default: return false
            }
        case .zeroRTT:
            switch self {
            case .ack, .crypto, .handshakeDone, .newToken, .pathResponse, .retireConnectionID: return false
            default: return true
            }
        }
    }
}

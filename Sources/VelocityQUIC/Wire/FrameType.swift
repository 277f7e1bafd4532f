/// Frame type values (RFC 9000 §19, RFC 9221 §4). All fit in one byte, and RFC 9000 §12.4 requires the
/// shortest encoding, so a frame type never takes more than one byte on the wire.
enum FrameType {
    static let padding: UInt64 = 0x00
    static let ping: UInt64 = 0x01
    static let ack: UInt64 = 0x02
    static let ackECN: UInt64 = 0x03
    static let resetStream: UInt64 = 0x04
    static let stopSending: UInt64 = 0x05
    static let crypto: UInt64 = 0x06
    static let newToken: UInt64 = 0x07
    /// 0x08 to 0x0f: the low three bits are the OFF, LEN and FIN flags of ``StreamFrame``.
    static let stream: UInt64 = 0x08
    static let maxData: UInt64 = 0x10
    static let maxStreamData: UInt64 = 0x11
    static let maxStreamsBidirectional: UInt64 = 0x12
    static let maxStreamsUnidirectional: UInt64 = 0x13
    static let dataBlocked: UInt64 = 0x14
    static let streamDataBlocked: UInt64 = 0x15
    static let streamsBlockedBidirectional: UInt64 = 0x16
    static let streamsBlockedUnidirectional: UInt64 = 0x17
    static let newConnectionID: UInt64 = 0x18
    static let retireConnectionID: UInt64 = 0x19
    static let pathChallenge: UInt64 = 0x1A
    static let pathResponse: UInt64 = 0x1B
    /// A CONNECTION_CLOSE for a transport error, the only kind Initial and Handshake packets may carry.
    static let connectionClose: UInt64 = 0x1C
    static let connectionCloseApplication: UInt64 = 0x1D
    static let handshakeDone: UInt64 = 0x1E
    /// A DATAGRAM whose data runs to the end of the packet.
    static let datagram: UInt64 = 0x30
    static let datagramWithLength: UInt64 = 0x31
}

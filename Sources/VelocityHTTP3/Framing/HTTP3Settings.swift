import NIOCore
import VelocityQUIC

/// The settings one endpoint sends in the SETTINGS frame that opens its control stream (RFC 9114 §7.2.4).
/// A setting the frame leaves out keeps its default, which is what each field starts as.
struct HTTP3Settings: Equatable, Sendable {
    /// SETTINGS_QPACK_MAX_TABLE_CAPACITY (RFC 9204 §5): how large the sender lets the peer's encoder make
    /// the dynamic table.
    var qpackMaxTableCapacity: UInt64 = 0
    /// SETTINGS_MAX_FIELD_SECTION_SIZE: the largest field section the sender accepts; nil is unlimited.
    var maxFieldSectionSize: UInt64? = nil
    /// SETTINGS_QPACK_BLOCKED_STREAMS (RFC 9204 §5): how many streams may wait for table insertions.
    var qpackBlockedStreams: UInt64 = 0
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 9220): the sender accepts extended CONNECT.
    var enableConnectProtocol: Bool = false
    /// SETTINGS_H3_DATAGRAM (RFC 9297): the sender accepts HTTP datagrams.
    var h3Datagram: Bool = false

    private enum Identifier {
        static let qpackMaxTableCapacity: UInt64 = 0x01
        static let maxFieldSectionSize: UInt64 = 0x06
        static let qpackBlockedStreams: UInt64 = 0x07
        static let enableConnectProtocol: UInt64 = 0x08
        static let h3Datagram: UInt64 = 0x33
        /// HTTP/2's ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE and MAX_FRAME_SIZE, which have no
        /// meaning in HTTP/3 (RFC 9114 §7.2.4.1). 0x00 is reserved too but was never an HTTP/2 setting, so
        /// like any unknown identifier it is ignored.
        static let http2Only: ClosedRange<UInt64> = 0x02...0x05
    }

    /// Reads the payload of a SETTINGS frame. Unknown identifiers, the reserved 0x1f * N + 0x21 among them,
    /// are ignored, so that extensions can add settings. Errors: a payload that ends inside a pair is
    /// H3_FRAME_ERROR; a repeated identifier, an HTTP/2-only one, or a flag other than 0 or 1 is
    /// H3_SETTINGS_ERROR.
    static func parse(_ payload: ByteBuffer) throws(HTTP3Error) -> HTTP3Settings {
        var payload = payload
        var settings = HTTP3Settings()
        var seen: Set<UInt64> = []
        while payload.readableBytes > 0 {
            guard let identifier = payload.readQUICVarInt(), let value = payload.readQUICVarInt() else {
                throw HTTP3Error(code: .frameError, reason: "truncated SETTINGS frame")
            }
            guard seen.insert(identifier).inserted else {
                throw HTTP3Error(code: .settingsError, reason: "repeated setting")
            }
            switch identifier {
            case Identifier.qpackMaxTableCapacity: settings.qpackMaxTableCapacity = value
            case Identifier.maxFieldSectionSize: settings.maxFieldSectionSize = value
            case Identifier.qpackBlockedStreams: settings.qpackBlockedStreams = value
            case Identifier.enableConnectProtocol: settings.enableConnectProtocol = try flag(value)
            case Identifier.h3Datagram: settings.h3Datagram = try flag(value)
            case Identifier.http2Only: throw HTTP3Error(code: .settingsError, reason: "HTTP/2 setting")
            default: break
            }
        }
        return settings
    }

    private static func flag(_ value: UInt64) throws(HTTP3Error) -> Bool {
        guard value <= 1 else { throw HTTP3Error(code: .settingsError, reason: "setting must be 0 or 1") }
        return value == 1
    }

    /// Writes the payload of a SETTINGS frame: the settings that differ from their defaults, since the peer
    /// assumes those, and one reserved identifier with a random value, so that a peer which fails on unknown
    /// settings fails at once rather than on the day an extension appears.
    func write(into buffer: inout ByteBuffer) {
        if qpackMaxTableCapacity != 0 {
            Self.write(Identifier.qpackMaxTableCapacity, qpackMaxTableCapacity, into: &buffer)
        }
        if let maxFieldSectionSize {
            Self.write(Identifier.maxFieldSectionSize, maxFieldSectionSize, into: &buffer)
        }
        if qpackBlockedStreams != 0 {
            Self.write(Identifier.qpackBlockedStreams, qpackBlockedStreams, into: &buffer)
        }
        if enableConnectProtocol {
            Self.write(Identifier.enableConnectProtocol, 1, into: &buffer)
        }
        if h3Datagram {
            Self.write(Identifier.h3Datagram, 1, into: &buffer)
        }
        // Any N whose identifier fits a variable-length integer: peers must not learn to skip only some.
        let n = UInt64.random(in: 0...(VarInt.max - 0x21) / 0x1F)
        Self.write(0x1F * n + 0x21, UInt64.random(in: 0..<64), into: &buffer)
    }

    private static func write(_ identifier: UInt64, _ value: UInt64, into buffer: inout ByteBuffer) {
        buffer.writeQUICVarInt(identifier)
        buffer.writeQUICVarInt(value)
    }
}

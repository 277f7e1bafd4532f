import NIOCore

/// The 16-byte token that lets a peer recognise a stateless reset (RFC 9000 §10.3), stored inline.
struct StatelessResetToken: Hashable, Sendable, CustomStringConvertible {
    static let size = 16

    /// The first eight bytes, big-endian.
    var high: UInt64
    /// The last eight bytes, big-endian.
    var low: UInt64

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Nil unless `bytes` holds exactly 16 bytes.
    init?<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        guard bytes.count == Self.size else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
        }
        self.init(high: high, low: low)
    }

    var bytes: [UInt8] {
        (0..<Self.size).map { index in
            let word = index < 8 ? high : low
            return UInt8(truncatingIfNeeded: word >> (UInt64(7 - index % 8) * 8))
        }
    }

    /// Compares without branching on the bytes, so that checking a datagram's tail against known tokens leaks
    /// nothing about them through timing (RFC 9000 §10.3.1).
    static func == (lhs: StatelessResetToken, rhs: StatelessResetToken) -> Bool {
        (lhs.high ^ rhs.high) | (lhs.low ^ rhs.low) == 0
    }

    var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

extension ByteBuffer {
    /// Reads 16 bytes as a token; nil (reading nothing) when fewer remain.
    @inline(__always)
    mutating func readStatelessResetToken() -> StatelessResetToken? {
        guard readableBytes >= StatelessResetToken.size,
            let high = readInteger(as: UInt64.self),
            let low = readInteger(as: UInt64.self)
        else { return nil }
        return StatelessResetToken(high: high, low: low)
    }

    mutating func writeStatelessResetToken(_ token: StatelessResetToken) {
        writeInteger(token.high)
        writeInteger(token.low)
    }
}

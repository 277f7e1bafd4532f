/// Packet numbers are sent truncated to 1–4 bytes and recovered against the largest one received
/// (RFC 9000 §17.1 and Appendix A).
enum PacketNumber {
    /// The full packet number closest to the one after `largest` whose low `length` bytes are `truncated`.
    static func decode(truncated: UInt64, length: Int, largest: UInt64?) -> UInt64 {
        let expected = largest.map { $0 + 1 } ?? 0
        let window: UInt64 = 1 << (UInt64(length) * 8)
        let halfWindow = window / 2
        let candidate = (expected & ~(window - 1)) | truncated
        if candidate + halfWindow <= expected && candidate < (1 << 62) - window {
            return candidate + window
        }
        if candidate > expected + halfWindow && candidate >= window {
            return candidate - window
        }
        return candidate
    }

    /// How many bytes to send `number` in, so that the peer can recover it from the largest it acknowledged.
    static func length(for number: UInt64, largestAcked: UInt64?) -> Int {
        let unacknowledged = number - (largestAcked ?? 0) + (largestAcked == nil ? 1 : 0)
        switch unacknowledged {
        case 0..<0x80: return 1
        case 0x80..<0x8000: return 2
        case 0x8000..<0x80_0000: return 3
        default: return 4
        }
    }
}

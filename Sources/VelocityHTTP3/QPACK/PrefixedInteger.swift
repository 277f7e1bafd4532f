import NIOCore

/// Prefixed integers (RFC 7541 §5.1, RFC 9204 §4.1.1): the value fills the low N bits of a first byte whose
/// higher bits are flags; from 2^N-1 on it continues in 7-bit groups, least significant first.
enum PrefixedInteger {
    /// QPACK must read 62-bit integers; anything larger is refused rather than wrapped.
    static let max: UInt64 = (1 << 62) - 1
}

extension ByteBuffer {
    /// Reads an integer with a `prefix`-bit prefix (1 to 8) at the reader index, ignoring the flag bits
    /// above it. Returns nil, reading nothing, when the buffer ends inside it. Values above 2^62-1, and
    /// encodings padded with zero groups past that width, are a QPACK_DECOMPRESSION_FAILED.
    mutating func readQPACKInteger(prefix: Int) throws(QPACKError) -> UInt64? {
        guard let first = getInteger(at: readerIndex, as: UInt8.self) else { return nil }
        let mask = UInt8(truncatingIfNeeded: (1 << prefix) - 1)
        var value = UInt64(first & mask)
        var index = readerIndex + 1
        if value == UInt64(mask) {
            var shift: UInt64 = 0
            while true {
                guard let byte = getInteger(at: index, as: UInt8.self) else { return nil }
                index += 1
                // Nine groups carry 63 bits, enough for any 62-bit value; a tenth can only be padding.
                guard shift <= 56 else { throw .decompressionFailed("integer encoding too long") }
                let group = UInt64(byte & 0x7F)
                guard group <= (PrefixedInteger.max - value) >> shift else {
                    throw .decompressionFailed("integer above 2^62-1")
                }
                value += group << shift
                if byte & 0x80 == 0 { break }
                shift += 7
            }
        }
        moveReaderIndex(to: index)
        return value
    }

    /// Writes `value` with a `prefix`-bit prefix (1 to 8); `flags` fills the bits above the prefix.
    mutating func writeQPACKInteger(_ value: UInt64, prefix: Int, flags: UInt8 = 0) {
        let mask = UInt64((1 << prefix) - 1)
        if value < mask {
            writeInteger(flags | UInt8(truncatingIfNeeded: value))
            return
        }
        writeInteger(flags | UInt8(truncatingIfNeeded: mask))
        var rest = value - mask
        while rest >= 0x80 {
            writeInteger(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        writeInteger(UInt8(truncatingIfNeeded: rest))
    }
}

import NIOCore

/// QUIC's variable-length integer (RFC 9000 §16): two length bits, then 6, 14, 30 or 62 bits of value.
public enum VarInt {
    public static let max: UInt64 = (1 << 62) - 1

    /// How many bytes the shortest encoding of `value` takes.
    @inline(__always)
    public static func size(_ value: UInt64) -> Int {
        switch value {
        case 0..<64: 1
        case 64..<16384: 2
        case 16384..<1_073_741_824: 4
        default: 8
        }
    }
}

extension ByteBuffer {
    /// Reads one variable-length integer, or nil (reading nothing) when the buffer ends inside it.
    @inline(__always)
    public mutating func readQUICVarInt() -> UInt64? {
        guard let first = getInteger(at: readerIndex, as: UInt8.self) else { return nil }
        switch first >> 6 {
        case 0:
            moveReaderIndex(forwardBy: 1)
            return UInt64(first)
        case 1:
            return readInteger(as: UInt16.self).map { UInt64($0 & 0x3FFF) }
        case 2:
            return readInteger(as: UInt32.self).map { UInt64($0 & 0x3FFF_FFFF) }
        default:
            return readInteger(as: UInt64.self).map { $0 & 0x3FFF_FFFF_FFFF_FFFF }
        }
    }

    /// Writes `value` (at most ``VarInt/max``) in its shortest encoding.
    @inline(__always)
    @discardableResult
    public mutating func writeQUICVarInt(_ value: UInt64) -> Int {
        writeQUICVarInt(value, length: VarInt.size(value))
    }

    /// Writes `value` in exactly `length` bytes (1, 2, 4 or 8), for fields filled in after the fact.
    @inline(__always)
    @discardableResult
    public mutating func writeQUICVarInt(_ value: UInt64, length: Int) -> Int {
        switch length {
        case 1: writeInteger(UInt8(truncatingIfNeeded: value))
        case 2: writeInteger(UInt16(truncatingIfNeeded: value) | 0x4000)
        case 4: writeInteger(UInt32(truncatingIfNeeded: value) | 0x8000_0000)
        default: writeInteger(value | 0xC000_0000_0000_0000)
        }
    }

    /// Overwrites `length` bytes at `index` with `value`, for a length field reserved before its contents.
    @inline(__always)
    public mutating func setQUICVarInt(_ value: UInt64, at index: Int, length: Int) {
        switch length {
        case 1: setInteger(UInt8(truncatingIfNeeded: value), at: index)
        case 2: setInteger(UInt16(truncatingIfNeeded: value) | 0x4000, at: index)
        case 4: setInteger(UInt32(truncatingIfNeeded: value) | 0x8000_0000, at: index)
        default: setInteger(value | 0xC000_0000_0000_0000, at: index)
        }
    }
}

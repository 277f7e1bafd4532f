import NIOCore

/// The two integers that open every encoded field section (RFC 9204 §4.5.1): the Required Insert Count,
/// the table state the section needs, and the Base its dynamic references are relative to.
struct FieldSectionPrefix: Equatable, Sendable {
    var requiredInsertCount: UInt64
    var base: UInt64

    /// The most entries a table of `maxTableCapacity` bytes can hold, which sets the modulus of the
    /// Required Insert Count: the decoder's advertised maximum, not the capacity in use.
    static func maxEntries(maxTableCapacity: Int) -> UInt64 {
        UInt64(maxTableCapacity / DynamicTable.entryOverhead)
    }

    /// §4.5.1.1: the count is sent modulo twice the table's entry limit, so that it stays short on a
    /// long-lived connection. `maxEntries` must not be 0 when the count isn't.
    static func encode(requiredInsertCount: UInt64, maxEntries: UInt64) -> UInt64 {
        requiredInsertCount == 0 ? 0 : requiredInsertCount % (2 * maxEntries) + 1
    }

    /// §4.5.1.1: recovers the count from its encoding, given how many insertions the decoder has seen; an
    /// encoding no conforming encoder produces is a QPACK_DECOMPRESSION_FAILED.
    static func decode(
        encodedInsertCount: UInt64,
        maxEntries: UInt64,
        totalInserts: UInt64
    ) throws(QPACKError) -> UInt64 {
        guard encodedInsertCount != 0 else { return 0 }
        let fullRange = 2 * maxEntries
        guard encodedInsertCount <= fullRange else {
            throw .decompressionFailed("Required Insert Count beyond the table's range")
        }
        let maxValue = totalInserts + maxEntries
        let maxWrapped = maxValue / fullRange * fullRange
        var count = maxWrapped + encodedInsertCount - 1
        if count > maxValue {
            guard count > fullRange else { throw .decompressionFailed("invalid Required Insert Count") }
            count -= fullRange
        }
        guard count != 0 else { throw .decompressionFailed("invalid Required Insert Count") }
        return count
    }

    /// Reads the prefix; a missing or invalid one is a QPACK_DECOMPRESSION_FAILED.
    static func parse(
        from buffer: inout ByteBuffer,
        maxEntries: UInt64,
        totalInserts: UInt64
    ) throws(QPACKError) -> FieldSectionPrefix {
        guard let encoded = try buffer.readQPACKInteger(prefix: 8),
            let signByte = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let delta = try buffer.readQPACKInteger(prefix: 7)
        else { throw .decompressionFailed("truncated field section prefix") }
        let count = try decode(encodedInsertCount: encoded, maxEntries: maxEntries, totalInserts: totalInserts)
        if signByte & 0x80 == 0 {
            return FieldSectionPrefix(requiredInsertCount: count, base: count + delta)
        }
        // §4.5.1.2: a negative Base is invalid.
        guard delta < count else { throw .decompressionFailed("negative Base") }
        return FieldSectionPrefix(requiredInsertCount: count, base: count - delta - 1)
    }

    /// Writes the prefix; with no dynamic references the Base is irrelevant and goes out as 0.
    func write(to buffer: inout ByteBuffer, maxEntries: UInt64) {
        guard requiredInsertCount > 0 else {
            buffer.writeInteger(UInt16(0))
            return
        }
        let encoded = Self.encode(requiredInsertCount: requiredInsertCount, maxEntries: maxEntries)
        buffer.writeQPACKInteger(encoded, prefix: 8)
        if base >= requiredInsertCount {
            buffer.writeQPACKInteger(base - requiredInsertCount, prefix: 7)
        } else {
            buffer.writeQPACKInteger(requiredInsertCount - base - 1, prefix: 7, flags: 0x80)
        }
    }
}

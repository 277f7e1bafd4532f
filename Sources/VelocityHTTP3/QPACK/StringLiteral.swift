import NIOCore

/// A string literal as read: its text, and its length in bytes after Huffman decoding, which is what
/// table and section sizes count (RFC 9204 §3.2.1). The two differ only when invalid UTF-8 was repaired
/// in `string`, and then the peer's count is the one that keeps both tables the same size.
struct WireString: Equatable, Sendable {
    var string: String
    var length: Int
}

extension ByteBuffer {
    /// Reads a string literal with a `prefix`-bit prefix (2 to 8; RFC 9204 §4.1.2): the H bit at the top of
    /// the prefix, the length in the bits below it, then the bytes. Returns nil, reading nothing, when the
    /// buffer ends inside it. An encoded length above `maxEncodedLength` fails at once, so that a stream
    /// never waits for the rest of a string that will be refused anyway.
    mutating func readQPACKString(prefix: Int, maxEncodedLength: Int = .max) throws(QPACKError) -> WireString? {
        let start = readerIndex
        guard let first = getInteger(at: start, as: UInt8.self),
            let length = try readQPACKInteger(prefix: prefix - 1)
        else { return nil }
        guard length <= UInt64(maxEncodedLength) else { throw .decompressionFailed("string literal too long") }
        guard length <= UInt64(readableBytes) else {
            moveReaderIndex(to: start)
            return nil
        }
        let count = Int(length)
        if first & (1 << (prefix - 1)) == 0 {
            let string = readString(length: count) ?? ""
            return WireString(string: string, length: count)
        }
        let decoded = try withUnsafeReadableBytes { bytes throws(QPACKError) in
            try Huffman.decodeString(UnsafeRawBufferPointer(rebasing: bytes.prefix(count)))
        }
        moveReaderIndex(forwardBy: count)
        return decoded
    }

    /// Writes `string` as a literal with a `prefix`-bit prefix (2 to 8) under the `flags` above it,
    /// Huffman-coded when that is shorter.
    mutating func writeQPACKString(_ string: String, prefix: Int, flags: UInt8 = 0) {
        var string = string
        string.withUTF8 { utf8 in
            let bytes = UnsafeRawBufferPointer(utf8)
            let huffmanLength = Huffman.encodedLength(of: bytes)
            if huffmanLength < bytes.count {
                writeQPACKInteger(UInt64(huffmanLength), prefix: prefix - 1, flags: flags | 1 << (prefix - 1))
                Huffman.encode(bytes, encodedLength: huffmanLength, into: &self)
            } else {
                writeQPACKInteger(UInt64(bytes.count), prefix: prefix - 1, flags: flags)
                writeBytes(bytes)
            }
        }
    }
}

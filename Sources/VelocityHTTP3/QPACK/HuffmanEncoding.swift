import NIOCore

extension Huffman {
    /// How many bytes `bytes` take once Huffman-coded, padding included: the encoder compares it with the
    /// raw length to pick the shorter form.
    static func encodedLength(of bytes: UnsafeRawBufferPointer) -> Int {
        let lengths = Self.lengths
        var bits = 0
        for byte in bytes { bits += Int(lengths[Int(byte)]) }
        return (bits + 7) / 8
    }

    /// Appends the Huffman coding of `bytes`, which must be `encodedLength` bytes long (see
    /// ``encodedLength(of:)``), with the last byte padded by the high bits of EOS, all ones.
    static func encode(_ bytes: UnsafeRawBufferPointer, encodedLength: Int, into buffer: inout ByteBuffer) {
        let codes = Self.codes
        let lengths = Self.lengths
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: encodedLength) { output in
            // Fewer than 8 bits wait in the accumulator between symbols, so a 30-bit code always fits; bits
            // shifted out of the top were written already.
            var accumulator: UInt64 = 0
            var pending = 0
            var written = 0
            for byte in bytes {
                let length = Int(lengths[Int(byte)])
                accumulator = accumulator << length | UInt64(codes[Int(byte)])
                pending += length
                while pending >= 8 {
                    pending -= 8
                    output[written] = UInt8(truncatingIfNeeded: accumulator >> pending)
                    written += 1
                }
            }
            if pending > 0 {
                output[written] = UInt8(truncatingIfNeeded: accumulator << (8 - pending)) | (0xFF as UInt8) >> pending
                written += 1
            }
            return written
        }
    }

    /// The Huffman coding of `bytes`, for tests and callers holding plain arrays.
    static func encode(_ bytes: [UInt8]) -> [UInt8] {
        var buffer = ByteBuffer()
        bytes.withUnsafeBytes { raw in encode(raw, encodedLength: encodedLength(of: raw), into: &buffer) }
        return Array(buffer.readableBytesView)
    }
}

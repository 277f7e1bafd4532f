import NIOCore

extension ByteBuffer {
    /// The bytes of an encoder or decoder stream to parse next: what an earlier piece left unfinished (`tail`,
    /// emptied here) followed by the new piece. Whatever the caller cannot parse whole goes back into `tail`.
    static func continuing(_ tail: inout ByteBuffer, with bytes: ByteBuffer) -> ByteBuffer {
        guard tail.readableBytes > 0 else { return bytes }
        var input = tail
        input.writeImmutableBuffer(bytes)
        tail = ByteBuffer()
        return input
    }
}

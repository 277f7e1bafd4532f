import NIOCore

/// An instruction on the decoder stream (RFC 9204 §4.4), which tells the peer's encoder what our decoder
/// has processed, so that it knows which entries it may reference and evict.
enum DecoderInstruction: Equatable, Sendable {
    /// A field section with dynamic references on this stream was decoded.
    case sectionAcknowledgment(streamID: UInt64)
    /// The stream was reset or abandoned: its references are no longer outstanding.
    case streamCancellation(streamID: UInt64)
    /// This many more insertions were received.
    case insertCountIncrement(UInt64)

    /// Reads one instruction, or returns nil, reading nothing, when `buffer` ends inside it. Errors are
    /// QPACK_DECODER_STREAM_ERROR.
    static func parse(from buffer: inout ByteBuffer) throws(QPACKError) -> DecoderInstruction? {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        do throws(QPACKError) {
            if first & 0x80 != 0 {
                return try buffer.readQPACKInteger(prefix: 7).map { .sectionAcknowledgment(streamID: $0) }
            } else if first & 0x40 != 0 {
                return try buffer.readQPACKInteger(prefix: 6).map { .streamCancellation(streamID: $0) }
            } else {
                return try buffer.readQPACKInteger(prefix: 6).map { .insertCountIncrement($0) }
            }
        } catch {
            throw error.reported(as: QPACKError.decoderStreamError)
        }
    }

    func write(to buffer: inout ByteBuffer) {
        switch self {
        case .sectionAcknowledgment(let streamID):
            buffer.writeQPACKInteger(streamID, prefix: 7, flags: 0x80)
        case .streamCancellation(let streamID):
            buffer.writeQPACKInteger(streamID, prefix: 6, flags: 0x40)
        case .insertCountIncrement(let increment):
            buffer.writeQPACKInteger(increment, prefix: 6)
        }
    }
}

import NIOCore

/// An instruction on the encoder stream (RFC 9204 §4.3), which carries table changes from the peer's
/// encoder to our decoder, unframed.
enum EncoderInstruction: Equatable, Sendable {
    case setDynamicTableCapacity(UInt64)
    /// A new entry named after a static entry or, by relative index, a dynamic one.
    case insertWithNameReference(isStatic: Bool, nameIndex: UInt64, value: WireString)
    case insertWithLiteralName(name: WireString, value: WireString)
    /// A new entry copying an existing one, given by relative index.
    case duplicate(relativeIndex: UInt64)

    /// Reads one instruction, or returns nil, reading nothing, when `buffer` ends inside it: the stream
    /// delivers instructions in arbitrary pieces. A string whose encoded length is above
    /// `maxStringLength` fails at once, so that no more than one table entry's worth is ever buffered.
    /// Errors are QPACK_ENCODER_STREAM_ERROR.
    static func parse(from buffer: inout ByteBuffer, maxStringLength: Int) throws(QPACKError) -> EncoderInstruction? {
        do throws(QPACKError) {
            var cursor = buffer
            guard let first = cursor.getInteger(at: cursor.readerIndex, as: UInt8.self) else { return nil }
            let instruction: EncoderInstruction
            if first & 0x80 != 0 {
                guard let index = try cursor.readQPACKInteger(prefix: 6),
                    let value = try cursor.readQPACKString(prefix: 8, maxEncodedLength: maxStringLength)
                else { return nil }
                instruction = .insertWithNameReference(isStatic: first & 0x40 != 0, nameIndex: index, value: value)
            } else if first & 0x40 != 0 {
                guard let name = try cursor.readQPACKString(prefix: 6, maxEncodedLength: maxStringLength),
                    let value = try cursor.readQPACKString(prefix: 8, maxEncodedLength: maxStringLength)
                else { return nil }
                instruction = .insertWithLiteralName(name: name, value: value)
            } else if first & 0x20 != 0 {
                guard let capacity = try cursor.readQPACKInteger(prefix: 5) else { return nil }
                instruction = .setDynamicTableCapacity(capacity)
            } else {
                guard let index = try cursor.readQPACKInteger(prefix: 5) else { return nil }
                instruction = .duplicate(relativeIndex: index)
            }
            buffer = cursor
            return instruction
        } catch {
            throw error.reported(as: QPACKError.encoderStreamError)
        }
    }

    func write(to buffer: inout ByteBuffer) {
        switch self {
        case .setDynamicTableCapacity(let capacity):
            buffer.writeQPACKInteger(capacity, prefix: 5, flags: 0x20)
        case .insertWithNameReference(let isStatic, let nameIndex, let value):
            buffer.writeQPACKInteger(nameIndex, prefix: 6, flags: isStatic ? 0xC0 : 0x80)
            buffer.writeQPACKString(value.string, prefix: 8)
        case .insertWithLiteralName(let name, let value):
            buffer.writeQPACKString(name.string, prefix: 6, flags: 0x40)
            buffer.writeQPACKString(value.string, prefix: 8)
        case .duplicate(let relativeIndex):
            buffer.writeQPACKInteger(relativeIndex, prefix: 5)
        }
    }
}

import NIOCore

/// The decoding half of QPACK for one HTTP/3 connection (RFC 9204 §2.2): it applies the peer's encoder
/// stream to its copy of the dynamic table, decodes the field sections of HEADERS frames, and queues the
/// decoder-stream instructions that keep the peer's encoder in step. One event loop owns it.
struct QPACKDecoder {
    /// What a decoded field section holds, or that it must wait for table entries still in flight.
    enum Outcome: Equatable, Sendable {
        case fields([QPACKField])
        /// The section needs insertions not received yet. The caller keeps its bytes and decodes them again
        /// when ``processEncoderStream(_:)`` names the stream.
        case blocked
    }

    /// SETTINGS_QPACK_MAX_TABLE_CAPACITY as we advertise it: the most the peer may set the table to.
    let maxTableCapacity: Int
    /// SETTINGS_QPACK_BLOCKED_STREAMS as we advertise it.
    let maxBlockedStreams: Int
    /// SETTINGS_MAX_FIELD_SECTION_SIZE as we advertise it (unlimited by default, as in HTTP/3), counted as
    /// name and value lengths plus 32 per field.
    let maxFieldSectionSize: Int

    private(set) var table = DynamicTable()
    /// Insertions the peer's encoder knows we have: acknowledged sections and increments sent so far.
    private(set) var knownReceivedCount: UInt64 = 0
    /// Streams waiting for insertions, with the insert count each needs.
    private(set) var blockedStreams: [UInt64: UInt64] = [:]
    /// The start of an instruction that the encoder stream has not delivered whole yet.
    private var encoderStreamTail = ByteBuffer()
    private var pendingDecoderStream = ByteBuffer()

    init(maxTableCapacity: Int, maxBlockedStreams: Int, maxFieldSectionSize: Int = .max) {
        self.maxTableCapacity = max(0, maxTableCapacity)
        self.maxBlockedStreams = max(0, maxBlockedStreams)
        self.maxFieldSectionSize = max(0, maxFieldSectionSize)
    }

    private var maxEntries: UInt64 { FieldSectionPrefix.maxEntries(maxTableCapacity: maxTableCapacity) }

    // MARK: Encoder stream

    /// Applies the next piece of the peer's encoder stream, in whatever pieces it arrives; an instruction
    /// cut short is kept until the rest comes. Returns the blocked streams that can now be decoded, in
    /// ascending order: they no longer count as blocked. Errors are QPACK_ENCODER_STREAM_ERROR.
    @discardableResult
    mutating func processEncoderStream(_ bytes: ByteBuffer) throws(QPACKError) -> [UInt64] {
        var input = ByteBuffer.continuing(&encoderStreamTail, with: bytes)
        while let instruction = try EncoderInstruction.parse(from: &input, maxStringLength: maxStringLength) {
            try apply(instruction)
        }
        if input.readableBytes > 0 { encoderStreamTail = input }

        let ready = blockedStreams.filter { $0.value <= table.insertCount }.keys.sorted()
        for stream in ready { blockedStreams[stream] = nil }
        return ready
    }

    /// The longest encoded string an insertion could carry and still fit the table: raw, the capacity;
    /// Huffman-coded, since no code is longer than 30 bits, about four times that.
    private var maxStringLength: Int { table.capacity * 4 + 4 }

    private mutating func apply(_ instruction: EncoderInstruction) throws(QPACKError) {
        switch instruction {
        case .setDynamicTableCapacity(let capacity):
            guard capacity <= UInt64(maxTableCapacity) else {
                throw .encoderStream("table capacity above SETTINGS_QPACK_MAX_TABLE_CAPACITY")
            }
            table.setCapacity(Int(capacity))
        case .insertWithNameReference(let isStatic, let nameIndex, let value):
            let name: WireString
            if isStatic {
                guard let entry = StaticTable.entry(at: nameIndex) else {
                    throw .encoderStream("static table index out of range")
                }
                name = WireString(string: entry.name, length: entry.name.utf8.count)
            } else {
                name = try entry(relativeIndex: nameIndex).wireName
            }
            try insert(DynamicTable.Entry(name: name, value: value))
        case .insertWithLiteralName(let name, let value):
            try insert(DynamicTable.Entry(name: name, value: value))
        case .duplicate(let relativeIndex):
            try insert(entry(relativeIndex: relativeIndex))
        }
    }

    /// An entry by its index relative to the newest (§3.2.5), as encoder instructions give it.
    private func entry(relativeIndex: UInt64) throws(QPACKError) -> DynamicTable.Entry {
        guard relativeIndex < table.insertCount,
            let entry = table[absolute: table.insertCount - 1 - relativeIndex]
        else { throw .encoderStream("reference to a missing dynamic table entry") }
        return entry
    }

    /// Inserts after evicting what it must; the name and value were copied out first, so an entry may
    /// name one that its own insertion evicts (§3.2.2).
    private mutating func insert(_ entry: DynamicTable.Entry) throws(QPACKError) {
        guard table.fits(size: entry.size) else { throw .encoderStream("entry larger than the table capacity") }
        table.insert(entry)
    }

    // MARK: Field sections

    /// Decodes the field section of a HEADERS frame on `streamID`. A section that needs insertions not
    /// received yet is `.blocked`, and counts against `maxBlockedStreams` until they arrive: one more
    /// than allowed is a QPACK_DECOMPRESSION_FAILED, as is anything malformed. A section over
    /// `maxFieldSectionSize` throws ``QPACKError/fieldSectionTooLarge``, which is not a connection error;
    /// its stream is cancelled towards the encoder as the caller abandons it.
    mutating func decodeFieldSection(_ section: ByteBuffer, streamID: UInt64) throws(QPACKError) -> Outcome {
        var buffer = section
        let prefix = try FieldSectionPrefix.parse(
            from: &buffer,
            maxEntries: maxEntries,
            totalInserts: table.insertCount
        )
        if prefix.requiredInsertCount > table.insertCount {
            if blockedStreams[streamID] == nil, blockedStreams.count >= maxBlockedStreams {
                throw .decompressionFailed("more blocked streams than SETTINGS_QPACK_BLOCKED_STREAMS")
            }
            blockedStreams[streamID] = prefix.requiredInsertCount
            return .blocked
        }
        blockedStreams[streamID] = nil

        let fields: [QPACKField]
        do throws(QPACKError) {
            fields = try decodeFieldLines(&buffer, prefix: prefix)
        } catch  where error.code == QPACKError.fieldSectionTooLarge && prefix.requiredInsertCount > 0 {
            DecoderInstruction.streamCancellation(streamID: streamID).write(to: &pendingDecoderStream)
            throw error
        }
        if prefix.requiredInsertCount > 0 {
            DecoderInstruction.sectionAcknowledgment(streamID: streamID).write(to: &pendingDecoderStream)
            knownReceivedCount = max(knownReceivedCount, prefix.requiredInsertCount)
        }
        return .fields(fields)
    }

    private func decodeFieldLines(
        _ buffer: inout ByteBuffer,
        prefix: FieldSectionPrefix
    ) throws(QPACKError) -> [QPACKField] {
        var references = ReferenceCheck(prefix: prefix)
        var fields: [QPACKField] = []
        var sectionSize = 0
        while let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) {
            let field: QPACKField
            if first & 0x80 != 0 {
                // Indexed field line: 1 T index(6+).
                let index = try Self.integer(&buffer, prefix: 6)
                if first & 0x40 != 0 {
                    field = try Self.staticField(index)
                } else {
                    let entry = try references.relative(index, in: table)
                    field = QPACKField(name: entry.name, value: entry.value)
                }
            } else if first & 0x40 != 0 {
                // Literal field line with name reference: 0 1 N T index(4+), value.
                let index = try Self.integer(&buffer, prefix: 4)
                let name =
                    first & 0x10 != 0
                    ? try Self.staticField(index).name : try references.relative(index, in: table).name
                let value = try Self.string(&buffer, prefix: 8)
                field = QPACKField(name: name, value: value, neverIndex: first & 0x20 != 0)
            } else if first & 0x20 != 0 {
                // Literal field line with literal name: 0 0 1 N H length(3+), name, value.
                let name = try Self.string(&buffer, prefix: 4)
                let value = try Self.string(&buffer, prefix: 8)
                field = QPACKField(name: name, value: value, neverIndex: first & 0x10 != 0)
            } else if first & 0x10 != 0 {
                // Indexed field line with post-base index: 0 0 0 1 index(4+).
                let entry = try references.postBase(try Self.integer(&buffer, prefix: 4), in: table)
                field = QPACKField(name: entry.name, value: entry.value)
            } else {
                // Literal field line with post-base name reference: 0 0 0 0 N index(3+), value.
                let name = try references.postBase(try Self.integer(&buffer, prefix: 3), in: table).name
                let value = try Self.string(&buffer, prefix: 8)
                field = QPACKField(name: name, value: value, neverIndex: first & 0x08 != 0)
            }
            sectionSize += field.size
            guard sectionSize <= maxFieldSectionSize else {
                throw .tooLarge("field section above SETTINGS_MAX_FIELD_SECTION_SIZE")
            }
            fields.append(field)
        }
        try references.checkRequiredInsertCount()
        return fields
    }

    private static func integer(_ buffer: inout ByteBuffer, prefix: Int) throws(QPACKError) -> UInt64 {
        guard let value = try buffer.readQPACKInteger(prefix: prefix) else {
            throw .decompressionFailed("truncated field line")
        }
        return value
    }

    private static func string(_ buffer: inout ByteBuffer, prefix: Int) throws(QPACKError) -> String {
        guard let value = try buffer.readQPACKString(prefix: prefix) else {
            throw .decompressionFailed("truncated field line")
        }
        return value.string
    }

    private static func staticField(_ index: UInt64) throws(QPACKError) -> QPACKField {
        guard let entry = StaticTable.entry(at: index) else {
            throw .decompressionFailed("static table index out of range")
        }
        return QPACKField(name: entry.name, value: entry.value)
    }

    /// Resolves a section's dynamic references against its Base (§3.2.5, §3.2.6) and checks them: each must
    /// be below the Required Insert Count and not evicted (§2.2.3), and the largest must be exactly one
    /// below it (§2.1.2), which a conforming encoder always sends.
    private struct ReferenceCheck {
        let prefix: FieldSectionPrefix
        var largest: UInt64?

        mutating func relative(_ index: UInt64, in table: DynamicTable) throws(QPACKError) -> DynamicTable.Entry {
            guard index < prefix.base else { throw .decompressionFailed("relative index before the table") }
            return try absolute(prefix.base - 1 - index, in: table)
        }

        mutating func postBase(_ index: UInt64, in table: DynamicTable) throws(QPACKError) -> DynamicTable.Entry {
            guard prefix.base < prefix.requiredInsertCount, index < prefix.requiredInsertCount - prefix.base else {
                throw .decompressionFailed("post-base index beyond the Required Insert Count")
            }
            return try absolute(prefix.base + index, in: table)
        }

        private mutating func absolute(_ index: UInt64, in table: DynamicTable) throws(QPACKError) -> DynamicTable.Entry
        {
            guard index < prefix.requiredInsertCount else {
                throw .decompressionFailed("reference beyond the Required Insert Count")
            }
            guard let entry = table[absolute: index] else {
                throw .decompressionFailed("reference to an evicted entry")
            }
            largest = max(largest ?? 0, index)
            return entry
        }

        func checkRequiredInsertCount() throws(QPACKError) {
            if prefix.requiredInsertCount > 0, largest.map({ $0 + 1 }) != prefix.requiredInsertCount {
                throw .decompressionFailed("Required Insert Count larger than the references need")
            }
        }
    }

    // MARK: Decoder stream

    /// Abandons a stream whose field section won't be decoded (reset, or reading stopped): it no longer
    /// counts as blocked, and the encoder learns its references are gone (§2.2.2.2). With no dynamic
    /// table there is nothing to tell.
    mutating func cancelStream(_ streamID: UInt64) {
        blockedStreams[streamID] = nil
        if maxTableCapacity > 0 {
            DecoderInstruction.streamCancellation(streamID: streamID).write(to: &pendingDecoderStream)
        }
    }

    /// The decoder-stream bytes to send now: acknowledgments and cancellations in the order they happened,
    /// then one Insert Count Increment for insertions no acknowledgment covered. Holding the increment
    /// until the caller flushes lets one instruction cover many insertions, or none be needed (§2.2.2.3).
    mutating func takeDecoderStreamBytes() -> ByteBuffer {
        if table.insertCount > knownReceivedCount {
            DecoderInstruction.insertCountIncrement(table.insertCount - knownReceivedCount)
                .write(to: &pendingDecoderStream)
            knownReceivedCount = table.insertCount
        }
        defer { pendingDecoderStream = ByteBuffer() }
        return pendingDecoderStream
    }
}

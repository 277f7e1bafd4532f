import NIOCore

/// The encoding half of QPACK for one HTTP/3 connection (RFC 9204 §2.1): it encodes field sections for
/// HEADERS frames, with the static table, Huffman coding where shorter and, once the peer's SETTINGS allow
/// it, a dynamic table for fields that repeat. Table insertions queue on the encoder stream; the peer's
/// decoder stream tells it what was received. One event loop owns it.
///
/// The policy is simple: a field is inserted the second time it is seen, if it fits without evicting
/// anything still needed; entries are referenced once acknowledged, or earlier while the peer's
/// SETTINGS_QPACK_BLOCKED_STREAMS still has room for the stream. Secrets never enter the table.
struct QPACKEncoder {
    /// The most table we use whatever the peer allows: every entry costs memory on both sides.
    let preferredTableCapacity: Int
    /// The peer's SETTINGS_QPACK_MAX_TABLE_CAPACITY: 0, so no dynamic table, until its SETTINGS arrive.
    private(set) var peerMaxTableCapacity = 0
    /// The peer's SETTINGS_QPACK_BLOCKED_STREAMS.
    private(set) var peerMaxBlockedStreams = 0
    private var settingsApplied = false

    private(set) var table = DynamicTable()
    /// Insertions the peer has acknowledged receiving (§2.1.4); entries below it never block a stream.
    private(set) var knownReceivedCount: UInt64 = 0
    /// Per stream, oldest first, the sections with dynamic references not yet acknowledged.
    private var unacknowledged: [UInt64: [SentSection]] = [:]
    private var unacknowledgedCount = 0
    /// The newest live entry with each name and value, and with each name.
    private var indexByField: [FieldKey: UInt64] = [:]
    private var indexByName: [String: UInt64] = [:]
    /// Fields seen once, which are inserted if they come again. Forgotten in bulk when it grows, which
    /// only delays an insertion.
    private var seen: Set<FieldKey> = []
    private var pendingEncoderStream = ByteBuffer()
    /// The start of a decoder-stream instruction that has not arrived whole.
    private var decoderStreamTail = ByteBuffer()
    /// Field lines of the section being encoded, written before the prefix, which depends on them.
    private var lines = ByteBuffer()

    /// A field section with dynamic references, remembered until acknowledged or cancelled: its references
    /// keep entries from eviction, and until the insertions it needs are acknowledged it may block.
    struct SentSection: Equatable, Sendable {
        var requiredInsertCount: UInt64
        var smallestReference: UInt64
    }

    static let seenLimit = 512
    /// Past this many unacknowledged sections (a peer that never acknowledges) the dynamic table is left
    /// alone, which bounds what is remembered for it.
    static let unacknowledgedLimit = 1024

    init(preferredTableCapacity: Int = 4096) {
        self.preferredTableCapacity = max(0, preferredTableCapacity)
    }

    /// Takes the peer's SETTINGS, once: from then on the dynamic table may be used, its capacity set on the
    /// encoder stream first. Later calls change nothing, as SETTINGS come only once.
    mutating func applyPeerSettings(maxTableCapacity: UInt64, maxBlockedStreams: UInt64) {
        guard !settingsApplied else { return }
        settingsApplied = true
        peerMaxTableCapacity = Int(clamping: maxTableCapacity)
        peerMaxBlockedStreams = Int(clamping: maxBlockedStreams)
        let capacity = min(peerMaxTableCapacity, preferredTableCapacity)
        if capacity > 0 {
            EncoderInstruction.setDynamicTableCapacity(UInt64(capacity)).write(to: &pendingEncoderStream)
            table.setCapacity(capacity)
        }
    }

    /// The encoder-stream bytes to send now, before the HEADERS frames encoded since the last call.
    mutating func takeEncoderStreamBytes() -> ByteBuffer {
        defer { pendingEncoderStream = ByteBuffer() }
        return pendingEncoderStream
    }

    // MARK: Field sections

    /// Appends the encoded field section of `fields` for a HEADERS frame on `streamID`. Insertions it made
    /// wait in ``takeEncoderStreamBytes()``, to be sent before the frame.
    mutating func encode(_ fields: some Sequence<QPACKField>, streamID: UInt64, into output: inout ByteBuffer) {
        var section = SectionState(
            base: table.insertCount,
            mayBlock: mayBlock(streamID),
            mayReference: table.capacity > 0 && unacknowledgedCount < Self.unacknowledgedLimit,
            drainingIndex: table.drainingIndex(reserve: table.capacity / 4)
        )
        lines.clear()
        for field in fields { encodeLine(field, section: &section) }

        let prefix = FieldSectionPrefix(requiredInsertCount: section.requiredInsertCount, base: section.base)
        prefix.write(to: &output, maxEntries: FieldSectionPrefix.maxEntries(maxTableCapacity: peerMaxTableCapacity))
        output.writeImmutableBuffer(lines)
        if section.requiredInsertCount > 0 {
            unacknowledged[streamID, default: []].append(
                SentSection(
                    requiredInsertCount: section.requiredInsertCount,
                    smallestReference: section.smallestReference
                )
            )
            unacknowledgedCount += 1
        }
    }

    /// What encoding one section decides as it goes.
    private struct SectionState {
        /// The insert count when the section began: references below it are relative, the rest post-base.
        let base: UInt64
        /// Whether this section may reference entries the peer has not acknowledged.
        let mayBlock: Bool
        /// False with no dynamic table, or while the peer leaves too many sections unacknowledged.
        let mayReference: Bool
        /// Entries below it are left to drain rather than referenced.
        let drainingIndex: UInt64
        var requiredInsertCount: UInt64 = 0
        var smallestReference = UInt64.max

        init(base: UInt64, mayBlock: Bool, mayReference: Bool, drainingIndex: UInt64) {
            self.base = base
            self.mayBlock = mayBlock
            self.mayReference = mayReference
            self.drainingIndex = drainingIndex
        }
    }

    /// Whether a section on `streamID` may risk blocking: the stream blocks already, or fewer streams than
    /// the peer allows do (§2.1.2).
    private func mayBlock(_ streamID: UInt64) -> Bool {
        guard peerMaxBlockedStreams > 0 else { return false }
        var blocking: Set<UInt64> = []
        for (stream, sections) in unacknowledged
        where sections.contains(where: { $0.requiredInsertCount > knownReceivedCount }) {
            blocking.insert(stream)
        }
        return blocking.contains(streamID) || blocking.count < peerMaxBlockedStreams
    }

    /// Secrets are sent as never-indexed literals (§7.1.3): those marked so, credentials, and cookies too
    /// short to withstand guessing one request at a time.
    static func isSensitive(_ field: QPACKField) -> Bool {
        if field.neverIndex { return true }
        switch field.name {
        case "authorization", "proxy-authorization", "set-cookie": return true
        case "cookie": return field.value.utf8.count < 20
        default: return false
        }
    }

    private mutating func encodeLine(_ field: QPACKField, section: inout SectionState) {
        let sensitive = Self.isSensitive(field)
        if !sensitive {
            let key = FieldKey(name: field.name, value: field.value)
            if let index = StaticTable.indexByField[key] {
                lines.writeQPACKInteger(UInt64(index), prefix: 6, flags: 0xC0)
                return
            }
            var index = indexByField[key]
            if index.map({ !mayReference($0, section: section) }) ?? true {
                index = insertIfWorthwhile(field, key: key, section: section) ?? index
            }
            if let index, mayReference(index, section: section) {
                writeIndexed(index, section: &section)
                return
            }
        }
        writeLiteral(field, neverIndex: sensitive, section: &section)
    }

    /// Whether the section may reference the entry at absolute index `index`: it is live and not draining,
    /// and acknowledged unless the section may block.
    private func mayReference(_ index: UInt64, section: SectionState) -> Bool {
        section.mayReference && index >= section.drainingIndex
            && (index < knownReceivedCount || section.mayBlock) && table[absolute: index] != nil
    }

    private func noteReference(_ index: UInt64, section: inout SectionState) {
        section.requiredInsertCount = max(section.requiredInsertCount, index + 1)
        section.smallestReference = min(section.smallestReference, index)
    }

    /// Indexed field line (§4.5.2), or with post-base index (§4.5.3) for an entry inserted by this section.
    private mutating func writeIndexed(_ index: UInt64, section: inout SectionState) {
        noteReference(index, section: &section)
        if index < section.base {
            lines.writeQPACKInteger(section.base - 1 - index, prefix: 6, flags: 0x80)
        } else {
            lines.writeQPACKInteger(index - section.base, prefix: 4, flags: 0x10)
        }
    }

    /// Literal field line (§4.5.4–§4.5.6), its name taken from the static table, else from the dynamic
    /// table, else spelled out; `neverIndex` sets the N bit.
    private mutating func writeLiteral(_ field: QPACKField, neverIndex: Bool, section: inout SectionState) {
        if let index = StaticTable.indexByName[field.name] {
            lines.writeQPACKInteger(UInt64(index), prefix: 4, flags: neverIndex ? 0x70 : 0x50)
        } else if let index = indexByName[field.name], mayReference(index, section: section) {
            noteReference(index, section: &section)
            if index < section.base {
                lines.writeQPACKInteger(section.base - 1 - index, prefix: 4, flags: neverIndex ? 0x60 : 0x40)
            } else {
                lines.writeQPACKInteger(index - section.base, prefix: 3, flags: neverIndex ? 0x08 : 0x00)
            }
        } else {
            lines.writeQPACKString(field.name, prefix: 4, flags: neverIndex ? 0x30 : 0x20)
        }
        lines.writeQPACKString(field.value, prefix: 8)
    }

    // MARK: Dynamic table

    /// Inserts `field` when it is worth it, returning its absolute index: the second time it is seen, or
    /// as a duplicate when the copy in the table is draining. Never for an entry over half the table, which
    /// would flush most of it, nor when making room would evict an entry still needed (§2.1.1).
    private mutating func insertIfWorthwhile(_ field: QPACKField, key: FieldKey, section: SectionState) -> UInt64? {
        guard section.mayReference else { return nil }
        let entry = DynamicTable.Entry(name: field.name, value: field.value)
        guard entry.size <= table.capacity / 2 else { return nil }
        let instruction: EncoderInstruction
        if let existing = indexByField[key] {
            // A copy is in flight or in use; only a draining one is worth renewing (§2.1.1.1).
            guard existing < section.drainingIndex else { return nil }
            instruction = .duplicate(relativeIndex: table.insertCount - 1 - existing)
        } else {
            guard seen.contains(key) else {
                if seen.count >= Self.seenLimit { seen.removeAll(keepingCapacity: true) }
                seen.insert(key)
                return nil
            }
            if let index = StaticTable.indexByName[field.name] {
                instruction = .insertWithNameReference(isStatic: true, nameIndex: UInt64(index), value: entry.wireValue)
            } else if let index = indexByName[field.name] {
                let relative = table.insertCount - 1 - index
                instruction = .insertWithNameReference(isStatic: false, nameIndex: relative, value: entry.wireValue)
            } else {
                instruction = .insertWithLiteralName(name: entry.wireName, value: entry.wireValue)
            }
        }
        // The instruction may name an entry that making room evicts: the decoder reads it before evicting.
        guard makeRoom(entry.size, section: section) else { return nil }
        instruction.write(to: &pendingEncoderStream)
        table.insert(entry)
        let index = table.insertCount - 1
        indexByField[key] = index
        indexByName[field.name] = index
        return index
    }

    /// Evicts until `size` bytes are free, if that only evicts entries that are evictable: acknowledged
    /// and referenced by no unacknowledged section, this one included.
    private mutating func makeRoom(_ size: Int, section: SectionState) -> Bool {
        var limit = min(knownReceivedCount, section.smallestReference)
        for sections in unacknowledged.values {
            for sent in sections { limit = min(limit, sent.smallestReference) }
        }
        guard table.reclaimableSpace(evictingBelow: limit, needed: size) >= size else { return false }
        while table.availableSpace < size {
            let (index, entry) = table.removeOldest()
            let key = FieldKey(name: entry.name, value: entry.value)
            if indexByField[key] == index { indexByField[key] = nil }
            if indexByName[entry.name] == index { indexByName[entry.name] = nil }
        }
        return true
    }

    // MARK: Decoder stream

    /// Applies the next piece of the peer's decoder stream, in whatever pieces it arrives: acknowledged
    /// sections release their references and advance the Known Received Count, as do increments;
    /// cancelled streams release theirs. Errors are QPACK_DECODER_STREAM_ERROR.
    mutating func processDecoderStream(_ bytes: ByteBuffer) throws(QPACKError) {
        var input = ByteBuffer.continuing(&decoderStreamTail, with: bytes)
        while let instruction = try DecoderInstruction.parse(from: &input) {
            try apply(instruction)
        }
        if input.readableBytes > 0 { decoderStreamTail = input }
    }

    private mutating func apply(_ instruction: DecoderInstruction) throws(QPACKError) {
        switch instruction {
        case .sectionAcknowledgment(let streamID):
            guard var sections = unacknowledged[streamID], !sections.isEmpty else {
                throw .decoderStream("acknowledgment of no outstanding field section")
            }
            let acknowledged = sections.removeFirst()
            unacknowledged[streamID] = sections.isEmpty ? nil : sections
            unacknowledgedCount -= 1
            knownReceivedCount = max(knownReceivedCount, acknowledged.requiredInsertCount)
        case .streamCancellation(let streamID):
            unacknowledgedCount -= unacknowledged.removeValue(forKey: streamID)?.count ?? 0
        case .insertCountIncrement(let increment):
            guard increment > 0, increment <= table.insertCount - knownReceivedCount else {
                throw .decoderStream("invalid Insert Count Increment")
            }
            knownReceivedCount += increment
        }
    }

    /// Sections sent on `streamID` that are not yet acknowledged, oldest first.
    func unacknowledgedSections(on streamID: UInt64) -> [SentSection] {
        unacknowledged[streamID] ?? []
    }
}

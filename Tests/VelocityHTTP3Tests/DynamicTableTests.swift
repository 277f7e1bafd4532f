import NIOCore
import Testing

@testable import VelocityHTTP3

@Suite struct DynamicTableTests {
    static func entry(_ name: String, _ value: String) -> DynamicTable.Entry {
        DynamicTable.Entry(name: name, value: value)
    }

    @Test func entriesCountNameValueAnd32() {
        var table = DynamicTable()
        table.setCapacity(220)
        table.insert(Self.entry(":authority", "www.example.com"))
        table.insert(Self.entry(":path", "/sample/path"))
        #expect(table.size == 106)
        #expect(table.insertCount == 2)
        #expect(table.availableSpace == 114)
        #expect(table[absolute: 0]?.value == "www.example.com")
        #expect(table[absolute: 2] == nil)
    }

    @Test func insertingEvictsOldestFirstAndKeepsAbsoluteIndices() {
        var table = DynamicTable()
        table.setCapacity(100)
        for index in 0..<10 { table.insert(Self.entry("n\(index)", "v")) }  // 35 bytes each
        #expect(table.count == 2)
        #expect(table.evictedCount == 8)
        #expect(table.listing == ["8 n8=v", "9 n9=v"])
        #expect(table[absolute: 7] == nil)
        #expect(table.oldest?.name == "n8")
    }

    @Test func manyEvictionsCompactStorage() {
        var table = DynamicTable()
        table.setCapacity(35 * 40)
        for index in 0..<10_000 { table.insert(Self.entry("n\(index % 10)", "v")) }
        #expect(table.count == 40)
        #expect(table.size == 35 * 40)
        #expect(table.listing.first == "9960 n0=v")
        #expect(table[absolute: 9999]?.name == "n9")
    }

    @Test func loweringTheCapacityEvicts() {
        var table = DynamicTable()
        table.setCapacity(200)
        for index in 0..<5 { table.insert(Self.entry("n\(index)", "v")) }
        table.setCapacity(80)
        #expect(table.listing == ["3 n3=v", "4 n4=v"])
        table.setCapacity(0)
        #expect(table.isEmpty && table.size == 0)
        #expect(table.insertCount == 5)
        #expect(!table.fits(size: 32))
    }

    @Test func reclaimableSpaceStopsAtTheLimit() {
        var table = DynamicTable()
        table.setCapacity(150)
        for index in 0..<4 { table.insert(Self.entry("n\(index)", "v")) }  // 140 of 150
        #expect(table.reclaimableSpace(evictingBelow: 0, needed: 35) == 10)
        #expect(table.reclaimableSpace(evictingBelow: 1, needed: 35) == 45)
        #expect(table.reclaimableSpace(evictingBelow: 4, needed: 70) == 80)
        #expect(table.reclaimableSpace(evictingBelow: 4, needed: 1000) == 150)
    }

    @Test func drainingIndexLeavesTheReserveFree() {
        var table = DynamicTable()
        table.setCapacity(140)
        #expect(table.drainingIndex(reserve: 35) == 0)
        for index in 0..<4 { table.insert(Self.entry("n\(index)", "v")) }
        #expect(table.drainingIndex(reserve: 0) == 0)
        #expect(table.drainingIndex(reserve: 35) == 1)
        #expect(table.drainingIndex(reserve: 36) == 2)
        #expect(table.drainingIndex(reserve: 140) == 4)
    }
}

@Suite struct InstructionTests {
    static let encoderInstructions: [EncoderInstruction] = [
        .setDynamicTableCapacity(220),
        .setDynamicTableCapacity(0),
        .insertWithNameReference(
            isStatic: true, nameIndex: 0, value: WireString(string: "www.example.com", length: 15)),
        .insertWithNameReference(isStatic: false, nameIndex: 70, value: WireString(string: "", length: 0)),
        .insertWithLiteralName(
            name: WireString(string: "custom-key", length: 10),
            value: WireString(string: String(repeating: "v", count: 500), length: 500)
        ),
        .duplicate(relativeIndex: 2),
        .duplicate(relativeIndex: 1_000_000),
    ]

    @Test func encoderInstructionsRoundTripWhateverTheSplit() throws {
        var stream = ByteBuffer()
        for instruction in Self.encoderInstructions { instruction.write(to: &stream) }
        // Byte by byte, each instruction appears only once whole.
        var parsed: [EncoderInstruction] = []
        var pending = ByteBuffer()
        for byte in stream.readableBytesView {
            pending.writeInteger(byte)
            while let instruction = try EncoderInstruction.parse(from: &pending, maxStringLength: 10_000) {
                parsed.append(instruction)
            }
        }
        #expect(parsed == Self.encoderInstructions)
        #expect(pending.readableBytes == 0)
    }

    @Test func encoderInstructionBytesMatchAppendixB() {
        var buffer = ByteBuffer()
        EncoderInstruction.setDynamicTableCapacity(220).write(to: &buffer)
        EncoderInstruction.duplicate(relativeIndex: 2).write(to: &buffer)
        #expect(buffer.hex == "3fbd0102")
    }

    @Test func encoderStreamErrorsCarryTheirCode() {
        var buffer = ByteBuffer()
        buffer.writeQPACKInteger(UInt64.max, prefix: 5, flags: 0x20)
        do {
            _ = try EncoderInstruction.parse(from: &buffer, maxStringLength: 100)
            Issue.record("overflow accepted")
        } catch {
            #expect(error.code == QPACKError.encoderStreamError)
        }
    }

    @Test func decoderInstructionsMatchAppendixBAndRoundTrip() throws {
        let cases: [(DecoderInstruction, String)] = [
            (.sectionAcknowledgment(streamID: 4), "84"),
            (.insertCountIncrement(1), "01"),
            (.streamCancellation(streamID: 8), "48"),
            (.sectionAcknowledgment(streamID: 1000), "ffe906"),
        ]
        for (instruction, hex) in cases {
            var buffer = ByteBuffer()
            instruction.write(to: &buffer)
            #expect(buffer.hex == hex)
            #expect(try DecoderInstruction.parse(from: &buffer) == instruction)
            var truncated = ByteBuffer(hex: hex).getSlice(at: 0, length: hex.count / 2 - 1)!
            #expect(try DecoderInstruction.parse(from: &truncated) == nil)
        }
    }
}

@Suite struct FieldSectionPrefixTests {
    /// RFC 9204 §4.5.1.1: a 100-byte table counts modulo 6; after 10 inserts, 4 means 9.
    @Test func requiredInsertCountExampleFromTheRFC() throws {
        let maxEntries = FieldSectionPrefix.maxEntries(maxTableCapacity: 100)
        #expect(maxEntries == 3)
        #expect(try FieldSectionPrefix.decode(encodedInsertCount: 4, maxEntries: 3, totalInserts: 10) == 9)
        #expect(FieldSectionPrefix.encode(requiredInsertCount: 9, maxEntries: 3) == 4)
    }

    @Test func requiredInsertCountRoundTripsAcrossWraps() throws {
        for maxEntries: UInt64 in [1, 3, 6, 128] {
            for totalInserts: UInt64 in 0..<(5 * maxEntries) {
                // What an encoder may need: at most MaxEntries beyond what the decoder has, and not so far
                // behind that its entries were evicted.
                let lowest = totalInserts >= maxEntries ? totalInserts - maxEntries + 1 : 1
                for required in lowest...(totalInserts + maxEntries) {
                    let encoded = FieldSectionPrefix.encode(requiredInsertCount: required, maxEntries: maxEntries)
                    #expect(encoded <= 2 * maxEntries)
                    let decoded = try FieldSectionPrefix.decode(
                        encodedInsertCount: encoded, maxEntries: maxEntries, totalInserts: totalInserts)
                    #expect(decoded == required, "\(required) of \(totalInserts) with \(maxEntries)")
                }
            }
        }
    }

    @Test func impossibleEncodingsAreRejected() {
        #expect(throws: QPACKError.self) {
            try FieldSectionPrefix.decode(encodedInsertCount: 7, maxEntries: 3, totalInserts: 10)
        }
        // No dynamic table: only 0 is valid.
        #expect(throws: QPACKError.self) {
            try FieldSectionPrefix.decode(encodedInsertCount: 1, maxEntries: 0, totalInserts: 0)
        }
        // Would decode to 0, which is encoded as 0.
        #expect(throws: QPACKError.self) {
            try FieldSectionPrefix.decode(encodedInsertCount: 1, maxEntries: 3, totalInserts: 0)
        }
    }

    @Test func baseWithTheSignBit() throws {
        // §4.5.1.2: Required Insert Count 9, sign 1, delta 2: Base 6. Encoded 9 mod 12 + 1 = 10.
        var buffer = ByteBuffer(bytes: [0x0A, 0x82])
        let prefix = try FieldSectionPrefix.parse(from: &buffer, maxEntries: 6, totalInserts: 9)
        #expect(prefix == FieldSectionPrefix(requiredInsertCount: 9, base: 6))
        var written = ByteBuffer()
        prefix.write(to: &written, maxEntries: 6)
        #expect(written.hex == "0a82")

        var positive = ByteBuffer(bytes: [0x0A, 0x03])
        #expect(try FieldSectionPrefix.parse(from: &positive, maxEntries: 6, totalInserts: 9).base == 12)
        var negative = ByteBuffer(bytes: [0x0A, 0x89])
        #expect(throws: QPACKError.self) {
            try FieldSectionPrefix.parse(from: &negative, maxEntries: 6, totalInserts: 9)
        }
        var truncated = ByteBuffer(bytes: [0x0A])
        #expect(throws: QPACKError.self) {
            try FieldSectionPrefix.parse(from: &truncated, maxEntries: 6, totalInserts: 9)
        }
    }
}

import NIOCore
import Testing

@testable import VelocityHTTP3

/// Truncated, mutated and random input must end in a result or a QPACKError, never a crash.
@Suite struct RobustnessTests {
    /// A decoder with entries in its table, and sections that use them in every representation.
    static func primed() throws -> (decoder: QPACKDecoder, sections: [ByteBuffer], encoderStream: ByteBuffer) {
        var connection = Connection(capacity: 1024, blockedStreams: 2)
        var sections: [ByteBuffer] = []
        for round in 0..<3 {
            sections.append(connection.encode(RoundTripTests.response, streamID: UInt64(round * 4)))
        }
        var encoderStream = connection.encoder.takeEncoderStreamBytes()
        try connection.decoder.processEncoderStream(encoderStream)
        sections += [
            ByteBuffer(hex: AppendixBTests.b1Section), ByteBuffer(hex: "0280 0801 77 10"),
            ByteBuffer(hex: "0000 2a63 3f47 8e 0176"),
        ]
        encoderStream.writeImmutableBuffer(ByteBuffer(hex: AppendixBTests.b2Encoder + AppendixBTests.b3Encoder))
        return (connection.decoder, sections, encoderStream)
    }

    @Test func everyTruncationOfAFieldSectionFailsCleanly() throws {
        let (decoder, sections, _) = try Self.primed()
        for section in sections {
            for cut in 0..<section.readableBytes {
                var copy = decoder
                do {
                    _ = try copy.decodeFieldSection(section.getSlice(at: 0, length: cut)!, streamID: 100)
                } catch {
                    #expect(error.code == QPACKError.decompressionFailed)
                }
            }
        }
    }

    @Test func everyPrefixOfTheEncoderStreamIsIncompleteNotWrong() throws {
        let (_, _, stream) = try Self.primed()
        for cut in 0...stream.readableBytes {
            var decoder = QPACKDecoder(maxTableCapacity: 1024, maxBlockedStreams: 0)
            try decoder.processEncoderStream(stream.getSlice(at: 0, length: cut)!)
        }
    }

    @Test func mutatedSectionsFailCleanly() throws {
        var random = SplitMix64(seed: 9204)
        let (decoder, sections, _) = try Self.primed()
        for _ in 0..<3000 {
            var bytes = Array(sections.randomElement(using: &random)!.readableBytesView)
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            var copy = decoder
            _ = try? copy.decodeFieldSection(ByteBuffer(bytes: bytes), streamID: 100)
        }
    }

    @Test func randomBytesNeverCrashAnyParser() {
        var random = SplitMix64(seed: 0x0200)
        for _ in 0..<3000 {
            let bytes = ByteBuffer(bytes: random.bytes(Int.random(in: 0...48, using: &random)))
            var decoder = QPACKDecoder(maxTableCapacity: 4096, maxBlockedStreams: 4)
            _ = try? decoder.decodeFieldSection(bytes, streamID: 0)
            _ = try? decoder.processEncoderStream(bytes)
            _ = try? decoder.decodeFieldSection(bytes, streamID: 4)
            var encoder = QPACKEncoder()
            encoder.applyPeerSettings(maxTableCapacity: 4096, maxBlockedStreams: 4)
            _ = try? encoder.processDecoderStream(bytes)
            _ = try? Huffman.decode(Array(bytes.readableBytesView))
        }
    }

    @Test func fieldSectionErrors() throws {
        var decoder = QPACKDecoder(maxTableCapacity: 220, maxBlockedStreams: 0)
        try decoder.processEncoderStream(ByteBuffer(hex: AppendixBTests.b2Encoder))
        let invalid: [(String, String)] = [
            ("0000 ff24", "static index 99"),
            ("0000 5f54 00", "literal with static name 99"),
            ("0000 80", "dynamic reference without a table reference"),
            ("0381 12", "post-base index beyond the Required Insert Count"),
            ("0381 80", "relative index below Base 0"),
            ("0201 80", "Base 2: absolute index 1 is beyond the Required Insert Count of 1"),
            ("0300 81", "Required Insert Count 2 but only absolute index 0 is referenced"),
            ("0000 3f", "truncated literal name"),
            ("0000 c1 ffffffffffffffffffff01", "integer overflow"),
        ]
        for (hex, reason) in invalid {
            var copy = decoder
            do {
                let outcome = try copy.decodeFieldSection(ByteBuffer(hex: hex), streamID: 0)
                Issue.record("accepted \(reason): \(outcome)")
            } catch {
                #expect(error.code == QPACKError.decompressionFailed, "\(reason)")
                #expect(error.isConnectionError)
            }
        }
    }

    @Test func encoderStreamErrors() {
        let invalid: [(String, String)] = [
            ("3fbe01", "capacity 221 above the advertised 220"),
            ("3fbd01 ff64 00", "static name index 100"),
            ("3fbd01 8000", "dynamic name in an empty table"),
            ("3fbd01 00", "duplicate in an empty table"),
            ("3f01 4161 0162", "entry of 34 bytes in a 32-byte table"),
            ("3fbd01 c0 7fb04e", "value longer than any entry could be, refused before it arrives"),
        ]
        for (hex, reason) in invalid {
            var decoder = QPACKDecoder(maxTableCapacity: 220, maxBlockedStreams: 0)
            do {
                try decoder.processEncoderStream(ByteBuffer(hex: hex))
                Issue.record("accepted \(reason)")
            } catch {
                #expect(error.code == QPACKError.encoderStreamError, "\(reason)")
            }
        }
    }

    @Test func decoderStreamErrors() {
        let invalid: [(String, String)] = [
            ("00", "increment of zero"),
            ("02", "increment beyond what was inserted"),
            ("80", "acknowledgment of a stream with nothing outstanding"),
            ("7fffffffffffffffffffff01", "overflowing stream ID"),
        ]
        for (hex, reason) in invalid {
            var encoder = QPACKEncoder()
            encoder.applyPeerSettings(maxTableCapacity: 4096, maxBlockedStreams: 0)
            do {
                try encoder.processDecoderStream(ByteBuffer(hex: hex))
                Issue.record("accepted \(reason)")
            } catch {
                #expect(error.code == QPACKError.decoderStreamError, "\(reason)")
            }
        }
    }

    @Test func decoderStreamSplitAnywhere() throws {
        var connection = Connection(capacity: 4096, blockedStreams: 1)
        _ = try connection.roundTrip(RoundTripTests.response, streamID: 0)
        let section = connection.encode(RoundTripTests.response, streamID: 1000)
        try connection.deliverEncoderStream()
        _ = try connection.decoder.decodeFieldSection(section, streamID: 1000)
        let answer = connection.decoder.takeDecoderStreamBytes()
        #expect(answer.readableBytes >= 3)
        for cut in 0...answer.readableBytes {
            var encoder = connection.encoder
            try encoder.processDecoderStream(answer.getSlice(at: 0, length: cut)!)
            try encoder.processDecoderStream(answer.getSlice(at: cut, length: answer.readableBytes - cut)!)
            #expect(encoder.unacknowledgedSections(on: 1000).isEmpty)
            #expect(encoder.knownReceivedCount == encoder.table.insertCount)
        }
    }
}

@Suite struct LimitTests {
    static let fields = [QPACKField(":status", "200"), QPACKField("server", "velocity")]

    @Test func fieldSectionSizeIsEnforcedWithItsOwnError() throws {
        let size = Self.fields.reduce(0) { $0 + $1.size }
        #expect(size == 7 + 3 + 32 + 6 + 8 + 32)
        var encoder = QPACKEncoder()
        var section = ByteBuffer()
        encoder.encode(Self.fields, streamID: 0, into: &section)

        var fitting = QPACKDecoder(maxTableCapacity: 0, maxBlockedStreams: 0, maxFieldSectionSize: size)
        #expect(try fitting.decodeFieldSection(section, streamID: 0) == .fields(Self.fields))

        var tight = QPACKDecoder(maxTableCapacity: 0, maxBlockedStreams: 0, maxFieldSectionSize: size - 1)
        do {
            _ = try tight.decodeFieldSection(section, streamID: 0)
            Issue.record("oversized section accepted")
        } catch {
            #expect(error.code == QPACKError.fieldSectionTooLarge)
            #expect(!error.isConnectionError)
        }
        // The decoder carries on with the next request.
        var small = ByteBuffer()
        encoder.encode([QPACKField(":status", "200")], streamID: 4, into: &small)
        #expect(try tight.decodeFieldSection(small, streamID: 4) == .fields([QPACKField(":status", "200")]))
    }

    @Test func oversizedSectionWithDynamicReferencesIsCancelled() throws {
        var connection = Connection(capacity: 4096, blockedStreams: 0, maxFieldSectionSize: 100)
        let fields = [QPACKField("x-repeated", "value")]
        for round in 0..<3 { _ = try connection.roundTrip(fields, streamID: UInt64(round * 4)) }
        let large = connection.encode(fields + fields + fields, streamID: 12)
        #expect(connection.encoder.unacknowledgedSections(on: 12).count == 1)
        #expect(throws: QPACKError.tooLarge("field section above SETTINGS_MAX_FIELD_SECTION_SIZE")) {
            try connection.decoder.decodeFieldSection(large, streamID: 12)
        }
        #expect(connection.decoder.takeDecoderStreamBytes().hex == "4c")
    }

    @Test func blockedStreamsBeyondTheLimitFailTheConnection() throws {
        var decoder = QPACKDecoder(maxTableCapacity: 220, maxBlockedStreams: 1)
        let needsOne = ByteBuffer(hex: "0200 80")
        #expect(try decoder.decodeFieldSection(needsOne, streamID: 0) == .blocked)
        // The same stream again is still one blocked stream.
        #expect(try decoder.decodeFieldSection(needsOne, streamID: 0) == .blocked)
        #expect(throws: QPACKError.decompressionFailed("more blocked streams than SETTINGS_QPACK_BLOCKED_STREAMS")) {
            try decoder.decodeFieldSection(needsOne, streamID: 4)
        }

        var none = QPACKDecoder(maxTableCapacity: 220, maxBlockedStreams: 0)
        #expect(throws: QPACKError.self) { try none.decodeFieldSection(needsOne, streamID: 0) }
    }

    @Test func encoderRespectsThePeerAndItsOwnCapacity() throws {
        var encoder = QPACKEncoder(preferredTableCapacity: 1000)
        encoder.applyPeerSettings(maxTableCapacity: 1 << 40, maxBlockedStreams: 0)
        #expect(encoder.table.capacity == 1000)
        #expect(encoder.takeEncoderStreamBytes().hex == "3fc907")
        // SETTINGS come once; a second call changes nothing.
        encoder.applyPeerSettings(maxTableCapacity: 100, maxBlockedStreams: 0)
        #expect(encoder.table.capacity == 1000)

        var none = QPACKEncoder()
        none.applyPeerSettings(maxTableCapacity: 0, maxBlockedStreams: 100)
        for round in 0..<3 {
            var section = ByteBuffer()
            none.encode(RoundTripTests.response, streamID: UInt64(round * 4), into: &section)
        }
        #expect(none.takeEncoderStreamBytes().readableBytes == 0)
    }

    @Test func entriesOverHalfTheTableAreNotInserted() throws {
        var connection = Connection(capacity: 256, blockedStreams: 0)
        let big = [QPACKField("x-big", String(repeating: "b", count: 100))]
        for round in 0..<3 { _ = try connection.roundTrip(big, streamID: UInt64(round * 4)) }
        #expect(connection.decoder.table.isEmpty)
    }
}

import NIOCore
import Testing

@testable import VelocityHTTP3

/// An encoder and decoder joined as over one connection: encoder-stream bytes, field sections and
/// decoder-stream bytes delivered when the test says.
struct Connection {
    var encoder: QPACKEncoder
    var decoder: QPACKDecoder

    init(capacity: Int, blockedStreams: Int, preferredCapacity: Int = 4096, maxFieldSectionSize: Int = .max) {
        encoder = QPACKEncoder(preferredTableCapacity: preferredCapacity)
        decoder = QPACKDecoder(
            maxTableCapacity: capacity, maxBlockedStreams: blockedStreams, maxFieldSectionSize: maxFieldSectionSize)
        encoder.applyPeerSettings(maxTableCapacity: UInt64(capacity), maxBlockedStreams: UInt64(blockedStreams))
    }

    mutating func encode(_ fields: [QPACKField], streamID: UInt64) -> ByteBuffer {
        var section = ByteBuffer()
        encoder.encode(fields, streamID: streamID, into: &section)
        return section
    }

    /// Instructions delivered so far, by kind, for tests that must see each kind happen.
    var delivered: [String: Int] = [:]

    @discardableResult
    mutating func deliverEncoderStream() throws -> [UInt64] {
        let bytes = encoder.takeEncoderStreamBytes()
        var copy = bytes
        while let instruction = try EncoderInstruction.parse(from: &copy, maxStringLength: .max) {
            let kind =
                switch instruction {
                case .setDynamicTableCapacity: "capacity"
                case .insertWithNameReference(let isStatic, _, _): isStatic ? "static name" : "dynamic name"
                case .insertWithLiteralName: "literal name"
                case .duplicate: "duplicate"
                }
            delivered[kind, default: 0] += 1
        }
        return try decoder.processEncoderStream(bytes)
    }

    mutating func deliverDecoderStream() throws {
        try encoder.processDecoderStream(decoder.takeDecoderStreamBytes())
    }

    /// Encodes, delivers everything in order, decodes, and feeds the decoder stream back.
    mutating func roundTrip(_ fields: [QPACKField], streamID: UInt64) throws -> (fields: [QPACKField], size: Int) {
        let section = encode(fields, streamID: streamID)
        try deliverEncoderStream()
        guard case .fields(let decoded) = try decoder.decodeFieldSection(section, streamID: streamID) else {
            throw QPACKError.decompressionFailed("blocked although everything was delivered")
        }
        try deliverDecoderStream()
        return (decoded, section.readableBytes)
    }
}

@Suite struct RoundTripTests {
    static let response: [QPACKField] = [
        QPACKField(":status", "200"),
        QPACKField("server", "velocity"),
        QPACKField("content-type", "text/html; charset=utf-8"),
        QPACKField("cache-control", "public, max-age=3600"),
        QPACKField("x-request-id", "4f2a9c"),
        QPACKField("x-custom-header", "one value"),
        QPACKField("x-custom-header", ""),
        QPACKField("link", "</style.css>; rel=preload; as=style"),
        QPACKField("content-length", "1234"),
        QPACKField("x-unicode", "naïve ☃ café"),
    ]

    /// What the decoder returns: the sent fields, the N bit set on those the encoder treats as secret.
    static func expected(_ fields: [QPACKField]) -> [QPACKField] {
        fields.map { QPACKField(name: $0.name, value: $0.value, neverIndex: QPACKEncoder.isSensitive($0)) }
    }

    @Test func staticTableOnlyWithoutPeerSettings() throws {
        var encoder = QPACKEncoder()
        var decoder = QPACKDecoder(maxTableCapacity: 0, maxBlockedStreams: 0)
        for streamID: UInt64 in [0, 4, 8] {
            var section = ByteBuffer()
            encoder.encode(Self.response, streamID: streamID, into: &section)
            #expect(section.getInteger(at: 0, as: UInt16.self) == 0)
            #expect(try decoder.decodeFieldSection(section, streamID: streamID) == .fields(Self.response))
        }
        #expect(encoder.takeEncoderStreamBytes().readableBytes == 0)
        #expect(decoder.takeDecoderStreamBytes().readableBytes == 0)
    }

    @Test func staticMatchesAreOneByte() {
        var encoder = QPACKEncoder()
        var section = ByteBuffer()
        encoder.encode(
            [QPACKField(":method", "GET"), QPACKField(":scheme", "https"), QPACKField(":path", "/")],
            streamID: 0, into: &section)
        #expect(section.hex == "0000d1d7c1")
        var literal = ByteBuffer()
        encoder.encode([QPACKField(":path", "/index.html")], streamID: 4, into: &literal)
        // B.1's field line, with the value Huffman-coded as it is shorter.
        #expect(literal.hex.hasPrefix("00005188"))
    }

    @Test func repeatedFieldsMoveIntoTheDynamicTableWithoutBlocking() throws {
        var connection = Connection(capacity: 4096, blockedStreams: 0)
        var sizes: [Int] = []
        for round in 0..<4 {
            let streamID = UInt64(round * 4)
            let section = connection.encode(Self.response, streamID: streamID)
            sizes.append(section.readableBytes)
            // Never blocks, even before the encoder stream arrives.
            #expect(try connection.decoder.decodeFieldSection(section, streamID: streamID) == .fields(Self.response))
            try connection.deliverEncoderStream()
            try connection.deliverDecoderStream()
        }
        // Round 2 inserts, round 3 references what round 2 inserted once the peer acknowledged it.
        #expect(sizes[1] == sizes[0])
        #expect(sizes[2] < sizes[1] / 2)
        #expect(sizes[3] == sizes[2])
        #expect(connection.decoder.table.count == 8)
        #expect(connection.encoder.table.listing == connection.decoder.table.listing)
    }

    @Test func blockedStreamResolvesWhenTheEncoderStreamArrives() throws {
        var connection = Connection(capacity: 4096, blockedStreams: 1)
        _ = try connection.roundTrip(Self.response, streamID: 0)
        // The second sighting inserts and, one blocked stream being allowed, references at once.
        let section = connection.encode(Self.response, streamID: 4)
        #expect(try connection.decoder.decodeFieldSection(section, streamID: 4) == .blocked)
        #expect(connection.decoder.blockedStreams.count == 1)
        #expect(try connection.deliverEncoderStream() == [4])
        #expect(try connection.decoder.decodeFieldSection(section, streamID: 4) == .fields(Self.response))
        try connection.deliverDecoderStream()
        #expect(connection.encoder.knownReceivedCount == connection.encoder.table.insertCount)
        #expect(connection.encoder.unacknowledgedSections(on: 4).isEmpty)
    }

    @Test func encoderNeverBlocksMoreStreamsThanAllowed() throws {
        var connection = Connection(capacity: 4096, blockedStreams: 1)
        let other = [QPACKField("x-other", "a value that repeats"), QPACKField("x-second", "another one")]
        _ = try connection.roundTrip(Self.response + other, streamID: 0)
        // Stream 4 takes the one blocked stream the peer allows.
        let blocking = connection.encode(Self.response, streamID: 4)
        // Stream 8 may insert, but must not reference what is unacknowledged.
        let nonBlocking = connection.encode(other, streamID: 8)
        #expect(try connection.decoder.decodeFieldSection(nonBlocking, streamID: 8) == .fields(other))
        #expect(try connection.decoder.decodeFieldSection(blocking, streamID: 4) == .blocked)
        #expect(try connection.deliverEncoderStream() == [4])
        #expect(try connection.decoder.decodeFieldSection(blocking, streamID: 4) == .fields(Self.response))
    }

    @Test func cancellationReleasesReferences() throws {
        var connection = Connection(capacity: 4096, blockedStreams: 2)
        _ = try connection.roundTrip(Self.response, streamID: 0)
        let section = connection.encode(Self.response, streamID: 4)
        #expect(connection.encoder.unacknowledgedSections(on: 4).count == 1)
        #expect(try connection.decoder.decodeFieldSection(section, streamID: 4) == .blocked)
        connection.decoder.cancelStream(4)
        try connection.deliverDecoderStream()
        #expect(connection.encoder.unacknowledgedSections(on: 4).isEmpty)
        // The entries arrive later, and are used once acknowledged.
        try connection.deliverEncoderStream()
        try connection.deliverDecoderStream()
        let (fields, _) = try connection.roundTrip(Self.response, streamID: 8)
        #expect(fields == Self.response)
    }

    @Test func sensitiveFieldsStayLiteralAndOutOfTheTable() throws {
        var connection = Connection(capacity: 4096, blockedStreams: 4)
        let fields = [
            QPACKField("authorization", "Bearer abc.def.ghi"),
            QPACKField("cookie", "sid=42"),
            QPACKField("cookie", "prefs=a-long-cookie-value-that-is-fine-to-index"),
            QPACKField("set-cookie", "sid=43; HttpOnly"),
            QPACKField("x-api-key", "k-123", neverIndex: true),
            QPACKField("x-api-key", "k-123"),
        ]
        for round in 0..<3 {
            let (decoded, _) = try connection.roundTrip(fields, streamID: UInt64(round * 4))
            #expect(decoded == Self.expected(fields))
        }
        #expect(decoded(connection.decoder.table).allSatisfy { !$0.hasPrefix("authorization") })
        #expect(
            connection.decoder.table.listing.map { $0.split(separator: " ", maxSplits: 1)[1] } == [
                "cookie=prefs=a-long-cookie-value-that-is-fine-to-index", "x-api-key=k-123",
            ])
        #expect(Self.expected(fields).map(\.neverIndex) == [true, true, false, true, true, false])
    }

    private func decoded(_ table: DynamicTable) -> [String] {
        table.listing.map { String($0.split(separator: " ", maxSplits: 1)[1]) }
    }

    @Test func neverIndexedBitSurvivesEveryLiteralForm() throws {
        // Static name, dynamic name and literal name, each with N set.
        var connection = Connection(capacity: 4096, blockedStreams: 0)
        let plain = [QPACKField("x-token", "public")]
        for round in 0..<3 { _ = try connection.roundTrip(plain, streamID: UInt64(round * 4)) }
        let secret = [
            QPACKField("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l"),
            QPACKField("x-token", "secret", neverIndex: true),
            QPACKField("x-fresh", "secret", neverIndex: true),
        ]
        let section = connection.encode(secret, streamID: 12)
        #expect(try connection.decoder.decodeFieldSection(section, streamID: 12) == .fields(Self.expected(secret)))
    }

    @Test func postBaseNameReferences() throws {
        // A name inserted in this section with another value referenced post-base as a literal's name.
        var decoder = QPACKDecoder(maxTableCapacity: 4096, maxBlockedStreams: 0)
        try decoder.processEncoderStream(ByteBuffer(hex: "3fe11f 4378797a 0176"))  // capacity 4096, xyz=v
        // Required Insert Count 1, Base 0 (sign, delta 0): post-base name index 0, N set, value "w".
        let fields = try decoder.decodeFieldSection(ByteBuffer(hex: "0280 0801 77 10"), streamID: 0)
        #expect(fields == .fields([QPACKField("xyz", "w", neverIndex: true), QPACKField("xyz", "v")]))
    }

    /// A long connection with a small table and random delivery: eviction, draining, duplicates and
    /// blocking all happen, and every section must decode to what was sent.
    @Test(arguments: [(256, 0), (512, 2), (1024, 5)])
    func randomisedConnection(capacity: Int, blockedStreams: Int) throws {
        var random = SplitMix64(seed: UInt64(capacity * 31 + blockedStreams))
        var connection = Connection(capacity: capacity, blockedStreams: blockedStreams)
        let pool = (0..<24).map { QPACKField("x-field-\($0 % 7)", String(repeating: "v", count: $0 * 3)) }
        var waiting: [(streamID: UInt64, section: ByteBuffer, fields: [QPACKField])] = []
        var decodedCount = 0
        var blockedCount = 0
        for round in 0..<600 {
            let fields = (0..<Int.random(in: 1...6, using: &random)).map { _ in pool.randomElement(using: &random)! }
            let streamID = UInt64(round * 4)
            waiting.append((streamID, connection.encode(fields, streamID: streamID), fields))
            if Bool.random(using: &random) { try connection.deliverEncoderStream() }
            var stillWaiting: [(streamID: UInt64, section: ByteBuffer, fields: [QPACKField])] = []
            for item in waiting {
                switch try connection.decoder.decodeFieldSection(item.section, streamID: item.streamID) {
                case .fields(let decoded):
                    #expect(decoded == item.fields)
                    decodedCount += 1
                case .blocked:
                    blockedCount += 1
                    stillWaiting.append(item)
                }
            }
            waiting = stillWaiting
            #expect(waiting.count <= blockedStreams)
            if Int.random(in: 0..<3, using: &random) == 0 { try connection.deliverDecoderStream() }
        }
        try connection.deliverEncoderStream()
        for item in waiting {
            #expect(
                try connection.decoder.decodeFieldSection(item.section, streamID: item.streamID) == .fields(item.fields)
            )
            decodedCount += 1
        }
        #expect(decodedCount == 600)
        #expect(connection.encoder.table.listing == connection.decoder.table.listing)
        #expect(connection.decoder.table.evictedCount > 0)
        #expect((blockedCount > 0) == (blockedStreams > 0))
        for kind in ["literal name", "dynamic name", "duplicate"] {
            #expect(connection.delivered[kind, default: 0] > 0, "\(kind): \(connection.delivered)")
        }
    }
}

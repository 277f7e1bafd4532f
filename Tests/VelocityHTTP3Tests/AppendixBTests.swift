import NIOCore
import Testing

@testable import VelocityHTTP3

/// RFC 9204 Appendix B, played through one decoder: the encoder-stream and field-section bytes as printed,
/// the decoder-stream bytes it must answer with, and the table after each step.
@Suite struct AppendixBTests {
    static let b1Section = "0000 510b 2f69 6e64 6578 2e68 746d 6c"
    static let b2Encoder = "3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6dc10c 2f73 616d 706c 652f 7061 7468"
    static let b2Section = "0381 10 11"
    static let b3Encoder = "4a63 7573 746f 6d2d 6b65 790c 6375 7374 6f6d 2d76 616c 7565"
    static let b4Encoder = "02"
    static let b4Section = "0500 80 c1 81"
    static let b5Encoder = "810d 6375 7374 6f6d 2d76 616c 7565 32"

    static func decoder() -> QPACKDecoder { QPACKDecoder(maxTableCapacity: 220, maxBlockedStreams: 1) }

    @Test func walkthrough() throws {
        var decoder = Self.decoder()

        // B.1: a literal with a static name reference; no table involved, nothing to acknowledge.
        #expect(
            try decoder.decodeFieldSection(ByteBuffer(hex: Self.b1Section), streamID: 0)
                == .fields([QPACKField(":path", "/index.html")]))
        #expect(decoder.takeDecoderStreamBytes().hex == "")
        #expect(decoder.table.size == 0)

        // B.2: capacity, two inserts, a section using both post-base; the acknowledgment covers the inserts.
        #expect(try decoder.processEncoderStream(ByteBuffer(hex: Self.b2Encoder)) == [])
        #expect(decoder.table.capacity == 220)
        #expect(decoder.table.listing == ["0 :authority=www.example.com", "1 :path=/sample/path"])
        #expect(decoder.table.size == 106)
        let b2 = try decoder.decodeFieldSection(ByteBuffer(hex: Self.b2Section), streamID: 4)
        #expect(b2 == .fields([QPACKField(":authority", "www.example.com"), QPACKField(":path", "/sample/path")]))
        #expect(decoder.takeDecoderStreamBytes().hex == "84")
        #expect(decoder.knownReceivedCount == 2)

        // B.3: a speculative insert, acknowledged by an increment.
        try decoder.processEncoderStream(ByteBuffer(hex: Self.b3Encoder))
        #expect(decoder.table.listing.last == "2 custom-key=custom-value")
        #expect(decoder.table.size == 160)
        #expect(decoder.takeDecoderStreamBytes().hex == "01")

        // B.4: the section arrives before the Duplicate it needs, and the stream is cancelled meanwhile.
        #expect(try decoder.decodeFieldSection(ByteBuffer(hex: Self.b4Section), streamID: 8) == .blocked)
        #expect(decoder.blockedStreams == [8: 4])
        decoder.cancelStream(8)
        #expect(decoder.blockedStreams.isEmpty)
        #expect(decoder.takeDecoderStreamBytes().hex == "48")
        #expect(try decoder.processEncoderStream(ByteBuffer(hex: Self.b4Encoder)) == [])
        #expect(decoder.table.listing.last == "3 :authority=www.example.com")
        #expect(decoder.table.size == 217)

        // B.5: an insert naming a dynamic entry evicts the oldest.
        try decoder.processEncoderStream(ByteBuffer(hex: Self.b5Encoder))
        #expect(
            decoder.table.listing == [
                "1 :path=/sample/path", "2 custom-key=custom-value", "3 :authority=www.example.com",
                "4 custom-key=custom-value2",
            ])
        #expect(decoder.table.size == 215)
        // Our policy: the two unacknowledged inserts go out as one increment.
        #expect(decoder.takeDecoderStreamBytes().hex == "02")
    }

    /// B.4 had the stream not been cancelled: it unblocks when the Duplicate arrives.
    @Test func blockedSectionOfB4DecodesOnceTheDuplicateArrives() throws {
        var decoder = Self.decoder()
        try decoder.processEncoderStream(ByteBuffer(hex: Self.b2Encoder + Self.b3Encoder))
        _ = decoder.takeDecoderStreamBytes()
        #expect(try decoder.decodeFieldSection(ByteBuffer(hex: Self.b4Section), streamID: 8) == .blocked)
        #expect(try decoder.processEncoderStream(ByteBuffer(hex: Self.b4Encoder)) == [8])
        #expect(decoder.blockedStreams.isEmpty)
        let fields = try decoder.decodeFieldSection(ByteBuffer(hex: Self.b4Section), streamID: 8)
        #expect(
            fields
                == .fields([
                    QPACKField(":authority", "www.example.com"), QPACKField(":path", "/"),
                    QPACKField("custom-key", "custom-value"),
                ]))
        // The acknowledgment covers the Duplicate: no increment follows.
        #expect(decoder.takeDecoderStreamBytes().hex == "88")
    }

    /// The same encoder stream in every split gives the same table.
    @Test func encoderStreamSplitAnywhere() throws {
        let whole = ByteBuffer(hex: Self.b2Encoder + Self.b3Encoder + Self.b4Encoder + Self.b5Encoder)
        var reference = Self.decoder()
        try reference.processEncoderStream(whole)
        for cut in 0...whole.readableBytes {
            var decoder = Self.decoder()
            try decoder.processEncoderStream(whole.getSlice(at: 0, length: cut)!)
            try decoder.processEncoderStream(whole.getSlice(at: cut, length: whole.readableBytes - cut)!)
            #expect(decoder.table.listing == reference.table.listing)
            #expect(decoder.table.size == 215)
        }
        var bytewise = Self.decoder()
        for byte in whole.readableBytesView { try bytewise.processEncoderStream(ByteBuffer(bytes: [byte])) }
        #expect(bytewise.table.listing == reference.table.listing)
    }

    /// The encoder side of the same exchange: it takes the decoder's answers as the RFC describes.
    @Test func encoderTracksTheDecoderStreamOfAppendixB() throws {
        var encoder = QPACKEncoder(preferredTableCapacity: 220)
        encoder.applyPeerSettings(maxTableCapacity: 220, maxBlockedStreams: 1)
        #expect(encoder.takeEncoderStreamBytes().hex == "3fbd01")
        // Three sightings: the second inserts and, since one stream may block, references post-base.
        let fields = [QPACKField(":authority", "www.example.com"), QPACKField(":path", "/sample/path")]
        var first = ByteBuffer()
        encoder.encode(fields, streamID: 0, into: &first)
        #expect(first.getInteger(at: 0, as: UInt8.self) == 0)
        var second = ByteBuffer()
        encoder.encode(fields, streamID: 4, into: &second)
        #expect(encoder.takeEncoderStreamBytes().hex.hasPrefix("c0"))
        #expect(encoder.table.size == 106)
        // Required Insert Count 2, Base 0, two post-base indices: the bytes of B.2 exactly.
        #expect(second.hex == "03811011")
        #expect(encoder.unacknowledgedSections(on: 4) == [.init(requiredInsertCount: 2, smallestReference: 0)])
        try encoder.processDecoderStream(ByteBuffer(hex: "84"))
        #expect(encoder.knownReceivedCount == 2)
        #expect(encoder.unacknowledgedSections(on: 4).isEmpty)
        #expect(throws: QPACKError.self) { try encoder.processDecoderStream(ByteBuffer(hex: "84")) }
    }
}

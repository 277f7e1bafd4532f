import NIOCore
import Testing

@testable import VelocityHTTP3

@Suite struct HuffmanTests {
    /// RFC 7541 Appendix C.4 and C.6.
    static let examples: [(text: String, hex: String)] = [
        ("www.example.com", "f1e3c2e5f23a6ba0ab90f4ff"),
        ("no-cache", "a8eb10649cbf"),
        ("custom-key", "25a849e95ba97d7f"),
        ("custom-value", "25a849e95bb8e8b4bf"),
        ("302", "6402"),
        ("private", "aec3771a4b"),
        ("Mon, 21 Oct 2013 20:13:21 GMT", "d07abe941054d444a8200595040b8166e082a62d1bff"),
        ("https://www.example.com", "9d29ad171863c78f0b97c8e9ae82ae43d3"),
        ("307", "640eff"),
        ("gzip", "9bd9ab"),
        (
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
            "94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007"
        ),
    ]

    @Test func rfc7541ExamplesEncode() {
        for example in Self.examples {
            let encoded = Huffman.encode(Array(example.text.utf8))
            #expect(ByteBuffer(bytes: encoded).hex == example.hex, "\(example.text)")
        }
    }

    @Test func rfc7541ExamplesDecode() throws {
        for example in Self.examples {
            let decoded = try Huffman.decode(Array(ByteBuffer(hex: example.hex).readableBytesView))
            #expect(String(decoding: decoded, as: UTF8.self) == example.text)
        }
    }

    @Test func everyByteValueRoundTrips() throws {
        let all = (0...255).map { UInt8($0) }
        #expect(try Huffman.decode(Huffman.encode(all)) == all)
        for byte in all {
            #expect(try Huffman.decode(Huffman.encode([byte])) == [byte])
            #expect(try Huffman.decode(Huffman.encode([byte, byte, byte])) == [byte, byte, byte])
        }
        #expect(try Huffman.decode([]) == [])
    }

    @Test func randomStringsRoundTrip() throws {
        var random = SplitMix64(seed: 7541)
        for _ in 0..<500 {
            let bytes = random.bytes(Int.random(in: 0...80, using: &random))
            let encoded = Huffman.encode(bytes)
            #expect(encoded.count == bytes.withUnsafeBytes { Huffman.encodedLength(of: $0) })
            #expect(try Huffman.decode(encoded) == bytes)
        }
    }

    /// Packs codes MSB first, padding the last byte with `padding` (1 bits, or 0 bits to make it invalid).
    static func pack(_ symbols: [Int], padWithOnes: Bool = true) -> [UInt8] {
        var bits: [Bool] = []
        for symbol in symbols {
            let code = Huffman.codes[symbol]
            for bit in (0..<Int(Huffman.lengths[symbol])).reversed() { bits.append((code >> bit) & 1 == 1) }
        }
        while bits.count % 8 != 0 { bits.append(padWithOnes) }
        return stride(from: 0, to: bits.count, by: 8).map { start in
            bits[start..<start + 8].reduce(0) { $0 << 1 | ($1 ? 1 : 0) }
        }
    }

    @Test func packingMatchesTheEncoder() throws {
        let text = Array("a{b}".utf8).map(Int.init)
        #expect(Self.pack(text) == Huffman.encode(Array("a{b}".utf8)))
    }

    @Test func eosInsideTheStringIsRejected() {
        let a = Int(UInt8(ascii: "a"))
        for symbols in [[Huffman.endOfString], [a, Huffman.endOfString], [Huffman.endOfString, a], [a, 256, a, a]] {
            #expect(throws: QPACKError.self, "\(symbols)") { try Huffman.decode(Self.pack(symbols)) }
        }
    }

    @Test func paddingOfEightBitsOrMoreIsRejected() {
        #expect(throws: QPACKError.self) { try Huffman.decode([0xFF]) }
        #expect(throws: QPACKError.self) { try Huffman.decode([0xFF, 0xFF]) }
        var encoded = Huffman.encode(Array("www.example.com".utf8))
        encoded.append(0xFF)
        #expect(throws: QPACKError.self) { try Huffman.decode(encoded) }
    }

    @Test func paddingThatIsNotAllOnesIsRejected() throws {
        let a = Int(UInt8(ascii: "a"))
        // 'a' is 00011: three bits of padding.
        #expect(Self.pack([a]) == [0x1F])
        #expect(try Huffman.decode([0x1F]) == [UInt8(ascii: "a")])
        for invalid: UInt8 in [0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E] {
            #expect(throws: QPACKError.self, "\(invalid)") { try Huffman.decode([invalid]) }
        }
        #expect(throws: QPACKError.self) { try Huffman.decode(Self.pack([a, a, a], padWithOnes: false)) }
    }

    @Test func errorsAreDecompressionFailures() {
        do {
            _ = try Huffman.decode([0xFF, 0xFF, 0xFF, 0xFF])
            Issue.record("EOS accepted")
        } catch {
            #expect(error.code == QPACKError.decompressionFailed)
        }
    }
}

@Suite struct StaticTableTests {
    @Test func holdsTheNinetyNineEntriesOfAppendixA() {
        #expect(StaticTable.entries.count == 99)
        let spotChecks: [(Int, String, String)] = [
            (0, ":authority", ""), (1, ":path", "/"), (17, ":method", "GET"), (25, ":status", "200"),
            (29, "accept", "*/*"), (52, "content-type", "text/html; charset=utf-8"),
            (85, "content-security-policy", "script-src 'none'; object-src 'none'; base-uri 'none'"),
            (98, "x-frame-options", "sameorigin"),
        ]
        for (index, name, value) in spotChecks {
            #expect(StaticTable.entries[index] == (name, value), "\(index)")
        }
        #expect(StaticTable.entry(at: 99) == nil)
    }

    @Test func lookupsFindExactPairsAndTheFirstEntryOfEachName() {
        #expect(StaticTable.indexByField.count == 99)
        #expect(StaticTable.indexByField[FieldKey(name: ":status", value: "404")] == 27)
        #expect(StaticTable.indexByField[FieldKey(name: ":status", value: "418")] == nil)
        #expect(StaticTable.indexByName[":status"] == 24)
        #expect(StaticTable.indexByName["content-type"] == 44)
        #expect(StaticTable.indexByName["x-frame-options"] == 97)
        #expect(StaticTable.indexByName["x-unknown"] == nil)
        for (index, entry) in StaticTable.entries.enumerated() {
            #expect(StaticTable.indexByField[FieldKey(name: entry.name, value: entry.value)] == index)
            #expect(StaticTable.indexByName[entry.name]! <= index)
        }
    }
}

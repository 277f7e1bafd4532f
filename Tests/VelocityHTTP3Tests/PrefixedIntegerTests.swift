import NIOCore
import Testing

@testable import VelocityHTTP3

@Suite struct PrefixedIntegerTests {
    /// RFC 7541 Appendix C.1.
    static let examples: [(value: UInt64, prefix: Int, bytes: [UInt8])] = [
        (10, 5, [0x0A]),
        (1337, 5, [0x1F, 0x9A, 0x0A]),
        (42, 8, [0x2A]),
    ]

    @Test func rfc7541Examples() throws {
        for example in Self.examples {
            var buffer = ByteBuffer()
            buffer.writeQPACKInteger(example.value, prefix: example.prefix)
            #expect(Array(buffer.readableBytesView) == example.bytes)
            #expect(try buffer.readQPACKInteger(prefix: example.prefix) == example.value)
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test func flagsAboveThePrefixAreWrittenAndIgnoredOnRead() throws {
        var buffer = ByteBuffer()
        buffer.writeQPACKInteger(10, prefix: 5, flags: 0xE0)
        buffer.writeQPACKInteger(1337, prefix: 5, flags: 0xA0)
        #expect(buffer.hex == "ea bf 9a 0a".filter { $0 != " " })
        #expect(try buffer.readQPACKInteger(prefix: 5) == 10)
        #expect(try buffer.readQPACKInteger(prefix: 5) == 1337)
    }

    @Test func roundTripsAtEveryPrefixAndBoundary() throws {
        for prefix in 1...8 {
            let limit = UInt64(1 << prefix) - 1
            let values: [UInt64] = [
                0, 1, limit - 1, limit, limit + 1, limit + 127, limit + 128, 16383, 1 << 32, PrefixedInteger.max,
            ]
            for value in values {
                var buffer = ByteBuffer()
                buffer.writeQPACKInteger(value, prefix: prefix, flags: 0)
                #expect(try buffer.readQPACKInteger(prefix: prefix) == value, "\(value) with \(prefix)-bit prefix")
                #expect(buffer.readableBytes == 0)
            }
        }
    }

    @Test func valuesAbove62BitsAreRejected() {
        for value in [PrefixedInteger.max + 1, UInt64.max] {
            var buffer = ByteBuffer()
            buffer.writeQPACKInteger(value, prefix: 5)
            #expect(throws: QPACKError.self) { try buffer.readQPACKInteger(prefix: 5) }
        }
        // 2^62-1 with zero groups padded on past 63 bits.
        var padded = ByteBuffer(bytes: [0xFF] + [UInt8](repeating: 0x80, count: 9) + [0x00])
        #expect(throws: QPACKError.self) { try padded.readQPACKInteger(prefix: 8) }
        var endless = ByteBuffer(bytes: [0x1F] + [UInt8](repeating: 0xFF, count: 100))
        #expect(throws: QPACKError.self) { try endless.readQPACKInteger(prefix: 5) }
    }

    @Test func truncatedIntegersReadNothing() throws {
        var whole = ByteBuffer()
        whole.writeQPACKInteger(PrefixedInteger.max, prefix: 3, flags: 0xF8)
        for cut in 0..<whole.readableBytes {
            var buffer = whole.getSlice(at: 0, length: cut)!
            #expect(try buffer.readQPACKInteger(prefix: 3) == nil)
            #expect(buffer.readableBytes == cut)
        }
    }
}

@Suite struct StringLiteralTests {
    @Test func huffmanIsChosenWhenShorter() throws {
        var buffer = ByteBuffer()
        buffer.writeQPACKString("www.example.com", prefix: 8)
        // RFC 7541 C.4.1: H set, length 12, then the code.
        #expect(buffer.hex == "8cf1e3c2e5f23a6ba0ab90f4ff")
        #expect(try buffer.readQPACKString(prefix: 8) == WireString(string: "www.example.com", length: 15))
    }

    @Test func rawIsKeptWhenHuffmanIsNotShorter() throws {
        var buffer = ByteBuffer()
        // Rare bytes have long codes; "{}" codes to 30 bits, four bytes for two.
        buffer.writeQPACKString("{}", prefix: 6, flags: 0x40)
        #expect(buffer.hex == "427b7d")
        #expect(try buffer.readQPACKString(prefix: 6) == WireString(string: "{}", length: 2))
    }

    @Test func roundTripsWithEveryPrefix() throws {
        let strings = ["", "a", "custom-key", String(repeating: "x", count: 300), "naïve ☃", "\u{0}\u{7F}\t"]
        for prefix in 2...8 {
            for string in strings {
                var buffer = ByteBuffer()
                let flags = UInt8(truncatingIfNeeded: 0xFF << prefix)
                buffer.writeQPACKString(string, prefix: prefix, flags: flags)
                #expect(buffer.getInteger(at: 0, as: UInt8.self)! & flags == flags)
                let read = try buffer.readQPACKString(prefix: prefix)
                #expect(read == WireString(string: string, length: string.utf8.count))
                #expect(buffer.readableBytes == 0)
            }
        }
    }

    @Test func lengthBeyondTheBufferReadsNothing() throws {
        var whole = ByteBuffer()
        whole.writeQPACKString(String(repeating: "{", count: 200), prefix: 8)
        for cut in 0..<whole.readableBytes {
            var buffer = whole.getSlice(at: 0, length: cut)!
            #expect(try buffer.readQPACKString(prefix: 8) == nil)
            #expect(buffer.readableBytes == cut)
        }
    }

    @Test func overlongLengthFailsBeforeTheBytesArrive() {
        var buffer = ByteBuffer()
        buffer.writeQPACKInteger(10_000, prefix: 7)
        #expect(throws: QPACKError.self) { try buffer.readQPACKString(prefix: 8, maxEncodedLength: 9_999) }
    }

    @Test func invalidUTF8IsRepairedButCountedAsSent() throws {
        var buffer = ByteBuffer(bytes: [0x02, 0xFF, 0x41])
        let read = try buffer.readQPACKString(prefix: 8)
        #expect(read?.string == "\u{FFFD}A")
        #expect(read?.length == 2)
    }
}

import NIOCore
import Testing

@testable import VelocityQUIC

@Suite struct VarIntTests {
    /// RFC 9000 Appendix A.1.
    static let examples: [(bytes: [UInt8], value: UInt64)] = [
        ([0xC2, 0x19, 0x7C, 0x5E, 0xFF, 0x14, 0xE8, 0x8C], 151_288_809_941_952_652),
        ([0x9D, 0x7F, 0x3E, 0x7D], 494_878_333),
        ([0x7B, 0xBD], 15293),
        ([0x25], 37),
        ([0x40, 0x25], 37),
    ]

    @Test func rfcExamplesDecode() {
        for example in Self.examples {
            var buffer = ByteBuffer(bytes: example.bytes)
            #expect(buffer.readQUICVarInt() == example.value)
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test func encodingIsShortest() {
        for example in Self.examples.prefix(4) {
            var buffer = ByteBuffer()
            #expect(buffer.writeQUICVarInt(example.value) == example.bytes.count)
            #expect(Array(buffer.readableBytesView) == example.bytes)
        }
    }

    @Test func sizesAtEachBoundary() {
        let cases: [(UInt64, Int)] = [
            (0, 1), (63, 1), (64, 2), (16383, 2), (16384, 4), ((1 << 30) - 1, 4), (1 << 30, 8), (VarInt.max, 8),
        ]
        for (value, size) in cases {
            #expect(VarInt.size(value) == size, "\(value)")
            var buffer = ByteBuffer()
            buffer.writeQUICVarInt(value)
            #expect(buffer.readableBytes == size, "\(value)")
            #expect(buffer.readQUICVarInt() == value)
        }
        #expect(VarInt.max == 4_611_686_018_427_387_903)
    }

    @Test func longerEncodingsReadBackAndCanBeFilledInLater() {
        for length in [1, 2, 4, 8] {
            var buffer = ByteBuffer()
            buffer.writeQUICVarInt(37, length: length)
            #expect(buffer.readableBytes == length)
            #expect(buffer.readQUICVarInt() == 37)
        }
        var buffer = ByteBuffer()
        buffer.writeQUICVarInt(0, length: 2)
        buffer.writeInteger(UInt8(0xAA))
        buffer.setQUICVarInt(1000, at: buffer.readerIndex, length: 2)
        #expect(buffer.readQUICVarInt() == 1000)
        #expect(buffer.readInteger(as: UInt8.self) == 0xAA)
    }

    @Test func truncatedInputReadsNothing() {
        for example in Self.examples where example.bytes.count > 1 {
            for cut in 0..<example.bytes.count {
                var buffer = ByteBuffer(bytes: example.bytes.prefix(cut))
                #expect(buffer.readQUICVarInt() == nil)
                #expect(buffer.readableBytes == cut)
            }
        }
    }
}

import NIOCore
import Testing

@testable import VelocityQUIC

@Suite struct StatelessResetTokenTests {
    static let bytes: [UInt8] = Array(0xF0...0xFF)

    @Test func roundTripsThroughBytesAndBuffers() throws {
        let token = try #require(StatelessResetToken(Self.bytes))
        #expect(token.high == 0xF0F1_F2F3_F4F5_F6F7)
        #expect(token.low == 0xF8F9_FAFB_FCFD_FEFF)
        #expect(token.bytes == Self.bytes)
        var buffer = ByteBuffer()
        buffer.writeStatelessResetToken(token)
        #expect(Array(buffer.readableBytesView) == Self.bytes)
        #expect(buffer.readStatelessResetToken() == token)
        #expect(token.description == "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
    }

    @Test func onlySixteenBytesMakeAToken() {
        #expect(StatelessResetToken(Self.bytes.dropLast()) == nil)
        #expect(StatelessResetToken(Self.bytes + [0]) == nil)
        var buffer = ByteBuffer(bytes: Self.bytes.dropLast())
        #expect(buffer.readStatelessResetToken() == nil)
        #expect(buffer.readableBytes == 15)
    }

    @Test func everyByteCountsForEqualityAndHashing() throws {
        let token = try #require(StatelessResetToken(Self.bytes))
        var tokens: Set<StatelessResetToken> = [token]
        for index in 0..<16 {
            var bytes = Self.bytes
            bytes[index] ^= 0x01
            let other = try #require(StatelessResetToken(bytes))
            #expect(other != token, "byte \(index)")
            tokens.insert(other)
        }
        #expect(tokens.count == 17)
        #expect(
            StatelessResetToken(high: 1, low: 2)
                == StatelessResetToken([0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]))
    }
}

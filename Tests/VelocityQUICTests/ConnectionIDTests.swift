import NIOCore
import Testing

@testable import VelocityQUIC

@Suite struct ConnectionIDTests {
    static func bytes(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 1) } }

    @Test(arguments: [0, 1, 8, 19, 20])
    func roundTrips(length: Int) throws {
        let id = try #require(ConnectionID(Self.bytes(length)))
        #expect(id.count == length)
        #expect(id.bytes == Self.bytes(length))
        #expect(id.isEmpty == (length == 0))
        var buffer = ByteBuffer()
        buffer.writeConnectionID(id)
        #expect(Array(buffer.readableBytesView) == Self.bytes(length))
        buffer.writeInteger(UInt8(0xEE))
        #expect(buffer.readConnectionID(length: length) == id)
        #expect(buffer.readableBytes == 1)
    }

    @Test func equalityAndHashingSeeLengthAndEveryByte() throws {
        let a = try #require(ConnectionID([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]))
        let same = try #require(ConnectionID(a.bytes))
        var lastDiffers = a.bytes
        lastDiffers[19] = 0
        let b = try #require(ConnectionID(lastDiffers))
        // Inline storage pads with zeros, so the length must tell [0] from [0, 0].
        let zero = try #require(ConnectionID([0]))
        let zeroZero = try #require(ConnectionID([0, 0]))
        #expect(a == same)
        #expect(a != b)
        #expect(zero != zeroZero)
        #expect(zero != .empty)
        #expect(Set([a, same, b, zero, zeroZero, .empty]).count == 5)
        #expect(zeroZero.description == "0000")
        #expect(try #require(ConnectionID([0xAB, 0x01])).description == "ab01")
    }

    @Test func moreThanTwentyBytesIsRefused() {
        #expect(ConnectionID(Self.bytes(21)) == nil)
        var buffer = ByteBuffer(bytes: Self.bytes(30))
        #expect(buffer.readConnectionID(length: 21) == nil)
        #expect(buffer.readableBytes == 30)
    }

    @Test func shortInputReadsNothing() {
        var buffer = ByteBuffer(bytes: Self.bytes(7))
        #expect(buffer.readConnectionID(length: 8) == nil)
        #expect(buffer.readableBytes == 7)
    }

    @Test func randomIDsHaveTheirLength() {
        let id = ConnectionID.random(count: 20)
        #expect(id.count == 20)
        #expect(id != ConnectionID.random(count: 20))
    }
}

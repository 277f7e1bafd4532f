import NIOCore
import Testing

@testable import VelocityHTTP3

/// Typing the peer's unidirectional streams: a type split across reads, duplicates refused, unknown types kept.
@Suite struct PeerStreamsTests {
    @Test func aTypeSplitAcrossReadsIsJoined() throws {
        var streams = HTTP3PeerStreams()
        // 0x21 as a two-byte varint (a reserved type): 0x40 0x21.
        #expect(try streams.classify(ByteBuffer(bytes: [0x40]), onStream: 3) == nil)
        let typed = try #require(try streams.classify(ByteBuffer(bytes: [0x21, 0xAA]), onStream: 3))
        #expect(typed.0 == .unknown && typed.1 == ByteBuffer(bytes: [0xAA]))
        let control = try #require(try streams.classify(ByteBuffer(bytes: [0x00, 0x04, 0x00]), onStream: 7))
        #expect(control.0 == .control && control.1 == ByteBuffer(bytes: [0x04, 0x00]))
        #expect(try streams.classify(ByteBuffer(bytes: [0x01]), onStream: 7)?.0 == .control)
        #expect(streams.kind(of: 7) == .control)
    }

    @Test func aSecondControlOrQPACKStreamIsRefused() throws {
        var streams = HTTP3PeerStreams()
        for (type, first, second) in [(UInt8(0x00), UInt64(3), UInt64(7)), (0x02, 11, 15), (0x03, 19, 23)] {
            _ = try streams.classify(ByteBuffer(bytes: [type]), onStream: first)
            #expect(throws: HTTP3Error.self) { try streams.classify(ByteBuffer(bytes: [type]), onStream: second) }
        }
        #expect(try streams.classify(ByteBuffer(bytes: [0x01]), onStream: 27)?.0 == .push)
    }
}

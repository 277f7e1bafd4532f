import NIOCore
import Testing

@testable import VelocityQUIC

@Suite struct FrameTests {
    static let token = StatelessResetToken(high: 0x0011_2233_4455_6677, low: 0x8899_AABB_CCDD_EEFF)

    /// One of every frame, with integers of every encoded size.
    static let samples: [Frame] = [
        .padding(count: 3),
        .ping,
        .ack(ACKFrame(largest: 10, delay: 3, ranges: [8...10, 3...5], ecn: nil)),
        .ack(
            ACKFrame(
                largest: 1_000_000, delay: 20_000, ranges: [999_990...1_000_000, 500...70_000, 0...1],
                ecn: ECNCounts(ect0: 5, ect1: 0, ce: 300))),
        .resetStream(id: 4, errorCode: 0x10C, finalSize: 1 << 40),
        .stopSending(id: 1 << 20, errorCode: 0),
        .crypto(offset: 0, data: ByteBuffer(string: "client hello")),
        .crypto(offset: 70_000, data: ByteBuffer()),
        .newToken(ByteBuffer(string: "token")),
        .stream(StreamFrame(id: 0, offset: 0, data: ByteBuffer(string: "GET /"), fin: false)),
        .stream(StreamFrame(id: 7, offset: 100, data: ByteBuffer(string: "body"), fin: true)),
        .stream(StreamFrame(id: 3, offset: 0, data: ByteBuffer(), fin: true)),
        .maxData(1 << 30),
        .maxStreamData(id: 8, maximum: 65536),
        .maxStreams(bidirectional: true, maximum: 100),
        .maxStreams(bidirectional: false, maximum: 1 << 60),
        .dataBlocked(12345),
        .streamDataBlocked(id: 2, limit: 63),
        .streamsBlocked(bidirectional: true, limit: 64),
        .streamsBlocked(bidirectional: false, limit: 0),
        .newConnectionID(
            NewConnectionIDFrame(
                sequence: 3, retirePriorTo: 1, connectionID: ConnectionID([1, 2, 3, 4, 5, 6, 7, 8])!, resetToken: token)
        ),
        .retireConnectionID(sequence: 2),
        .pathChallenge(0x0102_0304_0506_0708),
        .pathResponse(0xFFEE_DDCC_BBAA_9988),
        .connectionClose(
            ConnectionCloseFrame(
                isApplication: false, errorCode: TransportError.frameEncodingError, frameType: 0x08,
                reason: ByteBuffer(string: "bad frame"))),
        .connectionClose(ConnectionCloseFrame(isApplication: true, errorCode: 0x100, reason: ByteBuffer())),
        .handshakeDone,
        .datagram(ByteBuffer(string: "datagram")),
    ]

    static func encoded(_ frame: Frame) -> ByteBuffer {
        var buffer = ByteBuffer()
        frame.encode(into: &buffer)
        return buffer
    }

    static func parseError(_ bytes: some Sequence<UInt8>) -> TransportError? {
        var buffer = ByteBuffer(bytes: Array(bytes))
        do {
            _ = try Frame.parse(from: &buffer)
            return nil
        } catch {
            return error
        }
    }

    static func parseAll(_ bytes: [UInt8]) throws(TransportError) -> [Frame] {
        var buffer = ByteBuffer(bytes: bytes)
        var frames: [Frame] = []
        while buffer.readableBytes > 0 { frames.append(try Frame.parse(from: &buffer)) }
        return frames
    }

    @Test(arguments: samples)
    func roundTrips(frame: Frame) throws {
        var buffer = Self.encoded(frame)
        #expect(buffer.readableBytes == frame.encodedSize)
        #expect(buffer.getInteger(at: buffer.readerIndex, as: UInt8.self).map(UInt64.init) == frame.type)
        #expect(try Frame.parse(from: &buffer) == frame)
        #expect(buffer.readableBytes == 0)
    }

    @Test func everyFrameInOnePacketParsesInOrder() throws {
        var packet = ByteBuffer()
        // Padding last, since a run of zeros swallows whatever padding follows it.
        for frame in Self.samples.dropFirst() { frame.encode(into: &packet) }
        Frame.padding(count: 3).encode(into: &packet)
        var parsed: [Frame] = []
        while packet.readableBytes > 0 { parsed.append(try Frame.parse(from: &packet)) }
        #expect(parsed == Array(Self.samples.dropFirst()) + [.padding(count: 3)])
    }

    @Test func paddingCollapsesIntoOneFrame() throws {
        #expect(try Self.parseAll([0, 0, 0, 0, 1, 0]) == [.padding(count: 4), .ping, .padding(count: 1)])
        #expect(try Self.parseAll([UInt8](repeating: 0, count: 1200)) == [.padding(count: 1200)])
        let padding = Frame.padding(count: 1000)
        #expect(Self.encoded(padding).readableBytes == 1000)
        #expect(!padding.isAckEliciting)
        #expect(padding.countsInFlight)
    }

    @Test func ackFieldsAreGapsAndLengths() throws {
        let ack = Frame.ack(ACKFrame(largest: 10, delay: 0, ranges: [8...10, 3...5], ecn: nil))
        // Largest 10, delay 0, one more range, first range 2, gap 8 - 5 - 2 = 1, length 2.
        #expect(Array(Self.encoded(ack).readableBytesView) == [0x02, 10, 0, 1, 2, 1, 2])
        // A range may end exactly at packet number 0.
        #expect(
            try Self.parseAll([0x02, 10, 0, 1, 2, 1, 5])
                == [.ack(ACKFrame(largest: 10, delay: 0, ranges: [8...10, 0...5], ecn: nil))])
        // Adjacent single packets: gap 0 leaves one missing packet between them.
        let sparse = ACKFrame(largest: 6, delay: 1, ranges: [6...6, 4...4, 2...2, 0...0], ecn: nil)
        #expect(Array(Self.encoded(.ack(sparse)).readableBytesView) == [0x02, 6, 1, 3, 0, 0, 0, 0, 0, 0, 0])
        #expect(try Self.parseAll([0x02, 6, 1, 3, 0, 0, 0, 0, 0, 0, 0]) == [.ack(sparse)])
    }

    @Test func malformedACKsAreRefused() {
        let cases: [[UInt8]] = [
            [0x02, 5, 0, 0, 6],  // first range below zero
            [0x02, 10, 0, 1, 2, 7, 0],  // gap below zero
            [0x02, 10, 0, 1, 2, 1, 6],  // range length below zero
            [0x02, 10, 0, 0x80, 0x01, 0x00, 0x00, 0, 0, 0],  // 65536 ranges in three bytes
            [0x02, 10, 0, 0xBF, 0xFF, 0xFF, 0xFF, 0, 0, 0],  // a range count no packet could hold
            [0x03, 10, 0, 0, 0, 1, 2],  // ECN counts cut short
        ]
        for bytes in cases {
            let error = Self.parseError(bytes)
            #expect(error?.code == TransportError.frameEncodingError, "\(bytes)")
            #expect(error?.frameType == UInt64(bytes[0]), "\(bytes)")
        }
    }

    @Test func absurdRangeCountsAreRefusedBeforeReadingRanges() {
        // Two ranges claimed, three bytes left: each range takes at least two bytes.
        #expect(
            Self.parseError([0x02, 10, 0, 2, 0, 0, 0, 0])
                == .frameEncoding("ACK range count exceeds the frame", frameType: 0x02))
        #expect(Self.parseError([0x02, 10, 0, 2, 0, 0, 0, 0, 0]) == nil)
    }

    @Test func streamWithoutLengthRunsToTheEnd() throws {
        let bytes: [UInt8] = [0x0D, 0x04, 0x40, 0x64] + Array("rest of packet".utf8)
        var buffer = ByteBuffer(bytes: bytes)
        let frame = try Frame.parse(from: &buffer)
        #expect(
            frame == .stream(StreamFrame(id: 4, offset: 100, data: ByteBuffer(string: "rest of packet"), fin: true)))
        #expect(buffer.readableBytes == 0)
        #expect(
            try Self.parseAll([0x08, 0x00]) == [.stream(StreamFrame(id: 0, offset: 0, data: ByteBuffer(), fin: false))])
        #expect(try Self.parseAll([0x30, 1, 2]) == [.datagram(ByteBuffer(bytes: [1, 2]))])
    }

    @Test func dataIsSlicedNotCopied() throws {
        let frames: [Frame] = [
            .stream(StreamFrame(id: 1, offset: 9, data: ByteBuffer(string: "payload"), fin: false)),
            .crypto(offset: 0, data: ByteBuffer(string: "payload")),
            .newToken(ByteBuffer(string: "payload")),
            .datagram(ByteBuffer(string: "payload")),
            .connectionClose(
                ConnectionCloseFrame(isApplication: true, errorCode: 1, reason: ByteBuffer(string: "payload"))),
        ]
        for frame in frames {
            var packet = ByteBuffer()
            packet.writeInteger(UInt8(1))  // a PING first, so the frame starts inside the packet
            frame.encode(into: &packet)
            let end = packet.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress! + $0.count) }
            _ = try Frame.parse(from: &packet)
            let data: ByteBuffer
            switch try Frame.parse(from: &packet) {
            case .stream(let stream): data = stream.data
            case .crypto(_, let slice), .newToken(let slice), .datagram(let slice): data = slice
            case .connectionClose(let close): data = close.reason
            default:
                Issue.record("\(frame) parsed as something else")
                continue
            }
            let dataEnd = data.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress! + $0.count) }
            #expect(dataEnd == end, "\(frame)")
        }
    }

    @Test(arguments: samples.filter { if case .padding = $0 { false } else { true } })
    func everyTruncationIsAFrameEncodingError(frame: Frame) {
        let bytes = Array(Self.encoded(frame).readableBytesView)
        for cut in 0..<bytes.count {
            // A 0x30 DATAGRAM or STREAM without LEN would take a short packet, but encode always writes lengths.
            let error = Self.parseError(bytes.prefix(cut))
            #expect(error?.code == TransportError.frameEncodingError, "\(frame) cut at \(cut)")
            if cut > 0 { #expect(error?.frameType == frame.type, "\(frame) cut at \(cut)") }
        }
    }

    @Test func unknownAndOverlongTypesAreRefused() {
        for type: UInt8 in [0x1F, 0x20, 0x2F, 0x32, 0x3F] {
            let error = Self.parseError([type, 0, 0, 0])
            #expect(error?.code == TransportError.frameEncodingError)
            #expect(error?.frameType == UInt64(type))
        }
        // PING as a two-byte integer: legal as an integer, not as a frame type.
        #expect(Self.parseError([0x40, 0x01]) == .frameEncoding("frame type not minimally encoded", frameType: 1))
        #expect(
            Self.parseError([0x80, 0x00, 0x00, 0x06, 0, 0])
                == .frameEncoding("frame type not minimally encoded", frameType: 6))
        #expect(Self.parseError([0x40, 0x40])?.frameType == 0x40)
        #expect(Self.parseError([0x40])?.code == TransportError.frameEncodingError)
        #expect(Self.parseError([])?.code == TransportError.frameEncodingError)
    }

    @Test func fieldLimitsAreEnforced() {
        func refused(_ bytes: [UInt8], _ comment: Comment) {
            #expect(Self.parseError(bytes)?.code == TransportError.frameEncodingError, comment)
        }
        let maxOffset: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        refused([0x0E, 0] + maxOffset + [1, 0xAA], "STREAM ending beyond 2^62-1")
        refused([0x06] + maxOffset + [1, 0xAA], "CRYPTO ending beyond 2^62-1")
        #expect(Self.parseError([0x0E, 0] + maxOffset + [0]) == nil, "an empty STREAM may end at 2^62-1")
        refused([0x07, 0], "empty NEW_TOKEN")
        refused([0x12, 0xD0, 0, 0, 0, 0, 0, 0, 1], "MAX_STREAMS above 2^60")
        refused([0x17, 0xD0, 0, 0, 0, 0, 0, 0, 1], "STREAMS_BLOCKED above 2^60")
        let token = [UInt8](repeating: 7, count: 16)
        refused([0x18, 1, 0, 0] + token, "zero-length connection ID")
        refused([0x18, 1, 0, 21] + [UInt8](repeating: 1, count: 21) + token, "21-byte connection ID")
        refused([0x18, 1, 2, 1, 9] + token, "Retire Prior To above Sequence Number")
        #expect(Self.parseError([0x18, 2, 2, 1, 9] + token) == nil)
        refused([0x0A, 0, 5, 1, 2], "STREAM length beyond the packet")
        refused([0x1C, 0, 0, 5, 1], "reason beyond the packet")
    }

    @Test func streamHeadersCanBeSizedBeforeWriting() {
        let cases: [(id: UInt64, offset: UInt64, length: Int, fin: Bool, type: UInt8)] = [
            (0, 0, 0, false, 0x0A), (4, 0, 1000, true, 0x0B), (1 << 20, 64, 70_000, false, 0x0E),
            (VarInt.max, VarInt.max - 1, 1, true, 0x0F),
        ]
        for c in cases {
            var buffer = ByteBuffer()
            StreamFrame.encodeHeader(id: c.id, offset: c.offset, length: c.length, fin: c.fin, into: &buffer)
            #expect(buffer.readableBytes == StreamFrame.headerSize(id: c.id, offset: c.offset, length: c.length))
            #expect(buffer.getInteger(at: 0, as: UInt8.self) == c.type)
        }
        var crypto = ByteBuffer()
        Frame.encodeCryptoHeader(offset: 16384, length: 64, into: &crypto)
        #expect(Array(crypto.readableBytesView) == [0x06, 0x80, 0x00, 0x40, 0x00, 0x40, 0x40])
        #expect(Frame.cryptoHeaderSize(offset: 16384, length: 64) == 7)
        #expect(Frame.cryptoHeaderSize(offset: 0, length: 63) == 3)
    }

    @Test func permittedPacketTypes() {
        let stream = Frame.stream(StreamFrame(id: 0, offset: 0, data: ByteBuffer(), fin: false))
        let transportClose = Frame.connectionClose(ConnectionCloseFrame(isApplication: false, errorCode: 0))
        let applicationClose = Frame.connectionClose(ConnectionCloseFrame(isApplication: true, errorCode: 0))
        let ack = Frame.ack(ACKFrame(largest: 0, delay: 0, ranges: [0...0], ecn: nil))
        let crypto = Frame.crypto(offset: 0, data: ByteBuffer())
        for level in [EncryptionLevel.initial, .handshake] {
            for frame in [Frame.padding(count: 1), .ping, ack, crypto, transportClose] {
                #expect(frame.isAllowed(in: level), "\(frame) in \(level)")
            }
            for frame in [
                stream, applicationClose, .handshakeDone, .newToken(ByteBuffer()), .maxData(1), .datagram(ByteBuffer()),
            ] {
                #expect(!frame.isAllowed(in: level), "\(frame) in \(level)")
            }
        }
        for frame in [
            ack, crypto, .handshakeDone, .newToken(ByteBuffer()), .pathResponse(0), .retireConnectionID(sequence: 0),
        ] {
            #expect(!frame.isAllowed(in: .zeroRTT), "\(frame) in 0-RTT")
        }
        for frame in [stream, .pathChallenge(0), applicationClose, transportClose, .datagram(ByteBuffer()), .ping] {
            #expect(frame.isAllowed(in: .zeroRTT), "\(frame) in 0-RTT")
        }
        for frame in Self.samples { #expect(frame.isAllowed(in: .oneRTT)) }
    }

    @Test func ackElicitingAndInFlight() {
        let ack = Frame.ack(ACKFrame(largest: 0, delay: 0, ranges: [0...0], ecn: nil))
        let close = Frame.connectionClose(ConnectionCloseFrame(isApplication: false, errorCode: 0))
        for frame in [ack, close] {
            #expect(!frame.isAckEliciting)
            #expect(!frame.countsInFlight)
        }
        for frame in [Frame.ping, .handshakeDone, .maxData(0), .datagram(ByteBuffer())] {
            #expect(frame.isAckEliciting)
            #expect(frame.countsInFlight)
        }
    }

    @Test func closeFramesFromErrors() {
        let close = ConnectionCloseFrame(.frameEncoding("frame ends early", frameType: 0x06))
        #expect(!close.isApplication)
        #expect(close.errorCode == 0x07)
        #expect(close.frameType == 0x06)
        #expect(close.reason == ByteBuffer(string: "frame ends early"))
        #expect(ConnectionCloseFrame(isApplication: true, errorCode: 9, frameType: 6).frameType == 0)
        #expect(TransportError.cryptoError(alert: 0x28) == 0x128)
        #expect(TransportError.protocolViolation == 0x0A)
        #expect(TransportError.noViablePath == 0x10)
        #expect("\(TransportError.frameEncoding("x", frameType: 0x1A))" == "FRAME_ENCODING_ERROR in frame 0x1a: x")
    }
}

import NIOCore
import Testing
import VelocityQUIC

@testable import VelocityHTTP3

@Suite struct HTTP3FrameReaderTests {
    static func frame(type: UInt64, payload: ByteBuffer) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeHTTP3FrameHeader(type: type, length: payload.readableBytes)
        buffer.writeImmutableBuffer(payload)
        return buffer
    }

    static func frame(type: UInt64, integer: UInt64) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeQUICVarInt(integer)
        return frame(type: type, payload: payload)
    }

    /// Feeds `pieces` in turn, reading every frame each one completes; consecutive DATA parts are joined, so
    /// that the result does not depend on how the bytes were cut.
    static func read(_ pieces: [ByteBuffer], into reader: inout HTTP3FrameReader) throws -> [HTTP3Frame] {
        var frames: [HTTP3Frame] = []
        for piece in pieces {
            reader.append(piece)
            while let frame = try reader.next() {
                if case .data(let part) = frame {
                    #expect(part.readableBytes > 0)
                    if case .data(var joined) = frames.last {
                        joined.writeImmutableBuffer(part)
                        frames[frames.count - 1] = .data(joined)
                        continue
                    }
                }
                frames.append(frame)
            }
        }
        return frames
    }

    static func read(_ pieces: [ByteBuffer]) throws -> [HTTP3Frame] {
        var reader = HTTP3FrameReader()
        let frames = try read(pieces, into: &reader)
        #expect(reader.isAtFrameBoundary)
        return frames
    }

    static let settings = HTTP3Settings(
        qpackMaxTableCapacity: 4096, maxFieldSectionSize: 16384, qpackBlockedStreams: 100,
        enableConnectProtocol: true, h3Datagram: true)

    /// One of every frame the reader knows, with what it should deliver for each.
    static var everyFrame: (bytes: ByteBuffer, frames: [HTTP3Frame]) {
        var bytes = ByteBuffer()
        bytes.writeImmutableBuffer(frame(type: HTTP3FrameType.headers, payload: ByteBuffer(hex: "0000d1d7")))
        bytes.writeImmutableBuffer(frame(type: HTTP3FrameType.data, payload: ByteBuffer(string: "hello")))
        bytes.writeImmutableBuffer(frame(type: HTTP3FrameType.data, payload: ByteBuffer()))
        bytes.writeImmutableBuffer(frame(type: HTTP3FrameType.headers, payload: ByteBuffer()))
        bytes.writeHTTP3Settings(settings)
        bytes.writeHTTP3Goaway(VarInt.max)
        bytes.writeImmutableBuffer(frame(type: HTTP3FrameType.maxPushID, integer: 16384))
        bytes.writeImmutableBuffer(frame(type: HTTP3FrameType.cancelPush, integer: 63))
        bytes.writeImmutableBuffer(frame(type: HTTP3FrameType.pushPromise, payload: ByteBuffer(hex: "01 0000d1")))
        bytes.writeImmutableBuffer(frame(type: HTTP3FrameType.data, payload: ByteBuffer(string: "world")))
        let frames: [HTTP3Frame] = [
            .headers(ByteBuffer(hex: "0000d1d7")), .data(ByteBuffer(string: "hello")), .headers(ByteBuffer()),
            .settings(settings), .goaway(VarInt.max), .maxPushID(16384), .cancelPush(63), .pushPromise,
            .data(ByteBuffer(string: "world")),
        ]
        return (bytes, frames)
    }

    @Test func everyFrameRoundTrips() throws {
        let (bytes, frames) = Self.everyFrame
        #expect(try Self.read([bytes]) == frames)
    }

    @Test func everyFrameRoundTripsCutAnywhere() throws {
        let (bytes, frames) = Self.everyFrame
        for cut in 0...bytes.readableBytes {
            let pieces = [
                bytes.getSlice(at: 0, length: cut)!, bytes.getSlice(at: cut, length: bytes.readableBytes - cut)!,
            ]
            #expect(try Self.read(pieces) == frames, "cut at \(cut)")
        }
    }

    @Test func goawayRoundTripsAtEveryIntegerSize() throws {
        for id: UInt64 in [0, 63, 64, 16383, 16384, 1_073_741_823, 1_073_741_824, VarInt.max] {
            var bytes = ByteBuffer()
            #expect(bytes.writeHTTP3Goaway(id) == bytes.readableBytes)
            #expect(try Self.read([bytes]) == [.goaway(id)])
        }
    }

    @Test func dataFedOneByteAtATimeComesOutInOrder() throws {
        let payload = ByteBuffer(bytes: (0..<300).map { UInt8(truncatingIfNeeded: $0 * 7) })
        let bytes = Self.frame(type: HTTP3FrameType.data, payload: payload)
        var reader = HTTP3FrameReader()
        var received = ByteBuffer()
        for index in 0..<bytes.readableBytes {
            #expect(reader.isAtFrameBoundary == (index == 0))
            reader.append(bytes.getSlice(at: index, length: 1)!)
            while let frame = try reader.next() {
                guard case .data(let part) = frame else {
                    Issue.record("unexpected \(frame)")
                    return
                }
                #expect(part.readableBytes == 1)
                received.writeImmutableBuffer(part)
            }
        }
        #expect(received == payload)
        #expect(reader.isAtFrameBoundary)
    }

    @Test func largeDataStreamsInBoundedMemory() throws {
        let size = 100 << 20
        let chunk = ByteBuffer(repeating: 0xAB, count: 16 * 1024)
        var reader = HTTP3FrameReader()
        var piece = ByteBuffer()
        piece.writeHTTP3FrameHeader(type: HTTP3FrameType.data, length: size)
        piece.writeImmutableBuffer(chunk)
        var sent = chunk.readableBytes
        var received = 0
        while true {
            reader.append(piece)
            #expect(reader.bufferedBytes <= piece.readableBytes)
            while let frame = try reader.next() {
                guard case .data(let part) = frame else {
                    Issue.record("unexpected \(frame)")
                    return
                }
                received += part.readableBytes
            }
            // Nothing is held back for the rest of the frame.
            #expect(received == sent)
            #expect(reader.isAtFrameBoundary == (received == size))
            guard sent < size else { break }
            piece = chunk.getSlice(at: 0, length: min(chunk.readableBytes, size - sent))!
            sent += piece.readableBytes
        }
        let headers = Self.frame(type: HTTP3FrameType.headers, payload: chunk)
        #expect(try Self.read([headers], into: &reader) == [.headers(chunk)])
    }

    @Test func manySmallFramesAcrossPiecesStayInBoundedMemory() throws {
        // Pieces end inside frames, so the reader always has a leftover to join with the next piece.
        var unit = Self.frame(type: HTTP3FrameType.headers, payload: ByteBuffer(repeating: 1, count: 100))
        unit.writeImmutableBuffer(Self.frame(type: HTTP3FrameType.data, payload: ByteBuffer(repeating: 2, count: 1000)))
        unit.writeImmutableBuffer(Self.frame(type: 0x1F * 7 + 0x21, payload: ByteBuffer(repeating: 3, count: 50)))
        var stream = ByteBuffer()
        for _ in 0..<2000 { stream.writeImmutableBuffer(unit) }
        var reader = HTTP3FrameReader()
        var headers = 0
        var data = 0
        while let piece = stream.readSlice(length: min(4096, stream.readableBytes)), piece.readableBytes > 0 {
            reader.append(piece)
            #expect(reader.bufferedBytes <= 4096 + 512)
            while let frame = try reader.next() {
                switch frame {
                case .headers(let payload): headers += payload.readableBytes == 100 ? 1 : 0
                case .data(let part): data += part.readableBytes
                default: Issue.record("unexpected \(frame)")
                }
            }
        }
        #expect(headers == 2000)
        #expect(data == 2000 * 1000)
        #expect(reader.isAtFrameBoundary)
    }

    @Test func dataIsSlicedOutOfTheAppendedBytes() throws {
        let bytes = Self.frame(type: HTTP3FrameType.data, payload: ByteBuffer(repeating: 1, count: 1000))
        var reader = HTTP3FrameReader()
        reader.append(bytes)
        guard case .data(let part) = try reader.next() else {
            Issue.record("no DATA")
            return
        }
        let appended = bytes.withUnsafeReadableBytes { $0.baseAddress! }
        let delivered = part.withUnsafeReadableBytes { $0.baseAddress! }
        #expect(delivered == appended + 3)
    }

    @Test func headersSplitAcrossManyAppends() throws {
        var random = SplitMix64(seed: 9114)
        let payload = ByteBuffer(bytes: random.bytes(5000))
        let bytes = Self.frame(type: HTTP3FrameType.headers, payload: payload)
        var reader = HTTP3FrameReader()
        var offset = 0
        var frames: [HTTP3Frame] = []
        while offset < bytes.readableBytes {
            let count = min(Int.random(in: 1...40, using: &random), bytes.readableBytes - offset)
            reader.append(bytes.getSlice(at: offset, length: count)!)
            offset += count
            while let frame = try reader.next() { frames.append(frame) }
            #expect(frames.isEmpty == (offset < bytes.readableBytes))
            #expect(reader.isAtFrameBoundary == (offset == bytes.readableBytes))
        }
        #expect(frames == [.headers(payload)])
    }

    @Test(arguments: [0x21, 0x1F * 1000 + 0x21, 0x0A, 0x0C, 0x2B_6000])
    func unknownFramesAreSkippedWhateverTheirSize(type: UInt64) throws {
        let size = 10 << 20
        let chunk = ByteBuffer(repeating: 0xCD, count: 4096)
        var reader = HTTP3FrameReader()
        var header = ByteBuffer()
        header.writeHTTP3FrameHeader(type: type, length: size)
        // Cut inside the frame header too.
        reader.append(header.getSlice(at: 0, length: 1)!)
        #expect(try reader.next() == nil)
        reader.append(header.getSlice(at: 1, length: header.readableBytes - 1)!)
        for _ in 0..<size / chunk.readableBytes {
            #expect(try reader.next() == nil)
            #expect(!reader.isAtFrameBoundary)
            reader.append(chunk)
            #expect(reader.bufferedBytes <= chunk.readableBytes)
        }
        #expect(try reader.next() == nil)
        #expect(reader.isAtFrameBoundary)
        var goaway = ByteBuffer()
        goaway.writeHTTP3Goaway(8)
        #expect(try Self.read([goaway], into: &reader) == [.goaway(8)])
    }

    @Test func aPushPromiseIsReportedAtItsHeaderAndItsPayloadSkipped() throws {
        let payload = ByteBuffer(repeating: 7, count: 100)
        let bytes = Self.frame(type: HTTP3FrameType.pushPromise, payload: payload)
        var reader = HTTP3FrameReader()
        reader.append(bytes.getSlice(at: 0, length: 10)!)
        #expect(try reader.next() == .pushPromise)
        #expect(try reader.next() == nil)
        #expect(!reader.isAtFrameBoundary)
        reader.append(bytes.getSlice(at: 10, length: bytes.readableBytes - 10)!)
        #expect(try reader.next() == nil)
        #expect(reader.isAtFrameBoundary)
    }

    @Test func isAtFrameBoundaryOnlyBetweenFrames() throws {
        let bytes = Self.everyFrame.bytes
        var starts: Set<Int> = [0]
        var cursor = bytes
        while cursor.readableBytes > 0 {
            _ = cursor.readQUICVarInt()
            cursor.moveReaderIndex(forwardBy: Int(cursor.readQUICVarInt()!))
            starts.insert(cursor.readerIndex)
        }
        for cut in 0...bytes.readableBytes {
            var reader = HTTP3FrameReader()
            _ = try Self.read([bytes.getSlice(at: 0, length: cut)!], into: &reader)
            #expect(reader.isAtFrameBoundary == starts.contains(cut), "cut at \(cut)")
        }
    }

    @Test func headersUpToTheLimitAreAccepted() throws {
        let payload = ByteBuffer(repeating: 0, count: 100)
        let frame = Self.frame(type: HTTP3FrameType.headers, payload: payload)
        var reader = HTTP3FrameReader(maxHeadersSize: 100)
        #expect(try Self.read([frame], into: &reader) == [.headers(payload)])
        var tight = HTTP3FrameReader(maxHeadersSize: 99)
        let error = #expect(throws: HTTP3Error.self) { try Self.read([frame], into: &tight) }
        #expect(error?.code == .excessiveLoad)
    }

    /// Bad input, with the code it must fail with. Frames announced too long fail on their header alone,
    /// before any of their payload arrives.
    static let failures: [(hex: String, code: HTTP3ErrorCode)] = [
        ("01 80010001", .excessiveLoad),  // HEADERS longer than 64 KiB
        ("04 80004001", .excessiveLoad),  // SETTINGS longer than 16 KiB
        ("07 09", .frameError),  // GOAWAY longer than any integer
        ("0d 4100", .frameError),  // MAX_PUSH_ID likewise, with its length in two bytes
        ("03 c000000000004000", .frameError),  // CANCEL_PUSH likewise, with its length in eight bytes
        ("07 00", .frameError),  // GOAWAY without its ID
        ("07 01 40", .frameError),  // GOAWAY whose ID needs two bytes and has one
        ("07 02 05 00", .frameError),  // GOAWAY with a byte after its ID
        ("0d 00", .frameError),
        ("0d 02 05 05", .frameError),
        ("03 03 00 00 00", .frameError),
        ("03 01 c0", .frameError),
        ("04 01 01", .frameError),  // SETTINGS with an identifier and no value
        ("04 02 01 40", .frameError),  // SETTINGS whose value is cut
        ("04 02 06 80", .frameError),
        ("04 04 01 00 01 00", .settingsError),  // the same identifier twice
        ("04 02 04 00", .settingsError),  // HTTP/2's INITIAL_WINDOW_SIZE
        ("04 02 33 02", .settingsError),  // SETTINGS_H3_DATAGRAM neither 0 nor 1
        ("02 00", .frameUnexpected),  // HTTP/2's PRIORITY
        ("06 08 0000000000000000", .frameUnexpected),  // PING
        ("08 04", .frameUnexpected),  // WINDOW_UPDATE, failing before its payload
        ("09 00", .frameUnexpected),  // CONTINUATION
    ]

    @Test(arguments: failures)
    func badFramesFailWithTheirCode(hex: String, code: HTTP3ErrorCode) throws {
        // A valid frame first: the reader has to find the bad one where it starts.
        var bytes = ByteBuffer()
        bytes.writeHTTP3Goaway(0)
        bytes.writeImmutableBuffer(ByteBuffer(hex: hex))
        var reader = HTTP3FrameReader()
        reader.append(bytes)
        #expect(try reader.next() == .goaway(0))
        let error = #expect(throws: HTTP3Error.self) { try reader.next() }
        #expect(error?.code == code)
    }
}
